//! # cc-executor-server
//!
//! An executor service speaking the cc-executor protocol (JSON-RPC 2.0 over WebSocket): each
//! session runs one command at a time with `sh -c` in its own process group, streams its output as
//! `process.output` notifications, and pauses, resumes or cancels the whole group on request.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = cc_executor_server::Server::builder().bind("127.0.0.1:0").await?;
//! println!("listening on {}", server.url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::ToSocketAddrs;

/// Entry point: `Server::builder()`.
#[derive(Debug)]
pub struct Server;

/// Configuration of a service; [`ServerBuilder::bind`] starts it.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    max_sessions: usize,
    heartbeat_interval: Duration,
    allowed_commands: Option<Vec<String>>,
    working_dir: Option<PathBuf>,
    token: Option<String>,
    kill_grace: Duration,
}

/// A running service. Dropping it shuts the service down and kills every process group it started.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
}

impl Server {
    /// A builder with the defaults.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            max_sessions: 2048,
            heartbeat_interval: Duration::from_secs(30),
            allowed_commands: None,
            working_dir: None,
            token: None,
            kill_grace: Duration::from_secs(2),
        }
    }
}

impl ServerBuilder {
    /// Most concurrent sessions (connections); past it a connection gets -32003 and close 1008.
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }

    /// Interval of `ping` notifications; a session with no `pong` for two intervals is closed.
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.heartbeat_interval = every;
        self
    }

    /// Only run commands whose program is one of these names.
    pub fn allowed_commands<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_commands = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Default working directory of commands.
    pub fn working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.working_dir = Some(dir.into());
        self
    }

    /// Require `Authorization: Bearer <token>` at the upgrade (401 otherwise).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Time between SIGTERM and SIGKILL when a group is canceled, timed out or orphaned.
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// Bind `addr` and start serving.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> std::io::Result<ServerHandle> {
        let _ = addr;
        todo!()
    }
}

impl ServerHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `ws://<addr>/ws`.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.local_addr)
    }

    /// Stop accepting, close every session and kill every process group, then return.
    pub async fn shutdown(self) {
        todo!()
    }
}
