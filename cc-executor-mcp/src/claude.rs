//! The `execute_claude` tool: run a fresh `claude -p` and return its final result.

use std::time::Duration;

use cc_executor_client::capture;
use cc_executor_client::claude::{ClaudeCommand, ClaudeResult};
use cc_executor_client::output_dir::OutputKind;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, RoleServer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::progress::Progress;
use crate::server::{structured_error, text_error, unsaved, Executor};

/// Input of `execute_claude` (and the `claude` of `job_start`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaudeParams {
    /// The prompt for the fresh Claude instance (passed verbatim as one argument).
    pub prompt: String,
    /// Seconds before the instance is killed (default: the server's default timeout).
    #[serde(alias = "timeout")]
    pub timeout_secs: Option<u64>,
    /// Model alias or name, e.g. `sonnet` or `opus`.
    pub model: Option<String>,
    /// Tools the instance may use without asking, e.g. `["Read", "Bash(git log:*)"]`.
    pub allowed_tools: Option<Vec<String>>,
    /// MCP servers for the instance: a path to an `.mcp.json` file or a JSON string.
    pub mcp_config: Option<String>,
    /// Most agentic turns before the instance stops.
    pub max_turns: Option<u32>,
    /// Working directory of the instance.
    pub cwd: Option<String>,
    /// Continue this earlier session (the `session_id` of a previous result).
    pub resume_session_id: Option<String>,
}

impl ClaudeParams {
    /// The command line to run, killed after `timeout`.
    pub fn command(self, timeout: Duration) -> Result<ClaudeCommand, CallToolResult> {
        if self.prompt.trim().is_empty() {
            return Err(text_error("`prompt` is empty."));
        }
        let mut cmd = ClaudeCommand::new(self.prompt).timeout(timeout);
        if let Some(m) = self.model {
            cmd = cmd.model(m);
        }
        if let Some(tools) = self.allowed_tools {
            cmd = cmd.allowed_tools(tools);
        }
        if let Some(c) = self.mcp_config {
            cmd = cmd.mcp_config(c);
        }
        if let Some(n) = self.max_turns {
            cmd = cmd.max_turns(n);
        }
        if let Some(cwd) = self.cwd {
            cmd = cmd.cwd(cwd);
        }
        if let Some(id) = self.resume_session_id {
            cmd = cmd.resume(id);
        }
        Ok(cmd)
    }
}

/// The final result of a Claude run, not the whole stream.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ClaudeOutput {
    /// The final answer; when long, its head and tail around a `[… N bytes omitted …]` marker.
    pub result: Option<String>,
    /// Pass it as `resume_session_id` to continue the conversation.
    pub session_id: Option<String>,
    /// Agentic turns taken.
    pub num_turns: u32,
    /// Cost in US dollars, when reported.
    pub total_cost_usd: Option<f64>,
    /// Token counts of the run.
    pub usage: ClaudeUsage,
    /// Whether Claude flags the run as failed.
    pub is_error: bool,
    /// `success`, `error_max_turns`, `error_during_execution`, …
    pub subtype: String,
    /// File holding the whole answer, present only when `result` was cut.
    pub output_file: Option<String>,
    /// Why a cut answer was not saved to a file, when it was not.
    pub output_error: Option<String>,
}

/// Token counts.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ClaudeUsage {
    /// Input tokens not read from or written to the cache.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
}

#[tool_router(router = claude_router, vis = "pub(crate)")]
impl Executor {
    /// Run a fresh `claude -p` instance and return its final result.
    #[tool(
        description = "Hand a task to a fresh Claude Code instance (`claude -p`) and return its \
                       final result, session id (to resume), turns, cost and token usage. Sends \
                       progress with the latest assistant text or tool in use. A usage limit or \
                       API rate limit is an error that says when the limit resets."
    )]
    async fn execute_claude(
        &self,
        Parameters(p): Parameters<ClaudeParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ClaudeOutput>, CallToolResult> {
        let timeout = self.timeout(p.timeout_secs)?;
        let cmd = p.command(timeout)?;
        let this = self.clone();
        self.spawn(async move { this.run_claude(cmd, ctx).await })
            .await
    }
}

impl Executor {
    async fn run_claude(
        &self,
        cmd: ClaudeCommand,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ClaudeOutput>, CallToolResult> {
        let run = self
            .settings
            .client
            .execute_claude(cmd)
            .await
            .map_err(|e| self.error(&e))?;
        let controller = run.controller();
        let mut progress = Progress::new(&ctx);
        let latest = progress.latest();
        let wait = run.wait_with(move |event| {
            if let Some(line) = event.activity() {
                latest.note(&line);
            }
        });
        let result = self.drive(wait, &controller, &ctx, &mut progress).await?;
        let failure = result.failure();
        let out = self.claude_output(result, |r| self.save_whole(r));
        match failure {
            None => Ok(Json(out)),
            Some(why) => Err(structured_error(&out, vec![why])),
        }
    }

    /// The result for the host, its answer bounded; `whole` names a file with the whole answer
    /// when it was cut.
    pub(crate) fn claude_output(
        &self,
        r: ClaudeResult,
        whole: impl FnOnce(&ClaudeResult) -> Result<Option<String>, String>,
    ) -> ClaudeOutput {
        let (result, cut) = match &r.result {
            Some(t) => {
                let (text, cut) = capture::bound(t, self.settings.max_output);
                (Some(text), cut)
            }
            None => (None, false),
        };
        let (output_file, output_error) = match cut.then(|| whole(&r)) {
            Some(Ok(file)) => (file, None),
            Some(Err(why)) => (None, Some(why)),
            None => (None, None),
        };
        ClaudeOutput {
            result,
            output_file,
            output_error,
            session_id: r.session_id,
            num_turns: r.num_turns,
            total_cost_usd: r.total_cost_usd,
            usage: ClaudeUsage {
                input_tokens: r.usage.input_tokens,
                output_tokens: r.usage.output_tokens,
                cache_creation_input_tokens: r.usage.cache_creation_input_tokens,
                cache_read_input_tokens: r.usage.cache_read_input_tokens,
            },
            is_error: r.is_error,
            subtype: r.subtype,
        }
    }

    /// Write a long answer whole to a file; why not, as a sentence, when that fails.
    fn save_whole(&self, r: &ClaudeResult) -> Result<Option<String>, String> {
        use std::io::Write;
        let mut out = (self.settings.outputs.create(OutputKind::Answer)).map_err(unsaved)?;
        let text = r.result.as_deref().unwrap_or_default();
        match out.file.write_all(text.as_bytes()) {
            Ok(()) => Ok(Some(out.path.display().to_string())),
            Err(e) => {
                let _ = std::fs::remove_file(&out.path);
                Err(unsaved(format!("writing {}: {e}", out.path.display())))
            }
        }
    }
}
