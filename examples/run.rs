//! Run a command to the end and print the collected `Outcome`.
//!
//! ```text
//! cargo run -p examples --example run
//! cargo run -p examples --example run -- 'ls /; exit 3'
//! ```
//!
//! Without `CC_EXECUTOR_WEBSOCKET_URL` the example starts an embedded service on a loopback port.

use std::process::ExitCode;
use std::time::Duration;

use cc_executor_client::{Command, Error};

mod service;

#[tokio::main]
async fn main() -> ExitCode {
    service::exit(run().await)
}

async fn run() -> service::Result<()> {
    let line = service::line_or("echo hello; echo warning >&2; uname -s");

    // Keep the embedded service (if any) alive until the end of `run`.
    let (client, _service) = service::client().await?;
    let cmd = Command::new(line).timeout(Duration::from_secs(60));
    match client.run(cmd).await {
        Ok(outcome) => {
            println!("status:    {}", outcome.status.as_str());
            let code = outcome.exit_code.map(|c| c.to_string());
            println!("exit code: {}", code.as_deref().unwrap_or("unknown"));
            println!("duration:  {:.2?}", outcome.duration);
            println!("stdout:\n{}", outcome.stdout);
            println!("stderr:\n{}", outcome.stderr);
            println!("other events: {}", outcome.events.len());
        }
        Err(Error::Timeout { after }) => println!("timed out after {after:.2?}"),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
