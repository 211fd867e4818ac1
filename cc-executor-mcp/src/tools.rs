//! The MCP tools: thin glue between MCP calls and `cc_executor_client`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cc_executor_client::capture::OutputCapture;
use cc_executor_client::{
    Client, Command, Controller, Error, OutputEvent, RateLimit, RunStatus, TokenLimit,
};
use futures_util::StreamExt;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_handler, tool_router, RoleServer, ServerHandler};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::progress::Progress;

/// How long a canceled run may take to report its end before the call gives up on it.
const CANCEL_WAIT: Duration = Duration::from_secs(20);

/// Settings shared by every call.
pub struct Settings {
    pub client: Client,
    pub default_timeout: Duration,
    pub max_output: usize,
    pub output_dir: PathBuf,
    /// Fired when the host goes away: every running call cancels its run.
    pub shutdown: CancellationToken,
    /// Tracks running calls so shutdown can wait for their cancellation.
    pub tracker: TaskTracker,
}

/// The MCP server: one instance serves every call.
#[derive(Clone)]
pub struct Executor {
    settings: Arc<Settings>,
}

/// Input of `execute`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExecuteParams {
    /// Shell command line, run with `sh -c` in its own process group.
    pub command: String,
    /// Seconds before the whole process group is killed (default: the server's default timeout).
    pub timeout_secs: Option<u64>,
    /// Working directory of the command (default: the service's working directory).
    pub cwd: Option<String>,
}

/// Result of `execute`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExecuteOutput {
    /// Exit code; a negative signal number when killed by a signal; null when unknown.
    pub exit_code: Option<i32>,
    /// How the run ended: `completed`, `failed` or `canceled`.
    pub status: String,
    /// Whether the run was killed at its timeout.
    pub timed_out: bool,
    /// Run time in seconds.
    pub duration_secs: f64,
    /// Stdout; when long, its head and tail around a `[… N bytes omitted …]` marker.
    pub stdout: String,
    /// Stderr, bounded like stdout.
    pub stderr: String,
    /// File holding the whole combined output, present only when stdout or stderr was cut.
    pub output_file: Option<String>,
    /// Whether stdout or stderr was cut.
    pub truncated: bool,
}

type ToolResult<T> = Result<Json<T>, CallToolResult>;

#[tool_router]
impl Executor {
    pub fn new(settings: Settings) -> Self {
        Executor {
            settings: Arc::new(settings),
        }
    }

    /// Run a shell command and return its exit code and output.
    #[tool(
        description = "Run a shell command (sh -c) in its own process group and return its exit code, \
                       stdout and stderr. Long output is cut to its head and tail; the whole output is \
                       then saved to `output_file`. Sends progress with the latest output line. \
                       isError is set for a non-zero exit, a timeout, a refused command or a rate limit."
    )]
    async fn execute(
        &self,
        Parameters(p): Parameters<ExecuteParams>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<ExecuteOutput> {
        if p.command.trim().is_empty() {
            return Err(text_error("`command` is empty: give a shell command line to run."));
        }
        let mut cmd = Command::new(p.command).timeout(self.timeout(p.timeout_secs)?);
        if let Some(cwd) = p.cwd {
            cmd = cmd.cwd(cwd);
        }
        let this = self.clone();
        // A task of its own, tracked: shutdown waits for it to cancel its run.
        let task = self
            .settings
            .tracker
            .spawn(async move { this.run_execute(cmd, ctx).await });
        task.await
            .unwrap_or_else(|e| Err(text_error(format!("internal error: {e}"))))
    }
}

impl Executor {
    fn timeout(&self, secs: Option<u64>) -> Result<Duration, CallToolResult> {
        match secs {
            Some(0) => Err(text_error("`timeout_secs` must be at least 1.")),
            Some(s) => Ok(Duration::from_secs(s)),
            None => Ok(self.settings.default_timeout),
        }
    }

    async fn run_execute(
        &self,
        cmd: Command,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<ExecuteOutput> {
        let s = &self.settings;
        let mut run = s.client.execute(cmd).await.map_err(|e| self.error(&e))?;
        let controller = run.controller();
        let mut capture = OutputCapture::new(s.max_output);
        let spill_path = s.output_dir.join(format!("{}.log", uuid::Uuid::new_v4()));
        capture = match capture.spill_to(&spill_path) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("cannot write {}: {e}", spill_path.display());
                OutputCapture::new(s.max_output)
            }
        };
        let mut progress = Progress::new(&ctx);
        let mut limits = Vec::new();
        let mut cancel = Cancel::new(ctx.ct.clone(), s.shutdown.clone());
        let end = loop {
            tokio::select! {
                ev = run.next() => match ev {
                    Some(Ok(OutputEvent::Output { stream, data, .. })) => {
                        progress.note(&data);
                        capture.push(stream, &data);
                    }
                    Some(Ok(OutputEvent::Completed { status, exit_code, duration, timed_out, .. })) => {
                        break End { status, exit_code, duration, timed_out };
                    }
                    Some(Ok(OutputEvent::Failed { error })) => {
                        let why = error.unwrap_or_else(|| "no reason given".into());
                        return Err(text_error(format!("The service could not run the command: {why}")));
                    }
                    Some(Ok(OutputEvent::RateLimitExceeded(r))) => limits.push(rate_limit_text(&r)),
                    Some(Ok(OutputEvent::TokenLimitExceeded(t))) => limits.push(token_limit_text(&t)),
                    Some(Ok(_)) => {}
                    Some(Err(Error::Timeout { after })) => {
                        break End { status: RunStatus::Failed, exit_code: None, duration: after, timed_out: true };
                    }
                    Some(Err(e)) => return Err(self.error(&e)),
                    None => return Err(text_error("The run ended without reporting how.")),
                },
                () = cancel.requested() => cancel.send(&controller).await,
                () = cancel.expired() => return Err(text_error("Canceled; the run did not report its end in time.")),
                () = progress.tick() => progress.flush().await,
            }
        };
        let out = capture.finish();
        if let Some(e) = &out.spill_error {
            tracing::warn!("full output not saved: {e}");
        }
        let output = ExecuteOutput {
            exit_code: end.exit_code,
            status: status_name(&end.status),
            timed_out: end.timed_out,
            duration_secs: end.duration.as_secs_f64(),
            stdout: out.stdout,
            stderr: out.stderr,
            output_file: out.file.map(|f| f.display().to_string()),
            truncated: out.truncated,
        };
        let ok = end.status.success() && end.exit_code == Some(0) && !end.timed_out;
        if ok && limits.is_empty() {
            return Ok(Json(output));
        }
        let mut notes = limits;
        if end.timed_out {
            notes.push(format!("The command timed out after {:.0}s and was killed.", end.duration.as_secs_f64()));
        }
        Err(structured_error(&output, notes))
    }

    /// A tool error for a client error, with a hint when the service cannot be reached.
    fn error(&self, e: &Error) -> CallToolResult {
        text_error(match e {
            Error::RateLimited(r) => rate_limit_text(r),
            Error::TokenLimitExceeded(t) => token_limit_text(t),
            Error::Connect { .. } | Error::ConnectTimeout { .. } | Error::Unauthorized => format!(
                "{e}. Is the executor service at {} running (and the token right)?",
                self.settings.client.url()
            ),
            _ => e.to_string(),
        })
    }
}

#[tool_handler(name = "cc-executor")]
impl ServerHandler for Executor {}

/// How a run ended.
struct End {
    status: RunStatus,
    exit_code: Option<i32>,
    duration: Duration,
    timed_out: bool,
}

/// Cancellation of one run: requested by the host (`notifications/cancelled`) or by shutdown,
/// sent once through the controller, then bounded in time.
struct Cancel {
    call: CancellationToken,
    shutdown: CancellationToken,
    deadline: Option<Instant>,
}

impl Cancel {
    fn new(call: CancellationToken, shutdown: CancellationToken) -> Self {
        Cancel {
            call,
            shutdown,
            deadline: None,
        }
    }

    /// Resolves once when a cancel is requested.
    async fn requested(&self) {
        if self.deadline.is_some() {
            return std::future::pending().await;
        }
        tokio::select! {
            () = self.call.cancelled() => {}
            () = self.shutdown.cancelled() => {}
        }
    }

    async fn send(&mut self, controller: &Controller) {
        self.deadline = Some(Instant::now() + CANCEL_WAIT);
        match tokio::time::timeout(CANCEL_WAIT, controller.cancel()).await {
            Ok(Ok(())) => tracing::info!("run canceled"),
            Ok(Err(e)) => tracing::warn!("cancel failed: {e}"),
            Err(_) => tracing::warn!("cancel got no answer"),
        }
    }

    /// Resolves when a canceled run took too long to end.
    async fn expired(&self) {
        match self.deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
}

fn text_error(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text.into())])
}

/// isError with the structured result, preceded by plain sentences explaining why.
fn structured_error<T: Serialize>(value: &T, notes: Vec<String>) -> CallToolResult {
    let value = serde_json::to_value(value).unwrap_or_default();
    let mut result = CallToolResult::structured_error(value);
    for (i, note) in notes.into_iter().enumerate() {
        result.content.insert(i, ContentBlock::text(note));
    }
    result
}

fn status_name(s: &RunStatus) -> String {
    match s {
        RunStatus::Completed => "completed".into(),
        RunStatus::Failed => "failed".into(),
        RunStatus::Canceled => "canceled".into(),
        RunStatus::Other(s) => s.clone(),
        _ => format!("{s:?}").to_lowercase(),
    }
}

pub(crate) fn rate_limit_text(r: &RateLimit) -> String {
    let mut text = format!("Rate limit hit: {}.", r.message.trim_end_matches('.'));
    match (r.reset_at, r.retry_after) {
        (Some(at), _) => {
            let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
            text += &format!(
                " It resets at {} (in {}); retry after that.",
                utc(at),
                human(wait)
            );
        }
        (None, Some(after)) => text += &format!(" Retry in {}.", human(after)),
        (None, None) => text += " The reset time is not known; wait before retrying.",
    }
    text
}

fn token_limit_text(t: &TokenLimit) -> String {
    let mut text = format!("Token limit exceeded: {t}.");
    if let Some(s) = &t.suggestion {
        text += &format!(" {s}");
    }
    text
}

/// `2030-03-17 17:46:40 UTC`.
fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_civil_dates() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        let t = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        assert_eq!(utc(t), "2030-03-17 17:46:40 UTC");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc(leap), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(5)), "5s");
        assert_eq!(human(Duration::from_secs(125)), "2m 5s");
        assert_eq!(human(Duration::from_secs(7300)), "2h 1m");
    }
}
