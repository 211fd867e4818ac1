//! The builder that configures a service, and the settings it hands to the running parts.

use std::path::PathBuf;
use std::time::Duration;

use tokio::net::ToSocketAddrs;

use crate::allow::Allowlist;
use crate::ServerHandle;

/// Longest heartbeat interval or kill grace used (a year): longer ones would overflow the
/// deadlines computed from them.
const MAX_INTERVAL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Configuration of a service; [`ServerBuilder::bind`] starts it.
///
/// Get one from [`crate::Server::builder`].
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    pub(crate) max_sessions: usize,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) allowed_commands: Option<Vec<String>>,
    pub(crate) working_dir: Option<PathBuf>,
    pub(crate) token: Option<String>,
    pub(crate) kill_grace: Duration,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) allowed_hosts: Vec<String>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) shell: Option<PathBuf>,
    pub(crate) accept_input: bool,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            max_sessions: 2048,
            heartbeat_interval: Duration::from_secs(30),
            allowed_commands: None,
            working_dir: None,
            token: None,
            kill_grace: Duration::from_secs(2),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            handshake_timeout: Duration::from_secs(10),
            shell: None,
            accept_input: true,
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

    /// Only run commands whose program is one of these names (compared by basename).
    ///
    /// With an allowlist a command line never reaches a shell: it is split into words (single
    /// quotes, double quotes without expansions, backslash escapes), the program is looked up on
    /// the service's `PATH`, and the argv is executed directly. Anything that would need a shell
    /// (`$`, backticks, globs, `~`, braces, operators, redirections, assignments before the
    /// program, newlines, control characters, non-ASCII whitespace) is refused with -32001 and a
    /// message naming it. This is a guard rail against mistakes, not a sandbox: an allowed
    /// program can still do anything it can do.
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
    ///
    /// [`crate::read_token_file`] reads one from a file.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Time between SIGTERM and SIGKILL when a group is canceled, timed out or orphaned.
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// Accept WebSocket upgrades from web pages of this origin (e.g. `http://localhost:3000`);
    /// may be called several times.
    ///
    /// An upgrade that carries an `Origin` header (every browser sends one) is refused with 403
    /// unless its origin is listed: without this, any page the user visits could run commands.
    /// Clients that are not browsers send no `Origin` and are not affected.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.allowed_origins.push(origin.into());
        self
    }

    /// Accept this `Host` header (a name, or `name:port` for that port only) on a service
    /// listening on a loopback address; may be called several times.
    ///
    /// Such a service refuses with 403 a WebSocket upgrade whose `Host` is not a loopback
    /// address or `localhost` (any port), so that a DNS-rebinding page cannot reach it by a
    /// name of its own. List here the names a trusted proxy forwards.
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into());
        self
    }

    /// Time a connection has to complete its WebSocket upgrade before it is closed
    /// (default 10 s). Plain HTTP requests (`/health`) on that connection are served until then.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The shell that runs commands as `<shell> -c <command>`: a program name looked up on
    /// `PATH`, or a path. Default: `bash` when it is on `PATH`, else `sh`.
    ///
    /// It is resolved by [`Self::bind`], which fails (`NotFound`, naming it) when it cannot be
    /// found. Commands run with a non-interactive shell, so job control is off and every
    /// process stays in the run's process group unless it leaves on purpose.
    pub fn shell(mut self, shell: impl Into<PathBuf>) -> Self {
        self.shell = Some(shell.into());
        self
    }

    /// Whether commands may take input from clients: `execute` with `"stdin": "pipe"` or
    /// `"pty": true`, then `input` (the `stdin` and `pty` capabilities). Default: true. Turned
    /// off, every command's stdin is `/dev/null` and such an `execute` is refused; worth it
    /// with an allowlist that admits an interpreter, whose input would be code.
    pub fn accept_input(mut self, accept: bool) -> Self {
        self.accept_input = accept;
        self
    }

    /// Bind `addr` and start serving.
    ///
    /// Fails if the shell (see [`Self::shell`]) cannot be found. Also raises the soft limit of open files to the hard limit, so that many concurrent
    /// sessions (each holds a socket and two pipes) do not run out of descriptors.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> std::io::Result<ServerHandle> {
        let shell = crate::shell::resolve(self.shell.as_deref())?;
        let mut config = self.into_config();
        config.shell = shell;
        crate::http::serve(config, addr).await
    }

    /// Bind a random loopback port (`127.0.0.1:0`) with a bearer token of its own unless one was
    /// set ([`ServerHandle::token`]): a service for this process alone, such as one embedded in
    /// a tool, that other local users cannot reach.
    pub async fn bind_private(mut self) -> std::io::Result<ServerHandle> {
        if self.token.is_none() {
            self.token = Some(uuid::Uuid::new_v4().simple().to_string());
        }
        self.bind("127.0.0.1:0").await
    }

    pub(crate) fn into_config(self) -> Config {
        Config {
            max_sessions: self.max_sessions,
            // A zero interval would make `tokio::time::interval` panic, and a huge one would
            // overflow the deadlines computed from it.
            heartbeat_interval: self
                .heartbeat_interval
                .clamp(Duration::from_millis(1), MAX_INTERVAL),
            allowlist: self.allowed_commands.map(Allowlist::new),
            working_dir: self.working_dir,
            token: self.token,
            kill_grace: self.kill_grace.min(MAX_INTERVAL),
            allowed_origins: self.allowed_origins,
            allowed_hosts: self.allowed_hosts,
            handshake_timeout: self
                .handshake_timeout
                .clamp(Duration::from_millis(1), MAX_INTERVAL),
            // Resolved by `bind`.
            shell: self.shell.unwrap_or_else(|| PathBuf::from("sh")),
            accept_input: self.accept_input,
        }
    }
}

/// The settings of a running service, shared by every session.
#[derive(Debug)]
pub(crate) struct Config {
    pub max_sessions: usize,
    pub heartbeat_interval: Duration,
    pub allowlist: Option<Allowlist>,
    pub working_dir: Option<PathBuf>,
    pub token: Option<String>,
    pub kill_grace: Duration,
    pub allowed_origins: Vec<String>,
    pub allowed_hosts: Vec<String>,
    pub handshake_timeout: Duration,
    /// The resolved shell (an absolute path once `bind` has run).
    pub shell: PathBuf,
    /// Commands may take input (see [`ServerBuilder::accept_input`]).
    pub accept_input: bool,
}

impl Config {
    /// The shell as reported in `connected` and `/health`; none in allowlist mode, where
    /// commands run without a shell.
    pub fn reported_shell(&self) -> Option<String> {
        match self.allowlist {
            Some(_) => None,
            None => Some(self.shell.display().to_string()),
        }
    }
}
