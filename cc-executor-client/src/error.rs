//! The error type of every fallible operation of this crate.

use std::time::Duration;

use serde_json::Value;

use crate::event::{RateLimit, TokenLimit};
use crate::protocol::{code, ErrorObject};

/// A boxed error source (keeps transport crates out of the public API).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong talking to an executor service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service URL could not be used.
    #[error("invalid service URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TCP connection or WebSocket handshake failed.
    #[error("could not connect to {url}: {source}")]
    Connect {
        /// The service URL.
        url: String,
        /// The underlying failure.
        #[source]
        source: BoxError,
    },
    /// The TLS setup or handshake failed.
    #[error("TLS failure talking to {url}: {source}")]
    Tls {
        /// The service URL.
        url: String,
        /// The underlying failure.
        #[source]
        source: BoxError,
    },
    /// Connecting took longer than the configured connect timeout.
    #[error("connecting to {url} timed out after {after:?}")]
    ConnectTimeout {
        /// The service URL.
        url: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The service refused the credentials (HTTP 401 at the WebSocket upgrade).
    #[error("the service refused the connection as unauthorized (HTTP 401); check the token")]
    Unauthorized,
    /// A WebSocket failure on an established connection.
    #[error("WebSocket error: {0}")]
    WebSocket(#[source] BoxError),
    /// The connection closed before the execution ended.
    #[error("the connection closed before the run ended (code {code:?}, reason {reason:?})")]
    ConnectionClosed {
        /// The close code, when the service sent a close frame.
        code: Option<u16>,
        /// The close reason (empty when none).
        reason: String,
    },
    /// No frame and no WebSocket pong arrived for the configured heartbeat time.
    #[error("the service sent nothing for {idle:?}; the connection is considered dead")]
    HeartbeatTimeout {
        /// How long it was silent.
        idle: Duration,
    },
    /// The service sent a frame that is malformed or unexpected here.
    #[error("protocol error: {message} (frame: {frame})")]
    Protocol {
        /// What is wrong.
        message: String,
        /// The frame text (cut to 1,000 characters).
        frame: String,
    },
    /// The service answered with a JSON-RPC error not classified below.
    #[error("the service returned error {code}: {message}")]
    Rpc {
        /// The JSON-RPC error code.
        code: i64,
        /// The service's message.
        message: String,
        /// The error's `data`.
        data: Value,
    },
    /// The command is empty or the service's allowlist refuses it (-32001).
    #[error("the service refused the command: {message}")]
    CommandNotAllowed {
        /// The service's message.
        message: String,
    },
    /// A process is already running in this session (-32602).
    #[error("a process is already running in this session")]
    AlreadyRunning,
    /// No process is running to control (-32002, or the process already exited).
    #[error("no process is running: {message}")]
    NoProcess {
        /// The service's message.
        message: String,
    },
    /// The service has as many sessions as it allows (-32003, close 1008).
    #[error("the service is at its session limit")]
    SessionLimit,
    /// The run did not finish within its timeout and was canceled.
    #[error("the run did not finish within {after:?} and was canceled")]
    Timeout {
        /// The timeout that expired.
        after: Duration,
    },
    /// The run hit a token / context limit.
    #[error("token limit exceeded: {0}")]
    TokenLimitExceeded(TokenLimit),
    /// The run hit a usage or rate limit.
    #[error("rate limited: {0}")]
    RateLimited(RateLimit),
    /// No job with this id is held (never started, forgotten, or evicted).
    #[error("no job {id}: it was never started here, was forgotten, or was evicted")]
    UnknownJob {
        /// The job id asked for.
        id: u64,
    },
    /// A `claude -p` run ended without its final `result` line (it crashed, was misconfigured, or
    /// could not start).
    #[error("claude ended without a result (exit code {exit_code:?}, last stderr {stderr:?})")]
    ClaudeFailed {
        /// The exit code, when the service reported one.
        exit_code: Option<i32>,
        /// The last lines Claude wrote to stderr, joined with `\n`.
        stderr: String,
    },
    /// A local I/O failure (e.g. writing an output file).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Classify a JSON-RPC error object into the variants above.
    ///
    /// `control_request` tells whether the error answers a `control`: the reference service reports
    /// control of an exited process as -32603 "Process group … not found", which is [`Error::NoProcess`].
    pub fn from_rpc(err: ErrorObject, control_request: bool) -> Error {
        match err.code {
            code::COMMAND_NOT_ALLOWED => Error::CommandNotAllowed {
                message: err.message,
            },
            code::ALREADY_RUNNING => Error::AlreadyRunning,
            code::NO_PROCESS => Error::NoProcess {
                message: err.message,
            },
            code::SESSION_LIMIT => Error::SessionLimit,
            code::INTERNAL_ERROR
                if control_request && err.message.to_ascii_lowercase().contains("not found") =>
            {
                Error::NoProcess {
                    message: err.message,
                }
            }
            code => Error::Rpc {
                code,
                message: err.message,
                data: err.data,
            },
        }
    }

    /// A protocol error about `frame` (cut to 1,000 characters).
    pub fn protocol(message: impl Into<String>, frame: &str) -> Error {
        let frame = match frame.char_indices().nth(1000) {
            Some((i, _)) => format!("{}…", &frame[..i]),
            None => frame.to_owned(),
        };
        Error::Protocol {
            message: message.into(),
            frame,
        }
    }

    /// Whether retrying the same call later may succeed (connection trouble, limits, session limit).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::ConnectTimeout { .. }
            | Error::ConnectionClosed { .. }
            | Error::HeartbeatTimeout { .. }
            | Error::WebSocket(_)
            | Error::SessionLimit
            | Error::AlreadyRunning => true,
            Error::RateLimited(r) => r.recoverable,
            Error::TokenLimitExceeded(t) => t.recoverable,
            _ => false,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
