//! Recognising usage and rate limits in Claude's messages.
//!
//! Matching is anchored at the start of the text: the CLI reports a limit as the whole message,
//! while an ordinary answer may well talk about rate limits.

use crate::event::{RateLimit, RateLimitKind};

use super::stream::RateLimitInfo;

const USAGE_LIMIT_PREFIXES: &[&str] = &[
    "Claude AI usage limit reached",
    "Claude usage limit reached",
    "You've hit your",
    "You\u{2019}ve hit your",
];

/// The CLI's usage-limit text: `Claude AI usage limit reached|<epoch seconds>`, or the newer
/// "You've hit your limit · resets 3pm (Europe/Paris)" (no machine-readable reset).
pub(crate) fn from_text(text: &str) -> Option<RateLimit> {
    let t = text.trim();
    let prefix = USAGE_LIMIT_PREFIXES.iter().find(|p| t.starts_with(**p))?;
    if prefix.starts_with("You") && !t.contains("limit") {
        return None;
    }
    if let Some((head, epoch)) = t.split_once('|') {
        let limit = RateLimit::new(RateLimitKind::UsageLimit, head.trim(), text);
        return Some(match epoch.trim().parse::<f64>() {
            Ok(secs) => limit.with_reset_epoch(secs),
            Err(_) => limit,
        });
    }
    Some(RateLimit::new(RateLimitKind::UsageLimit, t, text))
}

/// An API rate limit: HTTP status 429, or the CLI's `API Error: 429 {…rate_limit_error…}` text.
pub(crate) fn from_api_error(status: Option<u16>, text: &str) -> Option<RateLimit> {
    let t = text.trim();
    let api_error = t.starts_with("API Error");
    let is_429 = status == Some(429)
        || t.starts_with("API Error: 429")
        || (api_error && t.contains("rate_limit_error"));
    if !is_429 {
        return None;
    }
    let message = match api_error_message(t) {
        Some(detail) => format!("API rate limit (HTTP 429): {detail}"),
        None => "API rate limit (HTTP 429)".to_owned(),
    };
    Some(RateLimit::new(RateLimitKind::Http429, message, text))
}

/// An assistant message flagged with `error: "rate_limit"` whose text is not one of the known forms.
pub(crate) fn from_error_flag(text: &str) -> RateLimit {
    from_api_error(None, text).unwrap_or_else(|| {
        let message = if text.trim().is_empty() {
            "Claude rate limit reached"
        } else {
            text.trim()
        };
        RateLimit::new(RateLimitKind::UsageLimit, message, text)
    })
}

/// A `rate_limit_event` with status `rejected`.
pub(crate) fn from_rejected_event(info: &RateLimitInfo) -> RateLimit {
    let message = match &info.rate_limit_type {
        Some(window) => format!("Claude usage limit reached ({window} window)"),
        None => "Claude usage limit reached".to_owned(),
    };
    let limit = RateLimit::new(RateLimitKind::UsageLimit, message, info.raw.to_string());
    match info.resets_at {
        Some(secs) => limit.with_reset_epoch(secs),
        None => limit,
    }
}

/// The `error.message` of the JSON body after `API Error: <status> `.
fn api_error_message(text: &str) -> Option<String> {
    let body = &text[text.find('{')?..];
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.pointer("/error/message")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn usage_limit_text_with_epoch() {
        let l = from_text("Claude AI usage limit reached|1900000000").unwrap();
        assert_eq!(l.kind, RateLimitKind::UsageLimit);
        assert_eq!(l.message, "Claude AI usage limit reached");
        assert_eq!(
            l.reset_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_900_000_000))
        );
        let l = from_text("Claude AI usage limit reached|soon").unwrap();
        assert_eq!(l.reset_at, None);
        let l = from_text("Claude AI usage limit reached").unwrap();
        assert_eq!(l.reset_at, None);
    }

    #[test]
    fn new_wordings() {
        for t in [
            "You've hit your limit · resets 3pm (Europe/Paris)",
            "You\u{2019}ve hit your weekly limit · resets Oct 7, 1am",
        ] {
            let l = from_text(t).unwrap();
            assert_eq!(l.kind, RateLimitKind::UsageLimit);
            assert_eq!(l.message, t);
            assert_eq!(l.reset_at, None);
        }
    }

    #[test]
    fn ordinary_answers_are_not_limits() {
        for t in [
            "",
            "The script prints 4.",
            "Note: the Claude AI usage limit reached message means you must wait.",
            "You've hit your stride",
            "API rate limits return HTTP 429 with rate_limit_error.",
        ] {
            assert_eq!(from_text(t), None, "{t}");
            assert_eq!(from_api_error(None, t), None, "{t}");
        }
        assert_eq!(from_api_error(Some(500), "API Error: 500 boom"), None);
    }

    #[test]
    fn api_429() {
        let text = r#"API Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
        for status in [None, Some(429)] {
            let l = from_api_error(status, text).unwrap();
            assert_eq!(l.kind, RateLimitKind::Http429);
            assert_eq!(l.message, "API rate limit (HTTP 429): slow down");
            assert_eq!(l.text, text);
        }
        let l = from_api_error(Some(429), "").unwrap();
        assert_eq!(l.message, "API rate limit (HTTP 429)");
        let l = from_error_flag("");
        assert_eq!(l.kind, RateLimitKind::UsageLimit);
        assert_eq!(from_error_flag(text).kind, RateLimitKind::Http429);
    }
}
