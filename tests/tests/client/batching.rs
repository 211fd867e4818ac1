//! Batched output through the client: the client asks for it whenever the service offers it,
//! and every way of reading a run gives, byte for byte, what it gives with one frame per line.

use crate::support::*;
use cc_executor_client::capture::OutputCapture;
use cc_executor_client::protocol::capability;
use cc_executor_client::{Client, Command, OutputEvent, OutputStream, Result};
use tests::output::{Trickle, MIXED};

/// Per stream, the output events in order (with the rate-limit events among stdout's, where
/// `MIXED` prints the line they come from); and how many output events there were.
fn lanes(events: &[Result<OutputEvent>]) -> ([Vec<String>; 2], usize) {
    let mut lanes: [Vec<String>; 2] = Default::default();
    let mut outputs = 0;
    for event in events {
        match event.as_ref().expect("no error") {
            OutputEvent::Output { stream, data, .. } => {
                outputs += 1;
                lanes[usize::from(*stream == OutputStream::Stderr)].push(data.clone());
            }
            OutputEvent::RateLimitExceeded(limit) => {
                lanes[0].push(format!("limit: {}", limit.text))
            }
            _ => {}
        }
    }
    (lanes, outputs)
}

#[tokio::test]
async fn batched_runs_yield_the_same_lines_as_runs_with_a_frame_per_line() {
    let server = start().await;
    let batched = Client::new(server.url()).unwrap();
    let per_line = Client::builder(server.url())
        .batch_output(false)
        .build()
        .unwrap();
    let session = bounded("session", batched.session()).await.unwrap();
    assert!(session.connected().has(capability::BATCH_OUTPUT));

    let read = |client: Client, cmd: Command| async move {
        collect(bounded("execute", client.execute(cmd)).await.unwrap()).await
    };
    let (lines, n) = lanes(&read(per_line.clone(), Command::new(MIXED)).await);
    let (got, m) = lanes(&read(batched.clone(), Command::new(MIXED)).await);
    assert_eq!(got, lines, "one event per line either way");
    assert_eq!(m, n);
    assert!(lines[0].iter().all(|l| l.matches('\n').count() <= 1));
    assert!(lines[0]
        .iter()
        .any(|l| l.starts_with("limit: Claude AI usage limit")));

    // Output as it comes: batches (and chunks) that join to the same text, in far fewer events.
    let (raw, r) = lanes(&read(batched.clone(), Command::new(MIXED).raw_chunks(true)).await);
    let (raw_lines, _) = lanes(&read(per_line, Command::new(MIXED).raw_chunks(true)).await);
    for s in 0..2 {
        assert_eq!(raw[s].concat(), lines[s].concat(), "stream {s}");
        assert_eq!(raw_lines[s].concat(), lines[s].concat(), "stream {s}");
    }
    assert!(r * 10 < n, "{r} raw events for {n} lines");

    // A bounded capture takes batches as they come, with the same text.
    let run = bounded("execute", batched.execute(MIXED)).await.unwrap();
    let mut pieces = 0;
    let capture = OutputCapture::new(1 << 20);
    let out = bounded("collect", run.collect_bounded(capture, |_, _| pieces += 1))
        .await
        .unwrap();
    let stdout: String = lines[0]
        .iter()
        .filter(|l| !l.starts_with("limit: "))
        .map(String::as_str)
        .collect();
    assert_eq!(out.output.stdout, stdout);
    assert_eq!(out.output.stderr, lines[1].concat());
    assert!(!out.output.truncated);
    assert!(pieces * 10 < n, "{pieces} pieces for {n} lines");
}

/// Each line of a command that writes one and then waits arrives as its own event before the
/// next is written: batching holds nothing back (a client or service that did would hang here
/// until the wait bound fails the test).
#[tokio::test]
async fn a_trickle_arrives_line_by_line() {
    let server = start().await;
    let client = Client::new(server.url()).unwrap();
    for raw in [false, true] {
        let mut trickle = Trickle::new();
        let cmd = Command::new(trickle.command()).raw_chunks(raw);
        let mut run = bounded("execute", client.execute(cmd)).await.unwrap();
        for i in 1..=3 {
            let event = next_matching(&mut run, "a tick", |e| {
                matches!(e, OutputEvent::Output { .. })
            })
            .await;
            match event {
                OutputEvent::Output { stream, data, .. } => {
                    assert_eq!(
                        (stream, data),
                        (OutputStream::Stdout, format!("tick {i}\n"))
                    );
                }
                other => panic!("{other:?}"),
            }
            trickle.release().await;
        }
        let rest = collect(run).await;
        assert_eq!(text(&rest, OutputStream::Stdout), "done\n");
    }
}
