//! Run one prompt in a fresh `claude -p` instance and print its result.
//!
//! ```text
//! cargo run -p examples --example claude -- "What is the capital of France?"
//! ```
//!
//! Uses the service at `CC_EXECUTOR_WEBSOCKET_URL` when set; otherwise starts an embedded service on
//! a loopback port. Needs a logged-in `claude` on the service's `PATH`.

use std::process::ExitCode;
use std::time::Duration;

use cc_executor_client::claude::ClaudeCommand;
use cc_executor_client::Error;

mod service;

#[tokio::main]
async fn main() -> ExitCode {
    service::exit(run().await)
}

async fn run() -> service::Result<()> {
    let prompt = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    if prompt.is_empty() {
        eprintln!("usage: claude <prompt>");
        std::process::exit(2);
    }

    // Keep the embedded service (if any) alive until the end of `run`.
    let (client, _service) = service::client().await?;
    let cmd = ClaudeCommand::new(prompt)
        .max_turns(10)
        .timeout(Duration::from_secs(600));
    match client.run_claude(cmd).await {
        Ok(result) => {
            println!("{}", result.result.as_deref().unwrap_or("(no text)"));
            println!("---");
            println!("subtype:  {}", result.subtype);
            println!(
                "session:  {}",
                result.session_id.as_deref().unwrap_or("(none)")
            );
            println!("turns:    {}", result.num_turns);
            match result.total_cost_usd {
                Some(cost) => println!("cost:     ${cost:.4}"),
                None => println!("cost:     (unknown)"),
            }
            if result.is_error {
                std::process::exit(1);
            }
        }
        Err(Error::RateLimited(limit)) => {
            eprintln!("rate limited: {limit}");
            std::process::exit(75);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
