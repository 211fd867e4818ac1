//! The client's event stream against the real service: every event kind, output reassembly,
//! invalid UTF-8, collected outcomes and sessions.

use std::time::Duration;

use crate::support::*;
use cc_executor_client::protocol::capability;
use cc_executor_client::{
    Chunk, Command, Error, OutputEvent, OutputStream, RateLimitKind, RunStatus,
};
use futures_util::StreamExt;

#[tokio::test]
async fn a_run_yields_started_output_and_completed_then_ends() {
    let (_server, client) = start_client().await;
    let run = execute(&client, "echo out; echo err >&2; exit 3").await;
    let pid = run.pid();
    assert!(pid > 0);
    let events = collect(run).await;
    assert!(events.iter().all(Result::is_ok), "{events:?}");
    match &events[0] {
        Ok(OutputEvent::Started { pid: p, .. }) => assert_eq!(*p, pid),
        other => panic!("first event {other:?}"),
    }
    assert_eq!(text(&events, OutputStream::Stdout), "out\n");
    assert_eq!(text(&events, OutputStream::Stderr), "err\n");
    match events.last().unwrap() {
        Ok(OutputEvent::Completed {
            status,
            exit_code,
            timed_out,
            ..
        }) => {
            assert_eq!(*status, RunStatus::Failed);
            assert_eq!(*exit_code, Some(3));
            assert!(!timed_out);
        }
        other => panic!("last event {other:?}"),
    }
}

#[tokio::test]
async fn run_collects_an_outcome() {
    let (_server, client) = start_client().await;
    let outcome = bounded(
        "run",
        client.run("printf 'a\\nb\\n'; echo e >&2; printf 'no newline'"),
    )
    .await
    .unwrap();
    assert!(outcome.success(), "{outcome:?}");
    assert_eq!(outcome.stdout, "a\nb\nno newline");
    assert_eq!(outcome.stderr, "e\n");
    assert_eq!(outcome.exit_code, Some(0));
    assert!(!outcome.timed_out);
    assert!(outcome
        .events
        .iter()
        .any(|e| matches!(e, OutputEvent::Started { .. })));
    assert!(outcome
        .events
        .iter()
        .all(|e| !matches!(e, OutputEvent::Output { .. })));
}

const LONG_LINE: &str = "head -c 200000 /dev/zero | tr '\\0' x; echo";

#[tokio::test]
async fn a_200k_character_line_is_reassembled_exactly() {
    let (_server, client) = start_client().await;
    let run = execute(&client, LONG_LINE).await;
    let events = collect(run).await;
    let outputs: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Ok(OutputEvent::Output { data, chunk, .. }) => Some((data, chunk)),
            _ => None,
        })
        .collect();
    assert_eq!(outputs.len(), 1, "one Output event for one line");
    let (data, chunk) = outputs[0];
    assert_eq!(*chunk, None);
    assert_eq!(data.len(), 200_001);
    assert_eq!(*data, format!("{}\n", "x".repeat(200_000)));
}

#[tokio::test]
async fn raw_chunks_mode_yields_the_services_four_chunks() {
    let (_server, client) = start_client().await;
    let run = bounded(
        "execute",
        client.execute(Command::new(LONG_LINE).raw_chunks(true)),
    )
    .await
    .unwrap();
    let events = collect(run).await;
    let chunks: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Ok(OutputEvent::Output { data, chunk, .. }) => Some((data.clone(), *chunk)),
            _ => None,
        })
        .collect();
    assert_eq!(
        chunks.len(),
        4,
        "{:?}",
        chunks.iter().map(|c| c.1).collect::<Vec<_>>()
    );
    for (i, (_, chunk)) in chunks.iter().enumerate() {
        assert_eq!(
            *chunk,
            Some(Chunk {
                index: i as u32,
                total: 4
            })
        );
    }
    let whole: String = chunks.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(whole, format!("{}\n", "x".repeat(200_000)));
}

#[tokio::test]
async fn invalid_utf8_arrives_as_replacement_characters() {
    let (_server, client) = start_client().await;
    let outcome = run(&client, "head -c 3000 /dev/urandom").await;
    assert!(outcome.success(), "{outcome:?}");
    // 3,000 random bytes are all but certain to hold invalid sequences.
    assert!(outcome.stdout.contains('\u{FFFD}'));
    assert!(outcome.stdout.chars().count() > 100);
}

#[tokio::test]
async fn limits_and_early_completion_are_events_and_wait_reports_limits() {
    let (_server, client) = start_client().await;

    let usage = "echo 'Claude AI usage limit reached|1735000000'";
    let events = collect(client.execute(usage).await.unwrap()).await;
    let limit = events
        .iter()
        .find_map(|e| match e {
            Ok(OutputEvent::RateLimitExceeded(r)) => Some(r.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no rate limit event in {events:?}"));
    assert_eq!(limit.kind, RateLimitKind::UsageLimit);
    assert!(matches!(
        events.last(),
        Some(Ok(OutputEvent::Completed { .. }))
    ));
    match bounded("run", client.run(usage)).await {
        Err(Error::RateLimited(r)) => assert_eq!(r.kind, RateLimitKind::UsageLimit),
        other => panic!("expected RateLimited, got {other:?}"),
    }

    let http = "echo 'HTTP 429 rate limit: too many requests'";
    match bounded("run", client.run(http)).await {
        Err(Error::RateLimited(r)) => assert_eq!(r.kind, RateLimitKind::Http429),
        other => panic!("expected RateLimited, got {other:?}"),
    }

    let token = "echo 'Error: output token limit of 32000 exceeded'";
    let events = collect(client.execute(token).await.unwrap()).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Ok(OutputEvent::TokenLimitExceeded(_)))),
        "{events:?}"
    );
    assert!(matches!(
        bounded("run", client.run(token)).await,
        Err(Error::TokenLimitExceeded(_))
    ));

    let done = "echo Task completed successfully";
    let outcome = run(&client, done).await;
    let marker = outcome
        .events
        .iter()
        .find_map(|e| match e {
            OutputEvent::EarlyCompletion { marker, .. } => Some(marker.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no early completion in {:?}", outcome.events));
    assert!(!marker.is_empty());
    assert_eq!(outcome.stdout, "Task completed successfully\n");
}

#[tokio::test]
async fn a_session_runs_commands_in_a_row_and_refuses_a_second_locally() {
    let (_server, client) = start_client().await;
    let session = bounded("session", client.session()).await.unwrap();
    assert!(!session.connected().session_id.is_empty());
    assert!(session.connected().has(capability::EXECUTE));

    for i in 0..3 {
        let outcome = bounded("run", session.run(format!("echo run {i}")))
            .await
            .unwrap();
        assert_eq!(outcome.stdout, format!("run {i}\n"));
    }

    let mut first = bounded("execute", session.execute("sleep 300"))
        .await
        .unwrap();
    assert!(matches!(
        next_event(&mut first).await,
        OutputEvent::Started { .. }
    ));
    match bounded("second execute", session.execute("echo no")).await {
        Err(Error::AlreadyRunning) => {}
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    bounded("cancel", first.controller().cancel())
        .await
        .unwrap();
    let rest = collect(first).await;
    assert!(
        rest.iter().any(|e| matches!(e, Ok(OutputEvent::Canceled))),
        "{rest:?}"
    );

    // Free again once the canceled run has ended.
    let outcome = bounded("run after cancel", session.run("echo again"))
        .await
        .unwrap();
    assert_eq!(outcome.stdout, "again\n");
    bounded("close", session.close()).await.unwrap();
}

#[tokio::test]
async fn an_empty_command_is_refused() {
    let (_server, client) = start_client().await;
    match bounded("execute", client.execute("")).await {
        Err(Error::CommandNotAllowed { .. }) => {}
        other => panic!("expected CommandNotAllowed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_slow_reader_still_gets_every_line_in_order() {
    let (_server, client) = start_client().await;
    // More lines than the client buffers, read slowly at first: backpressure must not lose any.
    let mut run = execute(&client, "seq 1 3000").await;
    let mut lines = Vec::new();
    let mut reads = 0u32;
    bounded("read", async {
        while let Some(ev) = run.next().await {
            if reads < 5 {
                reads += 1;
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if let OutputEvent::Output { data, .. } = ev.unwrap() {
                lines.push(data);
            }
        }
    })
    .await;
    let expected: Vec<String> = (1..=3000).map(|i| format!("{i}\n")).collect();
    assert_eq!(lines, expected);
}

/// Past 8 chunks the service streams a line as it comes (`total_chunks: null` until the last
/// chunk): it must still arrive as one event, and raw chunks must say that the count is unknown.
#[tokio::test]
async fn a_line_longer_than_the_services_buffer_is_still_one_event() {
    let (_server, client) = start_client().await;
    let line = "head -c 1000000 /dev/zero | tr '\\0' y; echo; echo after";
    let events = collect(execute(&client, line).await).await;
    let outputs: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Ok(OutputEvent::Output { data, chunk, .. }) => Some((data.len(), *chunk)),
            _ => None,
        })
        .collect();
    assert_eq!(outputs, [(1_000_001, None), (6, None)]);
    assert_eq!(
        text(&events, OutputStream::Stdout),
        format!("{}\nafter\n", "y".repeat(1_000_000))
    );

    let raw = client.execute(Command::new(line).raw_chunks(true));
    let events = collect(bounded("execute", raw).await.unwrap()).await;
    let chunks: Vec<Chunk> = events
        .iter()
        .filter_map(|e| match e {
            Ok(OutputEvent::Output { chunk, .. }) => *chunk,
            _ => None,
        })
        .collect();
    let n = 1_000_001_u32.div_ceil(65_536);
    assert_eq!(chunks.len(), n as usize, "{chunks:?}");
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        assert_eq!(chunk.index, i as u32);
        // Only the last streamed chunk knows the count.
        assert_eq!(chunk.total, if last { n } else { 0 }, "{chunk:?}");
    }
}

/// A timeout too large to add to a clock reading is no bound at all, not a crash.
#[tokio::test]
async fn a_huge_timeout_means_no_bound() {
    let (_server, client) = start_client().await;
    for t in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
        let outcome = run(&client, Command::new("echo hi").timeout(t)).await;
        assert_eq!(outcome.stdout, "hi\n");
        let session = bounded("session", client.session()).await.unwrap();
        let outcome = bounded("run", session.run(Command::new("echo again").timeout(t)))
            .await
            .unwrap();
        assert_eq!(outcome.stdout, "again\n");
    }
}
