//! The public event types of a run. Wire notifications become these events in one place only:
//! the crate's `wire` module.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::protocol;
pub use crate::protocol::OutputStream;
use crate::text::{human, secs, utc};

/// Position of a chunk within a long line that the service split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chunk {
    /// 0-based index of this chunk.
    pub index: u32,
    /// How many chunks the line has; `0` while it is not known yet: a service may stream a very
    /// long line as it comes, and then only its last chunk carries the count.
    pub total: u32,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunStatus {
    /// Exit code 0.
    Completed,
    /// Non-zero exit, killed by a signal, or timed out.
    Failed,
    /// Canceled on request.
    Canceled,
    /// A status this version does not know, kept verbatim.
    Other(String),
}

impl RunStatus {
    /// Parse a wire status string.
    pub(crate) fn from_wire(s: &str) -> RunStatus {
        match s {
            protocol::status::COMPLETED => RunStatus::Completed,
            protocol::status::FAILED => RunStatus::Failed,
            protocol::status::CANCELED => RunStatus::Canceled,
            other => RunStatus::Other(other.to_owned()),
        }
    }

    /// `true` for [`RunStatus::Completed`].
    pub fn success(&self) -> bool {
        matches!(self, RunStatus::Completed)
    }

    /// The wire name: `completed`, `failed`, `canceled`, or an unknown status verbatim.
    pub fn as_str(&self) -> &str {
        match self {
            RunStatus::Completed => protocol::status::COMPLETED,
            RunStatus::Failed => protocol::status::FAILED,
            RunStatus::Canceled => protocol::status::CANCELED,
            RunStatus::Other(s) => s,
        }
    }
}

/// What kind of rate limit was hit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateLimitKind {
    /// The Claude subscription usage limit ("Claude AI usage limit reached", "You've hit your limit").
    UsageLimit,
    /// An API rate limit (HTTP 429, `rate_limit_error`).
    Http429,
    /// A kind this version does not know, kept verbatim.
    Other(String),
}

impl RateLimitKind {
    /// Parse a wire `error_type`.
    pub(crate) fn from_wire(s: &str) -> RateLimitKind {
        match s {
            "usage_limit" => RateLimitKind::UsageLimit,
            "rate_limit_429" => RateLimitKind::Http429,
            other => RateLimitKind::Other(other.to_owned()),
        }
    }
}

/// Details of a rate or usage limit reported by the service or found in Claude's output.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Which limit.
    pub kind: RateLimitKind,
    /// A summary, e.g. "Claude AI usage limit reached".
    pub message: String,
    /// How long to wait before retrying, when known.
    pub retry_after: Option<Duration>,
    /// When the limit resets, when known.
    pub reset_at: Option<SystemTime>,
    /// The raw text that reported it.
    pub text: String,
    /// Whether a retry (after waiting) can succeed.
    pub recoverable: bool,
}

impl RateLimit {
    /// A limit of `kind` with a message and the raw text; other fields empty.
    pub fn new(kind: RateLimitKind, message: impl Into<String>, text: impl Into<String>) -> Self {
        RateLimit {
            kind,
            message: message.into(),
            retry_after: None,
            reset_at: None,
            text: text.into(),
            recoverable: true,
        }
    }

    /// Set when the limit resets, from Unix seconds.
    pub fn with_reset_epoch(mut self, secs: f64) -> Self {
        self.reset_at = epoch_to_system_time(secs);
        self
    }

    /// Set how long to wait.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Plain sentences saying what was hit, when it resets (in UTC and from now) and what to do,
    /// e.g. "Rate limited: Claude AI usage limit reached. It resets at 2030-03-17 17:46:40 UTC
    /// (in 3h 12m); retry after that."
    pub fn advice(&self) -> String {
        let mut text = format!("Rate limited: {}.", self.message.trim_end_matches('.'));
        match (self.reset_at, self.retry_after) {
            (Some(at), _) => {
                let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
                text += &format!(
                    " It resets at {} (in {}); retry after that.",
                    utc(at),
                    human(wait)
                );
            }
            (None, Some(after)) => text += &format!(" Retry in {}.", human(after)),
            (None, None) => text += " The reset time is not known; wait before retrying.",
        }
        text
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(at) = self.reset_at {
            write!(f, "; resets at {}", utc(at))?;
        }
        if let Some(after) = self.retry_after {
            write!(f, "; retry after {}", secs(after))?;
        }
        Ok(())
    }
}

/// Details of a token or context limit reported by the service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenLimit {
    /// The limit in tokens, when the text names one.
    pub limit: Option<u64>,
    /// A summary.
    pub message: String,
    /// What to try instead, when the service suggests something.
    pub suggestion: Option<String>,
    /// The raw line that reported it.
    pub text: String,
    /// Whether a retry (e.g. with a shorter prompt) can succeed.
    pub recoverable: bool,
}

impl TokenLimit {
    /// Plain sentences saying what was hit and, when the service suggests something, what to try.
    pub fn advice(&self) -> String {
        let mut text = format!("Token limit exceeded: {self}.");
        if let Some(s) = &self.suggestion {
            text += &format!(" {s}");
        }
        text
    }
}

impl std::fmt::Display for TokenLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(l) = self.limit {
            write!(f, " (limit {l} tokens)")?;
        }
        Ok(())
    }
}

/// One event of an execution, in the order the service reported it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OutputEvent {
    /// The command started.
    #[non_exhaustive]
    Started {
        /// Pid of the group leader.
        pid: u32,
        /// Process group id (`None` when the service did not learn it).
        pgid: Option<u32>,
    },
    /// Output: a whole line with its `\n` (a last line without one comes without). With raw chunks
    /// enabled, one piece of a long line.
    #[non_exhaustive]
    Output {
        /// Which stream.
        stream: OutputStream,
        /// The text.
        data: String,
        /// `Some` only for a raw chunk of a long line (see `Command::raw_chunks`).
        chunk: Option<Chunk>,
    },
    /// The process group was paused.
    Paused,
    /// The process group was resumed.
    Resumed,
    /// The process group was sent SIGTERM on request.
    Canceled,
    /// The command ended. Terminal.
    #[non_exhaustive]
    Completed {
        /// How it ended.
        status: RunStatus,
        /// Exit code; negative signal number when killed by a signal; `None` when unknown.
        exit_code: Option<i32>,
        /// Run time as the service measured it.
        duration: Duration,
        /// Killed at its timeout.
        timed_out: bool,
        /// Why it failed, when the service says.
        error: Option<String>,
    },
    /// The service could not run the command. Terminal.
    #[non_exhaustive]
    Failed {
        /// The service's message.
        error: Option<String>,
    },
    /// A token / context limit message was seen in the output.
    TokenLimitExceeded(TokenLimit),
    /// A usage or rate limit was seen in the output.
    RateLimitExceeded(RateLimit),
    /// A completion phrase was seen in the output.
    #[non_exhaustive]
    EarlyCompletion {
        /// The phrase.
        marker: String,
        /// Time from start.
        elapsed: Duration,
        /// The line it was seen in.
        line: String,
    },
    /// A hook warning.
    #[non_exhaustive]
    Warning {
        /// The warning's message (empty when it has none).
        message: String,
        /// The whole params.
        params: Value,
    },
    /// A notification this version does not know (forward compatibility).
    #[non_exhaustive]
    Other {
        /// The method.
        method: String,
        /// Its params.
        params: Value,
    },
}

impl OutputEvent {
    /// Whether this event ends the execution's stream.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            OutputEvent::Completed { .. } | OutputEvent::Failed { .. }
        )
    }

    /// For a limit event, plain sentences about it ([`RateLimit::advice`],
    /// [`TokenLimit::advice`]); `None` for other events.
    pub fn limit_advice(&self) -> Option<String> {
        match self {
            OutputEvent::RateLimitExceeded(r) => Some(r.advice()),
            OutputEvent::TokenLimitExceeded(t) => Some(t.advice()),
            _ => None,
        }
    }
}

/// Unix seconds to `SystemTime`; `None` for negative, NaN or absurd values.
pub(crate) fn epoch_to_system_time(secs: f64) -> Option<SystemTime> {
    let d = Duration::try_from_secs_f64(secs).ok()?;
    UNIX_EPOCH.checked_add(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_advice_says_when_and_what_to_do() {
        let limit = RateLimit::new(RateLimitKind::UsageLimit, "usage limit reached.", "raw")
            .with_reset_epoch(1_900_000_000.0);
        let text = limit.advice();
        assert!(
            text.starts_with(
                "Rate limited: usage limit reached. It resets at 2030-03-17 17:46:40 UTC (in "
            ),
            "{text}"
        );
        assert_eq!(
            limit.to_string(),
            "usage limit reached.; resets at 2030-03-17 17:46:40 UTC"
        );
        let later = RateLimit::new(RateLimitKind::Http429, "slow down", "raw")
            .with_retry_after(Duration::from_secs(90));
        assert_eq!(later.advice(), "Rate limited: slow down. Retry in 1m 30s.");
        let unknown = RateLimit::new(RateLimitKind::Http429, "slow down", "raw");
        assert!(unknown.advice().ends_with("wait before retrying."));
        assert_eq!(RunStatus::Other("odd".into()).as_str(), "odd");
        assert_eq!(RunStatus::Canceled.as_str(), "canceled");
    }
}
