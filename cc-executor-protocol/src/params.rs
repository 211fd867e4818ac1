//! The params and results of every method, typed field for field as they appear on the wire.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};

/// Params of `execute`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecuteParams {
    /// The shell command line, run with `<shell> -c` (the shell the service reports in
    /// `connected`).
    pub command: String,
    /// Seconds. The Rust service bounds the whole run with it; the reference service uses it as a
    /// per-line inactivity timeout. Decoding also accepts a numeric string (`"10"`), as the
    /// reference does.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "seconds"
    )]
    pub timeout: Option<f64>,
    /// Working directory for the command (honoured by services that advertise [`capability::CWD`](crate::capability::CWD)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// `"pipe"` keeps the command's stdin open for [`method::INPUT`](crate::method::INPUT)
    /// (services that advertise [`capability::STDIN`](crate::capability::STDIN)); absent, stdin
    /// is `/dev/null`, so a command that reads it cannot hang the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<StdinMode>,
    /// Run the command on a pseudo-terminal (services that advertise
    /// [`capability::PTY`](crate::capability::PTY)): stdout and stderr arrive merged as
    /// `stdout`, and `input` goes to the terminal.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pty: bool,
    /// The terminal's size when `pty` is set (default [`PtySize::DEFAULT`], 120×40).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pty_size: Option<PtySize>,
    /// How the run's output is framed: `"batched"` asks a service that advertises
    /// [`capability::BATCH_OUTPUT`](crate::capability::BATCH_OUTPUT) for many lines per
    /// `process.output` frame. Absent means one frame per line, as every service sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputMode>,
}

/// How the command's stdin is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StdinMode {
    /// A pipe the client writes to with `input`.
    Pipe,
}

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtySize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

impl PtySize {
    /// 120 columns by 40 rows.
    pub const DEFAULT: PtySize = PtySize {
        cols: 120,
        rows: 40,
    };
}

impl Default for PtySize {
    fn default() -> Self {
        PtySize::DEFAULT
    }
}

/// Params of `input`: text for the running command's stdin (or its terminal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputParams {
    /// UTF-8 text written as is (no newline is added).
    #[serde(default)]
    pub data: String,
    /// Close stdin once `data` is written (on a terminal: send end-of-file, Ctrl-D).
    #[serde(default, skip_serializing_if = "is_false")]
    pub eof: bool,
}

/// Result of a successful `input`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputResult {
    /// Always `"ok"`.
    pub status: String,
    /// Bytes of `data` accepted (written, or queued for the command to read).
    pub bytes: u64,
}

/// How a run's output is framed: `execute.params.output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OutputMode {
    /// One `process.output` frame per line (a long line in chunks): what every service sends
    /// without being asked otherwise.
    #[default]
    Lines,
    /// Whole lines of one stream gathered in one frame (its `data` holds them, each with its
    /// `\n`), up to [`BATCH_BYTES`](crate::BATCH_BYTES) of data; a frame goes out as soon as the
    /// command has nothing more written right now, and long lines are chunked as with `Lines`.
    Batched,
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
    /// Pid of the command's process (the shell, leader of the group).
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

/// Params of `connected`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedParams {
    /// The session id (a UUID).
    pub session_id: String,
    /// The service's protocol version.
    pub version: String,
    /// What the service can do; see [`capability`](crate::capability).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The shell that runs commands (`<shell> -c <command>`), as the service reports it. `None`
    /// from services that do not say, and in allowlist mode, where commands run without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
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
    /// One of [`status`](crate::status).
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

/// Params of `process.output`: one line with its `\n`, or one chunk of a long line; with
/// [`OutputMode::Batched`], possibly several whole lines of one stream. In a run that takes input
/// (`stdin` or `pty`), the part of a line written before the command's output paused (a prompt)
/// comes without its `\n`, and the rest of that line follows in pieces of its own.
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

/// A number, a string holding one (`"10"`, `" 2.5 "`), or null; anything else is an error that
/// names the field.
fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    use serde::de::Error;
    let invalid = |got: &dyn std::fmt::Display| {
        D::Error::custom(format!(
            "invalid timeout: expected a number of seconds or a numeric string, got {got}"
        ))
    };
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| invalid(&n)),
        Some(serde_json::Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| invalid(&serde_json::Value::String(s))),
        Some(other) => Err(invalid(&other)),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_timeout_accepts_numeric_strings_only() {
        let parse = |v: serde_json::Value| serde_json::from_value::<ExecuteParams>(v);
        let t = |v: serde_json::Value| parse(v).unwrap().timeout;
        assert_eq!(
            t(serde_json::json!({"command": "x", "timeout": 10})),
            Some(10.0)
        );
        assert_eq!(
            t(serde_json::json!({"command": "x", "timeout": "10"})),
            Some(10.0)
        );
        assert_eq!(
            t(serde_json::json!({"command": "x", "timeout": " 2.5 "})),
            Some(2.5)
        );
        assert_eq!(
            t(serde_json::json!({"command": "x", "timeout": null})),
            None
        );
        assert_eq!(t(serde_json::json!({"command": "x"})), None);
        for bad in [
            serde_json::json!("ten"),
            serde_json::json!(""),
            serde_json::json!(true),
            serde_json::json!([1]),
            serde_json::json!({"s": 1}),
        ] {
            let e = parse(serde_json::json!({"command": "x", "timeout": bad}))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("invalid timeout: expected a number"), "{e}");
        }
        // Sent as a number.
        let p = ExecuteParams {
            command: "x".into(),
            timeout: Some(1.5),
            cwd: None,
            stdin: None,
            pty: false,
            pty_size: None,
            output: None,
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"command":"x","timeout":1.5}"#
        );
    }

    #[test]
    fn execute_output_mode_is_optional_and_typed() {
        let parse = |v: serde_json::Value| serde_json::from_value::<ExecuteParams>(v);
        let mode = |v: serde_json::Value| parse(v).unwrap().output;
        assert_eq!(mode(serde_json::json!({"command": "x"})), None);
        assert_eq!(
            mode(serde_json::json!({"command": "x", "output": "batched"})),
            Some(OutputMode::Batched)
        );
        assert_eq!(
            mode(serde_json::json!({"command": "x", "output": "lines"})),
            Some(OutputMode::Lines)
        );
        let e = parse(serde_json::json!({"command": "x", "output": "fast"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `fast`"), "{e}");
        let p = ExecuteParams {
            command: "x".into(),
            timeout: None,
            cwd: None,
            stdin: None,
            pty: false,
            pty_size: None,
            output: Some(OutputMode::Batched),
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"command":"x","output":"batched"}"#
        );
    }

    use serde_json::Value;

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
}
