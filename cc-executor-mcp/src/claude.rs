//! The `execute_claude` tool: run a fresh `claude -p` and return its final result.

use cc_executor_client::capture;
use cc_executor_client::claude::{ClaudeCommand, ClaudeEvent, ClaudeResult, ContentBlock};
use cc_executor_client::{Error, OutputEvent, RateLimit};
use futures_util::StreamExt;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, RoleServer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::progress::Progress;
use crate::server::{structured_error, text_error, Executor};

/// Input of `execute_claude`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ClaudeParams {
    /// The prompt for the fresh Claude instance (passed verbatim as one argument).
    pub prompt: String,
    /// Seconds before the instance is killed (default: the server's default timeout).
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

/// Result of `execute_claude`: the final result, not the whole stream.
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
        if p.prompt.trim().is_empty() {
            return Err(text_error("`prompt` is empty."));
        }
        let mut cmd = ClaudeCommand::new(p.prompt).timeout(self.timeout(p.timeout_secs)?);
        if let Some(m) = p.model {
            cmd = cmd.model(m);
        }
        if let Some(tools) = p.allowed_tools {
            cmd = cmd.allowed_tools(tools);
        }
        if let Some(c) = p.mcp_config {
            cmd = cmd.mcp_config(c);
        }
        if let Some(n) = p.max_turns {
            cmd = cmd.max_turns(n);
        }
        if let Some(cwd) = p.cwd {
            cmd = cmd.cwd(cwd);
        }
        if let Some(id) = p.resume_session_id {
            cmd = cmd.resume(id);
        }
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
        let mut run = self
            .settings
            .client
            .execute_claude(cmd)
            .await
            .map_err(|e| self.error(&e))?;
        let controller = run.controller();
        let mut progress = Progress::new(&ctx);
        let mut cancel = self.cancel(ctx.ct.clone());
        let mut seen = Seen::default();
        loop {
            tokio::select! {
                ev = run.next() => match ev {
                    Some(Ok(event)) => seen.observe(event, &mut progress),
                    Some(Err(e)) => return Err(self.error(&e)),
                    None => break,
                },
                () = cancel.requested() => cancel.send(&controller).await,
                () = cancel.expired() => {
                    return Err(text_error("Canceled; the run did not report its end in time."));
                }
                () = progress.tick() => progress.flush().await,
            }
        }
        let session_id = run.session_id().map(str::to_owned);
        let result = seen.finish().map_err(|e| self.error(&e))?;
        self.claude_output(result, session_id)
    }

    fn claude_output(
        &self,
        r: ClaudeResult,
        session_id: Option<String>,
    ) -> Result<Json<ClaudeOutput>, CallToolResult> {
        let max = self.settings.max_output;
        let (text, cut) = match &r.result {
            Some(t) => {
                let (text, cut) = capture::bound(t, max);
                (Some(text), cut)
            }
            None => (None, false),
        };
        let output_file = if cut { self.save_whole(&r) } else { None };
        let success = r.is_success();
        let out = ClaudeOutput {
            result: text,
            session_id: r.session_id.or(session_id),
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
            output_file,
        };
        if success {
            return Ok(Json(out));
        }
        let mut note = format!("Claude ended with `{}`", out.subtype);
        if !r.errors.is_empty() {
            note += &format!(": {}", r.errors.join("; "));
        }
        Err(structured_error(&out, vec![note + "."]))
    }

    /// Write a long answer whole to a file; `None` (logged) when that fails.
    fn save_whole(&self, r: &ClaudeResult) -> Option<String> {
        let dir = &self.settings.output_dir;
        let path = dir.join(format!("{}.txt", uuid::Uuid::new_v4()));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, r.result.as_deref().unwrap_or_default()));
        match written {
            Ok(()) => Some(path.display().to_string()),
            Err(e) => {
                tracing::warn!("cannot write {}: {e}", path.display());
                None
            }
        }
    }
}

/// What a Claude run reported, read from its event stream.
// `ClaudeExecution::wait` does the same but hides the events, which progress needs.
#[derive(Default)]
struct Seen {
    result: Option<ClaudeResult>,
    claude_limit: Option<RateLimit>,
    service_limit: Option<RateLimit>,
    exit_code: Option<i32>,
    stderr: Vec<String>,
}

impl Seen {
    fn observe(&mut self, event: ClaudeEvent, progress: &mut Progress) {
        match event {
            ClaudeEvent::Assistant(msg) => {
                for block in &msg.content {
                    match block {
                        ContentBlock::Text(t) => progress.note(t),
                        ContentBlock::ToolUse { name, .. } => {
                            progress.note(&format!("tool: {name}"))
                        }
                        _ => {}
                    }
                }
                if let Some(limit) = msg.rate_limit() {
                    self.claude_limit = Some(limit);
                }
            }
            ClaudeEvent::Result(r) => self.result = Some(r),
            ClaudeEvent::RateLimit(info) => {
                if let Some(limit) = info.rate_limit() {
                    self.claude_limit = Some(limit);
                }
            }
            ClaudeEvent::Stderr(line) => {
                progress.note(&line);
                self.stderr.push(line);
                if self.stderr.len() > 20 {
                    self.stderr.remove(0);
                }
            }
            ClaudeEvent::Service(OutputEvent::RateLimitExceeded(limit)) => {
                self.service_limit.get_or_insert(limit);
            }
            ClaudeEvent::Service(OutputEvent::Completed { exit_code, .. }) => {
                self.exit_code = exit_code;
            }
            _ => {}
        }
    }

    fn finish(self) -> Result<ClaudeResult, Error> {
        let limit = self.result.as_ref().and_then(ClaudeResult::rate_limit);
        if let Some(mut limit) = limit.or(self.claude_limit.clone()) {
            // The result's wording may lack the reset time that a rate_limit_event carried.
            if let Some(earlier) = &self.claude_limit {
                limit.reset_at = limit.reset_at.or(earlier.reset_at);
            }
            return Err(Error::RateLimited(limit));
        }
        match (self.result, self.service_limit) {
            (Some(r), _) => Ok(r),
            (None, Some(limit)) => Err(Error::RateLimited(limit)),
            (None, None) => Err(Error::ClaudeFailed {
                exit_code: self.exit_code,
                stderr: capture::bound(&self.stderr.join("\n"), 4000).0,
            }),
        }
    }
}
