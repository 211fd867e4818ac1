//! The names the protocol uses on the wire: version strings, method names, error codes,
//! capabilities and process statuses.

/// The JSON-RPC version string every frame carries.
pub const JSONRPC_VERSION: &str = "2.0";

/// The version the Rust service reports in `connected`.
pub const PROTOCOL_VERSION: &str = "1.0.0";

/// Characters (not bytes) per `process.output` chunk; longer lines are split.
pub const CHUNK_CHARS: usize = 65_536;

/// Most bytes of `input` that may wait, written to the service but not yet read by the command.
pub const MAX_PENDING_INPUT: usize = 1 << 20;
/// Bytes of `data` a batched `process.output` frame holds at most (see
/// [`OutputMode::Batched`](crate::OutputMode::Batched)), unless it holds a single line longer than that.
pub const BATCH_BYTES: usize = 64 * 1024;

/// Method names, as they appear on the wire.
pub mod method {
    /// Client request: start a command.
    pub const EXECUTE: &str = "execute";
    /// Client request: PAUSE / RESUME / CANCEL the running process group.
    pub const CONTROL: &str = "control";
    /// Client request: write text to the running command's stdin (or its terminal).
    pub const INPUT: &str = "input";
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
    /// Invalid request (standard JSON-RPC); the Rust service answers it for an `id` that is
    /// neither an integer nor a string of at most 256 bytes.
    pub const INVALID_REQUEST: i64 = -32600;
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
    /// `input` to a run without a stdin pipe or terminal, or whose stdin is closed.
    pub const STDIN_CLOSED: i64 = -32004;
    /// `input` refused: more than [`MAX_PENDING_INPUT`](crate::MAX_PENDING_INPUT) bytes would wait
    /// for a command that does not read them.
    pub const INPUT_FULL: i64 = -32005;
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
    /// `execute.params.stdin: "pipe"` and the `input` method.
    pub const STDIN: &str = "stdin";
    /// `execute.params.pty` runs the command on a pseudo-terminal.
    pub const PTY: &str = "pty";
    /// `execute.params.output: "batched"` is honoured: many whole lines of one stream may come in
    /// one `process.output` frame (see [`OutputMode::Batched`](crate::OutputMode::Batched)).
    pub const BATCH_OUTPUT: &str = "batch_output";
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
