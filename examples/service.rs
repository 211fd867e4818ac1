//! What the examples share: where they find a service (`CC_EXECUTOR_WEBSOCKET_URL` when set,
//! otherwise an embedded service started in this process on a loopback port), and how they report
//! an error.

// Each example compiles its own copy of this module and uses only part of it.
#![allow(dead_code)]

use std::process::ExitCode;

use cc_executor_client::error::Report;
use cc_executor_client::Client;
use cc_executor_server::{Server, ServerHandle};

/// What an example's `run` returns.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

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

/// A client of the service, and the embedded service to keep alive while it is used.
pub async fn client() -> Result<(Client, Option<ServerHandle>)> {
    let (url, service) = url().await?;
    Ok((Client::new(&url)?, service))
}

/// The command-line arguments joined into one line, or `default` when there are none.
pub fn line_or(default: &str) -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        default.to_owned()
    } else {
        args.join(" ")
    }
}

/// The exit status for what `run` returned: success, or the error printed for a person.
pub fn exit(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&*e),
    }
}

/// Print `e` for a person (its message, then each cause on a line) and fail.
pub fn fail(e: &(dyn std::error::Error + 'static)) -> ExitCode {
    eprintln!("error: {}", Report(e));
    ExitCode::FAILURE
}
