//! Calls (`Jobs::call`): runs a caller waits for, optionally kept as jobs of the registry while
//! the caller reads them (as the MCP server does for a task).

use std::time::Duration;

use cc_executor_client::jobs::{JobOptions, JobState, JobStatus, Jobs, JobsConfig};
use cc_executor_client::progress::Latest;
use cc_executor_client::RunStatus;
use tests::procs::wait_group_gone;

use crate::lifecycle::{setup, BOUND, TICKER};

/// The job labeled `label`, once the registry holds it.
async fn labeled(jobs: &Jobs, label: &str) -> JobStatus {
    let find = async {
        loop {
            let all = jobs.list();
            if let Some(job) = all.into_iter().find(|j| j.label.as_deref() == Some(label)) {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(BOUND, find)
        .await
        .expect("the call's job")
}

#[tokio::test]
async fn a_call_kept_as_a_job_gives_the_caller_the_same_outcome_and_the_job_its_output() {
    let (_server, jobs) = setup(JobsConfig::default()).await;
    let cmd = "echo out; echo err >&2; exit 3";
    let (never, unused) = (std::future::pending::<()>, Latest::default());
    let plain = jobs.call(cmd, 1000, &unused, never(), None);
    let plain = tokio::time::timeout(BOUND, plain).await.unwrap().unwrap();
    assert!(
        jobs.list().is_empty(),
        "a call without job options is no job"
    );

    let (latest, as_job) = (Latest::default(), JobOptions::default().label("mine"));
    let kept = jobs.call(cmd, 1000, &latest, never(), Some(&as_job));
    let kept = tokio::time::timeout(BOUND, kept).await.unwrap().unwrap();
    assert_eq!(kept.output, plain.output);
    assert_eq!(
        (&kept.status, kept.exit_code),
        (&RunStatus::Failed, Some(3))
    );
    assert_eq!(kept.notes(), plain.notes());
    // The last line noted: stdout and stderr are two pipes, either may come last.
    let noted = latest.take();
    assert!(matches!(noted.as_deref(), Some("out" | "err")), "{noted:?}");

    let job = labeled(&jobs, "mine").await;
    assert_eq!((job.state, job.exit_code), (JobState::Failed, Some(3)));
    let page = jobs.output(job.id, 0, 1000).unwrap();
    assert!(page.eof, "{page:?}");
    let mut lines: Vec<_> = page.data.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["err", "out"]);
}

#[tokio::test]
async fn stopping_a_call_kept_as_a_job_kills_its_group_and_the_job_says_canceled() {
    let (_server, jobs) = setup(JobsConfig::default()).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (latest, as_job) = (Latest::default(), JobOptions::default().label("stopped"));
    let call = jobs.call(TICKER, 1000, &latest, stopped, Some(&as_job));
    let watch = async {
        let job = labeled(&jobs, "stopped").await;
        // It runs, and its output reaches the job while the caller reads the run.
        let page = jobs.wait_for_output(job.id, 0, 100, BOUND).await.unwrap();
        assert!(page.data.starts_with("line1"), "{page:?}");
        assert_eq!(jobs.status(job.id).unwrap().state, JobState::Running);
        stop.send(()).unwrap();
        job
    };
    let (out, job) = tokio::time::timeout(BOUND, async { tokio::join!(call, watch) })
        .await
        .unwrap();
    assert_eq!(out.unwrap().status, RunStatus::Canceled);
    assert_eq!(jobs.status(job.id).unwrap().state, JobState::Canceled);
    let pgid = job.pgid.expect("our service reports the pgid");
    assert_eq!(wait_group_gone(pgid, BOUND).await, Ok(()));
}

#[tokio::test]
async fn a_call_given_up_by_its_caller_ends_its_job_and_its_group() {
    let (_server, jobs) = setup(JobsConfig::default()).await;
    let as_job = JobOptions::default().label("dropped");
    let latest = Latest::default();
    let call = jobs.call(
        TICKER,
        1000,
        &latest,
        std::future::pending::<()>(),
        Some(&as_job),
    );
    let job = tokio::select! {
        _ = call => panic!("the ticker ended"),
        job = labeled(&jobs, "dropped") => job,
    };
    // The call future (and with it the run) is dropped: the job must not stay running.
    let ended = jobs.wait(job.id, BOUND).await.unwrap();
    assert_eq!(ended.state, JobState::Canceled, "{ended:?}");
    let pgid = job.pgid.expect("our service reports the pgid");
    assert_eq!(wait_group_gone(pgid, BOUND).await, Ok(()));
}
