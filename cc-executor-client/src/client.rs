//! `Client` and its builder: configuration shared by every connection.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::command::Command;
use crate::error::Result;
use crate::execution::{Execution, Outcome};
use crate::session::Session;

/// A handle to an executor service. Cheap to clone; every clone shares the configuration.
///
/// Each [`Client::execute`] opens a fresh session (WebSocket connection) for its run, so one
/// `Client` can drive many concurrent executions.
#[derive(Debug, Clone)]
pub struct Client {
    #[allow(dead_code)]
    pub(crate) inner: Arc<Config>,
}

#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) url: Url,
    pub(crate) token: Option<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) heartbeat_timeout: Duration,
}

/// Builds a [`Client`]: token, connect timeout, heartbeat, TLS roots.
#[derive(Debug)]
pub struct ClientBuilder {
    url: String,
    token: Option<String>,
    connect_timeout: Duration,
    heartbeat_timeout: Duration,
}

impl Client {
    /// A client for the service at `url` (`ws://` or `wss://`). Parses and validates the URL; no I/O.
    pub fn new(url: impl AsRef<str>) -> Result<Client> {
        Self::builder(url).build()
    }

    /// A builder for a client of the service at `url`.
    pub fn builder(url: impl AsRef<str>) -> ClientBuilder {
        ClientBuilder {
            url: url.as_ref().to_owned(),
            token: None,
            connect_timeout: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(30),
        }
    }

    /// The service URL.
    pub fn url(&self) -> &Url {
        &self.inner.url
    }

    /// Start `cmd` in a fresh session and stream its events.
    pub async fn execute(&self, cmd: impl Into<Command>) -> Result<Execution> {
        let _ = cmd.into();
        todo!()
    }

    /// Run `cmd` to the end and collect its output.
    pub async fn run(&self, cmd: impl Into<Command>) -> Result<Outcome> {
        self.execute(cmd).await?.wait().await
    }

    /// Open one session (connection) for several executions one after another.
    pub async fn session(&self) -> Result<Session> {
        todo!()
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

    /// Validate the configuration and build the client. No I/O.
    pub fn build(self) -> Result<Client> {
        let url = Url::parse(&self.url).map_err(|e| crate::Error::InvalidUrl {
            url: self.url.clone(),
            reason: e.to_string(),
        })?;
        Ok(Client {
            inner: Arc::new(Config {
                url,
                token: self.token,
                connect_timeout: self.connect_timeout,
                heartbeat_timeout: self.heartbeat_timeout,
            }),
        })
    }
}
