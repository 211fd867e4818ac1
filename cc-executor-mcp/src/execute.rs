//! The `execute` tool: run a shell command and return its bounded output.

use cc_executor_client::capture::OutputCapture;
use cc_executor_client::output_dir::OutputKind;
use cc_executor_client::Command;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, RoleServer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::progress::Progress;
use crate::server::{structured_error, text_error, unsaved, Executor};

/// Input of `execute`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteParams {
    /// Shell command line, run with `sh -c` in its own process group.
    pub command: String,
    /// Seconds before the whole process group is killed (default: the server's default timeout).
    #[serde(alias = "timeout")]
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
    /// Why the whole output of a cut result was not saved to a file, when it was not.
    pub output_error: Option<String>,
    /// Whether stdout or stderr was cut.
    pub truncated: bool,
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
        let run = s.client.execute(cmd).await.map_err(|e| self.error(&e))?;
        let controller = run.controller();
        let (capture, refused) = match s.outputs.create(OutputKind::Output) {
            Ok(f) => (
                OutputCapture::new(s.max_output).spill_into(f.path, f.file),
                None,
            ),
            Err(e) => (OutputCapture::new(s.max_output), Some(e.to_string())),
        };
        let mut progress = Progress::new(&ctx);
        let latest = progress.latest();
        let run = run.collect_bounded(capture, move |_, data| latest.note(data));
        let end = self.drive(run, &controller, &ctx, &mut progress).await?;
        let notes = end.notes();
        if end.not_run.is_some() {
            return Err(text_error(notes.concat()));
        }
        let out = end.output;
        if let Some(e) = &out.spill_error {
            tracing::warn!("full output not saved: {e}");
        }
        let output_error = match (out.truncated, &out.file) {
            (true, None) => refused.or(out.spill_error).map(unsaved),
            _ => None,
        };
        let output = ExecuteOutput {
            exit_code: end.exit_code,
            status: end.status.as_str().to_owned(),
            timed_out: end.timed_out,
            duration_secs: end.duration.as_secs_f64(),
            stdout: out.stdout,
            stderr: out.stderr,
            output_file: out.file.map(|f| f.display().to_string()),
            output_error,
            truncated: out.truncated,
        };
        if notes.is_empty() {
            Ok(Json(output))
        } else {
            Err(structured_error(&output, notes))
        }
    }
}
