//! `cc-executor-mcp`: an MCP server on stdio that runs shell commands and fresh `claude -p`
//! instances through a cc-executor service, with bounded output, progress and cancellation.
//!
//! Without `--url` it starts an embedded service on a loopback port. When the host closes stdin
//! (or a termination signal arrives), every running call and background job is canceled and the
//! embedded service is shut down (killing its groups).

// Tool errors are `CallToolResult` values, as rmcp's tool handlers return them; boxing them in
// the helpers would only add conversions.
#![allow(clippy::result_large_err)]

mod tools;

use std::path::PathBuf;
use std::time::Duration;

use cc_executor_client::error::Report;
use cc_executor_client::jobs::{Jobs, JobsConfig};
use cc_executor_client::output_dir::{OutputFiles, SWEEP_INTERVAL};
use cc_executor_client::{Client, ClientBuilder};
use cc_executor_server::Server;
use clap::Parser;
use rmcp::ServiceExt;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::io::InspectReader;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::tools::Executor;

/// How long running calls and jobs get to end when the host goes away (the embedded service's
/// shutdown is bounded by itself).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// MCP stdio server running commands and Claude instances through cc-executor.
#[derive(Debug, Parser)]
#[command(name = "cc-executor-mcp", version, about)]
struct Args {
    /// WebSocket URL of an executor service (e.g. ws://127.0.0.1:8004/ws). Without it an embedded
    /// service is started on a loopback port.
    #[arg(long, env = "CC_EXECUTOR_WEBSOCKET_URL")]
    url: Option<String>,
    /// Default timeout of a run, in seconds (at least 1).
    #[arg(long, env = "CC_EXECUTOR_DEFAULT_TIMEOUT", default_value_t = 600)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
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
    /// Hours a cut result's whole-output file is kept (at least 1); older ones are removed at
    /// start and every hour.
    #[arg(long, env = "CC_EXECUTOR_OUTPUT_RETENTION", default_value_t = 24)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
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
async fn main() {
    // stdout carries the MCP protocol: logs go to stderr only.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    logs.with_writer(std::io::stderr).init();
    let code = match run(Args::parse()).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {}", Report(&*e));
            1
        }
    };
    // A pending stdin read cannot be canceled; exit without waiting for the runtime to drain it.
    std::process::exit(code)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let token = match &args.token_file {
        Some(path) => Some(cc_executor_server::read_token_file(path)?),
        None => args.token,
    };
    // Without a URL, a service of our own: on loopback, with a token of its own unless given one.
    let embedded = match &args.url {
        Some(_) => None,
        None => Some(token.iter().fold(Server::builder(), |b, t| b.token(t))),
    };
    let embedded = match embedded {
        Some(builder) => Some(builder.bind_private().await?),
        None => None,
    };
    let (url, token) = match &embedded {
        Some(server) => (server.url(), server.token().map(str::to_owned)),
        None => (args.url.unwrap_or_default(), token),
    };
    let client = token
        .into_iter()
        .fold(Client::builder(&url), ClientBuilder::token);
    let client = client.build()?;
    let retention = Duration::from_secs(args.output_retention.saturating_mul(3600));
    let outputs = args
        .output_dir
        .map_or_else(OutputFiles::default, OutputFiles::new);
    let outputs = outputs
        .keep_job_outputs(args.keep_outputs)
        .retention(retention);
    let config = JobsConfig::default().buffer_bytes(args.job_buffer_bytes);
    let config = config
        .max_finished(args.max_finished_jobs)
        .output_files(outputs.clone());
    let jobs = Jobs::with_config(client.clone(), config);
    // Old outputs go before the first call; a refused folder is said here, then in each result
    // that lacks its file.
    let tidy = jobs.spawn_tidy(SWEEP_INTERVAL);
    let executor = Executor {
        jobs,
        default_timeout: Duration::from_secs(args.default_timeout),
        max_output: args.max_output_chars,
        outputs,
    };
    tracing::info!("serving MCP on stdio, executor service {url}");
    let served = serve(executor).await;
    tidy.abort();
    // Cancel the calls and jobs still running and wait for their groups, then stop the service.
    if !client.cancel_all(SHUTDOWN_GRACE).await {
        tracing::warn!("some runs did not end in time");
    }
    if let Some(server) = embedded {
        server.shutdown().await;
    }
    served
}

/// Serve MCP until the host closes stdin or a termination signal arrives.
async fn serve(executor: Executor) -> Result<(), Box<dyn std::error::Error>> {
    // rmcp waits for calls in flight before it reports the end of stdin: see the end at once.
    let (eof, (stdin, stdout)) = (CancellationToken::new(), rmcp::transport::stdio());
    let read_end = eof.clone();
    let stdin = InspectReader::new(stdin, move |read: &[u8]| {
        if read.is_empty() {
            read_end.cancel();
        }
    });
    let service = executor.serve((stdin, stdout)).await?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        quit = service.waiting() => tracing::info!("MCP session ended: {quit:?}"),
        () = eof.cancelled() => tracing::info!("the host closed stdin"),
        _ = term.recv() => tracing::info!("terminated by signal"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
    }
    Ok(())
}
