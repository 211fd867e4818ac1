//! Backpressure: a client that stops reading must not make the service buffer the output.
//!
//! The service runs as its own process (the `cc-executor-server` binary), so that its memory is
//! measured alone. A 200 MB producer writes against a client that has stopped reading: the
//! output queue fills, the pipe readers stop, the producer blocks on its pipe, and the resident
//! memory of the service stays within 50 MB of what it was before.

use std::time::Duration;

use serde_json::json;
use tests::procs::{self, wait_group_gone};
use tests::service::ServiceProcess;
use tests::ws::{Client, WAIT};

/// How long the producer's written byte count must stay still for it to count as blocked: a
/// producer that can write moves it by megabytes in that time.
const STILL: Duration = Duration::from_secs(1);

#[tokio::test]
async fn stalled_client_keeps_service_memory_bounded() {
    let service = ServiceProcess::start_with(&["--kill-grace", "0.5"], &[]).await;
    let pid = service.pid().as_raw() as u32;
    let rss_kib = || procs::status_kib(Some(pid), "VmRSS").expect("the service's VmRSS");
    let mut c = Client::connect(&service.url).await;
    let before = rss_kib();
    // 200 MB of 1000-character lines, produced far faster than a stalled client takes them.
    let producer = "yes \"$(head -c 999 /dev/zero | tr '\\0' x)\" | head -c 200000000";
    c.execute(json!({ "command": producer }), 1).await;
    let result = c.frame().await;
    let pgid = result["result"]["pgid"].as_u64().expect("pgid") as u32;

    // Stop reading, and wait until the producer is blocked on its pipe: the bytes `head` has
    // written stay still. Meanwhile the service's memory must stay bounded, and the producer must
    // not finish: without backpressure the whole 200 MB would be buffered (memory grows, the
    // producer ends) and the wait fails.
    let mut peak = before;
    let mut last: Option<(u64, tokio::time::Instant)> = None;
    let start = tokio::time::Instant::now();
    let written = loop {
        peak = peak.max(rss_kib());
        let grown_mib = peak.saturating_sub(before) / 1024;
        assert!(
            grown_mib < 50,
            "memory grew by {grown_mib} MiB against a stalled client"
        );
        let head = procs::processes_in_group(pgid)
            .into_iter()
            .find(|&p| procs::cmdline(p).is_some_and(|c| c.starts_with("head -c 200000000")));
        match (head.and_then(procs::bytes_written), last) {
            (None, Some(_)) => panic!("the producer finished: its output was buffered somewhere"),
            // Not started yet.
            (None, None) => {}
            (Some(written), Some((w, since))) if w == written => {
                if since.elapsed() >= STILL {
                    break written;
                }
            }
            (Some(written), _) => last = Some((written, tokio::time::Instant::now())),
        }
        assert!(
            start.elapsed() < WAIT,
            "the producer never blocked (last seen: {last:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("rss before {before} KiB, peak {peak} KiB; producer blocked after {written} bytes");

    // Reading again resumes the stream, in order.
    let mut bytes = 0;
    while bytes < 5_000_000 {
        let f = c.frame().await;
        if f["method"] == "process.output" {
            let data = f["params"]["data"].as_str().unwrap();
            assert_eq!(
                data.len(),
                1000,
                "whole lines: {}",
                &data[..data.len().min(40)]
            );
            bytes += data.len();
        }
    }
    // A client that vanishes mid-stream takes its processes with it.
    c.vanish();
    if let Err(left) = wait_group_gone(pgid, WAIT).await {
        panic!("producer survived: {left:?}");
    }
    service.shutdown().await;
}
