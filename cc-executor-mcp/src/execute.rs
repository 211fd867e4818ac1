//! The `execute` tool: run a shell command and return its bounded output.

use std::time::Duration;

use cc_executor_client::capture::OutputCapture;
use cc_executor_client::{Command, Error, OutputEvent, RunStatus};
use futures_util::StreamExt;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, RoleServer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::progress::Progress;
use crate::server::{structured_error, text_error, Executor};

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

/// How a run ended.
struct End {
    status: RunStatus,
    exit_code: Option<i32>,
    duration: Duration,
    timed_out: bool,
}

#[tool_router(router = execute_router, vis = "pub(crate)")]
impl Executor {
    /// Run a shell command and return its exit code and output.
    #[tool(
        description = "Run a shell command (sh -c) in its own process group and return its exit \
                       code, stdout and stderr. Long output is cut to its head and tail, and the \
                       whole output is saved to `output_file`. Sends progress with the latest \
                       output line. isError is set for a non-zero exit, a timeout, a refused \
                       command or a rate limit."
    )]
    async fn execute(
        &self,
        Parameters(p): Parameters<ExecuteParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ExecuteOutput>, CallToolResult> {
        if p.command.trim().is_empty() {
            return Err(text_error(
                "`command` is empty: give a shell command line to run.",
            ));
        }
        let mut cmd = Command::new(p.command).timeout(self.timeout(p.timeout_secs)?);
        if let Some(cwd) = p.cwd {
            cmd = cmd.cwd(cwd);
        }
        let this = self.clone();
        self.spawn(async move { this.run_execute(cmd, ctx).await })
            .await
    }
}

impl Executor {
    async fn run_execute(
        &self,
        cmd: Command,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ExecuteOutput>, CallToolResult> {
        let s = &self.settings;
        let mut run = s.client.execute(cmd).await.map_err(|e| self.error(&e))?;
        let controller = run.controller();
        let spill = s.output_dir.join(format!("{}.log", uuid::Uuid::new_v4()));
        let mut capture = OutputCapture::new(s.max_output)
            .spill_to(&spill)
            .unwrap_or_else(|e| {
                tracing::warn!("cannot write {}: {e}", spill.display());
                OutputCapture::new(s.max_output)
            });
        let mut progress = Progress::new(&ctx);
        let mut cancel = self.cancel(ctx.ct.clone());
        let mut notes = Vec::new();
        let started = std::time::Instant::now();
        let mut canceled_at = None;
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
                    Some(Ok(OutputEvent::Failed { error, .. })) => {
                        let why = error.unwrap_or_else(|| "no reason given".into());
                        return Err(text_error(format!("The service could not run the command: {why}")));
                    }
                    // A service without `completed_after_cancel` ends the stream here.
                    Some(Ok(OutputEvent::Canceled)) => canceled_at = Some(started.elapsed()),
                    Some(Ok(other)) => notes.extend(other.limit_advice()),
                    Some(Err(Error::Timeout { after })) => {
                        break End { status: RunStatus::Failed, exit_code: None, duration: after, timed_out: true };
                    }
                    Some(Err(e)) => return Err(self.error(&e)),
                    None => match canceled_at {
                        Some(duration) => {
                            break End { status: RunStatus::Canceled, exit_code: None, duration, timed_out: false };
                        }
                        None => return Err(text_error("The run ended without reporting how.")),
                    },
                },
                () = cancel.requested() => cancel.send(&controller).await,
                () = cancel.expired() => {
                    return Err(text_error("Canceled; the run did not report its end in time."));
                }
                () = progress.tick() => progress.flush().await,
            }
        };
        let out = capture.finish();
        if let Some(e) = &out.spill_error {
            tracing::warn!("full output not saved: {e}");
        }
        let output = ExecuteOutput {
            exit_code: end.exit_code,
            status: end.status.as_str().to_owned(),
            timed_out: end.timed_out,
            duration_secs: end.duration.as_secs_f64(),
            stdout: out.stdout,
            stderr: out.stderr,
            output_file: out.file.map(|f| f.display().to_string()),
            truncated: out.truncated,
        };
        if end.timed_out {
            notes.push(format!(
                "The command timed out after {:.0}s; its process group was killed.",
                end.duration.as_secs_f64()
            ));
        }
        let success = end.status.success() && end.exit_code == Some(0);
        if success && notes.is_empty() {
            return Ok(Json(output));
        }
        if !success && notes.is_empty() {
            notes.push(match (&end.status, end.exit_code) {
                (RunStatus::Canceled, _) => "The command was canceled.".to_owned(),
                (_, Some(code)) => format!("The command failed with exit code {code}."),
                (_, None) => format!("The command ended as {}.", output.status),
            });
        }
        Err(structured_error(&output, notes))
    }
}
