//! Pause, resume and cancel a running command from another task while its events are printed.
//!
//! ```text
//! cargo run -p examples --example control
//! ```
//!
//! Without `CC_EXECUTOR_WEBSOCKET_URL` the example starts an embedded service on a loopback port.

use std::process::ExitCode;
use std::time::Duration;

use cc_executor_client::OutputEvent;
use futures_util::StreamExt;

mod service;
mod show;

#[tokio::main]
async fn main() -> ExitCode {
    service::exit(run().await)
}

async fn run() -> service::Result<()> {
    // Keep the embedded service (if any) alive until the end of `run`.
    let (client, _service) = service::client().await?;
    let mut run = client
        .execute("i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done")
        .await?;
    let ctl = run.controller();

    // The controller is Clone + Send + Sync: steer the run from another task.
    let steering = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("-> pause");
        ctl.pause().await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("-> resume");
        ctl.resume().await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("-> cancel");
        ctl.cancel().await?;
        Ok::<_, cc_executor_client::Error>(())
    });

    while let Some(event) = run.next().await {
        match event? {
            OutputEvent::Output { data, .. } => print!("   {data}"),
            other => println!("   [{}]", show::event(&other)),
        }
    }
    steering.await??;
    Ok(())
}
