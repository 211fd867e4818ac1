//! The accept loop: one HTTP/1 connection task per socket, each with a handshake deadline.
//!
//! `axum::serve` keeps a connection for as long as the peer keeps it open, even one that never
//! sends a byte: enough of them exhaust the service's file descriptors. Here every connection
//! must hand its socket over to a WebSocket session (the upgrade) before the deadline, or it is
//! dropped; plain requests (`/health`) on it are served until then. The deadline stops at the
//! upgrade, when hyper's connection future completes and the socket belongs to the session.

use std::io;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Accept connections until `stop` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    handshake_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => return Ok(()),
        };
        tokio::spawn(connection(
            tcp,
            app.clone(),
            handshake_timeout,
            stop.clone(),
        ));
    }
}

/// Serve one connection until it upgrades, closes, passes its deadline or the service stops.
async fn connection(
    tcp: TcpStream,
    app: Router,
    handshake_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    // Frames are small and latency matters (a reply must not wait for a delayed ACK).
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!("could not set TCP_NODELAY: {e}");
    }
    let conn = http1::Builder::new()
        .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(app))
        .with_upgrades();
    let mut conn = pin!(conn);
    let deadline = tokio::time::sleep(handshake_timeout);
    let mut deadline = pin!(deadline);
    let mut stopping = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::trace!("connection failed: {e}");
                }
                return;
            }
            () = deadline.as_mut() => {
                tracing::debug!(
                    "closing a connection that did not upgrade within {handshake_timeout:?}"
                );
                return;
            }
            () = stopped(&mut stop), if !stopping => {
                // Finish a request in progress, then close; the deadline still bounds it.
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Resolves once the service is stopping (or its state is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // `.is_ok()` drops the borrowed value at once: it is not `Send`.
    let _ = stop.wait_for(|s| *s).await.is_ok();
}

/// An accept error: a peer that gave up is nothing; anything else (out of descriptors, say) is
/// logged and waited out, as a tight loop would only burn the CPU.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    tracing::warn!("accept failed: {e}; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
