//! Background jobs: executions detached from any caller, kept in a registry to be polled later.
//!
//! An agent starts a long build or a fresh Claude, does other work, and comes back for its status
//! and output. Each job keeps a bounded window of its output (the oldest part is dropped and
//! counted) and can also append everything to a file, so nothing is lost.
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

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use tokio::sync::watch;

use crate::client::Client;
use crate::command::Command;
use crate::error::{Error, Result};
use crate::event::{OutputEvent, RunStatus};
use crate::execution::Controller;
use crate::output_dir::{OutputFiles, OutputKind};

/// Identifies a job within one [`Jobs`] registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// A snapshot of a job.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobStatus {
    /// The job's id.
    pub id: JobId,
    /// The command line.
    pub command: String,
    /// The caller's label, from [`JobOptions::label`].
    pub label: Option<String>,
    /// Where it is in its life.
    pub state: JobState,
    /// Exit code once finished (negative signal number when killed by a signal).
    pub exit_code: Option<i32>,
    /// Pid of the group leader.
    pub pid: u32,
    /// Process group id, when known.
    pub pgid: Option<u32>,
    /// When it started.
    pub started_at: SystemTime,
    /// When it ended.
    pub ended_at: Option<SystemTime>,
    /// Bytes of output produced so far (stdout and stderr together).
    pub output_bytes: u64,
    /// Bytes of output dropped from the in-memory window (still in `output_file`, when set).
    pub dropped_bytes: u64,
    /// File receiving the full output, when asked for.
    pub output_file: Option<PathBuf>,
    /// Why the full output is not (or no longer) being saved to a file, when a file was wanted.
    pub output_error: Option<String>,
    /// Why it failed, or the limit it hit, when known.
    pub error: Option<String>,
    /// The latest non-output events seen (limits, early completion, warnings), at most
    /// [`JobStatus::MAX_EVENTS`]: a detector fires on every matching line.
    pub events: Vec<OutputEvent>,
    /// Older events no longer held in `events`.
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
}

/// A page of a job's output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutputPage {
    /// Byte offset (from the job's first output byte) where `data` starts.
    pub offset: u64,
    /// Offset to ask for next.
    pub next_offset: u64,
    /// Bytes produced so far.
    pub total: u64,
    /// Bytes no longer held in memory (offsets below this are gone from the window).
    pub dropped: u64,
    /// The text (stdout and stderr interleaved in arrival order).
    pub data: String,
    /// The job has finished and `next_offset == total`: nothing more will come.
    pub eof: bool,
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

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    jobs: BTreeMap<JobId, Arc<Job>>,
}

#[derive(Debug)]
struct Job {
    controller: Controller,
    changed: watch::Sender<u64>,
    data: Mutex<JobData>,
}

#[derive(Debug)]
struct JobData {
    status: JobStatus,
    window: VecDeque<u8>,
    finished_at: Option<Instant>,
    /// A cancel was sent: a run that then ends by a signal was canceled, whatever status the
    /// service reports (it may see the exit before it records the cancel).
    cancel_sent: bool,
    file: Option<std::fs::File>,
    /// The file came from [`JobsConfig::output_files`]: release it when the job goes.
    owned_file: bool,
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
        let cmd = cmd.into();
        let policy = &self.inner.config.output_files;
        let explicit = options.output_file.is_some();
        let (mut output_file, mut file, mut output_error) = (options.output_file, None, None);
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
        let owned_file = !explicit && output_file.is_some();
        let mut execution = match self.inner.client.execute(cmd.clone()).await {
            Ok(execution) => execution,
            Err(e) => {
                if let (true, Some(files), Some(path)) = (owned_file, policy, &output_file) {
                    files.release(path);
                }
                return Err(e);
            }
        };
        // The job task owns the execution; nobody reads it on the caller's side.
        execution.detach();
        let (changed, _) = watch::channel(0);
        let job = Arc::new(Job {
            controller: execution.controller(),
            changed,
            data: Mutex::new(JobData {
                status: JobStatus {
                    id: JobId(0),
                    command: cmd.line().to_owned(),
                    label: options.label,
                    state: JobState::Running,
                    exit_code: None,
                    pid: execution.pid(),
                    pgid: execution.pgid(),
                    started_at: SystemTime::now(),
                    ended_at: None,
                    output_bytes: 0,
                    dropped_bytes: 0,
                    output_file,
                    output_error,
                    error: None,
                    events: Vec::new(),
                    dropped_events: 0,
                },
                window: VecDeque::new(),
                finished_at: None,
                cancel_sent: false,
                file,
                owned_file,
            }),
        });
        let id = {
            let mut reg = lock(&self.inner.state);
            reg.next_id += 1;
            let id = JobId(reg.next_id);
            lock(&job.data).status.id = id;
            reg.jobs.insert(id, job.clone());
            id
        };
        self.evict();
        let limit = self.inner.config.buffer_bytes;
        tokio::spawn(async move {
            while let Some(item) = execution.next().await {
                match item {
                    Ok(event) => job.record(event, limit),
                    Err(err) => job.fail(&err),
                }
            }
            job.finish_if_running();
        });
        Ok(id)
    }

    /// A snapshot of job `id`.
    pub fn status(&self, id: JobId) -> Result<JobStatus> {
        let job = self.job(id)?;
        let status = lock(&job.data).status.clone();
        Ok(status)
    }

    /// Up to `limit` bytes of output starting at byte `offset` (clamped to what is still held).
    pub fn output(&self, id: JobId, offset: u64, limit: usize) -> Result<OutputPage> {
        let job = self.job(id)?;
        let data = lock(&job.data);
        Ok(data.page(offset, limit))
    }

    /// The last `bytes` bytes of output held.
    pub fn tail(&self, id: JobId, bytes: usize) -> Result<OutputPage> {
        let job = self.job(id)?;
        let data = lock(&job.data);
        let offset = data.status.output_bytes.saturating_sub(bytes as u64);
        Ok(data.page(offset, bytes))
    }

    /// Wait until job `id` finishes or `timeout` passes; returns its status either way.
    pub async fn wait(&self, id: JobId, timeout: Duration) -> Result<JobStatus> {
        let job = self.job(id)?;
        let mut rx = job.changed.subscribe();
        let finished = async {
            loop {
                if lock(&job.data).status.state.is_finished() {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, finished).await;
        let status = lock(&job.data).status.clone();
        Ok(status)
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
        let mut rx = job.changed.subscribe();
        let ready = async {
            loop {
                {
                    let data = lock(&job.data);
                    if data.status.output_bytes > offset || data.status.state.is_finished() {
                        return;
                    }
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, ready).await;
        let page = lock(&job.data).page(offset, limit);
        Ok(page)
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
        lock(&job.data).cancel_sent = true;
        match job.controller.cancel().await {
            // Finished between the caller's look and ours: nothing left to cancel.
            Err(Error::NoProcess { .. }) if lock(&job.data).status.state.is_finished() => Ok(()),
            other => other,
        }
    }

    /// Snapshots of every job held, oldest first.
    pub fn list(&self) -> Vec<JobStatus> {
        self.evict();
        let jobs: Vec<_> = lock(&self.inner.state).jobs.values().cloned().collect();
        jobs.iter().map(|j| lock(&j.data).status.clone()).collect()
    }

    /// Drop job `id` from the registry, canceling it first if it still runs.
    pub async fn forget(&self, id: JobId) -> Result<JobStatus> {
        let job = self.job(id)?;
        if !lock(&job.data).status.state.is_finished() {
            lock(&job.data).cancel_sent = true;
            let _ = job.controller.cancel().await;
        }
        lock(&self.inner.state).jobs.remove(&id);
        self.release_file(&job);
        let status = lock(&job.data).status.clone();
        Ok(status)
    }

    /// Cancel every running job (for shutdown). Returns how many were canceled.
    pub async fn cancel_all(&self) -> usize {
        let running: Vec<_> = lock(&self.inner.state)
            .jobs
            .values()
            .filter(|j| !lock(&j.data).status.state.is_finished())
            .cloned()
            .collect();
        let n = running.len();
        for job in &running {
            lock(&job.data).cancel_sent = true;
        }
        futures_util::future::join_all(running.iter().map(|j| j.controller.cancel())).await;
        n
    }

    fn job(&self, id: JobId) -> Result<Arc<Job>> {
        self.evict();
        lock(&self.inner.state)
            .jobs
            .get(&id)
            .cloned()
            .ok_or(Error::UnknownJob { id: id.0 })
    }

    /// Evict finished jobs past `keep_finished`, then the oldest finished past `max_finished`.
    fn evict(&self) {
        let cfg = &self.inner.config;
        let mut gone = Vec::new();
        {
            let mut reg = lock(&self.inner.state);
            let now = Instant::now();
            let mut finished: Vec<(Instant, JobId)> = Vec::new();
            reg.jobs.retain(|id, job| {
                let data = lock(&job.data);
                match data.finished_at {
                    Some(at) if now.duration_since(at) >= cfg.keep_finished => {
                        gone.push(job.clone());
                        false
                    }
                    Some(at) => {
                        finished.push((at, *id));
                        true
                    }
                    None => true,
                }
            });
            if finished.len() > cfg.max_finished {
                finished.sort();
                for (_, id) in &finished[..finished.len() - cfg.max_finished] {
                    gone.extend(reg.jobs.remove(id));
                }
            }
        }
        for job in &gone {
            self.release_file(job);
        }
    }

    /// The job left the registry: close its file and release it to the output policy (which
    /// deletes it unless job outputs are kept).
    fn release_file(&self, job: &Job) {
        let Some(files) = &self.inner.config.output_files else {
            return;
        };
        let mut data = lock(&job.data);
        if std::mem::take(&mut data.owned_file) {
            data.file = None;
            if let Some(path) = &data.status.output_file {
                files.release(path);
            }
        }
    }
}

impl Job {
    fn record(&self, event: OutputEvent, limit: usize) {
        let mut data = lock(&self.data);
        match event {
            OutputEvent::Output { data: text, .. } => data.push_output(text.as_bytes(), limit),
            OutputEvent::Paused => data.status.state = JobState::Paused,
            OutputEvent::Resumed => data.status.state = JobState::Running,
            OutputEvent::Started { .. } | OutputEvent::Canceled => {}
            OutputEvent::Completed {
                status,
                exit_code,
                timed_out,
                error,
                ..
            } => {
                data.status.exit_code = exit_code;
                data.status.state = match status {
                    _ if timed_out => JobState::TimedOut,
                    RunStatus::Completed => JobState::Completed,
                    RunStatus::Canceled => JobState::Canceled,
                    _ if data.cancel_sent && exit_code.is_some_and(|c| c < 0) => JobState::Canceled,
                    _ => JobState::Failed,
                };
                if error.is_some() {
                    data.status.error = error;
                }
                data.finish();
            }
            OutputEvent::Failed { error } => {
                data.status.state = JobState::Failed;
                data.status.error = error;
                data.finish();
            }
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
        }
        drop(data);
        self.changed.send_modify(|n| *n += 1);
    }

    fn fail(&self, err: &Error) {
        let mut data = lock(&self.data);
        if !data.status.state.is_finished() {
            data.status.state = match err {
                Error::Timeout { .. } => JobState::TimedOut,
                _ => JobState::Failed,
            };
            data.status.error = Some(err.to_string());
            data.finish();
        }
        drop(data);
        self.changed.send_modify(|n| *n += 1);
    }

    /// The stream ended without a terminal event (e.g. the Python service after CANCEL).
    fn finish_if_running(&self) {
        let mut data = lock(&self.data);
        if !data.status.state.is_finished() {
            data.status.state = JobState::Canceled;
            data.finish();
        }
        drop(data);
        self.changed.send_modify(|n| *n += 1);
    }

    fn set_state(&self, state: JobState) {
        let mut data = lock(&self.data);
        if !data.status.state.is_finished() {
            data.status.state = state;
        }
        drop(data);
        self.changed.send_modify(|n| *n += 1);
    }
}

impl JobData {
    fn push_output(&mut self, bytes: &[u8], limit: usize) {
        if let Some(file) = &mut self.file {
            if let Err(e) = file.write_all(bytes) {
                tracing::warn!("job {}: writing output file failed: {e}", self.status.id);
                self.status.output_error = Some(format!("writing the output file failed: {e}"));
                self.file = None;
            }
        }
        self.status.output_bytes += bytes.len() as u64;
        self.window.extend(bytes);
        if self.window.len() > limit {
            let excess = self.window.len() - limit;
            self.window.drain(..excess);
            self.status.dropped_bytes += excess as u64;
        }
    }

    fn finish(&mut self) {
        self.status.ended_at = Some(SystemTime::now());
        self.finished_at = Some(Instant::now());
        if let Some(file) = &mut self.file {
            let _ = file.flush();
        }
    }

    fn page(&self, offset: u64, limit: usize) -> OutputPage {
        let dropped = self.status.dropped_bytes;
        let total = self.status.output_bytes;
        let start = offset.clamp(dropped, total);
        let from = (start - dropped) as usize;
        // Read a few bytes past the limit so the cut can land on a character boundary.
        let to = from
            .saturating_add(limit)
            .saturating_add(3)
            .min(self.window.len());
        let bytes: Vec<u8> = self.window.range(from..to).copied().collect();
        let is_cont = |b: u8| (b & 0xC0) == 0x80;
        // Skip a partial character at the start, cut before a partial one at the end (taking at
        // least one whole character), so pages concatenate back to the exact output.
        let lead = bytes.iter().take_while(|b| is_cont(**b)).count();
        let body = &bytes[lead..];
        let mut valid = limit.min(body.len());
        while valid > 0 && valid < body.len() && is_cont(body[valid]) {
            valid -= 1;
        }
        if valid == 0 && !body.is_empty() && limit > 0 {
            valid = 1;
            while valid < body.len() && is_cont(body[valid]) {
                valid += 1;
            }
        }
        let data = String::from_utf8_lossy(&body[..valid]).into_owned();
        let next_offset = start + (lead + valid) as u64;
        OutputPage {
            offset: start + lead as u64,
            next_offset,
            total,
            dropped,
            data,
            eof: self.status.state.is_finished() && next_offset >= total,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Jobs {
    /// Cancel every running job and wait until each has ended (its group has exited), for at most
    /// `timeout` in all. Returns whether they all ended in time.
    pub async fn stop_all(&self, timeout: Duration) -> bool {
        let running: Vec<_> = (self.list().into_iter())
            .filter(|s| !s.state.is_finished())
            .map(|s| s.id)
            .collect();
        let all = async {
            self.cancel_all().await;
            for id in running {
                let _ = self.wait(id, timeout).await;
            }
        };
        tokio::time::timeout(timeout, all).await.is_ok()
    }

    /// The final [`ClaudeResult`](crate::claude::ClaudeResult) of job `id`, a finished
    /// `claude -p --output-format stream-json` run: from the output held in memory, or, when the
    /// start of the output was dropped, from the end of its output file. `None` when there is no
    /// `result` line (see [`result_from_output`](crate::claude::result_from_output)).
    pub fn claude_result(&self, id: JobId) -> Result<Option<crate::claude::ClaudeResult>> {
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
}

/// The `result` line ends a Claude run's output, so the end of the file is enough: read at most
/// the last 16 MiB (whole lines only) rather than a file of any size.
fn read_tail(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    const MAX: u64 = 16 << 20;
    let mut file = std::fs::File::open(path)?;
    let start = file.metadata()?.len().saturating_sub(MAX);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(MAX).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(match (start, text.find('\n')) {
        (0, _) | (_, None) => text.into_owned(),
        (_, Some(i)) => text[i + 1..].to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_tail_keeps_whole_lines_of_a_long_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        assert_eq!(
            read_tail(&path).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::NotFound)
        );
        std::fs::write(&path, "a\nb\n").unwrap();
        assert_eq!(read_tail(&path).unwrap(), "a\nb\n");
        let long = "x".repeat(10) + "\n" + &"y\n".repeat(9 << 20);
        std::fs::write(&path, &long).unwrap();
        let tail = read_tail(&path).unwrap();
        assert!(tail.len() < 16 << 20 && tail.starts_with("y\n") && tail.ends_with("y\n"));
    }

    #[test]
    fn runtime_stops_at_the_end() {
        let mut status = data().status;
        status.ended_at = Some(status.started_at + Duration::from_secs(3));
        assert_eq!(status.runtime(), Duration::from_secs(3));
    }

    fn data() -> JobData {
        JobData {
            status: JobStatus {
                id: JobId(1),
                command: "x".into(),
                label: None,
                state: JobState::Running,
                exit_code: None,
                pid: 1,
                pgid: None,
                started_at: SystemTime::now(),
                ended_at: None,
                output_bytes: 0,
                dropped_bytes: 0,
                output_file: None,
                output_error: None,
                error: None,
                events: vec![],
                dropped_events: 0,
            },
            window: VecDeque::new(),
            finished_at: None,
            cancel_sent: false,
            file: None,
            owned_file: false,
        }
    }

    #[test]
    fn window_drops_oldest_and_counts() {
        let mut d = data();
        for i in 0..10 {
            d.push_output(format!("line{i}\n").as_bytes(), 12);
        }
        assert_eq!(d.status.output_bytes, 60);
        assert_eq!(d.status.dropped_bytes, 48);
        let p = d.page(0, 100);
        assert_eq!(p.offset, 48);
        assert_eq!(p.data, "line8\nline9\n");
        assert_eq!(p.next_offset, 60);
        assert!(!p.eof);
    }

    #[test]
    fn pages_split_on_char_boundaries_and_concatenate() {
        let mut d = data();
        let text = "héllo wörld ✓ done\n";
        d.push_output(text.as_bytes(), 1 << 20);
        d.status.state = JobState::Completed;
        let mut out = String::new();
        let mut off = 0;
        loop {
            let p = d.page(off, 3);
            out.push_str(&p.data);
            assert!(p.next_offset > off || p.eof, "no progress at {off}");
            off = p.next_offset;
            if p.eof {
                break;
            }
        }
        assert_eq!(out, text);
    }
}
