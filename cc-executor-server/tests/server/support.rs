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

/// The same with commands run by `shell`.
pub async fn server_with(shell: &str) -> ServerHandle {
    Server::builder()
        .shell(shell)
        .kill_grace(Duration::from_millis(500))
        .bind("127.0.0.1:0")
        .await
        .expect("bind")
}

/// Each listed test (an `async fn(shell: &str)` of the calling module) runs once with bash and
/// once with sh (dash): the process-group and containment guarantees hold for any shell.
macro_rules! under_each_shell {
    ($($test:ident),* $(,)?) => {
        mod bash {
            $(#[tokio::test]
            async fn $test() {
                super::$test("bash").await
            })*
        }
        mod sh {
            $(#[tokio::test]
            async fn $test() {
                super::$test("sh").await
            })*
        }
    };
}
pub(crate) use under_each_shell;
