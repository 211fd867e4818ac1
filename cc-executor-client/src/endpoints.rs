//! Several services behind one client: which one takes the next session, and what is known of
//! each (from its `/health`, checked in the background, and from the connections made).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

use crate::client::Config;
use crate::error::{Error, Result};
use crate::transport;

/// How often the background task asks every endpoint for its `/health` (at most).
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// The longest a health check may take.
const CHECK_BOUND: Duration = Duration::from_secs(5);
/// The most of a `/health` answer read.
const MAX_HEALTH_ANSWER: u64 = 64 * 1024;

/// What the client knows of an endpoint's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointHealth {
    /// Not checked yet and not connected to: it is tried like a healthy one.
    Unknown,
    /// `/health` answered `healthy`, or a session opened since the last check.
    Healthy,
    /// `/health` said `draining`, or an upgrade got HTTP 503: no new runs go there.
    Draining,
    /// `/health` failed, or connecting did: tried only when no other endpoint is left.
    Down,
}

/// One endpoint of a [`Client`](crate::Client) and what is known of it, from
/// [`Client::endpoints`](crate::Client::endpoints).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStatus {
    /// The service's WebSocket URL.
    pub url: Url,
    /// Its health.
    pub health: EndpointHealth,
    /// The sessions it reported open at its last health check.
    pub active_sessions: Option<usize>,
    /// The session limit it reported.
    pub max_sessions: Option<usize>,
    /// When it was last checked (never, for a client with one endpoint).
    pub checked_at: Option<Instant>,
}

/// The endpoints of one client.
#[derive(Debug)]
pub(crate) struct Pool {
    endpoints: Vec<Endpoint>,
    /// Where ties start, turning with each choice so that equal endpoints take turns.
    turn: AtomicUsize,
    refreshing: AtomicBool,
}

#[derive(Debug)]
struct Endpoint {
    url: Url,
    known: Mutex<Known>,
}

#[derive(Debug, Clone, Copy)]
struct Known {
    health: EndpointHealth,
    active: Option<usize>,
    max: Option<usize>,
    /// Sessions this client opened there since the last health check.
    opened: usize,
    /// It answered -32003 since the last health check.
    full: bool,
    checked_at: Option<Instant>,
}

impl Pool {
    pub fn new(urls: Vec<Url>) -> Self {
        let known = Known {
            health: EndpointHealth::Unknown,
            active: None,
            max: None,
            opened: 0,
            full: false,
            checked_at: None,
        };
        Pool {
            endpoints: urls
                .into_iter()
                .map(|url| Endpoint {
                    url,
                    known: Mutex::new(known),
                })
                .collect(),
            turn: AtomicUsize::new(0),
            refreshing: AtomicBool::new(false),
        }
    }

    pub fn first(&self) -> &Url {
        &self.endpoints[0].url
    }

    pub fn url(&self, i: usize) -> &Url {
        &self.endpoints[i].url
    }

    fn known(&self, i: usize) -> std::sync::MutexGuard<'_, Known> {
        self.endpoints[i]
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub fn statuses(&self) -> Vec<EndpointStatus> {
        (0..self.endpoints.len())
            .map(|i| {
                let k = *self.known(i);
                EndpointStatus {
                    url: self.endpoints[i].url.clone(),
                    health: k.health,
                    active_sessions: k.active,
                    max_sessions: k.max,
                    checked_at: k.checked_at,
                }
            })
            .collect()
    }

    /// Every endpoint, best first: usable ones by fewest sessions (reported plus opened since),
    /// then full ones, then those down, then draining ones. Equal ones take turns.
    pub fn order(&self) -> Vec<usize> {
        let n = self.endpoints.len();
        let start = self.turn.fetch_add(1, Ordering::Relaxed) % n;
        let mut ranked: Vec<(u8, usize, usize, usize)> = (0..n)
            .map(|i| {
                let k = *self.known(i);
                let rank = match k.health {
                    EndpointHealth::Unknown | EndpointHealth::Healthy if k.full => 1,
                    EndpointHealth::Unknown | EndpointHealth::Healthy => 0,
                    EndpointHealth::Down => 2,
                    EndpointHealth::Draining => 3,
                };
                let load = k.active.unwrap_or(0) + k.opened;
                (rank, load, (i + n - start) % n, i)
            })
            .collect();
        ranked.sort_unstable();
        ranked.into_iter().map(|(.., i)| i).collect()
    }

    /// A session opened at endpoint `i`.
    pub fn opened(&self, i: usize) {
        let mut k = self.known(i);
        k.opened += 1;
        if k.health != EndpointHealth::Draining {
            k.health = EndpointHealth::Healthy;
        }
    }

    /// Connecting to endpoint `i` (or starting a run there) failed with `e`.
    pub fn failed(&self, i: usize, e: &Error) {
        let mut k = self.known(i);
        match e {
            Error::Unavailable { .. } => k.health = EndpointHealth::Draining,
            Error::SessionLimit => k.full = true,
            _ => k.health = EndpointHealth::Down,
        }
    }

    /// Start the background health checks (once, and only for several endpoints). They stop
    /// when the client is dropped.
    pub fn start_refreshing(cfg: &Arc<Config>) {
        let pool = &cfg.pool;
        if pool.endpoints.len() < 2 || pool.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            pool.refreshing.store(false, Ordering::SeqCst);
            return;
        };
        for i in 0..pool.endpoints.len() {
            rt.spawn(refresh(Arc::downgrade(cfg), i));
        }
    }

    fn record(&self, i: usize, report: Option<HealthReport>) {
        let mut k = self.known(i);
        k.checked_at = Some(Instant::now());
        k.opened = 0;
        k.full = false;
        match report {
            Some(r) => {
                k.health = if r.status == "draining" {
                    EndpointHealth::Draining
                } else {
                    EndpointHealth::Healthy
                };
                k.active = r.active_sessions;
                k.max = r.max_sessions;
                k.full =
                    matches!((r.active_sessions, r.max_sessions), (Some(a), Some(m)) if a >= m);
            }
            None => k.health = EndpointHealth::Down,
        }
    }
}

/// Whether a failure to get a session (or the service's answer to `execute`) leaves the run
/// unstarted and another endpoint worth trying. Bad credentials, TLS trouble or a bad URL are
/// the caller's to fix and are not tried elsewhere.
pub(crate) fn try_next(e: &Error) -> bool {
    matches!(
        e,
        Error::Connect { .. }
            | Error::ConnectTimeout { .. }
            | Error::ConnectionClosed { .. }
            | Error::WebSocket(_)
            | Error::Unavailable { .. }
            | Error::SessionLimit
    )
}

/// Check endpoint `i` each [`REFRESH_EVERY`] until the client is gone. Each endpoint has its
/// own loop, so that one slow to answer (e.g. a service on its way out) delays no other's news.
async fn refresh(cfg: Weak<Config>, i: usize) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(cfg) = cfg.upgrade() else { return };
        let url = cfg.pool.url(i).clone();
        let bound = cfg.connect_timeout.min(CHECK_BOUND);
        // A check that gets no answer in time (a loaded machine, a slow network) says nothing
        // new: only a refused or failed check marks the service down, so that one slow answer
        // does not send every run elsewhere.
        if let Ok(report) = tokio::time::timeout(bound, check(&cfg, &url)).await {
            cfg.pool.record(i, report.ok());
        }
    }
}

/// The fields of `/health` used here.
#[derive(Debug, serde::Deserialize)]
struct HealthReport {
    status: String,
    active_sessions: Option<usize>,
    max_sessions: Option<usize>,
}

/// `GET /health` on the host and port of the WebSocket URL `ws` (over TLS for `wss://`).
async fn check(cfg: &Config, ws: &Url) -> Result<HealthReport> {
    let fail = |e: &dyn std::fmt::Display| Error::Connect {
        url: ws.to_string(),
        source: format!("health check: {e}").into(),
    };
    let host = ws.host_str().ok_or_else(|| fail(&"no host"))?;
    let port = ws.port_or_known_default().ok_or_else(|| fail(&"no port"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = TcpStream::connect((bare, port))
        .await
        .map_err(|e| fail(&e))?;
    let authority = match ws.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let request = format!(
        "GET /health HTTP/1.0\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    let answer = if ws.scheme() == "wss" {
        let tls = transport::tls_config(cfg, ws.as_str())?;
        let name =
            rustls::pki_types::ServerName::try_from(bare.to_owned()).map_err(|e| fail(&e))?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| fail(&e))?;
        exchange(stream, &request).await
    } else {
        exchange(tcp, &request).await
    }
    .map_err(|e| fail(&e))?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail(&"no HTTP header"))?;
    let status = head.split(' ').nth(1).unwrap_or("");
    if status != "200" {
        return Err(fail(&format!("HTTP {status}")));
    }
    serde_json::from_str(body).map_err(|e| fail(&e))
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
) -> std::io::Result<String> {
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut answer = Vec::new();
    stream
        .take(MAX_HEALTH_ANSWER)
        .read_to_end(&mut answer)
        .await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> Pool {
        Pool::new(
            (0..n)
                .map(|i| Url::parse(&format!("ws://127.0.0.1:{}/ws", 9000 + i)).unwrap())
                .collect(),
        )
    }

    #[test]
    fn equal_endpoints_take_turns() {
        let p = pool(3);
        let mut firsts = [0; 3];
        for _ in 0..30 {
            let i = p.order()[0];
            firsts[i] += 1;
            p.opened(i);
        }
        assert_eq!(firsts, [10, 10, 10]);
    }

    #[test]
    fn down_and_draining_go_last() {
        let p = pool(3);
        p.failed(0, &Error::Unavailable { url: String::new() });
        p.failed(
            1,
            &Error::ConnectTimeout {
                url: String::new(),
                after: Duration::from_secs(1),
            },
        );
        for _ in 0..5 {
            assert_eq!(p.order(), [2, 1, 0]);
        }
        assert_eq!(p.statuses()[0].health, EndpointHealth::Draining);
        assert_eq!(p.statuses()[1].health, EndpointHealth::Down);
    }

    #[test]
    fn the_least_loaded_comes_first() {
        let p = pool(2);
        p.record(
            0,
            Some(HealthReport {
                status: "healthy".into(),
                active_sessions: Some(5),
                max_sessions: Some(100),
            }),
        );
        p.record(
            1,
            Some(HealthReport {
                status: "healthy".into(),
                active_sessions: Some(2),
                max_sessions: Some(100),
            }),
        );
        assert_eq!(p.order()[0], 1);
        for _ in 0..3 {
            p.opened(1);
        }
        // 5 against 2 + 3: a tie, then endpoint 1 is busier.
        p.opened(1);
        assert_eq!(p.order()[0], 0);
    }
}
