//! Waiting on several jobs at once: until one of them ends, or all, or a timeout.
//!
//! An orchestrator starts several sub-agents, then waits on any of them in a loop, reading each
//! result as it comes, without polling.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::job::Job;
use super::{JobId, JobReport, JobStatus, Jobs};
use crate::error::{Error, Result};

/// Which of several jobs a wait ends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "schema", derive(serde::Deserialize, schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum WaitMode {
    /// As soon as one of them has ended (at once when one has ended already).
    #[default]
    Any,
    /// Once every one of them has ended.
    All,
}

/// What to wait for: one job (`id`) or several (`ids`, with a [`WaitMode`]), for at most a
/// while. With the `schema` feature it is what the `job_wait` tool takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(serde::Deserialize, schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct WaitRequest {
    /// The job id: the integer `id` that `job_start` returned.
    pub id: Option<u64>,
    /// Several job ids, instead of `id`: the wait ends when one of them (`mode: "any"`, the
    /// default) or all of them (`mode: "all"`) have ended. Leave out the ids of jobs already
    /// read: an ended job ends an `any` wait at once.
    pub ids: Option<Vec<u64>>,
    /// With `ids`: `any` (default) or `all`.
    pub mode: Option<WaitMode>,
    /// Most seconds to wait (default 30, at most 600; 0 returns at once).
    #[cfg_attr(feature = "schema", serde(alias = "timeout"))]
    pub timeout_secs: Option<u64>,
}

impl WaitRequest {
    /// Longest wait a request may ask for.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
    /// The wait when a request names none.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// A wait on one job.
    pub fn one(id: JobId) -> Self {
        WaitRequest {
            id: Some(id.0),
            ..Default::default()
        }
    }

    /// A wait on several jobs, ending as `mode` says.
    pub fn many(ids: impl IntoIterator<Item = JobId>, mode: WaitMode) -> Self {
        WaitRequest {
            ids: Some(ids.into_iter().map(|id| id.0).collect()),
            mode: Some(mode),
            ..Default::default()
        }
    }

    /// Wait at most `secs` seconds (capped at [`WaitRequest::MAX_TIMEOUT`]).
    pub fn timeout_secs(mut self, secs: u64) -> Self {
        self.timeout_secs = Some(secs);
        self
    }

    /// The jobs waited on: `id`, or `ids` without repeats; an error unless exactly one of them
    /// names at least one job.
    pub fn job_ids(&self) -> Result<Vec<JobId>> {
        let mut ids: Vec<JobId> = match (self.id, &self.ids) {
            (Some(id), None) => vec![JobId(id)],
            (None, Some(ids)) if !ids.is_empty() => ids.iter().map(|id| JobId(*id)).collect(),
            _ => {
                return Err(Error::InvalidRequest {
                    reason: "give either `id` (one job) or `ids` (a non-empty list of jobs); \
                             not both"
                        .into(),
                })
            }
        };
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(*id));
        Ok(ids)
    }

    /// How long to wait: `timeout_secs` capped at [`WaitRequest::MAX_TIMEOUT`], else
    /// [`WaitRequest::DEFAULT_TIMEOUT`].
    pub fn timeout(&self) -> Duration {
        let asked = self.timeout_secs.map(Duration::from_secs);
        asked
            .unwrap_or(Self::DEFAULT_TIMEOUT)
            .min(Self::MAX_TIMEOUT)
    }
}

/// How a wait ended ([`Jobs::wait_report`]). With the `schema` feature it serializes as the
/// `job_wait` tool returns it: for one job, that job's report with its fields at the top; for
/// several, each one's report in `jobs`; in both cases which ended and which still run.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "schema", derive(serde::Serialize, schemars::JsonSchema))]
#[non_exhaustive]
pub struct WaitReport {
    /// The job waited on, when the wait named one (`id`).
    #[cfg_attr(feature = "schema", serde(flatten))]
    pub job: Option<JobReport>,
    /// The jobs waited on that have ended, in the order asked.
    pub ended: Vec<JobId>,
    /// The jobs waited on still running (or paused).
    pub running: Vec<JobId>,
    /// With several jobs (`ids`): the report of each, in the order asked. A Claude job's answer
    /// is cut to a share of the size limit (its whole output is in its `output_file`), and each
    /// command line to its first 200 characters.
    #[cfg_attr(feature = "schema", serde(skip_serializing_if = "Vec::is_empty"))]
    pub jobs: Vec<JobReport>,
}

/// What the progress of a wait on several jobs has told so far ([`Jobs::wait_activity`]).
#[derive(Debug, Default)]
pub struct WaitProgress {
    /// Output read so far, per job.
    seen: HashMap<JobId, u64>,
    /// The jobs running at the last message.
    running: Vec<JobId>,
    /// When the last message was given.
    last: Option<Instant>,
}

/// Most characters of each job's command line in a report on several jobs.
const COMMAND_CHARS: usize = 200;

/// A wait on several jobs names the running ones at least this often (under
/// [`crate::progress::HEARTBEAT`], so the names replace the plain sign of life).
const NAME_EVERY: Duration = Duration::from_millis(2500);

impl Jobs {
    /// Wait until one of `ids` has ended (at once when one has already) or `timeout` passes;
    /// every one's status, in the order given, either way.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use cc_executor_client::claude::ClaudeCommand;
    /// use cc_executor_client::{jobs::Jobs, Client};
    ///
    /// # async fn demo() -> cc_executor_client::Result<()> {
    /// let jobs = Jobs::new(Client::new("ws://127.0.0.1:8004/ws")?);
    /// let mut pending = Vec::new();
    /// for task in ["Review src/a.rs", "Review src/b.rs", "Review src/c.rs"] {
    ///     pending.push(jobs.start_claude(ClaudeCommand::new(task).max_budget_usd(0.5)).await?);
    /// }
    /// while !pending.is_empty() {
    ///     let statuses = jobs.wait_any(&pending, Duration::from_secs(600)).await?;
    ///     for status in statuses.iter().filter(|s| s.state.is_finished()) {
    ///         let result = jobs.claude_result(status.id)?;
    ///         println!("job {}: {:?}", status.id, result.and_then(|r| r.result));
    ///         pending.retain(|id| *id != status.id);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn wait_any(&self, ids: &[JobId], timeout: Duration) -> Result<Vec<JobStatus>> {
        let never = std::future::pending::<()>();
        self.wait_many_or(ids, WaitMode::Any, timeout, never).await
    }

    /// Wait until every one of `ids` has ended or `timeout` passes; every one's status, in the
    /// order given, either way.
    pub async fn wait_all(&self, ids: &[JobId], timeout: Duration) -> Result<Vec<JobStatus>> {
        let never = std::future::pending::<()>();
        self.wait_many_or(ids, WaitMode::All, timeout, never).await
    }

    /// [`Jobs::wait_any`] or [`Jobs::wait_all`] as `mode` says, also ending when `stop`
    /// resolves (e.g. the caller gave up). An unknown id is an error before any wait; no id is
    /// [`Error::InvalidRequest`].
    pub async fn wait_many_or(
        &self,
        ids: &[JobId],
        mode: WaitMode,
        timeout: Duration,
        stop: impl Future,
    ) -> Result<Vec<JobStatus>> {
        let jobs: Vec<Arc<Job>> = ids.iter().map(|id| self.job(*id)).collect::<Result<_>>()?;
        if jobs.is_empty() {
            return Err(Error::InvalidRequest {
                reason: "no job to wait on; give at least one job id".into(),
            });
        }
        let done = || match mode {
            WaitMode::Any => jobs.iter().any(|j| j.is_finished()),
            WaitMode::All => jobs.iter().all(|j| j.is_finished()),
        };
        // Subscribed before the first look, so no end between the look and the wait is missed.
        let mut changes: Vec<_> = jobs.iter().map(|j| j.changed.subscribe()).collect();
        let until = async {
            while !done() {
                let next = changes.iter_mut().map(|rx| Box::pin(rx.changed()));
                // The senders live in the jobs held here: a change, never a close.
                let _ = futures_util::future::select_all(next).await;
            }
        };
        tokio::select! {
            _ = tokio::time::timeout(timeout, until) => {}
            _ = stop => {}
        }
        Ok(jobs.iter().map(|j| j.status()).collect())
    }

    /// Wait as `request` says ([`Jobs::wait_many_or`]), ending early when `stop` resolves, then
    /// report ([`Jobs::wait_report`]).
    pub async fn wait_request(
        &self,
        request: &WaitRequest,
        answer_limit: usize,
        stop: impl Future,
    ) -> Result<WaitReport> {
        let (ids, mode) = (request.job_ids()?, request.mode.unwrap_or_default());
        self.wait_many_or(&ids, mode, request.timeout(), stop)
            .await?;
        self.wait_report(request, answer_limit)
    }

    /// The jobs of `request` as they are now: which ended, which run, and their reports
    /// ([`Jobs::report`]; with several jobs each answer gets an equal share of `answer_limit`).
    pub fn wait_report(&self, request: &WaitRequest, answer_limit: usize) -> Result<WaitReport> {
        let ids = request.job_ids()?;
        let share = answer_limit / ids.len();
        let reports: Vec<JobReport> = ids
            .iter()
            .map(|id| self.report(*id, share))
            .collect::<Result<_>>()?;
        let ended = |done: bool| {
            let ended = reports
                .iter()
                .filter(move |r| r.status.state.is_finished() == done);
            ended.map(|r| r.status.id).collect()
        };
        let (ended, running) = (ended(true), ended(false));
        let (job, mut jobs) = match request.id {
            Some(_) => (reports.into_iter().next(), Vec::new()),
            None => (None, reports),
        };
        // The caller knows what it started: a long prompt need not come back once per job.
        for report in &mut jobs {
            report.status.command = crate::text::clip_chars(&report.status.command, COMMAND_CHARS);
        }
        Ok(WaitReport {
            job,
            ended,
            running,
            jobs,
        })
    }

    /// A progress line for a wait on `ids`: for one job what it is doing
    /// ([`Jobs::activity`]); for several, the ones still running and the latest thing one of
    /// them did, e.g. `running: 2, 3 · job 2: tool: Read`. `None` when there is nothing new to
    /// say; the running jobs are named again every few seconds.
    pub fn wait_activity(&self, ids: &[JobId], progress: &mut WaitProgress) -> Option<String> {
        if let [id] = ids {
            let seen = progress.seen.entry(*id).or_default();
            return self.activity(*id, seen).ok().flatten();
        }
        let running: Vec<JobId> = ids
            .iter()
            .filter(|id| self.status(**id).is_ok_and(|s| !s.state.is_finished()))
            .copied()
            .collect();
        let latest = running.iter().rev().find_map(|id| {
            let seen = progress.seen.entry(*id).or_default();
            let line = self.activity(*id, seen).ok().flatten()?;
            Some(format!("job {id}: {line}"))
        });
        let due = progress.last.is_none_or(|at| at.elapsed() >= NAME_EVERY);
        if latest.is_none() && running == progress.running && !due {
            return None;
        }
        progress.last = Some(Instant::now());
        let names: Vec<String> = running.iter().map(JobId::to_string).collect();
        let mut line = format!("running: {}", names.join(", "));
        if running.is_empty() {
            line = "all ended".into();
        }
        progress.running = running;
        Some(match latest {
            Some(latest) => format!("{line} · {latest}"),
            None => line,
        })
    }
}
