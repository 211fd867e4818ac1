//! The job tools: commands and Claude runs in the background, polled across calls.

use std::time::Duration;

use cc_executor_client::claude::parse_line;
use cc_executor_client::jobs::{JobId, JobOptions, JobStatus};
use cc_executor_client::{Command, Error};
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, RoleServer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::claude::{ClaudeOutput, ClaudeParams};
use crate::progress::Progress;
use crate::server::{text_error, unsaved, Executor, CANCEL_WAIT};

const DEFAULT_WAIT_SECS: u64 = 30;
const MAX_WAIT_SECS: u64 = 600;
/// Labels of the two kinds of job.
const COMMAND: &str = "command";
const CLAUDE: &str = "claude";

/// Input of `job_start`: exactly one of `command` and `claude`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobStartParams {
    /// Shell command line to run in the background (sh -c, in its own process group).
    pub command: Option<String>,
    /// A fresh `claude -p` instance to run in the background. Its own `timeout_secs` and `cwd`
    /// take precedence over the ones beside it.
    pub claude: Option<ClaudeParams>,
    /// Seconds before the job's process group is killed (default: the server's default timeout).
    #[serde(alias = "timeout")]
    pub timeout_secs: Option<u64>,
    /// Working directory of the job (default: the service's working directory).
    pub cwd: Option<String>,
}

/// A job to act on.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobIdParams {
    /// The job id: the integer `id` that `job_start` returned.
    pub id: u64,
}

/// Input of `job_output`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobOutputParams {
    /// The job id: the integer `id` that `job_start` returned.
    pub id: u64,
    /// Byte offset to read from (default 0): pass the previous page's `next_offset`.
    pub offset: Option<u64>,
    /// Most bytes of UTF-8 text to return (default and most: the server's output bound, 20,000
    /// unless configured otherwise).
    pub limit: Option<usize>,
    /// Return the last `limit` bytes instead of reading from `offset`.
    pub tail: Option<bool>,
}

/// Input of `job_wait`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobWaitParams {
    /// The job id: the integer `id` that `job_start` returned.
    pub id: u64,
    /// Most seconds to wait (default 30, at most 600; 0 returns at once).
    #[serde(alias = "timeout")]
    pub timeout_secs: Option<u64>,
}

/// Input of `job_list`: none.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobListParams {}

/// The state of a background job.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobInfo {
    /// The job id (an integer), to pass to the other job tools.
    pub id: u64,
    /// `command` or `claude`.
    pub kind: String,
    /// The command line run (for a Claude job, the whole `claude -p` line).
    pub command: String,
    /// `running`, `paused`, `completed`, `failed`, `canceled` or `timed_out`.
    pub state: String,
    /// Exit code once finished; a negative signal number when killed by a signal.
    pub exit_code: Option<i32>,
    /// Pid of the group leader.
    pub pid: u32,
    /// Process group id, when known.
    pub pgid: Option<u32>,
    /// Seconds since it started (until it ended, once finished).
    pub runtime_secs: f64,
    /// Bytes of output so far (stdout and stderr interleaved).
    pub output_bytes: u64,
    /// Bytes of the oldest output no longer held in memory; `output_file` still has them.
    pub dropped_bytes: u64,
    /// File receiving the job's whole output.
    pub output_file: Option<String>,
    /// Why the job's whole output is not (or no longer) saved to a file, when it is not.
    pub output_error: Option<String>,
    /// Why it failed, or the limit it hit, when known.
    pub error: Option<String>,
    /// Limits hit (with when they reset) and why a Claude job failed, as sentences.
    pub notes: Vec<String>,
    /// For a finished Claude job that wrote its final result: that result.
    pub claude: Option<ClaudeOutput>,
}

/// A page of a job's output.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobPage {
    /// The job id.
    pub id: u64,
    /// The job's state (see `job_status`).
    pub state: String,
    /// Byte offset where `data` starts (later than asked when older output was dropped).
    pub offset: u64,
    /// Offset to ask for next.
    pub next_offset: u64,
    /// Bytes produced so far.
    pub total: u64,
    /// Bytes no longer in memory (read them from the job's `output_file`).
    pub dropped: u64,
    /// The text: stdout and stderr interleaved in arrival order.
    pub data: String,
    /// The job has finished and this page reaches its end: nothing more will come.
    pub eof: bool,
}

/// The jobs held.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobList {
    /// Running and recently finished jobs, oldest first (without Claude results).
    pub jobs: Vec<JobInfo>,
}

#[tool_router(router = jobs_router, vis = "pub(crate)")]
impl Executor {
    /// Start a background job.
    #[tool(
        description = "Start a shell command (`command`) or a fresh Claude Code instance (`claude`, \
                       with `prompt` and options as for execute_claude) as a background job and \
                       return its integer `id` at once. The job keeps running after this call; \
                       its whole output goes to `output_file`. Follow it with job_status, \
                       job_output, job_wait; control it with job_pause, job_resume, job_cancel."
    )]
    async fn job_start(
        &self,
        Parameters(p): Parameters<JobStartParams>,
    ) -> Result<Json<JobInfo>, CallToolResult> {
        let (cmd, kind): (Command, _) = match (p.command, p.claude) {
            (Some(line), None) if line.trim().is_empty() => {
                return Err(text_error(
                    "`command` is empty: give a shell command line to run.",
                ))
            }
            (Some(line), None) => {
                let mut cmd = Command::new(line).timeout(self.timeout(p.timeout_secs)?);
                if let Some(cwd) = p.cwd {
                    cmd = cmd.cwd(cwd);
                }
                (cmd, COMMAND)
            }
            (None, Some(mut c)) => {
                c.cwd = c.cwd.or(p.cwd);
                let timeout = self.timeout(c.timeout_secs.or(p.timeout_secs))?;
                (c.command(timeout)?.into(), CLAUDE)
            }
            _ => {
                return Err(text_error(
                    "Give exactly one of `command` (a shell command line) and `claude` (an \
                     object with a `prompt`).",
                ))
            }
        };
        // The registry saves the output under the server's output policy.
        let options = JobOptions::default().label(kind);
        let id = (self.settings.jobs.start_with(cmd, options).await).map_err(|e| self.error(&e))?;
        self.info(id).map(Json)
    }

    /// A job's status.
    #[tool(
        description = "Status of a background job: state, exit code, output size, output file and \
                       notes; for a finished Claude job also its final result (answer, session \
                       id, cost)."
    )]
    async fn job_status(
        &self,
        Parameters(p): Parameters<JobIdParams>,
    ) -> Result<Json<JobInfo>, CallToolResult> {
        self.info(JobId(p.id)).map(Json)
    }

    /// A page of a job's output.
    #[tool(
        description = "Read a background job's output (stdout and stderr interleaved) in pages of \
                       at most `limit` bytes: pass `next_offset` back as `offset` until `eof`. \
                       `tail: true` returns the last `limit` bytes. Only the latest output (1 MiB by \
                       default) is held in memory; `dropped` bytes are in the job's output_file."
    )]
    async fn job_output(
        &self,
        Parameters(p): Parameters<JobOutputParams>,
    ) -> Result<Json<JobPage>, CallToolResult> {
        let (jobs, id) = (&self.settings.jobs, JobId(p.id));
        let max = self.settings.max_output;
        let limit = p.limit.unwrap_or(max).min(max).max(1);
        let page = match p.tail {
            Some(true) => jobs.tail(id, limit),
            _ => jobs.output(id, p.offset.unwrap_or(0), limit),
        };
        let page = page.map_err(|e| self.error(&e))?;
        Ok(Json(JobPage {
            id: p.id,
            state: self.status(id)?.state.as_str().to_owned(),
            offset: page.offset,
            next_offset: page.next_offset,
            total: page.total,
            dropped: page.dropped,
            data: page.data,
            eof: page.eof,
        }))
    }

    /// Wait for a job to end, within a bound.
    #[tool(
        description = "Wait until a background job ends or `timeout_secs` pass (default 30, at \
                       most 600), then return its status. A job still running at the timeout is \
                       not an error: call again or do other work. Sends progress with the job's \
                       latest output line while it waits."
    )]
    async fn job_wait(
        &self,
        Parameters(p): Parameters<JobWaitParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<JobInfo>, CallToolResult> {
        let id = JobId(p.id);
        let claude = self.status(id)?.label.as_deref() == Some(CLAUDE);
        let secs = p.timeout_secs.unwrap_or(DEFAULT_WAIT_SECS);
        let wait = self
            .settings
            .jobs
            .wait(id, Duration::from_secs(secs.min(MAX_WAIT_SECS)));
        tokio::pin!(wait);
        let mut progress = Progress::new(&ctx);
        let cancel = self.cancel(ctx.ct.clone());
        let mut noted = None;
        loop {
            tokio::select! {
                _ = &mut wait => break,
                () = cancel.requested() => break,
                () = progress.tick() => {
                    self.note_latest(id, claude, &mut noted, &progress);
                    progress.flush().await;
                }
            }
        }
        self.info(id).map(Json)
    }

    /// Pause a job.
    #[tool(description = "Pause a background job: SIGSTOP to its whole process group.")]
    async fn job_pause(
        &self,
        Parameters(p): Parameters<JobIdParams>,
    ) -> Result<Json<JobInfo>, CallToolResult> {
        let id = JobId(p.id);
        let done = self.settings.jobs.pause(id).await;
        self.after_control(id, done)
    }

    /// Resume a job.
    #[tool(description = "Resume a paused background job: SIGCONT to its whole process group.")]
    async fn job_resume(
        &self,
        Parameters(p): Parameters<JobIdParams>,
    ) -> Result<Json<JobInfo>, CallToolResult> {
        let id = JobId(p.id);
        let done = self.settings.jobs.resume(id).await;
        self.after_control(id, done)
    }

    /// Cancel a job.
    #[tool(
        description = "Cancel a background job: SIGTERM, then SIGKILL, to its whole process group. \
                       Returns once the group has exited (or after 20 s); canceling a job that \
                       has ended just returns its status."
    )]
    async fn job_cancel(
        &self,
        Parameters(p): Parameters<JobIdParams>,
    ) -> Result<Json<JobInfo>, CallToolResult> {
        let (jobs, id) = (&self.settings.jobs, JobId(p.id));
        let done = jobs.cancel(id).await;
        if done.is_ok() {
            let _ = jobs.wait(id, CANCEL_WAIT).await;
        }
        let status = self.status(id)?;
        match done {
            Err(e) if !status.state.is_finished() => Err(self.error(&e)),
            _ => Ok(Json(self.job_info(status, true))),
        }
    }

    /// List the jobs.
    #[tool(
        description = "List the background jobs held: running ones and recently finished ones, \
                       oldest first."
    )]
    async fn job_list(
        &self,
        Parameters(JobListParams {}): Parameters<JobListParams>,
    ) -> Json<JobList> {
        let jobs = self.settings.jobs.list();
        let jobs = jobs.into_iter().map(|s| self.job_info(s, false)).collect();
        Json(JobList { jobs })
    }
}

impl Executor {
    fn status(&self, id: JobId) -> Result<JobStatus, CallToolResult> {
        self.settings.jobs.status(id).map_err(|e| self.error(&e))
    }

    fn info(&self, id: JobId) -> Result<JobInfo, CallToolResult> {
        Ok(self.job_info(self.status(id)?, true))
    }

    /// The status after a pause or resume; an error that names the state when the job had
    /// already ended.
    fn after_control(
        &self,
        id: JobId,
        done: Result<(), Error>,
    ) -> Result<Json<JobInfo>, CallToolResult> {
        let status = self.status(id)?;
        match done {
            Err(_) if status.state.is_finished() => Err(text_error(format!(
                "Job {id} has already ended ({}).",
                status.state.as_str()
            ))),
            Err(e) => Err(self.error(&e)),
            Ok(()) => Ok(Json(self.job_info(status, true))),
        }
    }

    fn job_info(&self, s: JobStatus, with_result: bool) -> JobInfo {
        let mut notes: Vec<String> = s.events.iter().filter_map(|e| e.limit_advice()).collect();
        let ended_claude = s.label.as_deref() == Some(CLAUDE) && s.state.is_finished();
        let result = (with_result && ended_claude)
            .then(|| self.claude_result(&s))
            .flatten();
        match &result {
            Some((_, failure)) => notes.extend(failure.clone()),
            None if with_result && ended_claude => notes.push(
                "Claude ended without its final result; job_output shows what it wrote \
                 (stderr included)."
                    .into(),
            ),
            None => {}
        }
        let runtime_secs = s.runtime().as_secs_f64();
        JobInfo {
            id: s.id.0,
            kind: s.label.unwrap_or_else(|| COMMAND.into()),
            command: s.command,
            state: s.state.as_str().to_owned(),
            exit_code: s.exit_code,
            pid: s.pid,
            pgid: s.pgid,
            runtime_secs,
            output_bytes: s.output_bytes,
            dropped_bytes: s.dropped_bytes,
            output_file: s.output_file.map(|f| f.display().to_string()),
            output_error: s.output_error.map(unsaved),
            error: s.error,
            notes,
            claude: result.map(|(out, _)| out),
        }
    }

    /// The final result of a finished Claude job and why it failed, if it did.
    fn claude_result(&self, s: &JobStatus) -> Option<(ClaudeOutput, Option<String>)> {
        let result = self.settings.jobs.claude_result(s.id).ok()??;
        let failure = result.failure();
        let file = s.output_file.as_ref().map(|f| f.display().to_string());
        Some((self.claude_output(result, |_| Ok(file)), failure))
    }

    /// Note the job's latest output line (for a Claude job, what it is doing) when there is new
    /// output since the last look.
    fn note_latest(&self, id: JobId, claude: bool, noted: &mut Option<u64>, progress: &Progress) {
        let tail = if claude { 64 * 1024 } else { 4096 };
        let Ok(page) = self.settings.jobs.tail(id, tail) else {
            return;
        };
        if noted.replace(page.total) == Some(page.total) {
            return;
        }
        if !claude {
            return progress.note(&page.data);
        }
        let activity = page
            .data
            .lines()
            .rev()
            .find_map(|l| parse_line(l).activity());
        if let Some(line) = activity {
            progress.note(&line);
        }
    }
}
