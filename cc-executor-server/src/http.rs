//! The HTTP side: the router, `/health`, `/healthz`, `/ready` and `/metrics`, token check, session
//! limit and the WebSocket upgrade.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State as AxumState;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cc_executor_protocol::{code, Response as RpcResponse, PROTOCOL_VERSION};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use subtle::ConstantTimeEq;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{watch, Notify};

use crate::config::Config;
use crate::guard::Guard;
use crate::metrics::{self, Metrics};
use crate::process::{self, Registry};
use crate::{listen, session, ServerHandle};

/// Largest message accepted from a client.
const MAX_CLIENT_MESSAGE: usize = 16 * 1024 * 1024;
/// Bytes read from a WebSocket at a time.
const READ_BUFFER: usize = 8 * 1024;

/// What every request handler and session shares.
#[derive(Debug)]
pub(crate) struct State {
    pub config: Config,
    pub registry: Registry,
    pub shutdown: watch::Sender<bool>,
    pub metrics: Arc<Metrics>,
    /// Set by a drain: new sessions and new runs are refused.
    pub draining: AtomicBool,
    guard: Guard,
    active: AtomicUsize,
    idle: Notify,
    started: Instant,
}

impl State {
    /// Sessions currently open.
    pub fn active_sessions(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Whether the service is draining (or stopping): it takes no new sessions or runs.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst) || *self.shutdown.borrow()
    }

    /// Count a new session, unless that would pass the limit.
    fn try_open(self: &Arc<Self>) -> Option<SessionGuard> {
        let max = self.config.max_sessions;
        self.active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .inspect(|_| self.metrics.session_opened())
            .map(|_| SessionGuard {
                state: self.clone(),
            })
    }

    /// Wait until no session is open.
    pub async fn wait_idle(&self) {
        metrics::wait_until(&self.idle, || self.active_sessions() == 0).await
    }
}

/// Holds one slot of the session limit; frees it when dropped.
#[derive(Debug)]
pub(crate) struct SessionGuard {
    state: Arc<State>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.state.active.fetch_sub(1, Ordering::SeqCst);
        self.state.idle.notify_waiters();
    }
}

/// Bind and start serving; see [`crate::ServerBuilder::bind`].
pub(crate) async fn serve(
    config: Config,
    addr: impl ToSocketAddrs,
) -> std::io::Result<ServerHandle> {
    process::raise_nofile_limit();
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let (shutdown, _) = watch::channel(false);
    let guard = Guard::new(&config.allowed_origins, &config.allowed_hosts, local_addr);
    let state = Arc::new(State {
        guard,
        config,
        registry: Registry::new()?,
        shutdown,
        metrics: Arc::new(Metrics::new()),
        draining: AtomicBool::new(false),
        active: AtomicUsize::new(0),
        idle: Notify::new(),
        started: Instant::now(),
    });
    let app = Router::new()
        .route("/ws", get(upgrade))
        .route("/ws/mcp", get(upgrade))
        .route("/health", get(health))
        .route("/healthz", get(healthz))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state.clone());
    let stop = state.shutdown.subscribe();
    let handshake_timeout = state.config.handshake_timeout;
    let task = tokio::spawn(listen::serve(listener, app, handshake_timeout, stop));
    tracing::info!("listening on ws://{local_addr}/ws");
    Ok(ServerHandle::new(local_addr, state, task))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    /// The name the reference's status tooling looks for.
    service: &'static str,
    version: &'static str,
    active_sessions: usize,
    max_sessions: usize,
    uptime_seconds: f64,
    /// The shell that runs commands; null in allowlist mode (no shell).
    shell: Option<String>,
}

async fn health(AxumState(state): AxumState<Arc<State>>) -> Json<Health> {
    Json(Health {
        status: if state.draining() {
            "draining"
        } else {
            "healthy"
        },
        service: "cc-executor-websocket",
        version: PROTOCOL_VERSION,
        active_sessions: state.active_sessions(),
        max_sessions: state.config.max_sessions,
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        shell: state.config.reported_shell(),
    })
}

/// Liveness probe: `{"status":"ok"}`.
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness probe: 200 `{"status":"ready"}`, or 503 `{"status":"draining"}` once a drain (or
/// shutdown) has begun, so that a balancer sends new sessions elsewhere.
async fn ready(AxumState(state): AxumState<Arc<State>>) -> Response {
    if state.draining() {
        let body = Json(serde_json::json!({ "status": "draining" }));
        return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    }
    Json(serde_json::json!({ "status": "ready" })).into_response()
}

/// The Prometheus text; behind the token like the WebSocket.
async fn metrics(AxumState(state): AxumState<Arc<State>>, headers: HeaderMap) -> Response {
    if !authorized(&state.config, &headers) {
        return unauthorized();
    }
    let text = state
        .metrics
        .encode(state.active_sessions(), state.draining());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "missing or invalid bearer token",
    )
        .into_response()
}

/// `Authorization: Bearer <token>`, compared in constant time.
fn authorized(config: &Config, headers: &HeaderMap) -> bool {
    let Some(token) = &config.token else {
        return true;
    };
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| bearer_token(v.as_bytes()))
    else {
        return false;
    };
    bool::from(given.ct_eq(token.as_bytes()))
}

/// The credentials of a `Bearer` authorization value. The scheme is case-insensitive and may be
/// followed by several spaces (RFC 9110, 11.4).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(b"Bearer".len())?;
    if !scheme.eq_ignore_ascii_case(b"Bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    Some(rest.trim_ascii())
}

async fn upgrade(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if state.draining() {
        state.metrics.session_refused("draining");
        return (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response();
    }
    if let Err(refusal) = state.guard.check(&headers) {
        tracing::info!("refused a WebSocket upgrade: {refusal}");
        return (StatusCode::FORBIDDEN, format!("{refusal}\n")).into_response();
    }
    if !authorized(&state.config, &headers) {
        return unauthorized();
    }
    // tungstenite zeroes its whole read buffer (128 KiB by default) on every read; requests are
    // small, and a big one is read in several pieces.
    let ws = ws
        .max_message_size(MAX_CLIENT_MESSAGE)
        .read_buffer_size(READ_BUFFER);
    match state.try_open() {
        Some(guard) => ws.on_upgrade(move |socket| session::serve(socket, state, guard)),
        None => {
            state.metrics.session_refused("limit");
            ws.on_upgrade(refuse_session)
        }
    }
}

/// Past the session limit: the error (no id, no `connected`), then close 1008.
async fn refuse_session(mut socket: WebSocket) {
    let reason = "Session limit exceeded";
    let error = RpcResponse::error(None, code::SESSION_LIMIT, reason).encode();
    let _ = socket.feed(Message::Text(error.into())).await;
    let close = CloseFrame {
        code: 1008,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(close))).await.is_ok() {
        // Let the client answer the close so the connection ends cleanly.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(m)) = socket.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Server;

    fn config(token: Option<&str>) -> Config {
        let mut b = Server::builder();
        if let Some(t) = token {
            b = b.token(t);
        }
        b.into_config()
    }

    #[test]
    fn bearer_token_check() {
        let mut h = HeaderMap::new();
        assert!(authorized(&config(None), &h));
        assert!(!authorized(&config(Some("s3cret")), &h));
        h.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(authorized(&config(Some("s3cret")), &h));
        assert!(!authorized(&config(Some("s3cret2")), &h));
        h.insert(header::AUTHORIZATION, "Basic s3cret".parse().unwrap());
        assert!(!authorized(&config(Some("s3cret")), &h));
        for ok in ["bearer s3cret", "BEARER   s3cret"] {
            h.insert(header::AUTHORIZATION, ok.parse().unwrap());
            assert!(authorized(&config(Some("s3cret")), &h), "{ok}");
        }
        for bad in [
            "Bearers3cret",
            "Bearer",
            "Bearer ",
            "Bearer s3cre",
            "Bearer s3cret x",
        ] {
            h.insert(header::AUTHORIZATION, bad.parse().unwrap());
            assert!(!authorized(&config(Some("s3cret")), &h), "{bad}");
        }
    }
}
