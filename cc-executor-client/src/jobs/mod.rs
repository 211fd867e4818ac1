//! Background jobs: executions detached from any caller, kept in a registry to be polled later.
//!
//! An agent starts a long build or a fresh Claude, does other work, and comes back for its status
//! and output. A run a caller waits for itself can be a job too ([`Jobs::call`]; an MCP task is
//! one), listed and read like the others. Each job keeps a bounded window of its output (the
//! oldest part is dropped and counted) and can also append everything to a file, so nothing is
//! lost.
//!
//! ```no_run
//! use std::time::Duration;
//! use cc_executor_client::{Client, jobs::Jobs};
//!
//! # async fn demo() -> cc_executor_client::Result<()> {
//! let jobs = Jobs::new(Client::new("ws://127.0.0.1:8004/ws")?);
//! let id = jobs.start("cargo build").await?;
//! // ... later ...
//! let status = jobs.wait(id, Duration::from_secs(5)).await?;
//! let page = jobs.output(id, 0, 4096)?;
//! println!("{:?}: {}", status.state, page.data);
//! # Ok(()) }
//! ```

mod call;
mod job;
mod query;
mod registry;
mod report;
mod spec;
mod wait;
mod window;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::claude::{ClaudeCommand, ClaudeResult};
use crate::client::Client;
use crate::command::Command;
use crate::error::{Error, Result};
use crate::event::OutputEvent;
use crate::execution::Execution;
use crate::output_dir::{OutputFiles, OutputKind};

pub use call::CANCEL_GRACE;
pub use query::{OutputFormat, OutputLine, OutputQuery};
#[cfg(feature = "schema")]
pub use report::JobRef;
pub use report::{JobList, JobReport};
pub use spec::{JobInput, NewJob};
pub use wait::{WaitMode, WaitProgress, WaitReport, WaitRequest};

use job::{lock, Job, Recorder};
use registry::Registry;
use window::{read_tail, Window};

/// Identifies a job within one [`Jobs`] registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "schema", derive(serde::Serialize, schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(transparent), schemars(transparent))]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schema", derive(serde::Serialize, schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum JobState {
    /// Running.
    Running,
    /// Paused (SIGSTOP).
    Paused,
    /// Exited with code 0.
    Completed,
    /// Exited non-zero, was killed, or the connection to the service was lost.
    Failed,
    /// Canceled on request.
    Canceled,
    /// Killed at its timeout.
    TimedOut,
}

impl JobState {
    /// Whether the job has ended.
    pub fn is_finished(self) -> bool {
        !matches!(self, JobState::Running | JobState::Paused)
    }

    /// Lower-case name (`running`, `paused`, `completed`, `failed`, `canceled`, `timed_out`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Paused => "paused",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Canceled => "canceled",
            JobState::TimedOut => "timed_out",
        }
    }
}

/// What a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "schema", derive(serde::Serialize, schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(rename_all = "lowercase"))]
#[non_exhaustive]
pub enum JobKind {
    /// A command line ([`Jobs::start`]).
    #[default]
    Command,
    /// A `claude -p` run ([`Jobs::start_claude`]).
    Claude,
}

/// A snapshot of a job.
///
/// With the `schema` feature it serializes as a tool reports it: `runtime_secs` instead of the
/// start and end times, without the label and the events.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "schema", derive(serde::Serialize, schemars::JsonSchema))]
#[non_exhaustive]
pub struct JobStatus {
    /// The job's id (an integer).
    pub id: JobId,
    /// `command` or `claude`.
    pub kind: JobKind,
    /// The command line run (for a Claude job, the whole `claude -p` line).
    pub command: String,
    /// The caller's label, from [`JobOptions::label`] (for a call kept as a job, e.g. the MCP
    /// task it runs for: see [`Jobs::call`]).
    #[cfg_attr(feature = "schema", serde(skip_serializing_if = "Option::is_none"))]
    pub label: Option<String>,
    /// Where it is in its life: `running`, `paused`, `completed`, `failed`, `canceled` or
    /// `timed_out`.
    pub state: JobState,
    /// Exit code once finished; a negative signal number when killed by a signal.
    pub exit_code: Option<i32>,
    /// Pid of the group leader.
    pub pid: u32,
    /// Process group id, when known.
    pub pgid: Option<u32>,
    /// When it started.
    #[cfg_attr(feature = "schema", serde(skip))]
    pub started_at: SystemTime,
    /// When it ended.
    #[cfg_attr(feature = "schema", serde(skip))]
    pub ended_at: Option<SystemTime>,
    /// Seconds it had run when this snapshot was taken (until it ended, once finished).
    #[cfg_attr(
        feature = "schema",
        serde(rename = "runtime_secs", serialize_with = "crate::schema::secs"),
        schemars(with = "f64")
    )]
    runtime: Duration,
    /// Bytes of output produced so far (stdout and stderr together).
    pub output_bytes: u64,
    /// Bytes of the oldest output no longer held in memory (still in `output_file`, when set).
    pub dropped_bytes: u64,
    /// File receiving the job's whole output, when asked for.
    pub output_file: Option<PathBuf>,
    /// Why the full output is not (or no longer) being saved to a file, when a file was wanted
    /// (serialized as a sentence).
    #[cfg_attr(feature = "schema", serde(serialize_with = "crate::schema::unsaved"))]
    pub output_error: Option<String>,
    /// Why it failed, or the limit it hit, when known.
    pub error: Option<String>,
    /// The latest non-output events seen (limits, early completion, warnings), at most
    /// [`JobStatus::MAX_EVENTS`]: a detector fires on every matching line.
    #[cfg_attr(feature = "schema", serde(skip))]
    pub events: Vec<OutputEvent>,
    /// Older events no longer held in `events`.
    #[cfg_attr(feature = "schema", serde(skip))]
    pub dropped_events: u64,
}

impl JobStatus {
    /// Most events a status holds; older ones are dropped and counted in `dropped_events`.
    pub const MAX_EVENTS: usize = 64;

    /// How long it has run: until it ended, once finished.
    pub fn runtime(&self) -> Duration {
        let end = self.ended_at.unwrap_or_else(SystemTime::now);
        end.duration_since(self.started_at).unwrap_or_default()
    }

    /// Plain sentences about the limits the job hit, with when they reset
    /// ([`OutputEvent::limit_advice`]).
    pub fn notes(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| e.limit_advice())
            .collect()
    }
}

/// A page of a job's output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(serde::Serialize, schemars::JsonSchema))]
#[non_exhaustive]
pub struct OutputPage {
    /// The job's id.
    pub id: JobId,
    /// The job's state when the page was read.
    pub state: JobState,
    /// Byte offset (from the job's first output byte) where `data` starts (later than asked
    /// when older output was dropped).
    pub offset: u64,
    /// Offset to ask for next.
    pub next_offset: u64,
    /// Bytes produced so far.
    pub total: u64,
    /// Bytes no longer held in memory (offsets below this are gone from the window; they are in
    /// the job's output file, when it has one).
    pub dropped: u64,
    /// The text (stdout and stderr interleaved in arrival order).
    pub data: String,
    /// The job has finished and `next_offset == total`: nothing more will come.
    pub eof: bool,
    /// With a grep ([`Jobs::read`]): the lines that match and the lines of context around them,
    /// each with its byte offset (`data` is then empty).
    #[cfg_attr(feature = "schema", serde(skip_serializing_if = "Option::is_none"))]
    pub lines: Option<Vec<OutputLine>>,
    /// With a grep: how many lines matched in all the output searched (from the offset asked),
    /// also those past the size limit.
    #[cfg_attr(feature = "schema", serde(skip_serializing_if = "Option::is_none"))]
    pub match_count: Option<u64>,
}

impl OutputPage {
    /// The page with its text free of terminal escape sequences ([`crate::strip_ansi`]), for a
    /// reader; offsets still count the raw bytes.
    pub fn without_ansi(mut self) -> Self {
        let lines = self.lines.iter_mut().flatten().map(|l| &mut l.line);
        for text in std::iter::once(&mut self.data).chain(lines) {
            if let std::borrow::Cow::Owned(plain) = crate::strip_ansi(text) {
                *text = plain;
            }
        }
        self
    }
}

/// Limits of a [`Jobs`] registry.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobsConfig {
    /// Bytes of output kept in memory per job; older output is dropped and counted.
    pub buffer_bytes: usize,
    /// How long a finished job is kept before it is evicted.
    pub keep_finished: Duration,
    /// How many finished jobs are kept at most (the oldest finished are evicted first).
    pub max_finished: usize,
    /// Save each job's full output to a private file of this policy (unless the job names its own
    /// [`JobOptions::output_file`]); the file is released, and so deleted unless the policy keeps
    /// job outputs, when the job is evicted or forgotten.
    pub output_files: Option<OutputFiles>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            buffer_bytes: 1 << 20,
            keep_finished: Duration::from_secs(3600),
            max_finished: 100,
            output_files: None,
        }
    }
}

impl JobsConfig {
    /// Set [`JobsConfig::buffer_bytes`].
    pub fn buffer_bytes(mut self, bytes: usize) -> Self {
        self.buffer_bytes = bytes.max(1);
        self
    }

    /// Set [`JobsConfig::keep_finished`].
    pub fn keep_finished(mut self, keep: Duration) -> Self {
        self.keep_finished = keep;
        self
    }

    /// Set [`JobsConfig::max_finished`].
    pub fn max_finished(mut self, n: usize) -> Self {
        self.max_finished = n;
        self
    }

    /// Set [`JobsConfig::output_files`].
    pub fn output_files(mut self, files: OutputFiles) -> Self {
        self.output_files = Some(files);
        self
    }
}

/// Options of one job.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct JobOptions {
    /// Append the full output to this file (created or truncated, private: mode `0600`, never
    /// through a symbolic link).
    pub output_file: Option<PathBuf>,
    /// A label of the caller's choosing (e.g. what kind of job it is), kept in its status.
    pub label: Option<String>,
    /// A Claude job was given a JSON Schema for its answer.
    json_schema_given: bool,
}

impl JobOptions {
    /// Append the full output to `path`.
    pub fn output_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.output_file = Some(path.into());
        self
    }

    /// Label the job (see [`JobStatus::label`]).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

/// A registry of background jobs. Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    config: JobsConfig,
    state: Mutex<Registry>,
}

impl Jobs {
    /// A registry that runs jobs through `client`, with default limits.
    pub fn new(client: Client) -> Jobs {
        Jobs::with_config(client, JobsConfig::default())
    }

    /// A registry with the given limits.
    pub fn with_config(client: Client, config: JobsConfig) -> Jobs {
        Jobs {
            inner: Arc::new(Inner {
                client,
                config,
                state: Mutex::new(Registry::default()),
            }),
        }
    }

    /// The client jobs run through.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Start `cmd` as a job; returns once the service has started it (so a refused command fails here).
    pub async fn start(&self, cmd: impl Into<Command>) -> Result<JobId> {
        self.start_with(cmd, JobOptions::default()).await
    }

    /// Start `cmd` as a job with options.
    pub async fn start_with(&self, cmd: impl Into<Command>, options: JobOptions) -> Result<JobId> {
        self.start_kind(cmd.into(), JobKind::Command, options).await
    }

    /// Start a fresh `claude -p` as a job: its status says [`JobKind::Claude`], and
    /// [`Jobs::report`] reads its final result once it has ended.
    pub async fn start_claude(&self, cmd: ClaudeCommand) -> Result<JobId> {
        self.start_claude_with(cmd, JobOptions::default()).await
    }

    /// Start a fresh `claude -p` as a job with options (see [`Jobs::start_claude`]).
    pub async fn start_claude_with(
        &self,
        cmd: ClaudeCommand,
        options: JobOptions,
    ) -> Result<JobId> {
        cmd.validate()?;
        let options = JobOptions {
            json_schema_given: cmd.has_json_schema(),
            ..options
        };
        self.start_kind(cmd.into(), JobKind::Claude, options).await
    }

    async fn start_kind(&self, cmd: Command, kind: JobKind, options: JobOptions) -> Result<JobId> {
        let (id, mut execution) = self.begin(cmd, kind, options).await?;
        // The job's own task reads the run (recording it); nobody reads it on the caller's side.
        execution.detach();
        tokio::spawn(async move { while execution.next_raw().await.is_some() {} });
        Ok(id)
    }

    /// Start `cmd` and keep it as a job: whoever reads the execution returned, its events are
    /// recorded in the job.
    async fn begin(
        &self,
        cmd: Command,
        kind: JobKind,
        options: JobOptions,
    ) -> Result<(JobId, Execution)> {
        cmd.validate()?;
        let policy = &self.inner.config.output_files;
        let (mut output_file, mut file, mut output_error) = (options.output_file, None, None);
        let explicit = output_file.is_some();
        match (&output_file, policy) {
            (Some(path), _) => file = Some(crate::output_dir::open_private(path)?),
            // A refused folder must not stop the job: it runs, and its status says why there is
            // no file.
            (None, Some(files)) => match files.create(OutputKind::Job) {
                Ok(out) => (output_file, file) = (Some(out.path), Some(out.file)),
                Err(e) => output_error = Some(e.to_string()),
            },
            (None, None) => {}
        }
        let owned = (!explicit).then(|| output_file.clone()).flatten();
        let mut execution = match self.inner.client.execute(cmd.clone()).await {
            Ok(execution) => execution,
            Err(e) => {
                if let (Some(files), Some(path)) = (policy, &owned) {
                    files.release(path);
                }
                return Err(e);
            }
        };
        let id = lock(&self.inner.state).next_id();
        let status = JobStatus {
            id,
            kind,
            command: cmd.line().to_owned(),
            label: options.label,
            state: JobState::Running,
            exit_code: None,
            pid: execution.pid(),
            pgid: execution.pgid(),
            started_at: SystemTime::now(),
            ended_at: None,
            runtime: Duration::ZERO,
            output_bytes: 0,
            dropped_bytes: 0,
            output_file,
            output_error,
            error: None,
            events: Vec::new(),
            dropped_events: 0,
        };
        let window = Window::new(self.inner.config.buffer_bytes, file);
        let mut job = Job::new(execution.controller(), status, window, owned);
        job.json_schema_given = options.json_schema_given;
        let job = Arc::new(job);
        execution.observe(Box::new(Recorder::new(job.clone())));
        lock(&self.inner.state).insert(id, job);
        self.evict();
        Ok((id, execution))
    }

    /// A snapshot of job `id`.
    pub fn status(&self, id: JobId) -> Result<JobStatus> {
        Ok(self.job(id)?.status())
    }

    /// Up to `limit` bytes of output starting at byte `offset` (clamped to what is still held).
    pub fn output(&self, id: JobId, offset: u64, limit: usize) -> Result<OutputPage> {
        self.page(id, Some(offset), limit)
    }

    /// The last `bytes` bytes of output held.
    pub fn tail(&self, id: JobId, bytes: usize) -> Result<OutputPage> {
        self.page(id, None, bytes)
    }

    /// Up to `limit` bytes of output from byte `offset` ([`Jobs::output`]), or the last `limit`
    /// bytes when there is no offset ([`Jobs::tail`]).
    pub fn page(&self, id: JobId, offset: Option<u64>, limit: usize) -> Result<OutputPage> {
        Ok(self.job(id)?.page(offset, limit))
    }

    /// Wait until job `id` finishes or `timeout` passes; returns its status either way.
    pub async fn wait(&self, id: JobId, timeout: Duration) -> Result<JobStatus> {
        self.wait_or(id, timeout, std::future::pending::<()>())
            .await
    }

    /// [`Jobs::wait`], also ending when `stop` resolves (e.g. the caller gave up); returns the
    /// job's status either way.
    pub async fn wait_or(
        &self,
        id: JobId,
        timeout: Duration,
        stop: impl Future,
    ) -> Result<JobStatus> {
        let job = self.job(id)?;
        tokio::select! {
            () = Self::wait_until(&job, timeout, |job| job.is_finished()) => {}
            _ = stop => {}
        }
        Ok(job.status())
    }

    /// Wait until job `id` has output past byte `offset`, finishes, or `timeout` passes; then return
    /// the page at `offset` (possibly empty). Lets a caller follow a job without polling.
    pub async fn wait_for_output(
        &self,
        id: JobId,
        offset: u64,
        limit: usize,
        timeout: Duration,
    ) -> Result<OutputPage> {
        let job = self.job(id)?;
        let ready = |job: &Job| job.output_bytes() > offset || job.is_finished();
        Self::wait_until(&job, timeout, ready).await;
        Ok(job.page(Some(offset), limit))
    }

    /// Wait until `ready(job)` holds or `timeout` passes.
    async fn wait_until(job: &Job, timeout: Duration, ready: impl Fn(&Job) -> bool) {
        let mut rx = job.changed.subscribe();
        let until = async {
            while !ready(job) {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, until).await;
    }

    /// Pause job `id` (SIGSTOP to its process group).
    pub async fn pause(&self, id: JobId) -> Result<()> {
        let job = self.job(id)?;
        job.controller.pause().await?;
        job.set_state(JobState::Paused);
        Ok(())
    }

    /// Resume job `id` (SIGCONT to its process group).
    pub async fn resume(&self, id: JobId) -> Result<()> {
        let job = self.job(id)?;
        job.controller.resume().await?;
        job.set_state(JobState::Running);
        Ok(())
    }

    /// Cancel job `id` (SIGTERM, then SIGKILL, to its process group).
    pub async fn cancel(&self, id: JobId) -> Result<()> {
        let job = self.job(id)?;
        match job.controller.cancel().await {
            // Finished between the caller's look and ours: nothing left to cancel.
            Err(Error::NoProcess { .. }) if job.is_finished() => Ok(()),
            other => other,
        }
    }

    /// Cancel job `id` and wait until it has ended (its group has exited), for at most `bound`;
    /// its status then. Canceling a job that has already ended just gives its status.
    pub async fn cancel_and_wait(&self, id: JobId, bound: Duration) -> Result<JobStatus> {
        let canceled = self.cancel(id).await;
        if canceled.is_ok() {
            let _ = self.wait(id, bound).await;
        }
        let status = self.status(id)?;
        match canceled {
            Err(e) if !status.state.is_finished() => Err(e),
            _ => Ok(status),
        }
    }

    /// What job `id` is doing, from its output past byte `since` (which moves on to its end):
    /// for a Claude job the latest assistant text or tool in use
    /// ([`ClaudeEvent::activity`](crate::claude::ClaudeEvent::activity)), otherwise its last
    /// non-blank line; `None` when there is no new output that says something.
    pub fn activity(&self, id: JobId, since: &mut u64) -> Result<Option<String>> {
        let job = self.job(id)?;
        let claude = job.status().kind == JobKind::Claude;
        let page = job.page(None, if claude { 64 * 1024 } else { 4096 });
        if std::mem::replace(since, page.total) >= page.total {
            return Ok(None);
        }
        let mut lines = page.data.lines().rev();
        Ok(match claude {
            true => lines.find_map(|l| crate::claude::parse_line(l).activity()),
            false => lines
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_owned),
        })
    }

    /// Job `id` as a reader is told about it: its status, the notes about its limits, and for a
    /// finished Claude job its final result ([`Jobs::claude_result`]), the answer cut to about
    /// `answer_limit` bytes (the job's output file holds it whole), with why it failed, or a note
    /// that it ended without a result.
    pub fn report(&self, id: JobId, answer_limit: usize) -> Result<JobReport> {
        let mut report = JobReport::from(self.status(id)?);
        let status = &report.status;
        if status.kind != JobKind::Claude {
            return Ok(report);
        }
        let latest = self.latest_assistant_text(id)?;
        report.assistant = latest.map(|t| crate::text::bound(&t, answer_limit).0);
        if !status.state.is_finished() {
            return Ok(report);
        }
        match self.claude_result(id)? {
            Some(mut result) => {
                result.json_schema_given = self.job(id)?.json_schema_given;
                report.notes.extend(result.notes());
                let file = status.output_file.clone();
                let whole = |_: &str| Ok::<_, std::convert::Infallible>(file);
                report.claude = Some(result.bounded(answer_limit, whole));
            }
            None => report.notes.push(report::CLAUDE_WITHOUT_RESULT.to_owned()),
        }
        Ok(report)
    }

    /// The latest assistant text in a Claude job's recent output.
    fn latest_assistant_text(&self, id: JobId) -> Result<Option<String>> {
        let page = self.tail(id, 256 * 1024)?;
        let mut texts = page.data.lines().rev().map(crate::claude::parse_line);
        Ok(texts.find_map(|event| match event {
            crate::claude::ClaudeEvent::Assistant(m) => Some(m.text()).filter(|t| !t.is_empty()),
            _ => None,
        }))
    }

    /// Keep the registry tidy: evict finished jobs past their time (releasing their output
    /// files) and sweep the output policy's old files ([`OutputFiles::sweep`]) now, then every
    /// `every` in a task of its own. Abort the task to stop.
    pub fn spawn_tidy(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        self.tidy();
        let (jobs, every) = (self.clone(), every.max(Duration::from_secs(1)));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                jobs.tidy();
            }
        })
    }

    fn tidy(&self) {
        self.evict();
        if let Some(files) = &self.inner.config.output_files {
            files.sweep_and_log();
        }
    }

    /// Snapshots of every job held, oldest first.
    pub fn list(&self) -> Vec<JobStatus> {
        self.evict();
        let jobs = lock(&self.inner.state).all();
        jobs.iter().map(|j| j.status()).collect()
    }

    /// Drop job `id` from the registry, canceling it first if it still runs.
    pub async fn forget(&self, id: JobId) -> Result<JobStatus> {
        let job = self.job(id)?;
        if !job.is_finished() {
            let _ = job.controller.cancel().await;
        }
        lock(&self.inner.state).remove(id);
        self.release_file(&job);
        Ok(job.status())
    }

    /// Cancel every running job (for shutdown). Returns how many were canceled.
    pub async fn cancel_all(&self) -> usize {
        let running = self.running();
        futures_util::future::join_all(running.iter().map(|j| j.controller.cancel())).await;
        running.len()
    }

    /// Cancel every running job and wait until each has ended (its group has exited), for at most
    /// `timeout` in all. Returns whether they all ended in time.
    pub async fn stop_all(&self, timeout: Duration) -> bool {
        let running = self.running();
        let all = async {
            futures_util::future::join_all(running.iter().map(|j| j.controller.cancel())).await;
            for job in &running {
                Self::wait_until(job, timeout, |job| job.is_finished()).await;
            }
        };
        tokio::time::timeout(timeout, all).await.is_ok()
    }

    /// The final [`ClaudeResult`] of job `id`, a finished
    /// `claude -p --output-format stream-json` run: from the output held in memory, or, when the
    /// start of the output was dropped, from the end of its output file. `None` when there is no
    /// `result` line (see [`result_from_output`](crate::claude::result_from_output)).
    pub fn claude_result(&self, id: JobId) -> Result<Option<ClaudeResult>> {
        use crate::claude::result_from_output;
        let page = self.tail(id, usize::MAX)?;
        if let Some(result) = result_from_output(&page.data) {
            return Ok(Some(result));
        }
        let file = match self.status(id)?.output_file {
            Some(file) if page.dropped > 0 => file,
            _ => return Ok(None),
        };
        Ok(read_tail(&file)
            .ok()
            .and_then(|tail| result_from_output(&tail)))
    }

    fn job(&self, id: JobId) -> Result<Arc<Job>> {
        self.evict();
        lock(&self.inner.state)
            .get(id)
            .ok_or(Error::UnknownJob { id: id.0 })
    }

    /// The jobs still running.
    fn running(&self) -> Vec<Arc<Job>> {
        let all = lock(&self.inner.state).all();
        all.into_iter().filter(|j| !j.is_finished()).collect()
    }

    fn evict(&self) {
        let gone = lock(&self.inner.state).evict(&self.inner.config);
        for job in &gone {
            self.release_file(job);
        }
    }

    /// The job left the registry: close its file and release it to the output policy (which
    /// deletes it unless job outputs are kept).
    fn release_file(&self, job: &Job) {
        if let (Some(files), Some(path)) = (&self.inner.config.output_files, job.take_owned_file())
        {
            files.release(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_stops_at_the_end() {
        let started_at = SystemTime::now();
        let status = JobStatus {
            id: JobId(1),
            kind: JobKind::Command,
            command: "x".into(),
            label: None,
            state: JobState::Completed,
            exit_code: Some(0),
            pid: 1,
            pgid: None,
            started_at,
            ended_at: Some(started_at + Duration::from_secs(3)),
            runtime: Duration::ZERO,
            output_bytes: 0,
            dropped_bytes: 0,
            output_file: None,
            output_error: None,
            error: None,
            events: vec![],
            dropped_events: 0,
        };
        assert_eq!(status.runtime(), Duration::from_secs(3));
    }
}
