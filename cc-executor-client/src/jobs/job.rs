//! One job: its live status and output, kept up to date from its run's events ([`Recorder`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use tokio::sync::watch;

use super::window::Window;
use super::{JobState, JobStatus, OutputPage};
use crate::error::{Error, Result};
use crate::event::{OutputEvent, RunStatus};
use crate::execution::{Controller, Observer};
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

    fn record(&self, event: &OutputEvent) {
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
                match other {
                    OutputEvent::RateLimitExceeded(r) => data.status.error = Some(r.to_string()),
                    OutputEvent::TokenLimitExceeded(t) => data.status.error = Some(t.to_string()),
                    _ => {}
                }
                let events = &mut data.status.events;
                if events.len() >= JobStatus::MAX_EVENTS {
                    events.remove(0);
                    data.status.dropped_events += 1;
                }
                data.status.events.push(other.clone());
            }
        });
    }

    /// The run is over: `end` says how (or why its end is not known).
    fn finish(&self, end: std::result::Result<Ending, String>) {
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
                    status.error = Some(e);
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

/// Keeps a job up to date from its run's events, whoever reads the run; the outcome module
/// decides how it ended.
pub(super) struct Recorder {
    job: Arc<Job>,
    tracker: Tracker,
    /// Why the run's end is not known, when a stream error says so.
    failure: Option<String>,
}

impl Recorder {
    /// A recorder for `job`, whose run has just started.
    pub(super) fn new(job: Arc<Job>) -> Recorder {
        let tracker = Tracker::new();
        Recorder {
            job,
            tracker,
            failure: None,
        }
    }
}

impl Observer for Recorder {
    fn item(&mut self, item: &Result<OutputEvent>) {
        match item {
            Ok(event) => {
                self.tracker.event(event);
                self.job.record(event);
            }
            // The client's deadline ends the run as timed out; other errors leave its end unknown.
            Err(Error::Timeout { after }) => {
                self.failure = None;
                let _ = self.tracker.error(Error::Timeout { after: *after });
            }
            Err(e) => self.failure = Some(e.to_string()),
        }
    }

    fn end(&mut self, cancel_sent: bool) {
        let end = match self.failure.take() {
            Some(why) => Err(why),
            None => self.tracker.finish(cancel_sent).map_err(|e| e.to_string()),
        };
        self.job.finish(end);
    }

    fn abandoned(&mut self) {
        self.tracker.event(&OutputEvent::Canceled);
        self.end(true);
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
