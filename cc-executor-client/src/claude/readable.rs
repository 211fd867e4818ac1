//! Claude's stream-json as lines a person (or a model) reads: its text, the tools it calls and
//! what they answer, and how the run ended.

use serde_json::Value;

use super::stream::{ClaudeEvent, ContentBlock};
use crate::text::clip_chars;

/// Most characters of a tool's input or result shown on one line.
const SNIPPET_CHARS: usize = 300;

impl ClaudeEvent {
    /// The event as readable text, one or more lines without a trailing line break; `None` for
    /// events that tell a reader nothing (stream deltas, unknown types, the service's events).
    ///
    /// - Claude's text as it is, tool calls as `Tool: <name> <input as JSON>`, tool answers as
    ///   `Tool result: …` or `Tool error: …` (inputs and answers cut to 300 characters);
    /// - `Session <id> (model <model>)` at the start, `Result (<subtype>): <answer>` or the
    ///   failure ([`ClaudeResult::failure`](super::ClaudeResult::failure)) at the end;
    /// - stderr and other non-JSON lines as they are.
    ///
    /// ```
    /// use cc_executor_client::claude::parse_line;
    ///
    /// let line = r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Looking."},
    ///               {"type":"tool_use","id":"t1","name":"Read","input":{"file_path":"a.py"}}]}}"#;
    /// assert_eq!(
    ///     parse_line(line).readable().unwrap(),
    ///     "Looking.\nTool: Read {\"file_path\":\"a.py\"}"
    /// );
    /// ```
    pub fn readable(&self) -> Option<String> {
        let text = match self {
            ClaudeEvent::Init(init) => {
                let model = init.model.as_deref().unwrap_or("unknown");
                format!("Session {} (model {model})", init.session_id)
            }
            ClaudeEvent::System { subtype, .. } => format!("System: {subtype}"),
            ClaudeEvent::Assistant(msg) => blocks(&msg.content)?,
            ClaudeEvent::User(msg) => blocks(&msg.content)?,
            ClaudeEvent::Result(r) => match r.failure() {
                Some(failure) => format!("Result: {failure}"),
                None => {
                    let mut line = format!("Result ({})", r.subtype);
                    if let Some(answer) = r.result.as_deref().filter(|a| !a.is_empty()) {
                        line += &format!(": {answer}");
                    }
                    if let Some(json) = &r.structured_output {
                        line += &format!("\nStructured output: {json}");
                    }
                    line
                }
            },
            ClaudeEvent::RateLimit(info) => format!("Rate limit: {}", info.rate_limit()?),
            ClaudeEvent::Stderr(line) | ClaudeEvent::Text(line) => line.clone(),
            _ => return None,
        };
        (!text.trim().is_empty()).then_some(text)
    }
}

/// The readable lines of a message's content blocks, joined; `None` when none says anything.
fn blocks(content: &[ContentBlock]) -> Option<String> {
    let lines: Vec<String> = content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text(t) if !t.trim().is_empty() => Some(t.trim_end().to_owned()),
            ContentBlock::ToolUse { name, input, .. } => {
                Some(format!("Tool: {name} {}", snippet(input)))
            }
            ContentBlock::ToolResult {
                content, is_error, ..
            } => {
                let kind = if *is_error { "error" } else { "result" };
                Some(format!("Tool {kind}: {}", snippet(content)))
            }
            _ => None,
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// A value on one line, cut: a string's text, the text blocks of a tool result, or compact JSON.
fn snippet(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(|i| i["type"] == "text") => items
            .iter()
            .filter_map(|i| i["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    };
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    clip_chars(&one_line, SNIPPET_CHARS)
}

#[cfg(test)]
mod tests {
    use crate::claude::parse_line;

    #[test]
    fn the_success_sample_reads_as_a_conversation() {
        let sample = include_str!("../../../tests/fixtures/claude/success.jsonl");
        let lines: Vec<String> = sample
            .lines()
            .filter_map(|l| parse_line(l).readable())
            .collect();
        assert_eq!(
            lines,
            [
                "Session 0b6c2f1e-5d2a-4b8e-9a51-3f0c8e7d1a22 (model claude-sonnet-4-5)",
                "I'll read the file first.\nTool: Read {\"file_path\":\"/srv/app/main.py\"}",
                "Tool result: print(2 + 2)",
                "The script prints 4.",
                "Result (success): The script prints 4.",
            ]
        );
        let failed = include_str!("../../../tests/fixtures/claude/not_logged_in.jsonl");
        let last = parse_line(failed.lines().last().unwrap());
        assert_eq!(
            last.readable().unwrap(),
            "Result: Claude failed (api_error): Not logged in · Please run /login."
        );
        assert_eq!(
            parse_line(r#"{"type":"stream_event","event":{}}"#).readable(),
            None
        );
        assert_eq!(parse_line("plain").readable().as_deref(), Some("plain"));
    }
}
