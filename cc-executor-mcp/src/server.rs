//! The MCP server: shared settings, the tool handler, and what every tool call shares
//! (cancellation, error results).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cc_executor_client::jobs::Jobs;
use cc_executor_client::output_dir::OutputFiles;
use cc_executor_client::{Client, Controller, Error};
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{tool_handler, RoleServer, ServerHandler};
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::progress::Progress;

/// How long a canceled run may take to report its end before the call gives up on it.
pub const CANCEL_WAIT: Duration = Duration::from_secs(20);

/// Settings shared by every call.
pub struct Settings {
    pub client: Client,
    pub default_timeout: Duration,
    pub max_output: usize,
    /// Where whole outputs are saved, and for how long.
    pub outputs: OutputFiles,
    /// Background jobs; every running one is canceled at shutdown.
    pub jobs: Jobs,
    /// Fired when the host goes away: every running call cancels its run.
    pub shutdown: CancellationToken,
    /// Tracks running calls so shutdown can wait for their cancellation.
    pub tracker: TaskTracker,
}

/// The MCP server: one instance serves every call.
#[derive(Clone)]
pub struct Executor {
    pub(crate) settings: Arc<Settings>,
}

impl Executor {
    pub fn new(settings: Settings) -> Self {
        Executor {
            settings: Arc::new(settings),
        }
    }

    /// Run a call's work in a tracked task of its own: shutdown waits for it to cancel its run,
    /// even if rmcp drops the handler's future.
    pub(crate) async fn spawn<T, F>(&self, work: F) -> Result<T, CallToolResult>
    where
        F: std::future::Future<Output = Result<T, CallToolResult>> + Send + 'static,
        T: Send + 'static,
    {
        self.settings
            .tracker
            .spawn(work)
            .await
            .unwrap_or_else(|e| Err(text_error(format!("internal error: {e}"))))
    }

    pub(crate) fn timeout(&self, secs: Option<u64>) -> Result<Duration, CallToolResult> {
        match secs {
            Some(0) => Err(text_error("`timeout_secs` must be at least 1.")),
            Some(s) => Ok(Duration::from_secs(s)),
            None => Ok(self.settings.default_timeout),
        }
    }

    /// A tool error for a client error, with a hint when the service cannot be reached.
    pub(crate) fn error(&self, e: &Error) -> CallToolResult {
        text_error(match e {
            Error::UnknownJob { .. } => format!("{e} with `job_list`."),
            _ => e.advice(),
        })
    }

    /// Drive `run` to its end while sending progress; a cancel from the host or shutdown cancels
    /// the run through `controller`, and gives up if it does not end within [`CANCEL_WAIT`].
    pub(crate) async fn drive<T>(
        &self,
        run: impl Future<Output = Result<T, Error>>,
        controller: &Controller,
        ctx: &RequestContext<RoleServer>,
        progress: &mut Progress,
    ) -> Result<T, CallToolResult> {
        let mut cancel = self.cancel(ctx.ct.clone());
        tokio::pin!(run);
        loop {
            tokio::select! {
                result = &mut run => return result.map_err(|e| self.error(&e)),
                () = cancel.requested() => cancel.send(controller).await,
                () = cancel.expired() => {
                    return Err(text_error("Canceled; the run did not report its end in time."));
                }
                () = progress.tick() => progress.flush().await,
            }
        }
    }

    pub(crate) fn cancel(&self, ctx_ct: CancellationToken) -> Cancel {
        Cancel {
            call: ctx_ct,
            shutdown: self.settings.shutdown.clone(),
            deadline: None,
        }
    }
}

#[tool_handler(
    name = "cc-executor",
    router = (Self::execute_router() + Self::claude_router() + Self::jobs_router()),
    instructions = "Run shell commands (`execute`) or a fresh `claude -p` instance (`execute_claude`) \
                    in their own process groups. Long output is cut to its head and tail and saved \
                    whole to a file; canceling a call kills the whole process group. For work that \
                    outlasts a tool call, `job_start` runs it in the background: come back with \
                    `job_status`, `job_output` and `job_wait`, and stop it with `job_cancel`."
)]
impl ServerHandler for Executor {}

/// Cancellation of one run: requested by the host (`notifications/cancelled`) or by shutdown,
/// sent once through the controller, then bounded in time.
pub struct Cancel {
    call: CancellationToken,
    shutdown: CancellationToken,
    deadline: Option<Instant>,
}

impl Cancel {
    /// Resolves once when a cancel is requested.
    pub async fn requested(&self) {
        if self.deadline.is_some() {
            return std::future::pending().await;
        }
        tokio::select! {
            () = self.call.cancelled() => {}
            () = self.shutdown.cancelled() => {}
        }
    }

    /// Cancel the run (its whole process group).
    pub async fn send(&mut self, controller: &Controller) {
        self.deadline = Some(Instant::now() + CANCEL_WAIT);
        match tokio::time::timeout(CANCEL_WAIT, controller.cancel()).await {
            Ok(Ok(())) => tracing::info!("run canceled"),
            Ok(Err(e)) => tracing::warn!("cancel failed: {e}"),
            Err(_) => tracing::warn!("cancel got no answer"),
        }
    }

    /// Resolves when a canceled run took too long to end.
    pub async fn expired(&self) {
        match self.deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
}

/// Why a whole output is not in a file, as a sentence.
pub fn unsaved(why: impl std::fmt::Display) -> String {
    format!("The whole output was not saved to a file: {why}.")
}

pub fn text_error(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text.into())])
}

/// isError with the structured result, preceded by plain sentences saying why.
pub fn structured_error<T: Serialize>(value: &T, notes: Vec<String>) -> CallToolResult {
    let value = serde_json::to_value(value).unwrap_or_default();
    let mut result = CallToolResult::structured_error(value);
    for (i, note) in notes.into_iter().enumerate() {
        result.content.insert(i, ContentBlock::text(note));
    }
    result
}
