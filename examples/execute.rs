//! Stream a command's output as it is produced.
//!
//! ```text
//! cargo run -p examples --example execute                 # `cargo --version; echo to-stderr >&2`
//! cargo run -p examples --example execute -- ls -la /     # any command line
//! CC_EXECUTOR_WEBSOCKET_URL=ws://127.0.0.1:8004/ws cargo run -p examples --example execute
//! ```
//!
//! Without `CC_EXECUTOR_WEBSOCKET_URL` the example starts an embedded service on a loopback port.

use std::process::ExitCode;

use cc_executor_client::{OutputEvent, OutputStream};
use futures_util::StreamExt;

mod service;
mod show;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        // Exit as the command did, so the example composes in scripts.
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => service::fail(&*e),
    }
}

/// Run the command line; its exit code.
async fn run() -> service::Result<i32> {
    let line = service::line_or("cargo --version; echo to-stderr >&2");

    // Keep the embedded service (if any) alive until the end of `run`.
    let (client, _service) = service::client().await?;
    let mut run = client.execute(line.as_str()).await?;
    let mut code = 1;
    while let Some(event) = run.next().await {
        match event? {
            OutputEvent::Output {
                stream: OutputStream::Stdout,
                data,
                ..
            } => print!("{data}"),
            OutputEvent::Output { data, .. } => eprint!("{data}"),
            other => {
                if let OutputEvent::Completed { exit_code, .. } = &other {
                    code = exit_code.unwrap_or(1);
                }
                eprintln!("[{}]", show::event(&other));
            }
        }
    }
    Ok(code)
}
