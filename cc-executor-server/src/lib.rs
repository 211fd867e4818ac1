//! # cc-executor-server
//!
//! An executor service speaking the cc-executor protocol (JSON-RPC 2.0 over WebSocket): each
//! session runs one command at a time with `<shell> -c` (bash by default, see
//! [`ServerBuilder::shell`]) in its own process group, streams its output as `process.output`
//! notifications, and pauses, resumes or cancels all of the command's processes on request.
//!
//! Endpoints: `/ws` and `/ws/mcp` (the same protocol), `GET /health` and `GET /healthz`,
//! `GET /ready` (503 while draining, see [`ServerHandle::drain`]) and `GET /metrics` (the
//! Prometheus text format; behind the token when one is set).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = cc_executor_server::Server::builder().bind("127.0.0.1:0").await?;
//! println!("listening on {}", server.url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! What the service guarantees beyond the reference protocol:
//! - `execute.params.timeout` bounds the whole run: at the deadline the group gets SIGTERM
//!   (SIGKILL after the kill grace) and `process.completed` reports `status: "failed"`,
//!   `error: "timed out after Ns"`, `timed_out: true`.
//! - After CANCEL, a final `process.completed` with `status: "canceled"` follows once the
//!   group has exited.
//! - No process outlives its run, its session, or the service: each run has a supervisor
//!   process that holds every process the command starts, even those that leave its process
//!   group (`setsid`, double forks), and kills them all when the run ends (completion,
//!   failure, cancel, timeout), when the session ends (a closed or vanished client, a
//!   heartbeat timeout, [`ServerHandle::shutdown`] or dropping the handle), and when the
//!   service itself dies, even by SIGKILL. PAUSE and RESUME reach those processes too.
//!   A background process still holding the output pipes after the shell exited is killed
//!   after a short drain window.
//! - Commands do not see the service's secrets: `CC_EXECUTOR_TOKEN` and
//!   `CC_EXECUTOR_TOKEN_FILE` are removed from their environment.
//! - Lines longer than 65,536 characters are chunked with exact `chunk_index`/`total_chunks`
//!   up to 8 chunks; longer lines are streamed as they come (`total_chunks: null` until the
//!   last chunk, which carries the count), so memory stays bounded.
//! - A client that reads slowly slows the command down (its pipe fills) instead of making
//!   the service buffer the output.
//! - Detectors (rate/usage limits, token limits, completion phrases) run on stdout and stderr
//!   lines and fire on any matching line, including JSON lines that merely quote a phrase.
//! - Heartbeat: any frame from the client counts as a sign of life; after two silent intervals
//!   the session is closed with code 1008 "heartbeat timeout".
//!   A client that sends requests but reads nothing is closed with 1008 once its answers
//!   have waited two intervals for room in the session's reply queue (1 MiB).
//! - With an allowlist ([`ServerBuilder::allowed_commands`]) a command line never reaches a
//!   shell: it is split into words with a strict grammar and its argv is executed directly;
//!   anything that would need a shell is refused.
//! - Upgrades from web pages (with an `Origin` header) are refused unless the origin is listed
//!   ([`ServerBuilder::allow_origin`]); on a loopback address, so is a `Host` that is not
//!   loopback or `localhost` ([`ServerBuilder::allow_host`]). A connection that has not
//!   upgraded within the handshake timeout (10 s) is closed.
//! - Replies never echo more than 1 KiB of a request: an `id` that is not an integer or a
//!   string of at most 256 bytes is answered with -32600 and `"id": null`.
#![warn(missing_docs)]

#[doc(hidden)]
pub mod allow;
mod config;
mod detect;
mod drain;
mod guard;
mod http;
mod input;
mod listen;
mod metrics;
mod output;
mod process;
mod run;
mod session;
mod shell;
mod token;
mod writer;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

pub use config::ServerBuilder;
pub use token::{read_token_file, TokenFileError};

/// The services a tool uses: those at `urls` when any are given (with `token`), else a private
/// one started here ([`ServerBuilder::bind_private`], requiring `token` when given, else a token
/// of its own). The service started here honours `CC_EXECUTOR_SHELL` as the binary does.
/// Returns their URLs, the token to send, and the service started here (shut it down at the end).
pub async fn url_or_embedded(
    urls: Vec<String>,
    token: Option<String>,
) -> std::io::Result<(Vec<String>, Option<String>, Option<ServerHandle>)> {
    if !urls.is_empty() {
        return Ok((urls, token, None));
    }
    let mut builder = token
        .into_iter()
        .fold(Server::builder(), ServerBuilder::token);
    if let Some(shell) = std::env::var_os("CC_EXECUTOR_SHELL").filter(|s| !s.is_empty()) {
        builder = builder.shell(shell);
    }
    let server = builder.bind_private().await?;
    Ok((
        vec![server.url()],
        server.token().map(str::to_owned),
        Some(server),
    ))
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM: when a program serving until it is told to stop
/// (the service's binary, a tool with an embedded service) should shut down.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Entry point: `Server::builder()`.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// A builder with the defaults: 2048 sessions, a 30 s heartbeat, no allowlist, the
    /// service's working directory, no token, a 2 s kill grace, no web origins or extra hosts
    /// accepted, a 10 s handshake timeout.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }
}

/// A running service. Dropping it shuts the service down and kills every process group it started.
pub struct ServerHandle {
    local_addr: SocketAddr,
    state: Arc<http::State>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("active_sessions", &self.state.active_sessions())
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    fn new(
        local_addr: SocketAddr,
        state: Arc<http::State>,
        task: JoinHandle<std::io::Result<()>>,
    ) -> Self {
        ServerHandle {
            local_addr,
            state,
            task: Some(task),
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `ws://<addr>/ws`.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.local_addr)
    }

    /// The bearer token clients must send, when the service requires one.
    pub fn token(&self) -> Option<&str> {
        self.state.config.token.as_deref()
    }

    /// Number of open sessions.
    pub fn active_sessions(&self) -> usize {
        self.state.active_sessions()
    }

    /// Stop accepting, close every session and kill every process group, then return.
    pub async fn shutdown(mut self) {
        self.state.shutdown.send_replace(true);
        // Sessions kill their groups (SIGTERM, SIGKILL after the grace) before they end.
        let bound = self.state.config.kill_grace + Duration::from_secs(5);
        if tokio::time::timeout(bound, self.state.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!("sessions still open at shutdown; killing their groups");
        }
        self.state.registry.kill_all();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        // No await here: stop the sessions and SIGKILL every group still registered.
        self.state.shutdown.send_replace(true);
        self.state.registry.kill_all();
    }
}
