//! The wire format: serde types for every JSON-RPC 2.0 frame of the executor protocol.
//!
//! These types mirror the frames byte-for-byte in shape (field names, field order, `null` where
//! the reference service sends `null`). They are shared by the client (`cc-executor-client`, which
//! re-exports this crate as `cc_executor_client::protocol` and maps frames to its own public event
//! types) and the service (`cc-executor-server`).
//!
//! Decoding is forward compatible: unknown fields are ignored and unknown notification methods
//! decode as [`ServerNotification::Unknown`].
//!
//! ```
//! use cc_executor_protocol::{ServerFrame, ServerNotification};
//!
//! let text = r#"{"jsonrpc":"2.0","method":"process.output","params":{"type":"stdout","data":"hi\n","truncated":false,"chunk_index":null,"total_chunks":null}}"#;
//! match ServerFrame::decode(text).unwrap() {
//!     ServerFrame::Notification(ServerNotification::ProcessOutput(out)) => assert_eq!(out.data, "hi\n"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// The JSON-RPC version string every frame carries.
pub const JSONRPC_VERSION: &str = "2.0";

/// The version the Rust service reports in `connected`.
pub const PROTOCOL_VERSION: &str = "1.0.0";

/// Characters (not bytes) per `process.output` chunk; longer lines are split.
pub const CHUNK_CHARS: usize = 65_536;

/// Method names, as they appear on the wire.
pub mod method {
    /// Client request: start a command.
    pub const EXECUTE: &str = "execute";
    /// Client request: PAUSE / RESUME / CANCEL the running process group.
    pub const CONTROL: &str = "control";
    /// Client notification answering the service's `ping`.
    pub const PONG: &str = "pong";
    /// Client request: hook configuration of the service.
    pub const HOOK_STATUS: &str = "hook_status";
    /// Service notification sent first on every accepted connection.
    pub const CONNECTED: &str = "connected";
    /// Service heartbeat notification.
    pub const PING: &str = "ping";
    /// The command started.
    pub const PROCESS_STARTED: &str = "process.started";
    /// A line (or chunk of a line) of stdout or stderr.
    pub const PROCESS_OUTPUT: &str = "process.output";
    /// The process group was stopped (SIGSTOP).
    pub const PROCESS_PAUSED: &str = "process.paused";
    /// The process group was continued (SIGCONT).
    pub const PROCESS_RESUMED: &str = "process.resumed";
    /// The process group was sent SIGTERM on request.
    pub const PROCESS_CANCELED: &str = "process.canceled";
    /// The command exited (any exit code), timed out, or finished after a cancel.
    pub const PROCESS_COMPLETED: &str = "process.completed";
    /// The command could not be run.
    pub const PROCESS_ERROR: &str = "process.error";
    /// A token / context limit message was seen in the output.
    pub const TOKEN_LIMIT_EXCEEDED: &str = "error.token_limit_exceeded";
    /// A usage limit or rate limit message was seen in the output.
    pub const RATE_LIMIT_EXCEEDED: &str = "error.rate_limit_exceeded";
    /// A completion phrase was seen in the output.
    pub const EARLY_COMPLETION: &str = "task.early_completion";
    /// A hook reported a warning.
    pub const HOOK_WARNING: &str = "hook.warning";
}

/// JSON-RPC error codes used by the protocol.
pub mod code {
    /// Parse error (standard JSON-RPC; the reference service uses [`INTERNAL_ERROR`] instead).
    pub const PARSE_ERROR: i64 = -32700;
    /// Unknown method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// "A process is already running" (this protocol's use of the invalid-params code).
    pub const ALREADY_RUNNING: i64 = -32602;
    /// Invalid JSON, failed validation of params, or control of a process that has exited.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Empty command, or a command the allowlist refuses.
    pub const COMMAND_NOT_ALLOWED: i64 = -32001;
    /// Control with no process running.
    pub const NO_PROCESS: i64 = -32002;
    /// The service has as many sessions as it allows; the connection is closed with 1008.
    pub const SESSION_LIMIT: i64 = -32003;
}

/// Values of `connected.capabilities`.
pub mod capability {
    /// The service runs commands.
    pub const EXECUTE: &str = "execute";
    /// The service accepts `control`.
    pub const CONTROL: &str = "control";
    /// The service streams output.
    pub const STREAM: &str = "stream";
    /// After a CANCEL, once the process group has exited, the service sends a final
    /// `process.completed` with `status: "canceled"`. Without it, `process.canceled` is the last frame.
    pub const COMPLETED_AFTER_CANCEL: &str = "completed_after_cancel";
    /// `execute.params.timeout` bounds the whole run (the group is killed at the deadline).
    pub const RUN_TIMEOUT: &str = "run_timeout";
    /// `execute.params.cwd` is honoured.
    pub const CWD: &str = "cwd";
}

/// Process status strings used in `status` fields.
pub mod status {
    /// `execute` result and `process.started`.
    pub const STARTED: &str = "started";
    /// Exit code 0.
    pub const COMPLETED: &str = "completed";
    /// Non-zero exit, killed by a signal, or timed out.
    pub const FAILED: &str = "failed";
    /// Paused with SIGSTOP.
    pub const PAUSED: &str = "paused";
    /// Resumed with SIGCONT.
    pub const RESUMED: &str = "resumed";
    /// Canceled on request.
    pub const CANCELED: &str = "canceled";
    /// The process could not be run.
    pub const ERROR: &str = "error";
}

/// A request or notification id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// A numeric id.
    Number(i64),
    /// A string id.
    Str(String),
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// A client-to-service frame: a request (with `id`) or a notification (without).
///
/// `params` is kept raw so that a service can report validation failures per method.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// The method name.
    pub method: String,
    /// Method parameters; absent for `pong`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// Absent for notifications; the response then carries no id either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
}

impl Request {
    /// A request with params and an optional id.
    pub fn new(method: impl Into<String>, params: Option<Value>, id: Option<Id>) -> Self {
        Request {
            jsonrpc: JSONRPC_VERSION.to_owned(),
            method: method.into(),
            params,
            id,
        }
    }

    /// `execute` with the given params.
    pub fn execute(params: &ExecuteParams, id: Id) -> Self {
        Self::new(method::EXECUTE, Some(to_value(params)), Some(id))
    }

    /// `control` of the given type.
    pub fn control(kind: ControlType, id: Id) -> Self {
        Self::new(
            method::CONTROL,
            Some(to_value(&ControlParams { kind })),
            Some(id),
        )
    }

    /// The `pong` notification that answers a `ping`.
    pub fn pong() -> Self {
        Self::new(method::PONG, None, None)
    }

    /// Encode as one JSON text frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a Request always serializes")
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("protocol params always serialize")
}

/// Params of `execute`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecuteParams {
    /// The shell command line, run with `sh -c`.
    pub command: String,
    /// Seconds. The Rust service bounds the whole run with it; the reference service uses it as a
    /// per-line inactivity timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    /// Working directory for the command (honoured by services that advertise [`capability::CWD`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// The three control operations; they act on the whole process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ControlType {
    /// SIGSTOP to the group.
    Pause,
    /// SIGCONT to the group.
    Resume,
    /// SIGTERM, then SIGKILL after a grace, to the group.
    Cancel,
}

impl ControlType {
    /// The wire spelling (`PAUSE`, `RESUME`, `CANCEL`).
    pub fn as_str(self) -> &'static str {
        match self {
            ControlType::Pause => "PAUSE",
            ControlType::Resume => "RESUME",
            ControlType::Cancel => "CANCEL",
        }
    }
}

/// Params of `control`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlParams {
    /// Which operation.
    #[serde(rename = "type")]
    pub kind: ControlType,
}

/// Result of a successful `execute`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecuteResult {
    /// Always `"started"`.
    pub status: String,
    /// Pid of the `sh -c` process (the group leader).
    pub pid: u32,
    /// The process group id; `null` when the reference service did not learn it in time.
    pub pgid: Option<u32>,
}

/// Result of a successful `control`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlResult {
    /// `"paused"`, `"resumed"` or `"canceled"`.
    pub status: String,
}

/// The error object of an error response. `data` is always present (often `null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// One of [`code`].
    pub code: i64,
    /// Human-readable message.
    pub message: String,
    /// Extra data; `null` when there is none.
    #[serde(default)]
    pub data: Value,
}

/// A service-to-client response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// Present on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Present on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
    /// Absent when the request had none or the error is not tied to a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
}

impl Response {
    /// A success response.
    pub fn ok(id: Option<Id>, result: Value) -> Self {
        Response {
            jsonrpc: JSONRPC_VERSION.to_owned(),
            result: Some(result),
            error: None,
            id,
        }
    }

    /// An error response with `data: null`.
    pub fn error(id: Option<Id>, code: i64, message: impl Into<String>) -> Self {
        Response {
            jsonrpc: JSONRPC_VERSION.to_owned(),
            result: None,
            error: Some(ErrorObject {
                code,
                message: message.into(),
                data: Value::Null,
            }),
            id,
        }
    }

    /// Encode as one JSON text frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a Response always serializes")
    }
}

/// A service-to-client notification with typed params, for encoding.
#[derive(Debug, Clone, Serialize)]
pub struct Notification<'a, P> {
    /// Always `"2.0"`.
    pub jsonrpc: &'static str,
    /// The method name.
    pub method: &'a str,
    /// The params.
    pub params: P,
}

impl<'a, P: Serialize> Notification<'a, P> {
    /// A notification of `method` with `params`.
    pub fn new(method: &'a str, params: P) -> Self {
        Notification {
            jsonrpc: JSONRPC_VERSION,
            method,
            params,
        }
    }

    /// Encode as one JSON text frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a Notification always serializes")
    }

    /// Append the encoded frame to `buf` (lets a hot path reuse one buffer).
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        serde_json::to_writer(buf, self).expect("a Notification always serializes")
    }
}

/// Params of `connected`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedParams {
    /// The session id (a UUID).
    pub session_id: String,
    /// The service's protocol version.
    pub version: String,
    /// What the service can do; see [`capability`].
    #[serde(default)]
    pub capabilities: Vec<String>,
}

impl ConnectedParams {
    /// Whether the service advertises `cap`.
    pub fn has(&self, cap: &str) -> bool {
        self.capabilities.iter().any(|c| c == cap)
    }
}

/// Params of `ping`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PingParams {
    /// Unix time in seconds.
    pub timestamp: f64,
}

/// Params of `process.started|paused|resumed|canceled|error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStatusParams {
    /// One of [`status`].
    pub status: String,
    /// Pid of the group leader.
    pub pid: Option<u32>,
    /// Process group id.
    pub pgid: Option<u32>,
    /// Exit code, when known.
    pub exit_code: Option<i32>,
    /// Error text, when any.
    pub error: Option<String>,
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl OutputStream {
    /// `"stdout"` or `"stderr"`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        }
    }
}

/// Params of `process.output`: one line with its `\n`, or one chunk of a long line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputParams<'a> {
    /// `"stdout"` or `"stderr"`.
    #[serde(rename = "type")]
    pub stream: OutputStream,
    /// The text; invalid UTF-8 has become U+FFFD.
    #[serde(borrow)]
    pub data: Cow<'a, str>,
    /// True on every chunk of a long line but the last.
    #[serde(default)]
    pub truncated: bool,
    /// 0-based chunk index, `null` for an unchunked line.
    pub chunk_index: Option<u32>,
    /// Number of chunks, `null` for an unchunked line.
    pub total_chunks: Option<u32>,
}

impl OutputParams<'_> {
    /// Detach from the buffer it was decoded from.
    pub fn into_owned(self) -> OutputParams<'static> {
        OutputParams {
            stream: self.stream,
            data: Cow::Owned(self.data.into_owned()),
            truncated: self.truncated,
            chunk_index: self.chunk_index,
            total_chunks: self.total_chunks,
        }
    }
}

/// Params of `process.completed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletedParams {
    /// `"completed"` (exit 0), `"failed"` (non-zero, signal, timeout) or `"canceled"`.
    pub status: String,
    /// Pid of the group leader.
    pub pid: Option<u32>,
    /// Process group id.
    pub pgid: Option<u32>,
    /// Exit code; negative signal number when killed by a signal.
    pub exit_code: Option<i32>,
    /// Why it failed, e.g. `"timed out after 30s"`.
    pub error: Option<String>,
    /// Seconds from start to exit.
    #[serde(default)]
    pub execution_time: f64,
    /// A completion phrase was seen.
    #[serde(default)]
    pub early_completion_detected: bool,
    /// Seconds from start to the completion phrase.
    #[serde(default)]
    pub early_completion_time: Option<f64>,
    /// Seconds between the completion phrase and exit.
    #[serde(default)]
    pub time_saved: f64,
    /// The completion phrase seen.
    #[serde(default)]
    pub completion_marker: Option<String>,
    /// Present (true) only when the run was killed at its `timeout`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub timed_out: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Params of `error.token_limit_exceeded`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLimitParams {
    /// The session id.
    #[serde(default)]
    pub session_id: String,
    /// `"token_limit"`.
    #[serde(default)]
    pub error_type: String,
    /// The limit in tokens, when the text names one.
    #[serde(default)]
    pub limit: Option<u64>,
    /// A summary.
    #[serde(default)]
    pub message: String,
    /// What to try instead.
    #[serde(default)]
    pub suggestion: Option<String>,
    /// The output line that matched.
    #[serde(default)]
    pub error_text: String,
    /// Whether a retry can succeed.
    #[serde(default)]
    pub recoverable: bool,
}

/// Params of `error.rate_limit_exceeded`.
///
/// `reset_timestamp` is present (possibly `null`) for usage limits and absent for HTTP 429;
/// `retry_after` is present only for HTTP 429, as in the reference service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimitParams {
    /// The session id.
    #[serde(default)]
    pub session_id: String,
    /// `"usage_limit"` or `"rate_limit_429"`.
    #[serde(default)]
    pub error_type: String,
    /// A summary.
    #[serde(default)]
    pub message: String,
    /// Unix seconds at which the limit resets: `None` absent, `Some(None)` sent as `null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option"
    )]
    pub reset_timestamp: Option<Option<f64>>,
    /// The output line that matched.
    #[serde(default)]
    pub error_text: String,
    /// Whether a retry can succeed.
    #[serde(default)]
    pub recoverable: bool,
    /// Seconds to wait before retrying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

/// Params of `task.early_completion`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyCompletionParams {
    /// The session id.
    #[serde(default)]
    pub session_id: String,
    /// The phrase seen.
    #[serde(default)]
    pub marker: String,
    /// Seconds from start.
    #[serde(default)]
    pub elapsed_time: f64,
    /// The line it was seen in.
    #[serde(default)]
    pub output_line: String,
}

/// Every frame a service sends, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerFrame {
    /// A response to a request.
    Response(Response),
    /// A notification.
    Notification(ServerNotification),
}

/// A service notification, typed by method. Unknown methods are kept, not rejected.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerNotification {
    /// `connected`.
    Connected(ConnectedParams),
    /// `ping`.
    Ping(PingParams),
    /// `process.started`.
    ProcessStarted(ProcessStatusParams),
    /// `process.output`.
    ProcessOutput(OutputParams<'static>),
    /// `process.paused`.
    ProcessPaused(ProcessStatusParams),
    /// `process.resumed`.
    ProcessResumed(ProcessStatusParams),
    /// `process.canceled`.
    ProcessCanceled(ProcessStatusParams),
    /// `process.completed`.
    ProcessCompleted(CompletedParams),
    /// `process.error`.
    ProcessError(ProcessStatusParams),
    /// `error.token_limit_exceeded`.
    TokenLimitExceeded(TokenLimitParams),
    /// `error.rate_limit_exceeded`.
    RateLimitExceeded(RateLimitParams),
    /// `task.early_completion`.
    EarlyCompletion(EarlyCompletionParams),
    /// `hook.warning` (shape not fixed by the protocol).
    HookWarning(Value),
    /// Any other method.
    Unknown {
        /// The method name.
        method: String,
        /// The params, `null` when absent.
        params: Value,
    },
}

impl ServerNotification {
    /// The wire method name.
    pub fn method(&self) -> &str {
        match self {
            ServerNotification::Connected(_) => method::CONNECTED,
            ServerNotification::Ping(_) => method::PING,
            ServerNotification::ProcessStarted(_) => method::PROCESS_STARTED,
            ServerNotification::ProcessOutput(_) => method::PROCESS_OUTPUT,
            ServerNotification::ProcessPaused(_) => method::PROCESS_PAUSED,
            ServerNotification::ProcessResumed(_) => method::PROCESS_RESUMED,
            ServerNotification::ProcessCanceled(_) => method::PROCESS_CANCELED,
            ServerNotification::ProcessCompleted(_) => method::PROCESS_COMPLETED,
            ServerNotification::ProcessError(_) => method::PROCESS_ERROR,
            ServerNotification::TokenLimitExceeded(_) => method::TOKEN_LIMIT_EXCEEDED,
            ServerNotification::RateLimitExceeded(_) => method::RATE_LIMIT_EXCEEDED,
            ServerNotification::EarlyCompletion(_) => method::EARLY_COMPLETION,
            ServerNotification::HookWarning(_) => method::HOOK_WARNING,
            ServerNotification::Unknown { method, .. } => method,
        }
    }

    /// Encode as one JSON text frame.
    pub fn encode(&self) -> String {
        let m = self.method();
        match self {
            ServerNotification::Connected(p) => Notification::new(m, p).encode(),
            ServerNotification::Ping(p) => Notification::new(m, p).encode(),
            ServerNotification::ProcessStarted(p)
            | ServerNotification::ProcessPaused(p)
            | ServerNotification::ProcessResumed(p)
            | ServerNotification::ProcessCanceled(p)
            | ServerNotification::ProcessError(p) => Notification::new(m, p).encode(),
            ServerNotification::ProcessOutput(p) => Notification::new(m, p).encode(),
            ServerNotification::ProcessCompleted(p) => Notification::new(m, p).encode(),
            ServerNotification::TokenLimitExceeded(p) => Notification::new(m, p).encode(),
            ServerNotification::RateLimitExceeded(p) => Notification::new(m, p).encode(),
            ServerNotification::EarlyCompletion(p) => Notification::new(m, p).encode(),
            ServerNotification::HookWarning(p) => Notification::new(m, p).encode(),
            ServerNotification::Unknown { params, .. } => Notification::new(m, params).encode(),
        }
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed frame: {source}")]
pub struct DecodeError {
    #[from]
    source: serde_json::Error,
}

#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(default, borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<ErrorObject>,
    #[serde(default)]
    id: Option<Id>,
}

impl ServerFrame {
    /// Decode one text frame from a service.
    ///
    /// A frame with a `method` is a notification; one with `result` or `error` is a response.
    /// Anything else, or known params of the wrong shape, is a [`DecodeError`].
    pub fn decode(text: &str) -> Result<ServerFrame, DecodeError> {
        if let Some(out) = decode_output_fast(text) {
            return Ok(ServerFrame::Notification(
                ServerNotification::ProcessOutput(out),
            ));
        }
        Self::decode_general(text)
    }

    fn decode_general(text: &str) -> Result<ServerFrame, DecodeError> {
        let raw: RawFrame<'_> = serde_json::from_str(text)?;
        if let Some(m) = raw.method {
            let params = raw.params.map(RawValue::get).unwrap_or("null");
            return Ok(ServerFrame::Notification(decode_notification(&m, params)?));
        }
        if raw.result.is_none() && raw.error.is_none() {
            return Err(DecodeError {
                source: serde::de::Error::custom("frame has neither method, result nor error"),
            });
        }
        Ok(ServerFrame::Response(Response {
            jsonrpc: JSONRPC_VERSION.to_owned(),
            result: raw.result,
            error: raw.error,
            id: raw.id,
        }))
    }

    /// Encode as one JSON text frame.
    pub fn encode(&self) -> String {
        match self {
            ServerFrame::Response(r) => r.encode(),
            ServerFrame::Notification(n) => n.encode(),
        }
    }
}

/// `process.output` exactly as services write it (compact, members in the usual order, no
/// other member), decoded in one pass with one allocation; `None` for anything else, which the
/// general path then decodes (or rejects).
///
/// This is the client's hot path. It accepts only frames that are valid JSON of that shape, and
/// gives what the general path would (the tests compare the two).
fn decode_output_fast(text: &str) -> Option<OutputParams<'static>> {
    const PREFIX: &str = r#"{"jsonrpc":"2.0","method":"process.output","params":{"type":""#;
    let rest = text.strip_prefix(PREFIX)?;
    let (stream, rest) = match rest.strip_prefix(r#"stdout","data":""#) {
        Some(r) => (OutputStream::Stdout, r),
        None => (
            OutputStream::Stderr,
            rest.strip_prefix(r#"stderr","data":""#)?,
        ),
    };
    let (data, rest) = unescape_json_string(rest)?;
    let rest = rest.strip_prefix(r#","truncated":"#)?;
    let (truncated, rest) = match rest.strip_prefix("true") {
        Some(r) => (true, r),
        None => (false, rest.strip_prefix("false")?),
    };
    let (chunk_index, rest) = opt_u32(rest.strip_prefix(r#","chunk_index":"#)?)?;
    let (total_chunks, rest) = opt_u32(rest.strip_prefix(r#","total_chunks":"#)?)?;
    (rest == "}}").then_some(OutputParams {
        stream,
        data: Cow::Owned(data),
        truncated,
        chunk_index,
        total_chunks,
    })
}

/// The string that starts `s` (just after its opening quote), unescaped, and what follows its
/// closing quote. `None` on `\u` escapes (left to serde_json) and on anything invalid.
fn unescape_json_string(s: &str) -> Option<(String, &str)> {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    // Start of the run of bytes not yet copied.
    let mut start = 0;
    let mut i = 0;
    loop {
        // Skip 8 bytes at a time while none is special.
        if let Some(word) = bytes.get(i..i + 8) {
            let w = u64::from_le_bytes(word.try_into().ok()?);
            if !word_has_special(w) {
                i += 8;
                continue;
            }
        }
        // Special bytes are ASCII, so these slice bounds are character boundaries.
        match *bytes.get(i)? {
            b'"' => {
                out.push_str(&s[start..i]);
                return Some((out, &s[i + 1..]));
            }
            b'\\' => {
                out.push_str(&s[start..i]);
                out.push(match *bytes.get(i + 1)? {
                    b'"' => '"',
                    b'\\' => '\\',
                    b'/' => '/',
                    b'n' => '\n',
                    b't' => '\t',
                    b'r' => '\r',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    _ => return None,
                });
                i += 2;
                start = i;
            }
            // A raw control character is not valid JSON.
            0..=0x1f => return None,
            _ => i += 1,
        }
    }
}

impl OutputParams<'_> {
    /// Encode as a whole `process.output` frame: byte for byte what serde_json writes for
    /// `Notification::new(method::PROCESS_OUTPUT, self)`, written by hand because it is a
    /// service's hot path (one frame per output line).
    pub fn encode_frame(&self) -> String {
        let mut out = String::with_capacity(self.data.len() + 160);
        out.push_str(r#"{"jsonrpc":"2.0","method":"process.output","params":{"type":""#);
        out.push_str(self.stream.as_str());
        out.push_str(r#"","data":""#);
        escape_json_into(&mut out, &self.data);
        out.push_str(if self.truncated {
            r#"","truncated":true,"chunk_index":"#
        } else {
            r#"","truncated":false,"chunk_index":"#
        });
        push_opt_u32(&mut out, self.chunk_index);
        out.push_str(r#","total_chunks":"#);
        push_opt_u32(&mut out, self.total_chunks);
        out.push_str("}}");
        out
    }
}

fn push_opt_u32(out: &mut String, v: Option<u32>) {
    match v {
        Some(n) => {
            let _ = std::fmt::Write::write_fmt(out, format_args!("{n}"));
        }
        None => out.push_str("null"),
    }
}

/// Append `s` as the inside of a JSON string, escaped as serde_json escapes it: `\"`, `\\`,
/// `\b \f \n \r \t`, other control characters as `\u00xx`; everything else verbatim.
fn escape_json_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    // Start of the run of bytes not yet copied.
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip 8 bytes at a time while none needs escaping.
        if let Some(word) = bytes.get(i..i + 8) {
            let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            if !word_has_special(w) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => {
                i += 1;
                continue;
            }
        };
        // Escaped bytes are ASCII, so these slice bounds are character boundaries.
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        } else {
            out.push_str(esc);
        }
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
}

/// Whether any byte of `w` is a control character, `"` or `\\` (exact as a yes/no answer).
#[inline]
fn word_has_special(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let quote = has_zero(w ^ (ONES * u64::from(b'"')));
    let backslash = has_zero(w ^ (ONES * u64::from(b'\\')));
    (below_space | quote | backslash) != 0
}

/// `null` or a JSON integer that fits a `u32` at the start of `s`, and the rest.
fn opt_u32(s: &str) -> Option<(Option<u32>, &str)> {
    if let Some(rest) = s.strip_prefix("null") {
        return Some((None, rest));
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    // No leading zeros in JSON; anything unusual goes to the general path.
    if digits == 0 || (digits > 1 && s.starts_with('0')) {
        return None;
    }
    let n = s[..digits].parse().ok()?;
    Some((Some(n), &s[digits..]))
}

fn decode_notification(m: &str, params: &str) -> Result<ServerNotification, serde_json::Error> {
    use serde_json::from_str as de;
    Ok(match m {
        method::CONNECTED => ServerNotification::Connected(de(params)?),
        method::PING => ServerNotification::Ping(de(params)?),
        method::PROCESS_STARTED => ServerNotification::ProcessStarted(de(params)?),
        method::PROCESS_OUTPUT => {
            let p: OutputParams<'_> = de(params)?;
            ServerNotification::ProcessOutput(p.into_owned())
        }
        method::PROCESS_PAUSED => ServerNotification::ProcessPaused(de(params)?),
        method::PROCESS_RESUMED => ServerNotification::ProcessResumed(de(params)?),
        method::PROCESS_CANCELED => ServerNotification::ProcessCanceled(de(params)?),
        method::PROCESS_COMPLETED => ServerNotification::ProcessCompleted(de(params)?),
        method::PROCESS_ERROR => ServerNotification::ProcessError(de(params)?),
        method::TOKEN_LIMIT_EXCEEDED => ServerNotification::TokenLimitExceeded(de(params)?),
        method::RATE_LIMIT_EXCEEDED => ServerNotification::RateLimitExceeded(de(params)?),
        method::EARLY_COMPLETION => ServerNotification::EarlyCompletion(de(params)?),
        method::HOOK_WARNING => ServerNotification::HookWarning(de(params)?),
        other => ServerNotification::Unknown {
            method: other.to_owned(),
            params: de(params)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_shapes_match_reference() {
        let usage = RateLimitParams {
            session_id: "s".into(),
            error_type: "usage_limit".into(),
            message: "m".into(),
            reset_timestamp: Some(None),
            error_text: "t".into(),
            recoverable: false,
            retry_after: None,
        };
        let v: Value = serde_json::to_value(&usage).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "session_id",
                "error_type",
                "message",
                "reset_timestamp",
                "error_text",
                "recoverable"
            ]
        );
        assert!(v["reset_timestamp"].is_null());
        let back: RateLimitParams = serde_json::from_value(v).unwrap();
        assert_eq!(back.reset_timestamp, Some(None));
    }

    #[test]
    fn unknown_method_and_fields_decode() {
        let f = ServerFrame::decode(
            r#"{"jsonrpc":"2.0","method":"future.thing","params":{"a":1},"extra":true}"#,
        )
        .unwrap();
        assert!(matches!(
            f,
            ServerFrame::Notification(ServerNotification::Unknown { ref method, .. }) if method == "future.thing"
        ));
        let f = ServerFrame::decode(
            r#"{"jsonrpc":"2.0","method":"connected","params":{"session_id":"x","version":"1","capabilities":[],"new":1}}"#,
        )
        .unwrap();
        assert!(matches!(
            f,
            ServerFrame::Notification(ServerNotification::Connected(_))
        ));
    }

    fn output_frame(stream: &str, data_json: &str, tail: &str) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","method":"process.output","params":{{"type":"{stream}","data":{data_json},{tail}}}}}"#
        )
    }

    #[test]
    fn output_fast_path_matches_the_general_path() {
        let mut datas: Vec<String> = [
            "",
            "plain\n",
            "tab\tq\"\u{1}\u{1f}\\ / é€𝄞\r\u{8}\u{c}\u{7f}",
            "\u{2028}\u{ffff}",
        ]
        .iter()
        .map(|d| serde_json::to_string(d).unwrap())
        .collect();
        datas.push("x".repeat(1000));
        datas.push(serde_json::to_string(&"y".repeat(1000)).unwrap());
        // Escapes serde_json does not write but a service may.
        datas.extend([r#""a\/b""#, r#""\u00e9\ud834\udd1e""#, r#""\u0041""#].map(String::from));
        let tails = [
            r#""truncated":false,"chunk_index":null,"total_chunks":null"#,
            r#""truncated":true,"chunk_index":0,"total_chunks":2"#,
            r#""truncated":false,"chunk_index":4294967295,"total_chunks":10"#,
            // Unusual but valid, and invalid: both must agree with the general path.
            r#""truncated":false,"chunk_index":4294967296,"total_chunks":null"#,
            r#""truncated":false,"chunk_index":01,"total_chunks":null"#,
            r#""truncated":false,"chunk_index":1.0,"total_chunks":null"#,
            r#""truncated":false,"chunk_index":-1,"total_chunks":null"#,
            r#""truncated":false,"chunk_index":null,"total_chunks":null,"x":[1]"#,
            r#""truncated":false,"chunk_index":null"#,
            r#""truncated":null,"chunk_index":null,"total_chunks":null"#,
            r#""chunk_index":null,"total_chunks":null,"truncated":true"#,
        ];
        let mut fast_hits = 0;
        for stream in ["stdout", "stderr", "video"] {
            for data in &datas {
                for tail in tails {
                    let f = output_frame(stream, data, tail);
                    let general = ServerFrame::decode_general(&f).map_err(|e| e.to_string());
                    let got = ServerFrame::decode(&f).map_err(|e| e.to_string());
                    if let Some(fast) = decode_output_fast(&f) {
                        fast_hits += 1;
                        let fast =
                            ServerFrame::Notification(ServerNotification::ProcessOutput(fast));
                        assert_eq!(Ok(fast), general, "{f}");
                    }
                    assert_eq!(got, general, "{f}");
                }
            }
        }
        assert!(
            fast_hits >= 2 * 5 * 3,
            "the fast path is taken ({fast_hits})"
        );
        for bad in [
            output_frame("stdout", "\"a\u{1}\"", tails[0]),
            output_frame("stdout", "\"a\\x\"", tails[0]),
            output_frame("stdout", "\"a", tails[0]),
            output_frame("stdout", "\"a\"", tails[0]) + "}",
            output_frame("stdout", "\"a\"", tails[0]).replace("}}", "}"),
        ] {
            assert!(ServerFrame::decode(&bad).is_err(), "{bad}");
        }
        // Other layouts of a valid frame still decode.
        for ok in [
            r#"{"jsonrpc":"2.0","method":"process.output","params":{"type":"stdout","data":"y"},"id":null}"#,
            r#"{"method":"process.output","jsonrpc":"2.0","params":{"type":"stdout","data":"z"}}"#,
            r#"{"jsonrpc":"2.0","method":"process.output","params":{"type":"stdout","data":"w","truncated":false,"chunk_index":null,"total_chunks":null} }"#,
        ] {
            assert!(ServerFrame::decode(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(ServerFrame::decode("{not json").is_err());
        assert!(ServerFrame::decode("[]").is_err());
        assert!(ServerFrame::decode(r#"{"jsonrpc":"2.0"}"#).is_err());
        assert!(ServerFrame::decode(
            r#"{"jsonrpc":"2.0","method":"process.output","params":{"type":"video"}}"#
        )
        .is_err());
    }

    #[test]
    fn hand_encoded_output_frames_match_serde_json() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain line\n".into(),
            "\"quoted\" \\ back\\slash\n".into(),
            "héllo wörld €𝄞 \u{7f}\u{80}\u{ffff}\n".into(),
            "x".repeat(1000) + "\n",
        ];
        // Every ASCII character, at every offset within a word.
        for c in 0u8..=0x7f {
            for pad in 0..9 {
                samples.push(format!(
                    "{}{}{}",
                    "a".repeat(pad),
                    c as char,
                    "b".repeat(9 - pad)
                ));
            }
        }
        let shapes = [
            (OutputStream::Stdout, false, None, None),
            (OutputStream::Stderr, true, Some(0), Some(3)),
            (OutputStream::Stdout, false, Some(2), Some(3)),
            (OutputStream::Stderr, true, Some(u32::MAX), None),
        ];
        for data in &samples {
            for (stream, truncated, chunk_index, total_chunks) in shapes {
                let p = OutputParams {
                    stream,
                    data: Cow::Borrowed(data),
                    truncated,
                    chunk_index,
                    total_chunks,
                };
                assert_eq!(
                    p.encode_frame(),
                    Notification::new(method::PROCESS_OUTPUT, &p).encode(),
                    "{data:?}"
                );
            }
        }
    }
}
