//! What the examples share: where they find a service (`CC_EXECUTOR_WEBSOCKET_URL` when set,
//! otherwise an embedded service started in this process on a loopback port), and how they report
//! an error.

use std::process::ExitCode;

use cc_executor_client::error::Report;
use cc_executor_server::{Server, ServerHandle};

/// The service URL, and the embedded service to keep alive while it is used (`None` when the URL
/// came from `CC_EXECUTOR_WEBSOCKET_URL`).
pub async fn url() -> std::io::Result<(String, Option<ServerHandle>)> {
    match std::env::var("CC_EXECUTOR_WEBSOCKET_URL") {
        Ok(url) => Ok((url, None)),
        Err(_) => {
            let service = Server::builder().bind("127.0.0.1:0").await?;
            Ok((service.url(), Some(service)))
        }
    }
}

/// Print `e` for a person (its message, then each cause on a line) and fail.
pub fn fail(e: &(dyn std::error::Error + 'static)) -> ExitCode {
    eprintln!("error: {}", Report(e));
    ExitCode::FAILURE
}
