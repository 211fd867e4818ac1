//! One job: its live status and output, kept up to date by a task that reads its run.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use futures_util::StreamExt;
use tokio::sync::watch;

use super::window::Window;
use super::{JobState, JobStatus, OutputPage};
use crate::error::Result;
use crate::event::{OutputEvent, RunStatus};
use crate::execution::{Controller, Execution};
use crate::outcome::{Ending, Tracker};

/// A job held by a registry.
#[derive(Debug)]
pub(super) struct Job {
    pub(super) controller: Controller,
    /// Bumped on every change, for waiters.
    pub(super) changed: watch::Sender<u64>,
    /// A Claude job given a JSON Schema for its answer.
    pub(super) json_schema_given: bool,
    data: Mutex<JobData>,
}

#[derive(Debug)]
struct JobData {
    /// The status without the output counts (taken from `window` in a snapshot).
    status: JobStatus,
    window: Window,
    /// When the job ended, for eviction.
    finished_at: Option<Instant>,
    /// The output file came from the registry's output policy: release it when the job goes.
    owned_file: Option<PathBuf>,
}

impl Job {
    /// A job for a started run: `status` as it starts, output kept in `window`; `owned_file` is
    /// the output file to release when the job goes, when the registry made it.
    pub(super) fn new(
        controller: Controller,
        status: JobStatus,
        window: Window,
        owned_file: Option<PathBuf>,
    ) -> Job {
        Job {
            controller,
            changed: watch::channel(0).0,
            json_schema_given: false,
            data: Mutex::new(JobData {
                status,
                window,
                finished_at: None,
                owned_file,
            }),
        }
    }

    /// Close the output file and give back its path, when the registry made it (once).
    pub(super) fn take_owned_file(&self) -> Option<PathBuf> {
        let mut data = lock(&self.data);
        let path = data.owned_file.take()?;
        data.window.close_file();
        Some(path)
    }

    /// Read `run` to its end, keeping the status and output up to date; the outcome module
    /// decides how it ended.
    pub(super) async fn follow(&self, mut run: Execution) {
        let mut tracker = Tracker::new();
        let mut failure = None;
        while let Some(item) = run.next().await {
            match item {
                Ok(event) => {
                    tracker.event(&event);
                    self.record(event);
                }
                Err(e) => failure = tracker.error(e).err(),
            }
        }
        let end = match failure {
            Some(e) => Err(e),
            None => tracker.finish(run.cancel_sent()),
        };
        self.finish(end);
    }

    fn record(&self, event: OutputEvent) {
        self.update(|data| match event {
            OutputEvent::Output { data: text, .. } => {
                if let Err(e) = data.window.push(text.as_bytes()) {
                    tracing::warn!("job {}: writing output file failed: {e}", data.status.id);
                    data.status.output_error = Some(format!("writing the output file failed: {e}"));
                }
            }
            OutputEvent::Paused => data.status.state = JobState::Paused,
            OutputEvent::Resumed => data.status.state = JobState::Running,
            // How the run ends is decided once it has.
            OutputEvent::Started { .. }
            | OutputEvent::Canceled
            | OutputEvent::Completed { .. }
            | OutputEvent::Failed { .. } => {}
            other => {
                match &other {
                    OutputEvent::RateLimitExceeded(r) => data.status.error = Some(r.to_string()),
                    OutputEvent::TokenLimitExceeded(t) => data.status.error = Some(t.to_string()),
                    _ => {}
                }
                let events = &mut data.status.events;
                if events.len() >= JobStatus::MAX_EVENTS {
                    events.remove(0);
                    data.status.dropped_events += 1;
                }
                data.status.events.push(other);
            }
        });
    }

    /// The run is over: `end` says how (or why its end is not known).
    fn finish(&self, end: Result<Ending>) {
        self.update(|data| {
            let status = &mut data.status;
            match end {
                Ok(end) => {
                    status.state = match end.status {
                        _ if end.timed_out => JobState::TimedOut,
                        RunStatus::Completed => JobState::Completed,
                        RunStatus::Canceled => JobState::Canceled,
                        _ => JobState::Failed,
                    };
                    status.exit_code = end.exit_code;
                    if end.error.is_some() {
                        status.error = end.error;
                    }
                }
                Err(e) => {
                    status.state = JobState::Failed;
                    status.error = Some(e.to_string());
                }
            }
            status.ended_at = Some(SystemTime::now());
            data.finished_at = Some(Instant::now());
            data.window.flush();
        });
    }

    /// Set a running job's state (after a pause or resume).
    pub(super) fn set_state(&self, state: JobState) {
        self.update(|data| {
            if !data.status.state.is_finished() {
                data.status.state = state;
            }
        });
    }

    fn update(&self, change: impl FnOnce(&mut JobData)) {
        change(&mut lock(&self.data));
        self.changed.send_modify(|n| *n += 1);
    }

    /// A snapshot of the status.
    pub(super) fn status(&self) -> JobStatus {
        let data = lock(&self.data);
        let mut status = data.status.clone();
        status.output_bytes = data.window.total;
        status.dropped_bytes = data.window.dropped;
        status.runtime = status.runtime();
        status
    }

    /// Whether the job has ended.
    pub(super) fn is_finished(&self) -> bool {
        lock(&self.data).status.state.is_finished()
    }

    /// When the job ended, if it has.
    pub(super) fn finished_at(&self) -> Option<Instant> {
        lock(&self.data).finished_at
    }

    /// Bytes of output so far.
    pub(super) fn output_bytes(&self) -> u64 {
        lock(&self.data).window.total
    }

    /// Up to `limit` bytes of output from `offset`; `None` for the offset of the last `limit`
    /// bytes.
    pub(super) fn page(&self, offset: Option<u64>, limit: usize) -> OutputPage {
        let data = lock(&self.data);
        let w = &data.window;
        let offset = offset.unwrap_or_else(|| w.total.saturating_sub(limit as u64));
        let page = w.page(offset, limit);
        OutputPage {
            id: data.status.id,
            state: data.status.state,
            offset: page.offset,
            next_offset: page.next_offset,
            total: w.total,
            dropped: w.dropped,
            data: page.data,
            eof: data.status.state.is_finished() && page.next_offset >= w.total,
            lines: None,
            match_count: None,
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
