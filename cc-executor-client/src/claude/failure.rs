//! Why a Claude run failed, read from its `result` line: `is_error`, `terminal_reason` and
//! `api_error_status` rather than the subtype (the CLI reports some failures, such as a missing
//! login, under the subtype `success`).

use std::fmt;

use super::stream::ClaudeResult;
use crate::event::RateLimit;

/// Why a Claude run did not succeed ([`ClaudeResult::failure`]); `Display` writes it as a
/// sentence that starts with what happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClaudeFailure {
    /// A usage limit or API rate limit (HTTP 429), with when it resets when known.
    RateLimited(RateLimit),
    /// The API is overloaded (HTTP 529): retry later.
    Overloaded {
        /// The result text.
        message: String,
    },
    /// The run stopped at its `--max-budget-usd` (subtype `error_max_budget_usd`).
    Budget {
        /// What it had spent, in US dollars, when known.
        spent_usd: Option<f64>,
        /// The CLI's error messages, joined.
        message: String,
    },
    /// Another failure: the CLI flagged the run as an error.
    Error {
        /// `terminal_reason` when it names an error (e.g. `api_error`), else the subtype (e.g.
        /// `error_max_turns`), else `error`.
        reason: String,
        /// The result text, or the CLI's error messages.
        message: String,
        /// The HTTP status of a failed API call, when given.
        api_error_status: Option<u16>,
    },
}

impl fmt::Display for ClaudeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with = |m: &str| match m.trim() {
            "" => String::new(),
            m => format!(": {}", m.trim_end_matches('.')),
        };
        match self {
            ClaudeFailure::RateLimited(limit) => f.write_str(&limit.advice()),
            ClaudeFailure::Overloaded { message } => write!(
                f,
                "Claude failed: the API is overloaded (HTTP 529), retry later{}.",
                with(message)
            ),
            ClaudeFailure::Budget { spent_usd, message } => {
                let spent = spent_usd.map_or("an unknown amount".into(), |d| format!("${d:.4}"));
                write!(
                    f,
                    "Claude stopped at its budget (max_budget_usd) after spending {spent}{}.",
                    with(message)
                )
            }
            ClaudeFailure::Error {
                reason,
                message,
                api_error_status,
            } => {
                let status = api_error_status.map_or(String::new(), |s| format!(" {s}"));
                write!(f, "Claude failed ({reason}{status}){}.", with(message))
            }
        }
    }
}

/// A `terminal_reason` that names an error (e.g. `api_error`); other reasons (e.g.
/// `completed`) say how a run ended normally.
fn is_error_reason(reason: &str) -> bool {
    reason.contains("error") || reason.contains("fail")
}

impl ClaudeResult {
    /// Why this run did not succeed, as typed data: a limit, an overloaded API, a budget stop or
    /// another error; `None` for a success. Failures are read from `is_error`, `terminal_reason`,
    /// `api_error_status` and the limit texts, not from the subtype alone.
    ///
    /// ```
    /// use cc_executor_client::claude::{parse_line, ClaudeEvent, ClaudeFailure};
    ///
    /// let line = r#"{"type":"result","subtype":"success","is_error":true,
    ///                "terminal_reason":"api_error","api_error_status":null,
    ///                "result":"Not logged in · Please run /login"}"#;
    /// let ClaudeEvent::Result(r) = parse_line(line) else { unreachable!() };
    /// let failure = r.failure().unwrap();
    /// assert!(matches!(&failure, ClaudeFailure::Error { reason, .. } if reason == "api_error"));
    /// assert_eq!(
    ///     failure.to_string(),
    ///     "Claude failed (api_error): Not logged in · Please run /login."
    /// );
    /// ```
    pub fn failure(&self) -> Option<ClaudeFailure> {
        if let Some(limit) = self.rate_limit() {
            return Some(ClaudeFailure::RateLimited(limit));
        }
        let reason = self
            .terminal_reason
            .as_deref()
            .filter(|r| is_error_reason(r));
        let subtype_error = self.subtype != "success";
        if !self.is_error && reason.is_none() && !subtype_error {
            return None;
        }
        let errors = self.errors.join("; ");
        let text = self.result.clone().filter(|t| !t.trim().is_empty());
        if self.subtype == "error_max_budget_usd" {
            return Some(ClaudeFailure::Budget {
                spent_usd: self.total_cost_usd,
                message: errors,
            });
        }
        if self.api_error_status == Some(529) {
            let message = text.unwrap_or(errors);
            return Some(ClaudeFailure::Overloaded { message });
        }
        let reason = match reason {
            Some(r) => r.to_owned(),
            None if subtype_error && !self.subtype.is_empty() => self.subtype.clone(),
            None => "error".to_owned(),
        };
        Some(ClaudeFailure::Error {
            reason,
            message: text.unwrap_or(errors),
            api_error_status: self.api_error_status,
        })
    }

    /// What a reader should be told besides the result, as sentences: why the run failed
    /// ([`ClaudeResult::failure`]), and that no `structured_output` came although a JSON Schema
    /// was given ([`ClaudeResult::json_schema_given`]). Empty for a plain success.
    pub fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = self.failure().iter().map(ToString::to_string).collect();
        if self.json_schema_given && self.structured_output.is_none() {
            notes.push(NO_STRUCTURED_OUTPUT.to_owned());
        }
        notes
    }
}

/// The note for a run given a JSON Schema whose result has no `structured_output`.
const NO_STRUCTURED_OUTPUT: &str = "A JSON Schema was given, but Claude's result has no \
     structured_output: read the answer in `result` instead.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claude::{parse_line, ClaudeEvent};

    fn result(line: &str) -> ClaudeResult {
        match parse_line(line) {
            ClaudeEvent::Result(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn last_result(sample: &str) -> ClaudeResult {
        result(sample.lines().last().unwrap())
    }

    #[test]
    fn not_logged_in_is_a_failure_despite_its_subtype() {
        let r = last_result(include_str!(
            "../../../tests/fixtures/claude/not_logged_in.jsonl"
        ));
        assert_eq!(r.subtype, "success");
        assert!(!r.is_success());
        assert_eq!(
            r.failure().unwrap().to_string(),
            "Claude failed (api_error): Not logged in · Please run /login."
        );
        assert_eq!(r.notes().len(), 1);
    }

    #[test]
    fn overload_budget_and_turns_have_their_own_words() {
        let r = result(
            r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":529,"result":"API Error: 529 Overloaded"}"#,
        );
        assert!(matches!(
            r.failure(),
            Some(ClaudeFailure::Overloaded { .. })
        ));
        let text = r.failure().unwrap().to_string();
        assert!(
            text.contains("overloaded") && text.contains("retry later"),
            "{text}"
        );
        let r = last_result(include_str!(
            "../../../tests/fixtures/claude/max_budget.jsonl"
        ));
        assert!(
            matches!(r.failure(), Some(ClaudeFailure::Budget { spent_usd: Some(s), .. }) if s > 0.5)
        );
        let text = r.failure().unwrap().to_string();
        assert!(text.starts_with("Claude stopped at its budget"), "{text}");
        assert!(text.contains("$0.5123"), "{text}");
        let r = last_result(include_str!(
            "../../../tests/fixtures/claude/max_turns.jsonl"
        ));
        assert_eq!(
            r.failure().unwrap().to_string(),
            "Claude failed (error_max_turns): Reached maximum number of turns (1)."
        );
        let r = last_result(include_str!("../../../tests/fixtures/claude/api_429.jsonl"));
        assert!(matches!(r.failure(), Some(ClaudeFailure::RateLimited(_))));
    }

    #[test]
    fn success_has_no_failure_and_a_missing_structured_output_is_noted() {
        let mut r = last_result(include_str!("../../../tests/fixtures/claude/success.jsonl"));
        assert_eq!(r.failure(), None);
        assert!(r.notes().is_empty());
        r.json_schema_given = true;
        assert_eq!(r.notes(), [NO_STRUCTURED_OUTPUT]);
        let r = last_result(include_str!(
            "../../../tests/fixtures/claude/structured_output.jsonl"
        ));
        assert_eq!(r.structured_output.as_ref().unwrap()["answer"], 4);
        // A reason that is not an error is no failure.
        let r = result(
            r#"{"type":"result","subtype":"success","is_error":false,"terminal_reason":"completed","result":"ok"}"#,
        );
        assert!(r.is_success());
    }
}
