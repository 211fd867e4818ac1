//! Helpers shared by the service's tests.

use std::time::Duration;

use cc_executor_server::{Server, ServerBuilder, ServerHandle};
use tests::ws::Client;

/// Binding a configured service on a loopback port, as every test here does.
pub trait Local {
    /// The service bound on `127.0.0.1`, on a port of the system's choice.
    async fn local(self) -> ServerHandle;
}

impl Local for ServerBuilder {
    async fn local(self) -> ServerHandle {
        self.bind("127.0.0.1:0").await.expect("bind")
    }
}

/// `server` and a raw client connected to it (its `connected` frame read).
pub async fn connected(server: ServerHandle) -> (ServerHandle, Client) {
    let c = Client::connect(&server.url()).await;
    (server, c)
}

/// A service that pings every `every` (with the short kill grace of [`server`]), and a client
/// connected to it.
pub async fn pinging_every(every: Duration) -> (ServerHandle, Client) {
    let builder = Server::builder().heartbeat_interval(every);
    connected(builder.kill_grace(Duration::from_millis(500)).local().await).await
}

/// Close the client's connection, then shut the service down.
pub async fn end(c: Client, server: ServerHandle) {
    drop(c);
    server.shutdown().await;
}

/// The service on a loopback port, with a short kill grace so that cancels end quickly.
pub async fn server() -> ServerHandle {
    Server::builder()
        .kill_grace(Duration::from_millis(500))
        .local()
        .await
}

/// The same with commands run by `shell`.
pub async fn server_with(shell: &str) -> ServerHandle {
    Server::builder()
        .shell(shell)
        .kill_grace(Duration::from_millis(500))
        .local()
        .await
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

/// The address of a `ws://ADDR/ws` URL.
pub fn addr_of(url: &str) -> std::net::SocketAddr {
    let rest = url.strip_prefix("ws://").expect("a ws:// URL");
    rest.split('/').next().unwrap().parse().expect("an address")
}

/// Wait (bounded) until `/ready` at `addr` answers 503.
pub async fn wait_until_draining(addr: std::net::SocketAddr) {
    let start = std::time::Instant::now();
    while tests::ws::http_get(addr, "/ready", &[]).await.0 != 503 {
        assert!(start.elapsed() < tests::ws::WAIT, "/ready never said 503");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
