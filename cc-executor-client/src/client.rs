//! `Client` and its builder: configuration shared by every connection.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::command::Command;
use crate::connection;
use crate::endpoints::{self, EndpointStatus, Pool};
use crate::error::{Error, Result};
use crate::execution::{Execution, Outcome, Runs};
use crate::session::Session;
use crate::transport;

/// A handle to an executor service. Cheap to clone; every clone shares the configuration.
///
/// Each [`Client::execute`] opens a fresh session (WebSocket connection) for its run, so one
/// `Client` can drive many concurrent executions.
///
/// A client may know several services ([`Client::builder_with_endpoints`]): each new session
/// then goes to the one with the fewest sessions open, skipping any that is down or draining.
///
/// ```no_run
/// use std::time::Duration;
/// use cc_executor_client::{Client, Command};
///
/// # async fn demo() -> cc_executor_client::Result<()> {
/// let client = Client::builder("wss://executor.example.com/ws")
///     .token("secret")
///     .connect_timeout(Duration::from_secs(5))
///     .build()?;
/// let outcome = client
///     .run(Command::new("cargo build").timeout(Duration::from_secs(600)))
///     .await?;
/// println!("exit {:?}, {} bytes of stdout", outcome.exit_code, outcome.stdout.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) inner: Arc<Config>,
}

#[derive(Debug)]
pub(crate) struct Config {
    /// The services (one or more), with what is known of each.
    pub(crate) pool: Pool,
    pub(crate) token: Option<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) request_timeout: Duration,
    /// The timeout of a command that sets none.
    pub(crate) default_timeout: Option<Duration>,
    /// `None`: the platform's roots plus the Mozilla roots, with the `ring` provider.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    /// Runs started through this client (and its clones) that may still go on.
    pub(crate) runs: Runs,
    /// Ask services that offer it for batched output.
    pub(crate) batch_output: bool,
}

impl Config {
    /// `cmd` with the client's default timeout when it sets none.
    pub(crate) fn with_defaults(&self, cmd: Command) -> Command {
        self.default_timeout
            .into_iter()
            .fold(cmd, Command::or_timeout)
    }
}

/// Builds a [`Client`]: token, connect timeout, heartbeat, TLS roots.
#[derive(Debug)]
pub struct ClientBuilder {
    urls: Vec<String>,
    token: Option<String>,
    connect_timeout: Duration,
    heartbeat_timeout: Duration,
    request_timeout: Duration,
    default_timeout: Option<Duration>,
    tls: Option<Arc<rustls::ClientConfig>>,
    batch_output: bool,
}

impl Client {
    /// A client for the service at `url` (`ws://` or `wss://`). Parses and validates the URL; no I/O.
    pub fn new(url: impl AsRef<str>) -> Result<Client> {
        Self::builder(url).build()
    }

    /// A builder for a client of the service at `url`.
    pub fn builder(url: impl AsRef<str>) -> ClientBuilder {
        Self::builder_with_endpoints([url])
    }

    /// A builder for a client of several equivalent services (e.g. one per host).
    ///
    /// Each new session goes to the service with the fewest sessions open, as its `/health`
    /// reports (checked in the background about once a second, never while starting a run)
    /// plus the sessions this client opened there since; equal ones take turns. A service that
    /// fails its health check or refuses connections is skipped while others are up. When
    /// connecting fails, or the service answers with its session limit (-32003) or HTTP 503
    /// (draining), the next one is tried. Nothing is retried once the service has answered
    /// `started`: a command runs at most once. [`Client::endpoints`] tells what is known of
    /// each.
    ///
    /// ```no_run
    /// # async fn demo() -> cc_executor_client::Result<()> {
    /// let client = cc_executor_client::Client::builder_with_endpoints([
    ///     "ws://10.0.0.1:8004/ws",
    ///     "ws://10.0.0.2:8004/ws",
    /// ])
    /// .token("secret")
    /// .build()?;
    /// let outcome = client.run("hostname").await?;
    /// # Ok(()) }
    /// ```
    pub fn builder_with_endpoints<I, S>(urls: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        ClientBuilder {
            urls: urls.into_iter().map(|u| u.as_ref().to_owned()).collect(),
            token: None,
            connect_timeout: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            default_timeout: None,
            tls: None,
            batch_output: true,
        }
    }

    /// The service URL (the first one, for a client of several).
    pub fn url(&self) -> &Url {
        self.inner.pool.first()
    }

    /// Each endpoint and what is known of it: healthy, draining or down, sessions open.
    ///
    /// With several endpoints, calling it (inside a Tokio runtime) also starts the background
    /// health checks if no run has yet.
    pub fn endpoints(&self) -> Vec<EndpointStatus> {
        Pool::start_refreshing(&self.inner);
        self.inner.pool.statuses()
    }

    /// Start `cmd` in a fresh session and stream its events.
    ///
    /// The session's connection closes when the run ends or the [`Execution`] is dropped.
    ///
    /// Errors: a command that cannot be run ([`Error::InvalidCommand`], see
    /// [`Command::validate`]), connecting ([`Error::Connect`], [`Error::Tls`], [`Error::ConnectTimeout`],
    /// [`Error::Unauthorized`], [`Error::SessionLimit`]) and the service refusing the command
    /// ([`Error::CommandNotAllowed`], [`Error::Rpc`], ...).
    pub async fn execute(&self, cmd: impl Into<Command>) -> Result<Execution> {
        let cmd = self.inner.with_defaults(cmd.into());
        cmd.validate()?;
        let pool = &self.inner.pool;
        let mut last = None;
        for i in self.pool_order() {
            let conn = match self.connect(pool.url(i), true).await {
                Ok(conn) => conn,
                Err(e) if endpoints::try_next(&e) => {
                    pool.failed(i, &e);
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            pool.opened(i);
            // Only an explicit refusal is tried elsewhere: any other failure may come after
            // the service started the command.
            match Execution::start(conn, cmd.clone()).await {
                Err(e @ Error::SessionLimit) => {
                    pool.failed(i, &e);
                    last = Some(e);
                }
                other => return other,
            }
        }
        Err(last.expect("a client has at least one endpoint"))
    }

    /// The endpoints in the order to try them (and the health checks started).
    fn pool_order(&self) -> Vec<usize> {
        Pool::start_refreshing(&self.inner);
        self.inner.pool.order()
    }

    /// Run `cmd` to the end and collect its output.
    pub async fn run(&self, cmd: impl Into<Command>) -> Result<Outcome> {
        self.execute(cmd).await?.wait().await
    }

    /// Open one session (connection) for several executions one after another.
    ///
    /// With several endpoints it goes to the best one (see [`Client::builder_with_endpoints`]),
    /// trying the next when connecting fails.
    pub async fn session(&self) -> Result<Session> {
        let pool = &self.inner.pool;
        let mut last = None;
        for i in self.pool_order() {
            match self.connect(pool.url(i), false).await {
                Ok(conn) => {
                    pool.opened(i);
                    return Ok(Session::new(conn, self.inner.default_timeout));
                }
                Err(e) if endpoints::try_next(&e) => {
                    pool.failed(i, &e);
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("a client has at least one endpoint"))
    }

    async fn connect(&self, url: &Url, one_run: bool) -> Result<connection::ConnHandle> {
        let (ws, connected) = transport::connect(&self.inner, url).await?;
        Ok(connection::spawn(
            ws,
            connected,
            self.inner.heartbeat_timeout,
            self.inner.request_timeout,
            one_run,
            self.inner.runs.clone(),
            self.inner.batch_output,
        ))
    }

    /// Cancel every run started through this client (and its clones, its sessions and the
    /// [`Jobs`](crate::jobs::Jobs) on it) that is still going, and wait until each has ended (its
    /// group has exited), for at most `bound` in all. Returns whether they all ended in time (and
    /// logs a warning when they did not).
    ///
    /// For shutting down: nothing the client started outlives it, except runs that were
    /// [detached](Execution::detach) and then dropped, which no handle reaches any more.
    pub async fn cancel_all(&self, bound: Duration) -> bool {
        let live: Vec<_> = {
            let mut runs = self.inner.runs.lock().unwrap_or_else(|e| e.into_inner());
            runs.retain(|run| !run.is_finished());
            runs.iter().filter(|run| run.reachable()).cloned().collect()
        };
        let ended = live.iter().map(|run| async move {
            let _ = run.cancel().await;
            run.finished().await;
        });
        let all_ended = tokio::time::timeout(bound, futures_util::future::join_all(ended)).await;
        if all_ended.is_err() {
            tracing::warn!("some runs did not end within {}", crate::text::secs(bound));
        }
        all_ended.is_ok()
    }
}

impl ClientBuilder {
    /// Send `Authorization: Bearer <token>` at the WebSocket upgrade.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Bound the TCP connect, TLS and WebSocket handshake, and the wait for `connected`.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Consider the connection dead when nothing (no frame, no WebSocket pong) arrives for this long.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }

    /// Bound the wait for the service's answer to `execute` and to a control (pause / resume /
    /// cancel); past it the call fails with [`Error::NoResponse`]. An `execute` left unanswered
    /// also closes its connection, so a run the service starts late is killed with it.
    ///
    /// The heartbeat catches a service that went silent; this catches one that is alive but does
    /// not answer. Default 30 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Bound every run whose command sets no timeout by `timeout` (see [`Command::timeout`]),
    /// e.g. so that a tool's runs cannot outlive a default. No default unless set.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = Some(timeout);
        self
    }

    /// Use this TLS configuration for `wss://` (e.g. with a private root store) instead of the
    /// platform's roots plus the Mozilla roots.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use cc_executor_client::{rustls, Client};
    ///
    /// # fn demo(roots: rustls::RootCertStore) -> cc_executor_client::Result<()> {
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let tls = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .expect("ring supports the default versions")
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let client = Client::builder("wss://executor.internal/ws")
    ///     .tls_config(Arc::new(tls))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Add a service to those the client spreads its sessions over (see
    /// [`Client::builder_with_endpoints`]).
    pub fn endpoint(mut self, url: impl AsRef<str>) -> Self {
        self.urls.push(url.as_ref().to_owned());
        self
    }

    /// Whether to ask services that offer it
    /// ([`batch_output`](crate::protocol::capability::BATCH_OUTPUT)) to send many short lines in
    /// one frame. Default: yes. The events are the same either way (one per line, unless
    /// [`Command::raw_chunks`]); off, every line costs a frame, as with services without it.
    pub fn batch_output(mut self, batch: bool) -> Self {
        self.batch_output = batch;
        self
    }

    /// Validate the configuration and build the client. No I/O.
    ///
    /// Each URL must be `ws://` or `wss://` with a host, and there must be at least one; the
    /// timeouts must not be zero.
    pub fn build(self) -> Result<Client> {
        let first = self.urls.first().cloned().unwrap_or_default();
        let invalid = |reason: String| Error::InvalidUrl {
            url: first.clone(),
            reason,
        };
        if self.urls.is_empty() {
            return Err(invalid("no service URL was given".into()));
        }
        let urls = self
            .urls
            .iter()
            .map(|u| parse_url(u))
            .collect::<Result<Vec<_>>>()?;
        if self.connect_timeout.is_zero()
            || self.heartbeat_timeout.is_zero()
            || self.request_timeout.is_zero()
        {
            return Err(invalid(
                "the connect, heartbeat and request timeouts must be greater than zero".into(),
            ));
        }
        Ok(Client {
            inner: Arc::new(Config {
                pool: Pool::new(urls),
                token: self.token,
                connect_timeout: self.connect_timeout,
                heartbeat_timeout: self.heartbeat_timeout,
                request_timeout: self.request_timeout,
                default_timeout: self.default_timeout,
                tls: self.tls,
                runs: Runs::default(),
                batch_output: self.batch_output,
            }),
        })
    }
}

/// A service URL: `ws://` or `wss://` with a host.
fn parse_url(given: &str) -> Result<Url> {
    let invalid = |reason: String| Error::InvalidUrl {
        url: given.to_owned(),
        reason,
    };
    let url = Url::parse(given).map_err(|e| invalid(e.to_string()))?;
    match url.scheme() {
        "ws" | "wss" => {}
        other => {
            return Err(invalid(format!(
                "the scheme must be ws or wss, not {other:?}"
            )))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host".into()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ws_and_wss() {
        assert!(Client::new("ws://127.0.0.1:8004/ws").is_ok());
        let c = Client::new("wss://example.com/ws").unwrap();
        assert_eq!(c.url().scheme(), "wss");
    }

    #[test]
    fn rejects_other_urls() {
        for bad in ["http://h/ws", "not a url", "ws://", "file:///tmp/x", ""] {
            assert!(
                matches!(Client::new(bad), Err(Error::InvalidUrl { .. })),
                "{bad:?} accepted"
            );
        }
        let none: [&str; 0] = [];
        assert!(matches!(
            Client::builder_with_endpoints(none).build(),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            Client::builder_with_endpoints(["ws://a/ws", "http://b/ws"]).build(),
            Err(Error::InvalidUrl { url, .. }) if url == "http://b/ws"
        ));
        assert!(matches!(
            Client::builder("ws://h/ws")
                .heartbeat_timeout(Duration::ZERO)
                .build(),
            Err(Error::InvalidUrl { .. })
        ));
    }
}
