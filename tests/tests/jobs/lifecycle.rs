//! Background jobs (`cc_executor_client::jobs`) against the real service over real sockets.

use std::time::Duration;

use cc_executor_client::jobs::{JobOptions, JobState, Jobs, JobsConfig};
use cc_executor_client::{Client, Error};
use cc_executor_server::{Server, ServerHandle};
use tests::procs::{wait_group_gone, wait_group_stopped};

pub(crate) const BOUND: Duration = Duration::from_secs(30);
pub(crate) const TICKER: &str = "i=0; while true; do i=$((i+1)); echo line$i; sleep 0.1; done";

/// A service and a registry of jobs on it.
pub(crate) async fn setup(config: JobsConfig) -> (ServerHandle, Jobs) {
    let server = Server::builder()
        .kill_grace(Duration::from_millis(500))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let client = Client::new(server.url()).expect("client");
    (server, Jobs::with_config(client, config))
}

#[tokio::test]
async fn ticker_pages_pause_resume_cancel() {
    let (_server, jobs) = setup(JobsConfig::default()).await;
    let id = jobs.start(TICKER).await.expect("start");
    let pgid = jobs
        .status(id)
        .unwrap()
        .pgid
        .expect("our service reports the pgid");

    // Read in pages while it runs: each page continues where the last ended.
    let mut text = String::new();
    let mut offset = 0;
    while text.lines().count() < 5 {
        let page = jobs.wait_for_output(id, offset, 7, BOUND).await.unwrap();
        assert!(page.next_offset > offset, "no new output within {BOUND:?}");
        assert_eq!(page.offset, offset);
        text.push_str(&page.data);
        offset = page.next_offset;
    }
    assert!(text.starts_with("line1\nline2\nline3\nline4\n"), "{text:?}");

    jobs.pause(id).await.expect("pause");
    assert_eq!(jobs.status(id).unwrap().state, JobState::Paused);
    // Paused means every process of the group is stopped, so none can print: checked in the
    // kernel's view rather than by watching the output for a while (lines already in flight may
    // still land). Without pause this wait fails at its bound.
    if let Err(states) = wait_group_stopped(pgid, true, BOUND).await {
        panic!("the job's group did not stop: states {states:?}");
    }

    jobs.resume(id).await.expect("resume");
    assert_eq!(jobs.status(id).unwrap().state, JobState::Running);
    if let Err(states) = wait_group_stopped(pgid, false, BOUND).await {
        panic!("the job's group did not continue: states {states:?}");
    }
    // The ticker continues where it stopped: a line beyond those held at resume comes, and the
    // lines run on without a gap or a repeat.
    let mut all = jobs.output(id, 0, usize::MAX).unwrap();
    let next = format!("line{}\n", all.data.lines().count() + 1);
    while !all.data.contains(&next) {
        jobs.wait_for_output(id, all.total, 1, BOUND).await.unwrap();
        let now = jobs.output(id, 0, usize::MAX).unwrap();
        assert!(
            now.total > all.total,
            "no output after resume within {BOUND:?}"
        );
        all = now;
    }
    let lines: Vec<&str> = all.data.lines().collect();
    let want: Vec<String> = (1..=lines.len()).map(|i| format!("line{i}")).collect();
    assert_eq!(lines, want, "the output did not run on across the pause");

    jobs.cancel(id).await.expect("cancel");
    let status = jobs.wait(id, BOUND).await.unwrap();
    assert_eq!(status.state, JobState::Canceled);
    assert!(status.ended_at.is_some());
    wait_group_gone(pgid, BOUND)
        .await
        .expect("process group survived cancel");
    let tail = jobs.tail(id, 6).unwrap();
    assert!(tail.eof);
}

#[tokio::test]
async fn job_outlives_the_task_that_started_it() {
    let (_server, jobs) = setup(JobsConfig::default()).await;
    let starter = jobs.clone();
    let id = tokio::spawn(async move { starter.start("sleep 0.5; echo finished").await })
        .await
        .unwrap()
        .expect("start");
    let status = jobs.wait(id, BOUND).await.unwrap();
    assert_eq!(status.state, JobState::Completed);
    assert_eq!(status.exit_code, Some(0));
    assert_eq!(jobs.output(id, 0, 100).unwrap().data, "finished\n");
}

#[tokio::test]
async fn wait_returns_at_its_timeout_while_running() {
    let (_server, jobs) = setup(JobsConfig::default()).await;
    let id = jobs.start("sleep 300").await.expect("start");
    let status = jobs.wait(id, Duration::from_millis(200)).await.unwrap();
    assert_eq!(status.state, JobState::Running);
    let pgid = status.pgid.unwrap();
    assert_eq!(jobs.cancel_all().await, 1);
    assert_eq!(
        jobs.wait(id, BOUND).await.unwrap().state,
        JobState::Canceled
    );
    wait_group_gone(pgid, BOUND).await.expect("group survived");
}

#[tokio::test]
async fn a_hundred_jobs_at_once() {
    let (_server, jobs) = setup(JobsConfig::default()).await;
    let starts = (0..100).map(|i| {
        let jobs = jobs.clone();
        async move { jobs.start(format!("echo job{i}; exit {}", i % 3)).await }
    });
    let ids: Vec<_> = futures_util::future::join_all(starts)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("every job starts");
    for (i, id) in ids.iter().enumerate() {
        let status = jobs.wait(*id, BOUND).await.unwrap();
        let expected = if i % 3 == 0 {
            JobState::Completed
        } else {
            JobState::Failed
        };
        assert_eq!(status.state, expected, "job {i}");
        assert_eq!(status.exit_code, Some((i % 3) as i32));
        assert_eq!(jobs.output(*id, 0, 100).unwrap().data, format!("job{i}\n"));
    }
    assert_eq!(jobs.list().len(), 100);
}

#[tokio::test]
async fn bounded_buffer_drops_oldest_and_file_keeps_all() {
    let (_server, jobs) = setup(JobsConfig::default().buffer_bytes(1000)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.txt");
    let id = jobs
        .start_with("seq 1 20000", JobOptions::default().output_file(&file))
        .await
        .expect("start");
    let status = jobs.wait(id, BOUND).await.unwrap();
    assert_eq!(status.state, JobState::Completed);
    let expected: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    assert_eq!(status.output_bytes, expected.len() as u64);
    assert_eq!(status.dropped_bytes, expected.len() as u64 - 1000);

    let page = jobs.output(id, 0, 10_000).unwrap();
    assert_eq!(
        page.offset, status.dropped_bytes,
        "starts at the oldest byte held"
    );
    assert_eq!(page.dropped, status.dropped_bytes);
    assert_eq!(page.data, expected[expected.len() - 1000..]);
    assert!(page.eof);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), expected);
}

#[tokio::test]
async fn finished_jobs_are_evicted() {
    let (_server, jobs) = setup(JobsConfig::default().max_finished(2)).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let id = jobs.start(format!("echo {i}")).await.unwrap();
        jobs.wait(id, BOUND).await.unwrap();
        ids.push(id);
    }
    let held: Vec<_> = jobs.list().into_iter().map(|s| s.id).collect();
    assert_eq!(
        held,
        ids[2..].to_vec(),
        "the two newest finished jobs are kept"
    );
    assert!(matches!(jobs.status(ids[0]), Err(Error::UnknownJob { .. })));

    let (_server2, quick) = setup(JobsConfig::default().keep_finished(Duration::ZERO)).await;
    let id = quick.start("true").await.unwrap();
    // `wait` itself reads the status before eviction; afterwards the job is gone.
    assert_eq!(
        quick.wait(id, BOUND).await.unwrap().state,
        JobState::Completed
    );
    assert!(matches!(quick.status(id), Err(Error::UnknownJob { .. })));
}

#[tokio::test]
async fn refused_and_unknown() {
    let server = Server::builder()
        .allowed_commands(["echo"])
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let jobs = Jobs::new(Client::new(server.url()).unwrap());
    assert!(matches!(
        jobs.start("rm -rf /nonexistent").await,
        Err(Error::CommandNotAllowed { .. })
    ));
    assert!(jobs.list().is_empty());
    let id = jobs.start("echo ok").await.unwrap();
    assert_eq!(
        jobs.wait(id, BOUND).await.unwrap().state,
        JobState::Completed
    );
    let forgotten = jobs.forget(id).await.unwrap();
    assert_eq!(forgotten.id, id);
    assert!(matches!(
        jobs.output(id, 0, 1),
        Err(Error::UnknownJob { .. })
    ));
}

/// A detector fires on every matching line: a job that prints a completion phrase (or a limit
/// message) on every line must not grow its status without bound.
#[tokio::test]
async fn repeated_detector_events_are_bounded() {
    let (_server, jobs) = setup(JobsConfig::default()).await;
    let id = jobs
        .start("yes 'Task completed successfully' | head -n 5000")
        .await
        .expect("start");
    let status = jobs.wait(id, BOUND).await.unwrap();
    assert_eq!(status.state, JobState::Completed);
    assert_eq!(status.output_bytes, 5000 * 28);
    assert!(
        !status.events.is_empty() && status.events.len() <= 100,
        "{} events held",
        status.events.len()
    );
    assert_eq!(
        status.events.len() as u64 + status.dropped_events,
        5000,
        "every event is held or counted"
    );
}

#[tokio::test]
async fn cancel_and_wait_returns_once_the_group_is_gone_and_activity_follows_the_output() {
    let (_server, jobs) = setup(JobsConfig::default()).await;
    let id = jobs.start(TICKER).await.expect("start");
    let pgid = jobs.status(id).unwrap().pgid.expect("pgid");
    // The latest line, once there is output past what was seen.
    let (mut seen, mut line) = (0, None);
    while line.is_none() {
        jobs.wait_for_output(id, seen, 1, BOUND).await.unwrap();
        line = jobs.activity(id, &mut seen).unwrap();
        assert!(seen > 0, "no output within {BOUND:?}");
    }
    assert!(line.unwrap().starts_with("line"));
    // Nothing new, nothing to say.
    let end = jobs.status(id).unwrap().output_bytes;
    let mut at_end = end;
    if jobs.activity(id, &mut at_end).unwrap().is_some() {
        assert!(at_end > end, "a line without new output");
    }
    // A wait the caller gives up on returns at once, the job still running.
    let waited = jobs.wait_or(id, BOUND, async {}).await.unwrap();
    assert_eq!(waited.state, JobState::Running);
    let status = jobs.cancel_and_wait(id, BOUND).await.expect("cancel");
    assert_eq!(status.state, JobState::Canceled);
    assert_eq!(wait_group_gone(pgid, Duration::ZERO).await, Ok(()));
    // Canceling an ended job gives its status again.
    let again = jobs.cancel_and_wait(id, BOUND).await.expect("again");
    assert_eq!(again.state, JobState::Canceled);
}

/// A stand-in `claude` that prints `script`'s output, in a temp dir that lives with the guard.
pub(crate) fn stand_in(script: &str) -> (tempfile::TempDir, String) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("claude");
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

#[tokio::test]
async fn a_claude_job_reports_its_result_cut_or_why_there_is_none() {
    use cc_executor_client::claude::ClaudeCommand;
    use cc_executor_client::jobs::JobKind;
    let (_server, jobs) = setup(JobsConfig::default()).await;
    let sample = tests::fixtures_dir().join("claude/success.jsonl");
    let (_dir, ok) = stand_in(&format!("cat '{}'", sample.display()));
    let (_dir2, crash) = stand_in("echo boom >&2; exit 3");

    let id = jobs
        .start_claude(ClaudeCommand::new("hi").program(ok))
        .await
        .unwrap();
    assert_eq!(jobs.status(id).unwrap().kind, JobKind::Claude);
    assert_eq!(
        jobs.wait(id, BOUND).await.unwrap().state,
        JobState::Completed
    );
    let report = jobs.report(id, 10).unwrap();
    let claude = report.claude.expect("the result");
    assert!(claude.cut, "a 20-byte answer cut to 10 bytes");
    assert!(claude.result.result.unwrap().contains("bytes omitted"));
    assert_eq!(claude.result.num_turns, 2);
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    let whole = jobs.report(id, 1000).unwrap().claude.unwrap();
    assert_eq!(whole.result.result.as_deref(), Some("The script prints 4."));

    let id = jobs
        .start_claude(ClaudeCommand::new("hi").program(crash))
        .await
        .unwrap();
    let status = jobs.wait(id, BOUND).await.unwrap();
    assert_eq!(
        (status.state, status.exit_code),
        (JobState::Failed, Some(3))
    );
    let report = jobs.report(id, 1000).unwrap();
    assert!(report.claude.is_none());
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("without its final result")),
        "{:?}",
        report.notes
    );
}

#[tokio::test]
async fn blank_commands_and_prompts_start_no_job() {
    use cc_executor_client::claude::ClaudeCommand;
    let (_server, jobs) = setup(JobsConfig::default()).await;
    assert!(matches!(
        jobs.start(" ").await,
        Err(Error::CommandNotAllowed { .. })
    ));
    assert!(matches!(
        jobs.start_claude(ClaudeCommand::new("\n")).await,
        Err(Error::InvalidCommand { .. })
    ));
    assert!(jobs.list().is_empty());
}
