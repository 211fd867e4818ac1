//! `cc-executor-mcp`: an MCP server on stdio that runs shell commands and fresh `claude -p`
//! instances through a cc-executor service, with bounded output, progress and cancellation.
//!
//! Without `--url` it starts an embedded service on a loopback port. When the host closes stdin
//! (or a termination signal arrives), every running call and background job is canceled and the
//! embedded service is shut down (killing its groups).

// Tool errors are `CallToolResult` values, as rmcp's tool handlers return them; boxing them in
// the helpers would only add conversions.
#![allow(clippy::result_large_err)]

mod claude;
mod execute;
mod jobs;
mod progress;
mod server;

use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::Duration;

use cc_executor_client::error::Report;
use cc_executor_client::jobs::{Jobs, JobsConfig};
use cc_executor_client::output_dir::{self, OutputFiles, SWEEP_INTERVAL};
use cc_executor_client::Client;
use cc_executor_server::{Server, ServerHandle};
use clap::Parser;
use rmcp::ServiceExt;
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::server::{Executor, Settings};

/// How long running calls and jobs get to cancel their runs when the host goes away.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// MCP stdio server running commands and Claude instances through cc-executor.
#[derive(Debug, Parser)]
#[command(name = "cc-executor-mcp", version, about)]
struct Args {
    /// WebSocket URL of an executor service (e.g. ws://127.0.0.1:8004/ws). Without it an embedded
    /// service is started on a loopback port.
    #[arg(long, env = "CC_EXECUTOR_WEBSOCKET_URL")]
    url: Option<String>,
    /// Default timeout of a run, in seconds.
    #[arg(long, env = "CC_EXECUTOR_DEFAULT_TIMEOUT", default_value_t = 600)]
    default_timeout: u64,
    /// Bearer token for the service. Prefer --token-file: every local user can read a command
    /// line.
    #[arg(long, env = "CC_EXECUTOR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the bearer token for the service from this file (one trailing newline is ignored).
    #[arg(long, env = "CC_EXECUTOR_TOKEN_FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// Most characters of output a tool returns (bytes of UTF-8 text); longer output is cut to its
    /// head and tail, and saved whole to a file.
    #[arg(long, env = "CC_EXECUTOR_MAX_OUTPUT_CHARS", default_value_t = 20_000)]
    max_output_chars: usize,
    /// Folder for the whole outputs of cut results and of background jobs. It is created private
    /// (0700) and refused unless it is a directory of this user that no one else can open; files
    /// in it are 0600. Default: `$XDG_RUNTIME_DIR/cc-executor`, else `cc-executor-<uid>` in the
    /// system temp dir.
    #[arg(long, env = "CC_EXECUTOR_OUTPUT_DIR")]
    output_dir: Option<PathBuf>,
    /// Keep a background job's output file when the job is evicted (an hour after it ends, or
    /// past the 100 finished jobs kept); by default the file is deleted then.
    #[arg(long, env = "CC_EXECUTOR_KEEP_OUTPUTS")]
    keep_outputs: bool,
    /// Hours a cut result's whole-output file is kept; older ones are removed at start and every
    /// hour.
    #[arg(long, env = "CC_EXECUTOR_OUTPUT_RETENTION", default_value_t = 24)]
    output_retention: u64,
    /// Most finished background jobs kept; the oldest are evicted past it.
    #[arg(long, hide = true, default_value_t = 100)]
    max_finished_jobs: usize,
    /// Bytes of each background job's latest output held in memory for `job_output` (the whole
    /// output is in its file).
    #[arg(long, env = "CC_EXECUTOR_JOB_BUFFER_BYTES", default_value_t = 1 << 20)]
    job_buffer_bytes: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    // stdout carries the MCP protocol: logs go to stderr only.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = Args::parse();
    let code = match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {}", Report(&*e));
            ExitCode::FAILURE
        }
    };
    // A pending stdin read cannot be canceled; exit without waiting for the runtime to drain it.
    std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 })
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.default_timeout == 0 {
        return Err("--default-timeout must be at least 1 second".into());
    }
    let token = match &args.token_file {
        Some(path) => Some(cc_executor_server::read_token_file(path)?),
        None => args.token,
    };
    if args.output_retention == 0 {
        return Err("--output-retention must be at least 1 hour".into());
    }
    let outputs = OutputFiles::new(args.output_dir.unwrap_or_else(output_dir::default_dir))
        .keep_job_outputs(args.keep_outputs)
        .retention(Duration::from_secs(
            args.output_retention.saturating_mul(3600),
        ));
    // Old outputs go before the first call; a refused folder is said once here, then in each
    // result that lacks its file.
    sweep(&outputs);
    let (embedded, url, token) = match args.url {
        Some(url) => (None, url, token),
        None => {
            // A token of its own keeps other local users off the embedded service.
            let token = token.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
            let server = Server::builder()
                .token(token.clone())
                .bind("127.0.0.1:0")
                .await?;
            let url = server.url();
            (Some(server), url, Some(token))
        }
    };
    let mut builder = Client::builder(&url);
    if let Some(token) = token {
        builder = builder.token(token);
    }
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let client = builder.build()?;
    let config = JobsConfig::default()
        .buffer_bytes(args.job_buffer_bytes)
        .max_finished(args.max_finished_jobs)
        .output_files(outputs.clone());
    let jobs = Jobs::with_config(client.clone(), config);
    let sweeper = tokio::spawn(sweep_every_hour(outputs.clone(), jobs.clone()));
    let executor = Executor::new(Settings {
        client,
        default_timeout: Duration::from_secs(args.default_timeout),
        max_output: args.max_output_chars,
        outputs,
        jobs: jobs.clone(),
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
    });
    tracing::info!("serving MCP on stdio, executor service {url}");
    let served = serve(executor, shutdown.clone()).await;
    sweeper.abort();
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some runs did not end in time");
    }
    if !jobs.stop_all(SHUTDOWN_GRACE).await {
        tracing::warn!("some jobs did not end in time");
    }
    if let Some(server) = embedded {
        stop(server).await;
    }
    served
}

/// Remove outputs past their retention; say why when the folder is refused.
fn sweep(outputs: &OutputFiles) {
    match outputs.sweep() {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            "removed {n} old output files from {}",
            outputs.dir().display()
        ),
        Err(e) => tracing::warn!("{e}; whole outputs will not be saved to files"),
    }
}

/// Every hour: evict finished jobs past their time (deleting their files), then sweep.
async fn sweep_every_hour(outputs: OutputFiles, jobs: Jobs) {
    let mut every =
        tokio::time::interval_at(tokio::time::Instant::now() + SWEEP_INTERVAL, SWEEP_INTERVAL);
    loop {
        every.tick().await;
        jobs.list();
        sweep(&outputs);
    }
}

/// Serve MCP until the host closes stdin or a termination signal arrives.
async fn serve(
    executor: Executor,
    shutdown: CancellationToken,
) -> Result<(), Box<dyn std::error::Error>> {
    // rmcp waits for in-flight calls before it reports the end of stdin: cancel them at once.
    let (stdin, stdout) = rmcp::transport::stdio();
    let stdin = EofSignal {
        inner: stdin,
        eof: shutdown,
    };
    let service = executor.serve((stdin, stdout)).await?;
    tokio::select! {
        quit = service.waiting() => {
            tracing::info!("MCP session ended: {quit:?}");
        }
        () = terminated() => tracing::info!("terminated by signal"),
    }
    Ok(())
}

/// Stdin that fires `eof` when the host closes it.
struct EofSignal<R> {
    inner: R,
    eof: CancellationToken,
}

impl<R: AsyncRead + Unpin> AsyncRead for EofSignal<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(())))
            && buf.filled().len() == before
            && buf.remaining() > 0
        {
            self.eof.cancel();
        }
        poll
    }
}

async fn stop(server: ServerHandle) {
    if tokio::time::timeout(SHUTDOWN_GRACE, server.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("the embedded service did not shut down in time");
    }
}

async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
