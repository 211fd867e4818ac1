//! `cc-executor-server`: the executor service as a command-line program.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing_subscriber::EnvFilter;

/// Run commands for WebSocket clients (JSON-RPC 2.0, the cc-executor protocol).
///
/// Endpoints: ws://ADDR/ws (also /ws/mcp), http://ADDR/health, /healthz, /ready (503 while
/// draining) and /metrics (Prometheus text; needs the token when one is set). Once listening, the
/// WebSocket URL is printed on stdout (one line); logs go to stderr (RUST_LOG sets the level).
///
/// SIGTERM or SIGINT drains: new sessions are refused, running commands get --drain-timeout to
/// finish, then what is left is killed and the service exits 0. A second signal ends the drain at
/// once.
#[derive(Debug, Parser)]
#[command(name = "cc-executor-server", version, about, long_about)]
struct Args {
    /// Address to listen on. Use port 0 for any free port.
    #[arg(long, env = "CC_EXECUTOR_LISTEN", default_value = "127.0.0.1:8004")]
    listen: String,

    /// Most concurrent sessions; past it a connection is refused with -32003.
    #[arg(long, env = "CC_EXECUTOR_MAX_SESSIONS", default_value_t = 2048)]
    max_sessions: usize,

    /// Seconds between heartbeat pings; a client silent for two intervals is disconnected.
    #[arg(long, env = "CC_EXECUTOR_HEARTBEAT_INTERVAL", default_value_t = 30.0)]
    heartbeat_interval: f64,

    /// Only run these programs (comma-separated or repeated), split into an argv and run without
    /// a shell; lines that need a shell are refused. Without it, any command runs with the shell.
    #[arg(
        long = "allow",
        env = "CC_EXECUTOR_ALLOWED_COMMANDS",
        value_delimiter = ','
    )]
    allowed_commands: Vec<String>,

    /// Default working directory of commands.
    #[arg(long, env = "CC_EXECUTOR_WORKING_DIR")]
    working_dir: Option<PathBuf>,

    /// Require `Authorization: Bearer <TOKEN>` on WebSocket upgrades. Prefer --token-file:
    /// every local user can read a command line.
    #[arg(long, env = "CC_EXECUTOR_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Read the required bearer token from this file (one trailing newline is ignored).
    #[arg(long, env = "CC_EXECUTOR_TOKEN_FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,

    /// Accept WebSocket connections from web pages of this origin, e.g. http://localhost:3000
    /// (comma-separated or repeated). Upgrades with any other Origin header are refused.
    #[arg(
        long = "allow-origin",
        env = "CC_EXECUTOR_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,

    /// Also accept this Host header (name, or name:port) when listening on loopback, where
    /// only loopback addresses and localhost are accepted otherwise (comma-separated or
    /// repeated).
    #[arg(
        long = "allow-host",
        env = "CC_EXECUTOR_ALLOW_HOSTS",
        value_delimiter = ','
    )]
    allowed_hosts: Vec<String>,

    /// Seconds a connection has to complete its WebSocket upgrade before it is closed.
    #[arg(long, env = "CC_EXECUTOR_HANDSHAKE_TIMEOUT", default_value_t = 10.0)]
    handshake_timeout: f64,

    /// Seconds between SIGTERM and SIGKILL when a process group is stopped.
    #[arg(long, env = "CC_EXECUTOR_KILL_GRACE", default_value_t = 2.0)]
    kill_grace: f64,

    /// Seconds running commands get to finish after SIGTERM before they are killed.
    #[arg(long, env = "CC_EXECUTOR_DRAIN_TIMEOUT", default_value_t = 30.0)]
    drain_timeout: f64,

    /// Shell that runs commands as `SHELL -c COMMAND`: a name on PATH or a path.
    /// [default: bash when on PATH, else sh]
    #[arg(long, env = "CC_EXECUTOR_SHELL")]
    shell: Option<PathBuf>,

    /// Give commands no input from clients: no stdin pipe, no terminal, no `input` (worth it
    /// with an --allow list that admits an interpreter, whose input would be code).
    #[arg(long)]
    no_input: bool,
}

fn seconds(name: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("--{name} must be a positive number of seconds, got {s}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut signals = Signals::new();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let (heartbeat, grace, handshake, drain) = match (
        seconds("heartbeat-interval", args.heartbeat_interval),
        seconds("kill-grace", args.kill_grace),
        seconds("handshake-timeout", args.handshake_timeout),
        seconds("drain-timeout", args.drain_timeout),
    ) {
        (Ok(h), Ok(g), Ok(t), Ok(d)) => (h, g, t, d),
        (Err(e), _, _, _) | (_, Err(e), _, _) | (_, _, Err(e), _) | (_, _, _, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut builder = cc_executor_server::Server::builder()
        .max_sessions(args.max_sessions)
        .heartbeat_interval(heartbeat)
        .kill_grace(grace)
        .handshake_timeout(handshake);
    for origin in listed(args.allowed_origins) {
        if origin != "null" && !origin.contains("://") {
            eprintln!(
                "error: --allow-origin takes an origin like http://localhost:3000, got {origin:?}"
            );
            return ExitCode::from(2);
        }
        builder = builder.allow_origin(origin);
    }
    for host in listed(args.allowed_hosts) {
        builder = builder.allow_host(host);
    }
    let allowed = listed(args.allowed_commands);
    if !allowed.is_empty() {
        builder = builder.allowed_commands(allowed);
    }
    if let Some(dir) = args.working_dir {
        builder = builder.working_dir(dir);
    }
    if let Some(token) = args.token.filter(|t| !t.is_empty()) {
        builder = builder.token(token);
    }
    if let Some(path) = args.token_file {
        match cc_executor_server::read_token_file(&path) {
            Ok(token) => builder = builder.token(token),
            Err(e) => {
                eprintln!("error: {}", report(&e));
                return ExitCode::from(2);
            }
        }
    }
    if let Some(shell) = args.shell.filter(|s| !s.as_os_str().is_empty()) {
        builder = builder.shell(shell);
    }
    builder = builder.accept_input(!args.no_input);

    let server = match builder.bind(args.listen.as_str()).await {
        Ok(s) => s,
        // The shell is resolved before anything is bound: its errors name it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: cannot listen on {}: {}", args.listen, report(&e));
            return ExitCode::FAILURE;
        }
    };
    println!("{}", server.url());

    signals.next().await;
    server.drain_until(drain, signals.next()).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// The non-empty items of a list option, trimmed.
fn listed(items: Vec<String>) -> Vec<String> {
    items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// An error for people: its message, then each cause the message does not already say on a
/// line of its own.
fn report(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut said = text.clone();
    let mut cause = e.source();
    while let Some(c) = cause {
        let line = c.to_string();
        if !said.contains(&line) {
            text.push_str("\n  caused by: ");
            text.push_str(&line);
        }
        said = line;
        cause = c.source();
    }
    text
}

/// SIGTERM and SIGINT, listened to from the start so that a second one is never missed.
struct Signals {
    term: Option<Signal>,
    int: Option<Signal>,
}

impl Signals {
    fn new() -> Self {
        Signals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    /// The next SIGTERM or SIGINT.
    async fn next(&mut self) {
        async fn recv(s: &mut Option<Signal>) {
            match s {
                Some(s) => {
                    let _ = s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = recv(&mut self.term) => {}
            () = recv(&mut self.int) => {}
        }
    }
}
