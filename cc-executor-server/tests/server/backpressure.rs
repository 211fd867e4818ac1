//! Backpressure: a client that stops reading must not make the service buffer the output.
//!
//! The service runs in this test process (its own test binary, so no other test shares the
//! memory measurement). A 200 MB producer writes against a client that has stopped reading:
//! the output queue fills, the pipe readers stop, the producer blocks on its pipe, and the
//! resident memory of the process stays within 50 MB of what it was before.

use std::time::Duration;

use cc_executor_server::Server;
use serde_json::json;
use tests::procs::{processes_in_group, wait_group_gone};
use tests::ws::Client;

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_client_keeps_service_memory_bounded() {
    let server = Server::builder()
        .kill_grace(Duration::from_millis(500))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut c = Client::connect(&server.url()).await;
    let before = rss_kib();
    // 200 MB of 1000-character lines, produced far faster than a stalled client takes them.
    let producer = "yes \"$(head -c 999 /dev/zero | tr '\\0' x)\" | head -c 200000000";
    c.execute(json!({ "command": producer }), 1).await;
    let result = c.frame().await;
    let pgid = result["result"]["pgid"].as_u64().expect("pgid") as u32;

    // Stop reading. Watch memory for a while: without backpressure the whole 200 MB would
    // be buffered within this window.
    let mut peak = before;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_kib());
    }
    let grown_mib = peak.saturating_sub(before) / 1024;
    eprintln!("rss before {before} KiB, peak {peak} KiB");
    assert!(
        grown_mib < 50,
        "memory grew by {grown_mib} MiB against a stalled client"
    );
    // The producer is blocked on its pipe, not finished.
    assert!(
        !processes_in_group(pgid).is_empty(),
        "the producer finished: its output was buffered somewhere"
    );

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
    if let Err(left) = wait_group_gone(pgid, Duration::from_secs(15)).await {
        panic!("producer survived: {left:?}");
    }
    server.shutdown().await;
}
