//! `cc-executor-server`: the executor service as a command-line program.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Run commands for WebSocket clients (JSON-RPC 2.0, the cc-executor protocol).
///
/// Endpoints: ws://ADDR/ws (also /ws/mcp) and http://ADDR/health. Once listening, the
/// WebSocket URL is printed on stdout (one line); logs go to stderr (RUST_LOG sets the level).
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
    /// a shell; lines that need a shell are refused. Without it, any command runs with `sh -c`.
    #[arg(
        long = "allow",
        env = "CC_EXECUTOR_ALLOWED_COMMANDS",
        value_delimiter = ','
    )]
    allowed_commands: Vec<String>,

    /// Default working directory of commands.
    #[arg(long, env = "CC_EXECUTOR_WORKING_DIR")]
    working_dir: Option<PathBuf>,

    /// Require `Authorization: Bearer <TOKEN>` on WebSocket upgrades.
    #[arg(long, env = "CC_EXECUTOR_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Seconds between SIGTERM and SIGKILL when a process group is stopped.
    #[arg(long, env = "CC_EXECUTOR_KILL_GRACE", default_value_t = 2.0)]
    kill_grace: f64,
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
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let (heartbeat, grace) = match (
        seconds("heartbeat-interval", args.heartbeat_interval),
        seconds("kill-grace", args.kill_grace),
    ) {
        (Ok(h), Ok(g)) => (h, g),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut builder = cc_executor_server::Server::builder()
        .max_sessions(args.max_sessions)
        .heartbeat_interval(heartbeat)
        .kill_grace(grace);
    let allowed: Vec<String> = args
        .allowed_commands
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if !allowed.is_empty() {
        builder = builder.allowed_commands(allowed);
    }
    if let Some(dir) = args.working_dir {
        builder = builder.working_dir(dir);
    }
    if let Some(token) = args.token.filter(|t| !t.is_empty()) {
        builder = builder.token(token);
    }

    let server = match builder.bind(args.listen.as_str()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    println!("{}", server.url());

    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Ctrl-C or SIGTERM.
async fn wait_for_signal() {
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
