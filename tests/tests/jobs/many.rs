//! Waiting on several jobs at once, and reading a job's output by regular expression or as
//! readable text, through `Jobs`.

use std::time::Duration;

use cc_executor_client::claude::ClaudeCommand;
use cc_executor_client::jobs::{
    JobId, JobState, JobsConfig, OutputFormat, OutputQuery, WaitMode, WaitRequest,
};
use cc_executor_client::Error;

use crate::lifecycle::{setup, stand_in, BOUND};

/// Longer than any test's bound: a wait that returns did so because its jobs ended.
const LONG: Duration = Duration::from_secs(600);

#[tokio::test]
async fn wait_any_returns_when_the_first_ends_and_wait_all_when_all_have() {
    let (_server, jobs) = setup(JobsConfig::default()).await;
    let slow = [
        jobs.start("sleep 300").await.unwrap(),
        jobs.start("sleep 300").await.unwrap(),
    ];
    let long = format!("echo done # {}", "x".repeat(500));
    let quick = jobs.start(long.as_str()).await.unwrap();
    let ids = [slow[0], quick, slow[1]];
    let statuses = tokio::time::timeout(BOUND, jobs.wait_any(&ids, LONG))
        .await
        .expect("wait_any returned when the quick job ended");
    let states: Vec<JobState> = statuses.unwrap().iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [JobState::Running, JobState::Completed, JobState::Running]
    );
    // The report says which ended, and each one's status.
    let report = jobs
        .wait_report(&WaitRequest::many(ids, WaitMode::Any), 1000)
        .unwrap();
    assert_eq!(report.ended, [quick]);
    assert_eq!(report.running, [slow[0], slow[1]]);
    assert_eq!(report.jobs.len(), 3);
    // Each command line cut short: the caller knows what it started.
    let command = &report.jobs[1].status.command;
    assert!(command.starts_with("echo done # xxx") && command.chars().count() <= 201);

    for id in slow {
        jobs.cancel(id).await.unwrap();
    }
    let statuses = tokio::time::timeout(BOUND, jobs.wait_all(&slow, LONG))
        .await
        .expect("wait_all returned once both ended")
        .unwrap();
    assert!(statuses.iter().all(|s| s.state == JobState::Canceled));

    // At the timeout: every one's status, still running.
    let running = jobs.start("sleep 300").await.unwrap();
    let statuses = jobs
        .wait_all(&[running, quick], Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(statuses[0].state, JobState::Running);
    jobs.cancel(running).await.unwrap();

    assert!(matches!(
        jobs.wait_any(&[quick, JobId(999)], LONG).await,
        Err(Error::UnknownJob { id: 999 })
    ));
    assert!(matches!(
        jobs.wait_any(&[], LONG).await,
        Err(Error::InvalidRequest { .. })
    ));
}

#[tokio::test]
async fn grep_gives_matching_lines_with_offsets_in_pages() {
    let (_server, jobs) = setup(JobsConfig::default()).await;
    let id = jobs.start("seq 1 120").await.unwrap();
    jobs.wait(id, BOUND).await.unwrap();
    let text = jobs.output(id, 0, usize::MAX).unwrap().data;
    // Where each line starts, from the text itself.
    let mut at = 0u64;
    let mut expected = Vec::new();
    for line in text.lines() {
        if line.starts_with('1') {
            expected.push((at, line.to_owned()));
        }
        at += line.len() as u64 + 1;
    }
    let found = jobs.grep(id, "^1", 0).unwrap();
    assert_eq!(found.match_count, Some(expected.len() as u64));
    let lines = found.lines.unwrap();
    let got: Vec<(u64, String)> = lines.iter().map(|l| (l.offset, l.line.clone())).collect();
    assert_eq!(got, expected);
    assert!(lines.iter().all(|l| l.matched));

    // In small pages, continued at `next_offset`: the same lines, none twice.
    let mut paged = Vec::new();
    let mut offset = 0;
    loop {
        let query = OutputQuery::new(id).grep("^1").offset(offset).limit(12);
        let page = jobs.read(&query, usize::MAX).unwrap();
        paged.extend(page.lines.unwrap().into_iter().map(|l| (l.offset, l.line)));
        if page.eof {
            break;
        }
        assert!(page.next_offset > offset, "no progress at {offset}");
        offset = page.next_offset;
    }
    assert_eq!(paged, expected);

    // Context lines around a match, flagged as such.
    let around = jobs.grep(id, "^50$", 2).unwrap().lines.unwrap();
    let shown: Vec<(&str, bool)> = around
        .iter()
        .map(|l| (l.line.as_str(), l.matched))
        .collect();
    assert_eq!(
        shown,
        [
            ("48", false),
            ("49", false),
            ("50", true),
            ("51", false),
            ("52", false)
        ]
    );
    assert!(matches!(
        jobs.grep(id, "[", 0),
        Err(Error::InvalidRequest { .. })
    ));
    let lost = OutputQuery::new(id).context(2);
    assert!(matches!(
        jobs.read(&lost, usize::MAX),
        Err(Error::InvalidRequest { .. })
    ));
    // Nothing was consumed.
    assert_eq!(jobs.output(id, 0, usize::MAX).unwrap().data, text);
}

#[tokio::test]
async fn a_claude_job_reads_as_text() {
    let (_server, jobs) = setup(JobsConfig::default()).await;
    let sample = tests::fixtures_dir().join("claude/success.jsonl");
    let (_dir, program) = stand_in(&format!("cat '{}'", sample.display()));
    let id = jobs
        .start_claude(ClaudeCommand::new("hi").program(program))
        .await
        .unwrap();
    jobs.wait(id, BOUND).await.unwrap();
    let query = OutputQuery::new(id).format(OutputFormat::Text);
    let whole = jobs.read(&query, usize::MAX).unwrap();
    assert_eq!(
        whole.data,
        "Session 0b6c2f1e-5d2a-4b8e-9a51-3f0c8e7d1a22 (model claude-sonnet-4-5)\n\
         I'll read the file first.\n\
         Tool: Read {\"file_path\":\"/srv/app/main.py\"}\n\
         Tool result: print(2 + 2)\n\
         The script prints 4.\n\
         Result (success): The script prints 4.\n"
    );
    assert!(whole.eof);
    // Read in small pages: every line once, in order, whatever the limit.
    for limit in [1, 30, 50, 80, 1000] {
        let (mut offset, mut text) = (0, String::new());
        loop {
            let page = jobs.read(&query.clone().offset(offset).limit(limit), usize::MAX);
            let page = page.unwrap();
            text.push_str(&page.data);
            if page.eof {
                break;
            }
            assert!(page.next_offset > offset, "no progress at {offset}");
            offset = page.next_offset;
        }
        // Lines longer than the limit are cut; the others all come, none twice.
        let longest = whole.data.lines().map(str::len).max().unwrap();
        if limit > longest {
            assert_eq!(text, whole.data, "limit {limit}");
        }
        if limit == 50 {
            // A stream-json line's readable lines stay together even past the limit.
            assert!(text.contains("first.\nTool: Read {"), "{text}");
        }
    }
    // The last lines only.
    let tail = jobs
        .read(&query.clone().tail().limit(40), usize::MAX)
        .unwrap();
    assert_eq!(tail.data, "Result (success): The script prints 4.\n");
}
