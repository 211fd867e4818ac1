//! Helpers shared by the service's tests.

use std::time::Duration;

use cc_executor_server::{Server, ServerHandle};

/// The service on a loopback port, with a short kill grace so that cancels end quickly.
pub async fn server() -> ServerHandle {
    Server::builder()
        .kill_grace(Duration::from_millis(500))
        .bind("127.0.0.1:0")
        .await
        .expect("bind")
}
