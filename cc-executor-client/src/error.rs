//! The error type of every fallible operation of this crate.

use std::time::Duration;

use serde_json::Value;

use crate::event::{RateLimit, TokenLimit};
use crate::protocol::{code, ErrorObject};
use crate::text::{clip_chars, secs};

/// A boxed error source (keeps transport crates out of the public API).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong talking to an executor service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service URL could not be used.
    #[error("invalid service URL {url:?}: {reason}; give a ws:// or wss:// URL such as ws://127.0.0.1:8004/ws")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TCP connection or WebSocket handshake failed.
    #[error("could not connect to {url}: {source}; check that the service is running and reachable there")]
    Connect {
        /// The service URL.
        url: String,
        /// The underlying failure.
        #[source]
        source: BoxError,
    },
    /// The TLS setup or handshake failed.
    #[error("could not open a secure (TLS) connection to {url}: {}; check the URL scheme, the service's certificate and the roots this client trusts", tls_reason(.source))]
    Tls {
        /// The service URL.
        url: String,
        /// The underlying failure.
        #[source]
        source: BoxError,
    },
    /// Connecting took longer than the configured connect timeout.
    #[error("connecting to {url} timed out after {}; check that the service is up, or raise the connect timeout", secs(*after))]
    ConnectTimeout {
        /// The service URL.
        url: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The service answered the WebSocket upgrade with HTTP 503: it is draining or stopping and
    /// takes no new sessions. A client with several endpoints tries the next one.
    #[error("{url} takes no new sessions (HTTP 503: draining or stopping); use another service or try again once it is back")]
    Unavailable {
        /// The service URL.
        url: String,
    },
    /// The service refused the credentials (HTTP 401 at the WebSocket upgrade).
    #[error("the service refused the connection as unauthorized (HTTP 401); check the token")]
    Unauthorized,
    /// A WebSocket failure on an established connection.
    #[error("WebSocket error: {0}; the connection is unusable, connect again")]
    WebSocket(#[source] BoxError),
    /// The connection closed before the execution ended.
    #[error("the connection to the service closed{} before the run ended; connect again and check the service's logs", close_detail(*.code, .reason))]
    ConnectionClosed {
        /// The close code, when the service sent a close frame.
        code: Option<u16>,
        /// The close reason (empty when none).
        reason: String,
    },
    /// No frame and no WebSocket pong arrived for the configured heartbeat time.
    #[error("the service sent nothing for {}, so the connection was dropped as dead; check that the service is still running and reachable, then connect again", secs(*idle))]
    HeartbeatTimeout {
        /// How long it was silent.
        idle: Duration,
    },
    /// The service did not answer a request within the client's request timeout
    /// ([`ClientBuilder::request_timeout`](crate::ClientBuilder::request_timeout)).
    #[error("the service did not answer `{method}` within {}; check that it is healthy (an unanswered `execute` also closes its connection, killing anything it started)", secs(*after))]
    NoResponse {
        /// The request's method (`execute` or `control`).
        method: &'static str,
        /// The request timeout.
        after: Duration,
    },
    /// The service sent a frame that is malformed or unexpected here.
    #[error("the service sent a frame this client cannot use ({message}); check that the URL points to a compatible cc-executor service; the frame: {frame}")]
    Protocol {
        /// What is wrong.
        message: String,
        /// The frame text (cut to 1,000 characters).
        frame: String,
    },
    /// The service answered with a JSON-RPC error not classified below.
    #[error("the service answered with error {code}: {message}; check the request against the service's message")]
    Rpc {
        /// The JSON-RPC error code.
        code: i64,
        /// The service's message.
        message: String,
        /// The error's `data`.
        data: Value,
    },
    /// The command was not sent: it cannot be run as it is (an empty prompt, a zero timeout).
    #[error("invalid command: {reason}")]
    InvalidCommand {
        /// What is wrong and what to do, e.g. "the prompt is empty; give Claude a task to do".
        reason: String,
    },
    /// The command is empty or the service's allowlist refuses it (-32001).
    #[error("the command was refused ({message}); run a non-empty command that the service's allowlist permits")]
    CommandNotAllowed {
        /// The service's message.
        message: String,
    },
    /// A process is already running in this session (-32602).
    #[error("a process is already running in this session; wait for it to end, or run the command in another session")]
    AlreadyRunning,
    /// No process is running to control (-32002, or the process already exited).
    #[error("no process is running to control ({message}); the run has already ended")]
    NoProcess {
        /// The service's message.
        message: String,
    },
    /// The service has as many sessions as it allows (-32003, close 1008).
    #[error("the service is at its session limit; close other sessions or retry later")]
    SessionLimit,
    /// The service does not advertise a capability the request needs (such as
    /// [`stdin`](crate::protocol::capability::STDIN) or [`pty`](crate::protocol::capability::PTY));
    /// nothing was sent.
    #[error("the service does not support `{capability}`; run the command without it, or use a service that advertises it")]
    Unsupported {
        /// The capability missing from the service's `connected`.
        capability: &'static str,
    },
    /// The run's stdin cannot take input (-32004): it was started without a stdin pipe or
    /// terminal, it was closed (end of file sent), or the command no longer reads it.
    #[error("the run's stdin is not open ({message}); start the command with a stdin pipe or a terminal, and write before closing it")]
    StdinClosed {
        /// The service's message.
        message: String,
    },
    /// Too much input waits for a command that does not read it (-32005, more than 1 MiB).
    #[error("input refused ({message}); wait until the command reads what it was sent")]
    InputFull {
        /// The service's message.
        message: String,
    },
    /// The run did not finish within its timeout and was canceled.
    #[error(
        "the run did not finish within {} and was canceled; raise the timeout if it needs longer",
        secs(*after)
    )]
    Timeout {
        /// The timeout that expired.
        after: Duration,
    },
    /// A canceled run did not report its end in time
    /// ([`Controller::until_canceled`](crate::Controller::until_canceled)).
    #[error("the run was canceled but did not report its end within {}; its process group may still be running, check the service", secs(*after))]
    CancelTimeout {
        /// How long its end was awaited.
        after: Duration,
    },
    /// The run hit a token / context limit.
    #[error("token limit exceeded: {0}; shorten the input or split the task")]
    TokenLimitExceeded(TokenLimit),
    /// The run hit a usage or rate limit.
    #[error("rate limited: {0}; retry once the limit has reset")]
    RateLimited(RateLimit),
    /// No job with this id is held (never started, forgotten, or evicted).
    #[error("no job {id}: it was never started here, was forgotten, or was evicted; list the jobs held to find the right id")]
    UnknownJob {
        /// The job id asked for.
        id: u64,
    },
    /// A `claude -p` run ended without its final `result` line (it crashed, was misconfigured, or
    /// could not start).
    #[error("claude ended without a result{}; check that `claude` is installed on the service's PATH and logged in", claude_detail(*.exit_code, .stderr))]
    ClaudeFailed {
        /// The exit code, when the service reported one.
        exit_code: Option<i32>,
        /// The last lines Claude wrote to stderr, joined with `\n`.
        stderr: String,
    },
    /// A local I/O failure (e.g. writing an output file).
    #[error("I/O error: {0}; check the path and its permissions")]
    Io(#[from] std::io::Error),
    /// A request could not be used as given (e.g. a grep pattern that is not a valid regular
    /// expression, a wait on no job).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong and what to do.
        reason: String,
    },
}

impl Error {
    /// Classify a JSON-RPC error object into the variants above.
    ///
    /// `control_request` tells whether the error answers a `control`: the reference service reports
    /// control of an exited process as -32603 "Process group … not found", which is [`Error::NoProcess`].
    pub(crate) fn from_rpc(err: ErrorObject, control_request: bool) -> Error {
        match err.code {
            code::COMMAND_NOT_ALLOWED => Error::CommandNotAllowed {
                message: err.message,
            },
            code::ALREADY_RUNNING => Error::AlreadyRunning,
            code::NO_PROCESS => Error::NoProcess {
                message: err.message,
            },
            code::SESSION_LIMIT => Error::SessionLimit,
            code::STDIN_CLOSED => Error::StdinClosed {
                message: err.message,
            },
            code::INPUT_FULL => Error::InputFull {
                message: err.message,
            },
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
    pub(crate) fn protocol(message: impl Into<String>, frame: &str) -> Error {
        Error::Protocol {
            message: message.into(),
            frame: clip_chars(frame, 1000),
        }
    }

    /// The connection closed with `code` and `reason`: close 1008 naming the session limit is
    /// [`Error::SessionLimit`] (the service's -32003 comes as an error response, see
    /// [`Error::from_rpc`]); anything else is [`Error::ConnectionClosed`].
    pub(crate) fn closed(code: Option<u16>, reason: String) -> Error {
        if code == Some(1008) && reason.to_ascii_lowercase().contains("session") {
            return Error::SessionLimit;
        }
        Error::ConnectionClosed { code, reason }
    }

    /// Plain sentences for a reader (a person, or a model driving a tool): the limit and when it
    /// resets ([`RateLimit::advice`], [`TokenLimit::advice`]), a killed run, or a Claude run's exit
    /// code and last stderr lines (at most about 4,000 bytes); otherwise the message as a sentence.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cc_executor_client::Error;
    ///
    /// let e = Error::Timeout { after: Duration::from_secs(5) };
    /// assert_eq!(e.advice(), "The run did not finish within 5s; its process group was killed.");
    /// ```
    pub fn advice(&self) -> String {
        match self {
            Error::RateLimited(r) => r.advice(),
            Error::TokenLimitExceeded(t) => t.advice(),
            Error::Timeout { after } => format!(
                "The run did not finish within {}; its process group was killed.",
                secs(*after)
            ),
            Error::ClaudeFailed { exit_code, stderr } => format!(
                "Claude ended without a result (exit code {}).{} Its last stderr lines:\n{}",
                exit_code.map_or("unknown".into(), |c| c.to_string()),
                if *exit_code == Some(127) {
                    " Is `claude` installed and on the service's PATH?"
                } else {
                    ""
                },
                crate::text::bound(stderr, 4000).0,
            ),
            _ => format!("{self}."),
        }
    }

    /// Whether retrying the same call later may succeed (connection trouble, limits, session limit).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::ConnectTimeout { .. }
            | Error::ConnectionClosed { .. }
            | Error::HeartbeatTimeout { .. }
            | Error::NoResponse { .. }
            | Error::WebSocket(_)
            | Error::SessionLimit
            | Error::Unavailable { .. }
            | Error::AlreadyRunning => true,
            Error::RateLimited(r) => r.recoverable,
            Error::TokenLimitExceeded(t) => t.recoverable,
            _ => false,
        }
    }
}

/// ` (code 1011, "internal error")`, ` (code 1000)` or nothing.
fn close_detail(code: Option<u16>, reason: &str) -> String {
    match (code, reason.is_empty()) {
        (Some(code), true) => format!(" (code {code})"),
        (Some(code), false) => format!(" (code {code}, {reason:?})"),
        (None, false) => format!(" ({reason})"),
        (None, true) => String::new(),
    }
}

/// ` (exit code 127, last stderr: …)` with what is known, on one line.
fn claude_detail(exit_code: Option<i32>, stderr: &str) -> String {
    let mut parts = Vec::new();
    if let Some(code) = exit_code {
        parts.push(format!("exit code {code}"));
    }
    let stderr = stderr.trim();
    if !stderr.is_empty() {
        parts.push(format!("last stderr: {}", stderr.replace('\n', " | ")));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// Why a TLS handshake failed, in words: the certificate problems a person meets (a self-signed
/// or private-CA certificate, an expired one, a host-name mismatch, a plain `ws://` service behind
/// a `wss://` URL) are named; anything else is the TLS library's own message.
fn tls_reason(source: &BoxError) -> String {
    use rustls::{CertificateError as C, Error as R};
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
    let mut rustls_error = None;
    while let Some(e) = cause {
        // tokio-rustls reports handshake failures as I/O errors wrapping the rustls error.
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<R>());
        rustls_error = e.downcast_ref::<R>().or(inner);
        if rustls_error.is_some() {
            break;
        }
        cause = e.source();
    }
    let plain = match rustls_error {
        Some(R::InvalidCertificate(c)) => match c {
            C::UnknownIssuer => {
                "the service's certificate is not signed by an authority this client trusts (is it \
                 self-signed, or from a private CA?)"
            }
            C::Expired | C::ExpiredContext { .. } => "the service's certificate has expired",
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the service's certificate is not valid yet (check the clocks)"
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "the service's certificate is not valid for this host name"
            }
            C::Revoked => "the service's certificate has been revoked",
            _ => "the service's certificate was rejected",
        },
        Some(R::InvalidMessage(_)) => {
            "the service did not answer in TLS (is it a plain ws:// service?)"
        }
        _ => return source.to_string(),
    };
    plain.to_owned()
}

/// An error for people: its message, then each underlying cause on a line of its own
/// (`  caused by: …`), leaving out a cause the line above already says. For programs that end
/// on an error: `eprintln!("error: {}", Report(&err))`.
///
/// ```
/// use cc_executor_client::error::Report;
/// use cc_executor_client::rustls::{CertificateError, Error as TlsError};
///
/// let cert = TlsError::InvalidCertificate(CertificateError::UnknownIssuer);
/// let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, cert);
/// let err = cc_executor_client::Error::Tls { url: "wss://h/ws".into(), source: inner.into() };
/// let text = Report(&err).to_string();
/// assert!(text.starts_with("could not open a secure (TLS) connection to wss://h/ws: the service's \
///                           certificate is not signed by an authority this client trusts"));
/// assert!(text.ends_with("\n  caused by: invalid peer certificate: UnknownIssuer"));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Report<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut said = self.0.to_string();
        f.write_str(&said)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            let text = e.to_string();
            if !text.is_empty() && !said.contains(&text) {
                write!(f, "\n  caused by: {text}")?;
            }
            said = text;
            cause = e.source();
        }
        Ok(())
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_names_a_missing_claude_and_ends_sentences() {
        let e = Error::ClaudeFailed {
            exit_code: Some(127),
            stderr: "sh: claude: not found".into(),
        };
        let text = e.advice();
        assert!(text.starts_with("Claude ended without a result (exit code 127). Is `claude`"));
        assert!(
            text.ends_with("Its last stderr lines:\nsh: claude: not found"),
            "{text}"
        );
        assert_eq!(
            Error::SessionLimit.advice(),
            format!("{}.", Error::SessionLimit)
        );
    }
    use crate::event::RateLimitKind;

    fn every_kind() -> Vec<Error> {
        let url = "ws://h:1/ws".to_owned();
        vec![
            Error::InvalidUrl {
                url: "http://h".into(),
                reason: "the scheme must be ws or wss".into(),
            },
            Error::Connect {
                url: url.clone(),
                source: "connection refused".into(),
            },
            Error::Tls {
                url: url.clone(),
                source: "unknown issuer".into(),
            },
            Error::ConnectTimeout {
                url,
                after: Duration::from_secs(10),
            },
            Error::Unauthorized,
            Error::WebSocket("reset by peer".into()),
            Error::ConnectionClosed {
                code: None,
                reason: String::new(),
            },
            Error::ConnectionClosed {
                code: Some(1011),
                reason: "internal error".into(),
            },
            Error::HeartbeatTimeout {
                idle: Duration::from_nanos(30_001_234_567),
            },
            Error::NoResponse {
                method: "control",
                after: Duration::from_secs(30),
            },
            Error::protocol("unexpected binary frame", "<3 bytes>"),
            Error::Rpc {
                code: -32603,
                message: "boom".into(),
                data: Value::Null,
            },
            Error::CommandNotAllowed {
                message: "rm is not allowed".into(),
            },
            Error::InvalidCommand {
                reason: "the timeout is zero; give a positive timeout, or none".into(),
            },
            Error::AlreadyRunning,
            Error::NoProcess {
                message: "Process group 42 not found".into(),
            },
            Error::SessionLimit,
            Error::Timeout {
                after: Duration::from_secs(5),
            },
            Error::RateLimited(RateLimit::new(RateLimitKind::Http429, "slow down", "raw")),
            Error::UnknownJob { id: 7 },
            Error::CancelTimeout {
                after: Duration::from_secs(20),
            },
            Error::ClaudeFailed {
                exit_code: None,
                stderr: String::new(),
            },
            Error::ClaudeFailed {
                exit_code: Some(127),
                stderr: "claude: not found".into(),
            },
            Error::Io(std::io::Error::other("disk full")),
            Error::InvalidRequest {
                reason: "give `id` or `ids`; not both".into(),
            },
        ]
    }

    /// One sentence for a person: no Rust debug syntax, and a hint of what to do.
    #[test]
    fn messages_read_as_one_sentence_with_advice() {
        for e in every_kind() {
            let text = e.to_string();
            for debug in ["Some(", "None", "\"\"", "{", "000000"] {
                assert!(!text.contains(debug), "{debug:?} in {text:?}");
            }
            assert!(text.contains("; "), "no advice in {text:?}");
            assert!(!text.ends_with('.') && !text.contains('\n'), "{text:?}");
        }
    }

    #[test]
    fn tls_failures_are_named_and_reports_list_each_cause_once() {
        let cert = |e: rustls::CertificateError| -> BoxError {
            Box::new(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(e),
            ))
        };
        let tls = |source| Error::Tls {
            url: "wss://h:1/ws".into(),
            source,
        };
        let e = tls(cert(rustls::CertificateError::UnknownIssuer));
        assert_eq!(
            Report(&e).to_string(),
            "could not open a secure (TLS) connection to wss://h:1/ws: the service's certificate \
             is not signed by an authority this client trusts (is it self-signed, or from a \
             private CA?); check the URL scheme, the service's certificate and the roots this \
             client trusts\n  caused by: invalid peer certificate: UnknownIssuer"
        );
        let e = tls(cert(rustls::CertificateError::NotValidForName));
        assert!(
            e.to_string().contains("not valid for this host name"),
            "{e}"
        );
        // A cause already in the message is not repeated.
        let e = Error::Connect {
            url: "ws://h:1/ws".into(),
            source: "connection refused".into(),
        };
        assert_eq!(Report(&e).to_string(), e.to_string());
    }

    #[test]
    fn closed_and_silent_connections_say_what_happened() {
        assert_eq!(
            Error::ConnectionClosed {
                code: Some(1011),
                reason: "internal error".into()
            }
            .to_string(),
            "the connection to the service closed (code 1011, \"internal error\") before the run \
             ended; connect again and check the service's logs"
        );
        assert_eq!(
            Error::HeartbeatTimeout {
                idle: Duration::from_nanos(30_001_234_567)
            }
            .to_string(),
            "the service sent nothing for 30.0s, so the connection was dropped as dead; check \
             that the service is still running and reachable, then connect again"
        );
        assert_eq!(
            Error::ClaudeFailed {
                exit_code: Some(127),
                stderr: "sh: claude: not found".into()
            }
            .to_string(),
            "claude ended without a result (exit code 127, last stderr: sh: claude: not found); \
             check that `claude` is installed on the service's PATH and logged in"
        );
    }
}
