//! The Claude stream-json parser never panics: on every line of the input, on the whole input as
//! one line, and when the final result is looked for in the whole output; neither does anything
//! a parsed event offers (activity, limits and their advice, failures).
#![no_main]

use cc_executor_client::claude::{parse_line, result_from_output, ClaudeEvent, ClaudeResult};
use cc_executor_client::RateLimit;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    for line in text.lines() {
        exercise(&parse_line(line));
    }
    let whole = parse_line(text);
    exercise(&whole);
    if let ClaudeEvent::Text(t) = &whole {
        assert_eq!(
            t,
            text.trim_end_matches(['\n', '\r']),
            "text lines are kept"
        );
    }
    if let Some(result) = result_from_output(text) {
        exercise_result(&result);
    }
});

fn exercise(event: &ClaudeEvent) {
    let _ = event.activity();
    match event {
        ClaudeEvent::Assistant(m) => {
            let _ = m.text();
            limit(m.rate_limit());
        }
        ClaudeEvent::User(m) => {
            let _ = m.tool_results().count();
        }
        ClaudeEvent::Result(r) => exercise_result(r),
        ClaudeEvent::RateLimit(info) => {
            let limit_known = info.rate_limit();
            assert_eq!(limit_known.is_some(), info.is_rejected());
            limit(limit_known);
        }
        _ => {}
    }
}

fn exercise_result(r: &ClaudeResult) {
    limit(r.rate_limit());
    let success = r.is_success();
    assert_eq!(
        r.failure().is_none(),
        success,
        "failure() is None exactly for a success"
    );
}

fn limit(limit: Option<RateLimit>) {
    if let Some(l) = limit {
        let _ = l.advice();
        let _ = l.to_string();
    }
}
