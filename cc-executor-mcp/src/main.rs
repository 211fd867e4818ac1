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

use std::{path::PathBuf, time::Duration};

use cc_executor_client::output_dir::{OutputFiles, SWEEP_INTERVAL};
use cc_executor_client::{error::Report, jobs::Jobs, jobs::JobsConfig, Client, ClientBuilder};
use cc_executor_server::read_token_file;
use clap::Parser;
use rmcp::{task_manager::TaskManager, ServiceExt};
use tokio_util::{io::InspectReader, sync::CancellationToken};
use tracing_subscriber::EnvFilter;

/// How long running calls and jobs get to end when the host goes away (the embedded service's
/// shutdown is bounded by itself).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// MCP stdio server running commands and Claude instances through cc-executor.
#[derive(Debug, Parser)]
#[command(name = "cc-executor-mcp", version, about)]
struct Args {
    /// WebSocket URL of an executor service (e.g. ws://127.0.0.1:8004/ws); repeated or
    /// comma-separated for several, over which runs are spread. Without it an embedded service is
    /// started on a loopback port.
    #[arg(long, env = "CC_EXECUTOR_WEBSOCKET_URL", value_delimiter = ',')]
    url: Vec<String>,
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
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr);
    logs.with_ansi(false).with_env_filter(filter).init();
    // A pending stdin read cannot be canceled; exit without waiting for the runtime to drain it.
    if let Err(e) = run(Args::parse()).await {
        eprintln!("error: {}", Report(&*e));
        std::process::exit(1);
    }
    std::process::exit(0)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let from_file = args.token_file.as_deref().map(read_token_file);
    let token = from_file.transpose()?.or(args.token);
    // Without a URL, a service of our own: on loopback, with a token of its own unless given one.
    // Dropping it at the end of `run` stops it and kills any group still there.
    let (urls, token, _embedded) = cc_executor_server::url_or_embedded(args.url, token).await?;
    let client = Client::builder_with_endpoints(urls);
    let client = client.default_timeout(Duration::from_secs(args.default_timeout));
    let client = token.into_iter().fold(client, ClientBuilder::token);
    let client = client.build()?;
    let (dir, hours) = (args.output_dir, args.output_retention);
    let outputs = dir.map_or_else(OutputFiles::default, OutputFiles::new);
    let outputs = outputs.keep_job_outputs(args.keep_outputs);
    let outputs = outputs.retention(Duration::from_secs(hours.saturating_mul(3600)));
    let config = JobsConfig::default().buffer_bytes(args.job_buffer_bytes);
    let config = config.max_finished(args.max_finished_jobs);
    let jobs = Jobs::with_config(client.clone(), config.output_files(outputs));
    // Old outputs go before the first call; a refused folder is said here, then in each result
    // that lacks its file.
    jobs.spawn_tidy(SWEEP_INTERVAL);
    let executor = tools::Executor {
        jobs,
        max_output: args.max_output_chars,
        tasks: TaskManager::new(),
    };
    // rmcp waits for calls in flight before it reports the end of stdin: see the end at once.
    let (eof, (stdin, stdout)) = (CancellationToken::new(), rmcp::transport::stdio());
    let read_end = eof.clone();
    let stdin = InspectReader::new(stdin, move |read: &[u8]| {
        if read.is_empty() {
            read_end.cancel();
        }
    });
    let service = executor.serve((stdin, stdout)).await?;
    tokio::select! {
        quit = service.waiting() => tracing::info!("MCP session ended: {quit:?}"),
        () = eof.cancelled() => tracing::info!("the host closed stdin"),
        () = cc_executor_server::wait_for_signal() => tracing::info!("stopped by a signal"),
    }
    // Cancel the calls and jobs still running and wait for their groups.
    client.cancel_all(SHUTDOWN_GRACE).await;
    Ok(())
}
