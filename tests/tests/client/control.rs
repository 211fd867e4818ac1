//! Steering runs through the client against the real service: pause, resume and cancel from
//! another task, timeouts, and dropping an `Execution`. Process groups are checked in /proc.

use std::time::Duration;

use crate::support::*;
use cc_executor_client::{Client, Command, Error, OutputEvent, RunStatus};
use futures_util::StreamExt;
use tests::procs::{processes_in_group, wait_group_gone, wait_group_members};
use tokio::sync::mpsc;

const TICKER: &str = "i=0; while [ $i -lt 600 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done";

/// Wait (bounded) until the reader reports an event of kind `want`.
async fn wait_for(seen: &mut mpsc::UnboundedReceiver<&'static str>, want: &'static str) {
    bounded(want, async {
        while let Some(kind) = seen.recv().await {
            if kind == want {
                return;
            }
        }
        panic!("stream ended before {want}");
    })
    .await
}

#[tokio::test]
async fn pause_resume_and_cancel_from_another_task_while_reading() {
    let (_server, client) = start_client().await;
    let mut run = execute(&client, TICKER).await;
    let ctl = run.controller();

    // The reader reports each event kind to the controlling task, which waits for it.
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<&'static str>();
    let reader = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(item) = run.next().await {
            let ev = item.expect("stream error");
            let kind = match &ev {
                OutputEvent::Output { .. } => "output",
                OutputEvent::Paused => "paused",
                OutputEvent::Resumed => "resumed",
                OutputEvent::Canceled => "canceled",
                _ => "other",
            };
            let _ = seen_tx.send(kind);
            events.push(ev);
        }
        events
    });
    wait_for(&mut seen, "output").await;
    let controller = tokio::spawn(async move {
        bounded("pause", ctl.pause()).await.unwrap();
        ctl
    });
    let ctl = controller.await.unwrap();
    wait_for(&mut seen, "paused").await;
    bounded("resume", ctl.resume()).await.unwrap();
    wait_for(&mut seen, "resumed").await;
    wait_for(&mut seen, "output").await;
    bounded("cancel", ctl.cancel()).await.unwrap();
    wait_for(&mut seen, "canceled").await;

    let events = bounded("reader", reader).await.unwrap();
    let pos = |f: fn(&OutputEvent) -> bool| events.iter().position(f).unwrap();
    let paused = pos(|e| matches!(e, OutputEvent::Paused));
    let resumed = pos(|e| matches!(e, OutputEvent::Resumed));
    let canceled = pos(|e| matches!(e, OutputEvent::Canceled));
    assert!(paused < resumed && resumed < canceled, "{events:?}");
    // Our service reports the end after a cancel; the stream ends right after it.
    if let Some(OutputEvent::Completed { status, .. }) = events.last() {
        assert_eq!(*status, RunStatus::Canceled);
    } else {
        assert!(matches!(events.last(), Some(OutputEvent::Canceled)));
    }

    // The run is over: control reports that there is no process.
    assert!(ctl.is_finished());
    assert!(matches!(
        bounded("pause after end", ctl.pause()).await,
        Err(Error::NoProcess { .. })
    ));
}

#[tokio::test]
async fn cancel_kills_the_whole_group_including_grandchildren() {
    let (_server, client) = start_client().await;
    let (run, pgid) = start_run(&client, "sh -c 'sleep 300 & sleep 300'").await;
    // Both sleeps (and their shells) exist before the cancel.
    wait_group_members(pgid, 2, BOUND)
        .await
        .expect("grandchildren started");
    bounded("cancel", run.controller().cancel()).await.unwrap();
    let rest = collect(run).await;
    assert!(rest.iter().all(Result::is_ok), "{rest:?}");
    assert!(rest.iter().any(|e| matches!(e, Ok(OutputEvent::Canceled))));
    wait_group_gone(pgid, BOUND)
        .await
        .unwrap_or_else(|left| panic!("processes left in group {pgid}: {left:?}"));
}

#[tokio::test]
async fn a_timed_out_run_is_an_error_and_leaves_no_process() {
    let (_server, client) = start_client().await;
    let cmd = Command::new("sh -c 'sleep 300 & sleep 300'").timeout(Duration::from_secs(1));

    let mut run = execute(&client, cmd.clone()).await;
    let pgid = run.pgid().expect("pgid");
    let mut last = None;
    bounded("timed-out stream", async {
        while let Some(item) = run.next().await {
            last = Some(item);
        }
    })
    .await;
    // The service enforces the timeout itself (completed, timed_out) or the client cancels at its
    // deadline (Error::Timeout); either way the stream says so last.
    match last {
        Some(Ok(OutputEvent::Completed { timed_out, .. })) => assert!(timed_out),
        Some(Err(Error::Timeout { after })) => assert_eq!(after, Duration::from_secs(1)),
        other => panic!("unexpected end {other:?}"),
    }
    wait_group_gone(pgid, BOUND)
        .await
        .unwrap_or_else(|left| panic!("processes left in group {pgid}: {left:?}"));

    match bounded("run", client.run(cmd)).await {
        Err(Error::Timeout { after }) => assert_eq!(after, Duration::from_secs(1)),
        other => panic!("expected Timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn dropping_an_execution_kills_its_group() {
    let (_server, client) = start_client().await;
    let (run, pgid) = start_run(&client, "sh -c 'sleep 300 & sleep 300'").await;
    assert!(!processes_in_group(pgid).is_empty());
    let ctl = run.controller();
    drop(run);
    wait_group_gone(pgid, BOUND)
        .await
        .unwrap_or_else(|left| panic!("processes left in group {pgid}: {left:?}"));
    assert!(matches!(
        bounded("pause after drop", ctl.pause()).await,
        Err(Error::NoProcess { .. })
    ));
}

#[tokio::test]
async fn a_detached_execution_keeps_running_after_the_drop() {
    let (_server, client) = start_client().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("done");
    let line = format!("sleep 1; echo finished > '{}'", marker.display());
    let mut run = execute(&client, line).await;
    let pgid = run.pgid().expect("pgid");
    run.detach();
    drop(run);
    bounded("the detached run finishes", async {
        while !marker.exists() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    wait_group_gone(pgid, BOUND).await.unwrap();
}

#[tokio::test]
async fn controlling_a_finished_run_is_no_process() {
    let (_server, client) = start_client().await;
    let run = execute(&client, "echo quick").await;
    let ctl = run.controller();
    let events = collect(run).await;
    assert!(matches!(
        events.last(),
        Some(Ok(OutputEvent::Completed { .. }))
    ));
    for res in [
        bounded("pause", ctl.pause()).await,
        bounded("resume", ctl.resume()).await,
        bounded("cancel", ctl.cancel()).await,
    ] {
        assert!(matches!(res, Err(Error::NoProcess { .. })), "{res:?}");
    }
}

#[tokio::test]
async fn until_canceled_cancels_the_group_and_returns_how_the_run_ended() {
    let (_server, client) = start_client().await;
    let run = execute(&client, TICKER).await;
    let pgid = run.pgid().expect("our service reports the pgid");
    let ctl = run.controller();
    wait_group_members(pgid, 1, BOUND)
        .await
        .expect("the group runs");
    // The cancel is asked for at once: the run ends canceled, as `wait` reports it.
    let outcome = bounded(
        "a canceled run",
        ctl.until_canceled(run.wait(), async {}, BOUND),
    )
    .await
    .expect("the run reports its end");
    assert_eq!(outcome.status, RunStatus::Canceled);
    assert_eq!(wait_group_gone(pgid, BOUND).await, Ok(()));

    // Without a cancel the run goes to its end.
    let run = execute(&client, "echo done").await;
    let ctl = run.controller();
    let pending = std::future::pending::<()>();
    let outcome = bounded("a run", ctl.until_canceled(run.wait(), pending, BOUND))
        .await
        .unwrap();
    assert!(outcome.success());
    assert_eq!(outcome.stdout, "done\n");
}

#[tokio::test]
async fn blank_commands_and_zero_timeouts_fail_before_anything_is_sent() {
    let (server, client) = start_client().await;
    let blank = bounded("execute", client.execute("  ")).await;
    assert!(
        matches!(blank, Err(Error::CommandNotAllowed { .. })),
        "{blank:?}"
    );
    let zero = Command::new("true").timeout(Duration::ZERO);
    match bounded("execute", client.execute(zero)).await {
        Err(Error::InvalidCommand { reason }) => assert!(reason.contains("timeout"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.active_sessions(), 0, "a connection was opened");
}

#[tokio::test]
async fn cancel_all_ends_every_run_the_client_started() {
    let (_server, client) = start_client().await;
    // One run held, one on a session, one that has ended, and one detached and dropped, which
    // no handle reaches any more.
    let held = execute(&client, TICKER).await;
    let session = bounded("session", client.session()).await.unwrap();
    let on_session = bounded("execute", session.execute(TICKER)).await.unwrap();
    let done = execute(&client, "true").await;
    collect(done).await;
    let mut lost = execute(&client, "sleep 1").await;
    lost.detach();
    drop(lost);
    let groups = [held.pgid().expect("pgid"), on_session.pgid().expect("pgid")];
    let reader = tokio::spawn(collect(held));
    let session_reader = tokio::spawn(collect(on_session));
    assert!(bounded("cancel_all", client.cancel_all(BOUND)).await);
    for pgid in groups {
        assert_eq!(
            wait_group_gone(pgid, Duration::ZERO).await,
            Ok(()),
            "{pgid}"
        );
    }
    for events in [reader.await.unwrap(), session_reader.await.unwrap()] {
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Ok(OutputEvent::Canceled))),
            "{events:?}"
        );
    }
    // Nothing left to cancel.
    assert!(bounded("again", client.cancel_all(BOUND)).await);
}

#[tokio::test]
async fn a_default_timeout_bounds_commands_that_set_none() {
    let server = start().await;
    let client = Client::builder(server.url())
        .default_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    match bounded("a run past the default", client.run("sleep 30")).await {
        Err(Error::Timeout { after }) => assert_eq!(after, Duration::from_secs(1)),
        other => panic!("{other:?}"),
    }
    // A command's own timeout wins, on a session too.
    let session = bounded("session", client.session()).await.unwrap();
    let own = Command::new("sleep 2; echo done").timeout(Duration::from_secs(30));
    let outcome = bounded("a run with its own timeout", session.run(own)).await;
    assert_eq!(outcome.unwrap().stdout, "done\n");
}
