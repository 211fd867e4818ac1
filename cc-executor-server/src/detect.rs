//! Detectors: recognise rate limits, token limits and completion phrases in output lines
//! (stdout and stderr).
//!
//! They only add notifications (sent before the line's `process.output`); they never change the
//! run. A line that matches fires, whatever its origin: a Claude stream-json line that quotes a
//! limit message fires too, and a limit reported in several lines (a `rate_limit_event`, the
//! assistant text, the `result`) fires once per line.
//!
//! Every line first goes through a cheap substring pre-check on a few keywords; only lines that
//! pass it are examined further.

use std::sync::LazyLock;

use aho_corasick::packed::Searcher;

/// A rate or usage limit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RateLimitHit {
    /// `"usage_limit"` or `"rate_limit_429"`.
    pub error_type: &'static str,
    pub message: &'static str,
    /// For usage limits: `Some(epoch)` or `Some(None)` when unknown; `None` for HTTP 429.
    pub reset_timestamp: Option<Option<f64>>,
    pub recoverable: bool,
    /// Seconds to wait (HTTP 429 only).
    pub retry_after: Option<u64>,
}

/// A token or context limit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TokenLimitHit {
    pub limit: Option<u64>,
    pub message: String,
    pub suggestion: &'static str,
    pub recoverable: bool,
}

/// What one line matched.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Detections {
    pub rate_limit: Option<RateLimitHit>,
    pub token_limit: Option<TokenLimitHit>,
    /// The completion phrase, in its canonical spelling.
    pub completion: Option<&'static str>,
}

impl Detections {
    pub fn is_empty(&self) -> bool {
        self.rate_limit.is_none() && self.token_limit.is_none() && self.completion.is_none()
    }
}

/// Keywords one of which every detectable line contains, searched for in one pass.
static PRECHECK: LazyLock<Searcher> = LazyLock::new(|| {
    Searcher::new([
        "imit",    // limit, Limit, rate_limit_*
        "429",     // HTTP 429
        "oo long", // prompt is too long
        "ontext",  // context window / length
        "aximum",  // output token maximum
        "omplete", // completion phrases
    ])
    .expect("the packed searcher takes a few short patterns")
});

/// Completion phrases (lower case) and the marker reported for each, longest first.
const COMPLETION_PHRASES: &[(&str, &str)] = &[
    ("task completed successfully", "Task completed successfully"),
    ("all tasks completed", "All tasks completed"),
    ("successfully completed", "Successfully completed"),
    ("completed successfully", "Completed successfully"),
    ("task complete", "Task complete"),
];

/// Where the first keyword of the pre-check starts in `text`, if any: a line without one
/// matches nothing, so a block of lines before it needs no [`detect`]. No keyword holds a `\n`,
/// so a match lies within one line.
pub(crate) fn first_candidate(text: &[u8]) -> Option<usize> {
    PRECHECK.find(text).map(|m| m.start())
}

/// Examine one line (with or without its newline).
pub(crate) fn detect(line: &str) -> Detections {
    let bytes = line.as_bytes();
    if PRECHECK.find(bytes).is_none() {
        return Detections::default();
    }
    let lower = line.to_ascii_lowercase();
    Detections {
        rate_limit: rate_limit(line, &lower),
        token_limit: token_limit(&lower),
        completion: COMPLETION_PHRASES
            .iter()
            .find(|(p, _)| lower.contains(p))
            .map(|(_, marker)| *marker),
    }
}

fn usage_limit(reset: Option<f64>, message: &'static str) -> RateLimitHit {
    RateLimitHit {
        error_type: "usage_limit",
        message,
        reset_timestamp: Some(reset),
        recoverable: false,
        retry_after: None,
    }
}

fn rate_limit(line: &str, lower: &str) -> Option<RateLimitHit> {
    if let Some(at) = lower.find("usage limit reached") {
        // "Claude AI usage limit reached|1735000000": the epoch of the reset follows the bar.
        let after = &lower[at + "usage limit reached".len()..];
        let reset = after
            .strip_prefix('|')
            .and_then(leading_number)
            .map(|n| n as f64);
        return Some(usage_limit(reset, "Claude AI usage limit reached"));
    }
    if lower.contains("\"rate_limit_event\"") {
        return rate_limit_event(line);
    }
    if (lower.contains("hit your") || lower.contains("reached your")) && lower.contains("limit") {
        // "You've hit your limit · resets 3pm (Europe/Paris)": only an epoch is parseable here.
        let reset = lower
            .find("resets ")
            .and_then(|i| leading_number(&lower[i + "resets ".len()..]))
            .filter(|n| *n >= 1_000_000_000)
            .map(|n| n as f64);
        return Some(usage_limit(reset, "Usage limit reached"));
    }
    let is_429 = lower.contains("rate_limit_error")
        || lower.contains("too many requests")
        || (contains_number(lower, "429")
            && ["rate limit", "rate_limit", "http", "status"]
                .iter()
                .any(|k| lower.contains(k)));
    is_429.then_some(RateLimitHit {
        error_type: "rate_limit_429",
        message: "HTTP 429 Too Many Requests",
        reset_timestamp: None,
        recoverable: true,
        retry_after: Some(60),
    })
}

/// `{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":<epoch>}}`.
fn rate_limit_event(line: &str) -> Option<RateLimitHit> {
    let v: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    if v.get("type")?.as_str()? != "rate_limit_event" {
        return None;
    }
    let info = v.get("rate_limit_info")?;
    if info.get("status")?.as_str()? != "rejected" {
        return None;
    }
    let reset = info.get("resetsAt").and_then(serde_json::Value::as_f64);
    Some(usage_limit(reset, "Usage limit reached"))
}

const OUTPUT_SUGGESTION: &str = "Retry with a more concise prompt or specify word/token limits";
const CONTEXT_SUGGESTION: &str = "Shorten the prompt or its context, or start a new session";

fn token_limit(lower: &str) -> Option<TokenLimitHit> {
    let exceeded = lower.contains("exceed");
    if exceeded && lower.contains("output token maximum") {
        // "Claude's response exceeded the 32000 output token maximum."
        let limit = number_before(lower, "output token maximum");
        return Some(output_limit(limit));
    }
    if exceeded && lower.contains("output token limit") {
        // "output token limit of 32000 exceeded"
        let limit = number_after(lower, "output token limit of ");
        return Some(output_limit(limit));
    }
    let context = lower.contains("prompt is too long")
        || lower.contains("context length exceeded")
        || lower.contains("context_length_exceeded")
        || lower.contains("maximum context length")
        || (lower.contains("context window")
            && (exceeded || lower.contains("limit") || lower.contains("too long")));
    if !context {
        return None;
    }
    // "prompt is too long: 210000 tokens > 200000 maximum",
    // "maximum context length is 200000 tokens", "context window limit of 200000".
    let limit = number_after(lower, "> ")
        .or_else(|| number_after(lower, "maximum context length is "))
        .or_else(|| number_after(lower, "limit of "));
    Some(TokenLimitHit {
        limit,
        message: match limit {
            Some(n) => format!("Prompt exceeds the {n} token context window"),
            None => "Prompt exceeds the context window".to_owned(),
        },
        suggestion: CONTEXT_SUGGESTION,
        recoverable: false,
    })
}

fn output_limit(limit: Option<u64>) -> TokenLimitHit {
    TokenLimitHit {
        limit,
        message: match limit {
            Some(n) => format!("Output exceeded {n} token limit"),
            None => "Output exceeded the token limit".to_owned(),
        },
        suggestion: OUTPUT_SUGGESTION,
        recoverable: true,
    }
}

/// The number at the start of `s` (digits, `,` and `_` separators allowed).
fn leading_number(s: &str) -> Option<u64> {
    let s = s.trim_start();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == ',' || c == '_'))
        .unwrap_or(s.len());
    let digits: String = s[..end].chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    digits.parse().ok()
}

fn number_after(s: &str, pat: &str) -> Option<u64> {
    let i = s.find(pat)?;
    leading_number(&s[i + pat.len()..])
}

/// The number in the word just before `pat` ("the 32000 output token maximum").
fn number_before(s: &str, pat: &str) -> Option<u64> {
    let i = s.find(pat)?;
    let word = s[..i].trim_end().rsplit(' ').next()?;
    leading_number(word)
}

/// `num` appears with no digit right before or after it.
fn contains_number(s: &str, num: &str) -> bool {
    let b = s.as_bytes();
    s.match_indices(num).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| b[j]);
        let after = b.get(i + num.len()).copied();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(line: &str) -> Option<RateLimitHit> {
        detect(line).rate_limit
    }

    #[test]
    fn quiet_lines_detect_nothing() {
        for l in [
            "hello\n",
            "",
            "1234\n",
            "response was truncated at 4096 tokens\n",
            "the output was truncated\n",
            "{\"type\":\"result\",\"subtype\":\"error_max_turns\",\"errors\":[\"Reached maximum number of turns (1)\"]}",
            "{\"usage\":{\"input_tokens\":90,\"output_tokens\":12}}",
            "line 14290 of the log\n",
            "speed limit is 50\n",
        ] {
            assert!(detect(l).is_empty(), "{l:?} -> {:?}", detect(l));
        }
    }

    #[test]
    fn usage_limit_with_reset_epoch() {
        let hit = rate("Claude AI usage limit reached|1735000000\n").unwrap();
        assert_eq!(hit.error_type, "usage_limit");
        assert_eq!(hit.reset_timestamp, Some(Some(1_735_000_000.0)));
        assert!(!hit.recoverable);
        assert_eq!(hit.retry_after, None);
        let hit = rate("Claude AI usage limit reached\n").unwrap();
        assert_eq!(hit.reset_timestamp, Some(None));
    }

    #[test]
    fn new_usage_limit_wording() {
        let hit = rate("You've hit your limit · resets 3pm (Europe/Paris)").unwrap();
        assert_eq!(hit.error_type, "usage_limit");
        assert_eq!(hit.reset_timestamp, Some(None));
        let hit = rate("You’ve hit your usage limit, resets 1900000000").unwrap();
        assert_eq!(hit.reset_timestamp, Some(Some(1_900_000_000.0)));
    }

    #[test]
    fn rate_limit_event_only_when_rejected() {
        let rejected = r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1900000000,"rateLimitType":"five_hour"},"session_id":"x"}"#;
        let hit = rate(rejected).unwrap();
        assert_eq!(hit.error_type, "usage_limit");
        assert_eq!(hit.reset_timestamp, Some(Some(1_900_000_000.0)));
        let allowed = r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed","resetsAt":1900000000}}"#;
        assert_eq!(rate(allowed), None);
    }

    #[test]
    fn http_429() {
        for l in [
            "HTTP 429 rate limit: too many requests",
            r#"API Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
            "Error: 429 Too Many Requests",
        ] {
            let hit = rate(l).unwrap_or_else(|| panic!("{l}"));
            assert_eq!(hit.error_type, "rate_limit_429");
            assert_eq!(hit.retry_after, Some(60));
            assert_eq!(hit.reset_timestamp, None);
            assert!(hit.recoverable);
        }
        assert_eq!(rate("port 4290 is open\n"), None);
        assert_eq!(rate("error at line 429\n"), None);
    }

    #[test]
    fn token_limits() {
        let t = detect("Error: output token limit of 32000 exceeded\n")
            .token_limit
            .unwrap();
        assert_eq!(t.limit, Some(32000));
        assert_eq!(t.message, "Output exceeded 32000 token limit");
        let t = detect("API Error: Claude's response exceeded the 32000 output token maximum.")
            .token_limit
            .unwrap();
        assert_eq!(t.limit, Some(32000));
        let t = detect("Prompt is too long: 210000 tokens > 200000 maximum")
            .token_limit
            .unwrap();
        assert_eq!(t.limit, Some(200000));
        let t = detect("This model's maximum context length is 128,000 tokens")
            .token_limit
            .unwrap();
        assert_eq!(t.limit, Some(128000));
        let t = detect("context window exceeded").token_limit.unwrap();
        assert_eq!(t.limit, None);
        assert!(detect("Prompt is too long").token_limit.is_some());
        assert!(detect("error: context length exceeded")
            .token_limit
            .is_some());
    }

    #[test]
    fn completion_phrases() {
        assert_eq!(
            detect("Task completed successfully\n").completion,
            Some("Task completed successfully")
        );
        assert_eq!(
            detect("all tasks completed.").completion,
            Some("All tasks completed")
        );
        assert_eq!(detect("compilation completed").completion, None);
    }

    #[test]
    fn claude_fixtures_fire_where_expected() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/claude");
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        for name in ["success.jsonl", "max_turns.jsonl"] {
            for line in read(name).lines() {
                let d = detect(line);
                assert!(
                    d.rate_limit.is_none() && d.token_limit.is_none(),
                    "{name}: {line}"
                );
            }
        }
        let usage: Vec<_> = read("usage_limit.jsonl")
            .lines()
            .filter_map(|l| detect(l).rate_limit)
            .collect();
        assert!(!usage.is_empty());
        assert!(usage
            .iter()
            .all(|h| h.error_type == "usage_limit" && h.reset_timestamp == Some(Some(1.9e9))));
        let api: Vec<_> = read("api_429.jsonl")
            .lines()
            .filter_map(|l| detect(l).rate_limit)
            .collect();
        assert!(!api.is_empty() && api.iter().all(|h| h.error_type == "rate_limit_429"));
        let new: Vec<_> = read("hit_limit_new_wording.jsonl")
            .lines()
            .filter_map(|l| detect(l).rate_limit)
            .collect();
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].error_type, "usage_limit");
    }
}
