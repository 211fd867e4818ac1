//! Typed `claude -p --output-format stream-json` messages and a parser that never fails.
//!
//! Every typed value keeps the whole JSON object in `raw`, so fields this version does not model
//! stay available; message types it does not know become [`ClaudeEvent::Unknown`].

use std::time::Duration;

use serde_json::{Map, Value};

use super::limit;
use crate::event::{OutputEvent, RateLimit};

/// One line of Claude's stream-json output (or of its stderr, or an event of the service).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClaudeEvent {
    /// `system` / `init`: the session starts.
    Init(Init),
    /// Another `system` subtype (e.g. `api_retry`, `compact_boundary`).
    System {
        /// The subtype (empty when missing).
        subtype: String,
        /// The whole message.
        raw: Value,
    },
    /// An assistant message: text, tool uses, thinking.
    Assistant(AssistantMessage),
    /// A user message, mostly tool results.
    User(UserMessage),
    /// The final `result` of the run.
    Result(ClaudeResult),
    /// A `rate_limit_event`: the state of the account's usage limits.
    RateLimit(RateLimitInfo),
    /// A `stream_event` (partial message deltas, with `--include-partial-messages`).
    StreamEvent {
        /// The inner `event` object (`Null` when missing).
        event: Value,
        /// The whole message.
        raw: Value,
    },
    /// A line Claude wrote to stderr, without its line break.
    Stderr(String),
    /// A stdout line that is not a JSON object, without its line break.
    Text(String),
    /// A JSON object of a type this version does not know.
    Unknown(Value),
    /// An event of the executor service other than output: start, completion, pause, the service's
    /// own limit detectors, warnings.
    Service(OutputEvent),
}

impl ClaudeEvent {
    /// A short line saying what the run is doing, for progress displays: the assistant's latest
    /// text or `tool: <name>` for the tool it calls, or a stderr line; `None` for other events.
    pub fn activity(&self) -> Option<String> {
        match self {
            ClaudeEvent::Assistant(msg) => msg.content.iter().rev().find_map(|b| match b {
                ContentBlock::Text(t) if !t.trim().is_empty() => Some(t.clone()),
                ContentBlock::ToolUse { name, .. } => Some(format!("tool: {name}")),
                _ => None,
            }),
            ClaudeEvent::Stderr(line) if !line.trim().is_empty() => Some(line.clone()),
            _ => None,
        }
    }
}

/// The `system` / `init` message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Init {
    /// The session id (empty when missing).
    pub session_id: String,
    /// The model.
    pub model: Option<String>,
    /// The tools available.
    pub tools: Vec<String>,
    /// The MCP servers and their status (objects with `name` and `status`).
    pub mcp_servers: Vec<Value>,
    /// The working directory.
    pub cwd: Option<String>,
    /// The permission mode.
    pub permission_mode: Option<String>,
    /// The whole message.
    pub raw: Value,
}

/// Token counts of a message or a run.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "schema", derive(serde::Serialize, schemars::JsonSchema))]
#[non_exhaustive]
pub struct Usage {
    /// Input tokens not read from or written to the cache.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
    /// The whole `usage` object (`Null` when missing).
    #[cfg_attr(feature = "schema", serde(skip))]
    pub raw: Value,
}

/// One block of a message's `content`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ContentBlock {
    /// Text.
    Text(String),
    /// A tool call.
    ToolUse {
        /// The call id, matched by [`ContentBlock::ToolResult::tool_use_id`].
        id: String,
        /// The tool.
        name: String,
        /// Its input.
        input: Value,
    },
    /// A tool's result (in user messages).
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// The result: a string or an array of content blocks.
        content: Value,
        /// Whether the tool failed.
        is_error: bool,
    },
    /// Extended thinking.
    Thinking(String),
    /// A block of another type, kept verbatim.
    Other(Value),
}

/// An `assistant` message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AssistantMessage {
    /// The content blocks.
    pub content: Vec<ContentBlock>,
    /// The model that wrote it (`<synthetic>` for messages the CLI made up, e.g. limit notices).
    pub model: Option<String>,
    /// Why the model stopped.
    pub stop_reason: Option<String>,
    /// Token counts.
    pub usage: Option<Usage>,
    /// An error the CLI attached, such as `rate_limit` or `authentication_failed`.
    pub error: Option<String>,
    /// The session id.
    pub session_id: Option<String>,
    /// Set when the message belongs to a sub-agent's tool call.
    pub parent_tool_use_id: Option<String>,
    /// The whole message.
    pub raw: Value,
}

impl AssistantMessage {
    /// The text blocks, joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The usage or rate limit this message reports: an `error` of `rate_limit`, or the CLI's
    /// limit text as the whole message.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        let text = self.text();
        limit::from_text(&text).or_else(|| {
            (self.error.as_deref() == Some("rate_limit")).then(|| limit::from_error_flag(&text))
        })
    }
}

/// A `user` message (in `-p` runs: tool results).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UserMessage {
    /// The content blocks (a plain-string content becomes one [`ContentBlock::Text`]).
    pub content: Vec<ContentBlock>,
    /// The session id.
    pub session_id: Option<String>,
    /// Set when the message belongs to a sub-agent's tool call.
    pub parent_tool_use_id: Option<String>,
    /// The whole message.
    pub raw: Value,
}

impl UserMessage {
    /// The tool results: `(tool_use_id, content, is_error)`.
    pub fn tool_results(&self) -> impl Iterator<Item = (&str, &Value, bool)> {
        self.content.iter().filter_map(|b| match b {
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => Some((tool_use_id.as_str(), content, *is_error)),
            _ => None,
        })
    }
}

/// The final `result` message of a run.
///
/// Do not trust `is_error` or the subtype alone: the CLI reports a usage limit as subtype `success`
/// with `is_error: false`, and a missing login as subtype `success` with `is_error: true`.
/// [`ClaudeResult::failure`] reads them all.
///
/// With the `schema` feature it serializes as a tool reports it: the answer, structured output,
/// session id, turns, cost, token counts, `is_error`, subtype, terminal reason and API status.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "schema", derive(serde::Serialize, schemars::JsonSchema))]
#[non_exhaustive]
pub struct ClaudeResult {
    /// `success`, `error_max_turns`, `error_during_execution`, `error_max_budget_usd`, …
    pub subtype: String,
    /// Whether the CLI flags the run as failed.
    pub is_error: bool,
    /// The final answer (in a [`BoundedResult`](super::BoundedResult), when long, its head and
    /// tail around a `[… N bytes omitted …]` marker).
    pub result: Option<String>,
    /// The session id; pass it to [`super::ClaudeCommand::resume`] to continue. Each resumed run may
    /// report a new one.
    pub session_id: Option<String>,
    /// Agentic turns taken.
    pub num_turns: u32,
    /// Wall time of the run as the CLI measured it.
    #[cfg_attr(feature = "schema", serde(skip))]
    pub duration: Option<Duration>,
    /// Time spent waiting for the API.
    #[cfg_attr(feature = "schema", serde(skip))]
    pub duration_api: Option<Duration>,
    /// Cost in US dollars.
    pub total_cost_usd: Option<f64>,
    /// Token counts of the whole run.
    pub usage: Usage,
    /// The HTTP status of a failed API call (e.g. 429, or 529 when the API is overloaded).
    pub api_error_status: Option<u16>,
    /// How the run ended, as the CLI says it (e.g. `completed`, `api_error`), when it does.
    pub terminal_reason: Option<String>,
    /// The answer as JSON following the `--json-schema` given
    /// ([`ClaudeCommand::json_schema`](super::ClaudeCommand::json_schema)), when the CLI gave one.
    pub structured_output: Option<Value>,
    /// Whether the run was given a JSON Schema for its answer (so a missing `structured_output`
    /// is worth a note, [`ClaudeResult::notes`]). Set by [`ClaudeExecution`](super::ClaudeExecution)
    /// and [`Jobs::report`](crate::jobs::Jobs::report); `false` from [`parse_line`].
    #[cfg_attr(feature = "schema", serde(skip))]
    pub json_schema_given: bool,
    /// Error messages (e.g. "Reached maximum number of turns (1)").
    #[cfg_attr(feature = "schema", serde(skip))]
    pub errors: Vec<String>,
    /// The whole message.
    #[cfg_attr(feature = "schema", serde(skip))]
    pub raw: Value,
}

impl ClaudeResult {
    /// The usage or rate limit this result reports, if any: the usage-limit text (with its reset
    /// time when it carries `|<epoch seconds>`), the newer "You've hit your limit · resets …"
    /// wording, or an API 429 / `rate_limit_error`.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        let text = self.result.as_deref().unwrap_or_default();
        limit::from_text(text).or_else(|| limit::from_api_error(self.api_error_status, text))
    }

    /// No failure of any kind ([`ClaudeResult::failure`]): not flagged as an error, no error
    /// subtype or terminal reason, and no limit reported.
    pub fn is_success(&self) -> bool {
        self.failure().is_none()
    }
}

/// The `rate_limit_info` of a `rate_limit_event`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RateLimitInfo {
    /// `allowed`, `allowed_warning` or `rejected`.
    pub status: String,
    /// When the window resets, in Unix seconds.
    pub resets_at: Option<f64>,
    /// Which window (`five_hour`, `seven_day`, …).
    pub rate_limit_type: Option<String>,
    /// The whole message.
    pub raw: Value,
}

impl RateLimitInfo {
    /// Whether requests are refused (`status` is `rejected`; `overageStatus` is account metadata
    /// and does not count).
    pub fn is_rejected(&self) -> bool {
        self.status == "rejected"
    }

    /// The limit, when [`RateLimitInfo::is_rejected`].
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.is_rejected().then(|| limit::from_rejected_event(self))
    }
}

/// Parse one stdout line of `claude -p --output-format stream-json`. Never fails: a line that is not
/// a JSON object is [`ClaudeEvent::Text`], an object of an unknown type is [`ClaudeEvent::Unknown`].
///
/// ```
/// use cc_executor_client::claude::{parse_line, ClaudeEvent};
///
/// let line = r#"{"type":"result","subtype":"success","is_error":false,"num_turns":2,
///                "result":"4","session_id":"abc","total_cost_usd":0.01}"#;
/// match parse_line(line) {
///     ClaudeEvent::Result(r) => {
///         assert_eq!(r.result.as_deref(), Some("4"));
///         assert_eq!(r.num_turns, 2);
///     }
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(parse_line("plain text"), ClaudeEvent::Text("plain text".into()));
/// ```
pub fn parse_line(line: &str) -> ClaudeEvent {
    let line = line.trim_end_matches(['\n', '\r']);
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(obj)) => parse_object(obj),
        _ => ClaudeEvent::Text(line.to_owned()),
    }
}

fn parse_object(obj: Map<String, Value>) -> ClaudeEvent {
    let ty = str_of(&obj, "type").unwrap_or_default();
    let raw_subtype = str_of(&obj, "subtype").unwrap_or_default();
    match ty.as_str() {
        "system" if raw_subtype == "init" => ClaudeEvent::Init(parse_init(obj)),
        "system" => ClaudeEvent::System {
            subtype: raw_subtype,
            raw: Value::Object(obj),
        },
        "assistant" => ClaudeEvent::Assistant(parse_assistant(obj)),
        "user" => ClaudeEvent::User(parse_user(obj)),
        "result" => ClaudeEvent::Result(parse_result(obj)),
        "rate_limit_event" => ClaudeEvent::RateLimit(parse_rate_limit(obj)),
        "stream_event" => ClaudeEvent::StreamEvent {
            event: obj.get("event").cloned().unwrap_or(Value::Null),
            raw: Value::Object(obj),
        },
        _ => ClaudeEvent::Unknown(Value::Object(obj)),
    }
}

fn parse_init(o: Map<String, Value>) -> Init {
    Init {
        session_id: str_of(&o, "session_id").unwrap_or_default(),
        model: str_of(&o, "model"),
        tools: o
            .get("tools")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        mcp_servers: o
            .get("mcp_servers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        cwd: str_of(&o, "cwd"),
        permission_mode: str_of(&o, "permissionMode"),
        raw: Value::Object(o),
    }
}

fn parse_assistant(o: Map<String, Value>) -> AssistantMessage {
    let msg = o.get("message").and_then(Value::as_object);
    AssistantMessage {
        content: msg.map(content_of).unwrap_or_default(),
        model: msg.and_then(|m| str_of(m, "model")),
        stop_reason: msg.and_then(|m| str_of(m, "stop_reason")),
        usage: msg.and_then(|m| m.get("usage")).map(parse_usage),
        // Older CLIs put the error inside the message.
        error: str_of(&o, "error").or_else(|| msg.and_then(|m| str_of(m, "error"))),
        session_id: str_of(&o, "session_id"),
        parent_tool_use_id: str_of(&o, "parent_tool_use_id"),
        raw: Value::Object(o),
    }
}

fn parse_user(o: Map<String, Value>) -> UserMessage {
    UserMessage {
        content: o
            .get("message")
            .and_then(Value::as_object)
            .map(content_of)
            .unwrap_or_default(),
        session_id: str_of(&o, "session_id"),
        parent_tool_use_id: str_of(&o, "parent_tool_use_id"),
        raw: Value::Object(o),
    }
}

fn parse_result(o: Map<String, Value>) -> ClaudeResult {
    let errors = match o.get("errors") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|e| match e {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    ClaudeResult {
        subtype: str_of(&o, "subtype").unwrap_or_default(),
        is_error: o.get("is_error").and_then(Value::as_bool).unwrap_or(false),
        result: str_of(&o, "result"),
        session_id: str_of(&o, "session_id"),
        num_turns: u64_of(&o, "num_turns").map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        duration: millis_of(&o, "duration_ms"),
        duration_api: millis_of(&o, "duration_api_ms"),
        total_cost_usd: o.get("total_cost_usd").and_then(Value::as_f64),
        usage: o.get("usage").map(parse_usage).unwrap_or_default(),
        api_error_status: u64_of(&o, "api_error_status").and_then(|s| u16::try_from(s).ok()),
        terminal_reason: str_of(&o, "terminal_reason"),
        structured_output: o.get("structured_output").filter(|v| !v.is_null()).cloned(),
        json_schema_given: false,
        errors,
        raw: Value::Object(o),
    }
}

fn parse_rate_limit(o: Map<String, Value>) -> RateLimitInfo {
    let info = o.get("rate_limit_info").and_then(Value::as_object);
    RateLimitInfo {
        status: info.and_then(|i| str_of(i, "status")).unwrap_or_default(),
        resets_at: info.and_then(|i| i.get("resetsAt")).and_then(Value::as_f64),
        rate_limit_type: info.and_then(|i| str_of(i, "rateLimitType")),
        raw: Value::Object(o),
    }
}

fn parse_usage(v: &Value) -> Usage {
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: n("input_tokens"),
        output_tokens: n("output_tokens"),
        cache_creation_input_tokens: n("cache_creation_input_tokens"),
        cache_read_input_tokens: n("cache_read_input_tokens"),
        raw: v.clone(),
    }
}

fn content_of(message: &Map<String, Value>) -> Vec<ContentBlock> {
    match message.get("content") {
        Some(Value::String(s)) => vec![ContentBlock::Text(s.clone())],
        Some(Value::Array(blocks)) => blocks.iter().map(parse_block).collect(),
        _ => Vec::new(),
    }
}

fn parse_block(block: &Value) -> ContentBlock {
    let Some(b) = block.as_object() else {
        return ContentBlock::Other(block.clone());
    };
    let text = |k: &str| str_of(b, k);
    match str_of(b, "type").as_deref() {
        Some("text") => match text("text") {
            Some(t) => ContentBlock::Text(t),
            None => ContentBlock::Other(block.clone()),
        },
        Some("thinking") => match text("thinking") {
            Some(t) => ContentBlock::Thinking(t),
            None => ContentBlock::Other(block.clone()),
        },
        Some("tool_use") => ContentBlock::ToolUse {
            id: text("id").unwrap_or_default(),
            name: text("name").unwrap_or_default(),
            input: b.get("input").cloned().unwrap_or(Value::Null),
        },
        Some("tool_result") => ContentBlock::ToolResult {
            tool_use_id: text("tool_use_id").unwrap_or_default(),
            content: b.get("content").cloned().unwrap_or(Value::Null),
            is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
        },
        _ => ContentBlock::Other(block.clone()),
    }
}

fn str_of(o: &Map<String, Value>, key: &str) -> Option<String> {
    o.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn u64_of(o: &Map<String, Value>, key: &str) -> Option<u64> {
    let v = o.get(key)?;
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

fn millis_of(o: &Map<String, Value>, key: &str) -> Option<Duration> {
    let ms = o.get(key)?.as_f64()?;
    Duration::try_from_secs_f64(ms / 1000.0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RateLimitKind;
    use std::time::{SystemTime, UNIX_EPOCH};

    const SUCCESS: &str = include_str!("../../../tests/fixtures/claude/success.jsonl");
    const USAGE_LIMIT: &str = include_str!("../../../tests/fixtures/claude/usage_limit.jsonl");
    const API_429: &str = include_str!("../../../tests/fixtures/claude/api_429.jsonl");
    const MAX_TURNS: &str = include_str!("../../../tests/fixtures/claude/max_turns.jsonl");
    const HIT_LIMIT: &str =
        include_str!("../../../tests/fixtures/claude/hit_limit_new_wording.jsonl");
    const ALL: [&str; 8] = [
        SUCCESS,
        USAGE_LIMIT,
        API_429,
        MAX_TURNS,
        HIT_LIMIT,
        include_str!("../../../tests/fixtures/claude/not_logged_in.jsonl"),
        include_str!("../../../tests/fixtures/claude/structured_output.jsonl"),
        include_str!("../../../tests/fixtures/claude/max_budget.jsonl"),
    ];

    fn events(sample: &str) -> Vec<ClaudeEvent> {
        sample.lines().map(parse_line).collect()
    }

    fn result_of(sample: &str) -> ClaudeResult {
        match events(sample).pop() {
            Some(ClaudeEvent::Result(r)) => r,
            other => panic!("last line is not a result: {other:?}"),
        }
    }

    fn epoch(at: SystemTime) -> u64 {
        at.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn every_sample_line_is_typed_and_keeps_its_raw_json() {
        for sample in ALL {
            for line in sample.lines() {
                let raw: Value = serde_json::from_str(line).unwrap();
                let kept = match parse_line(line) {
                    ClaudeEvent::Init(i) => i.raw,
                    ClaudeEvent::System { raw, .. } => raw,
                    ClaudeEvent::Assistant(a) => a.raw,
                    ClaudeEvent::User(u) => u.raw,
                    ClaudeEvent::Result(r) => r.raw,
                    ClaudeEvent::RateLimit(r) => r.raw,
                    other => panic!("untyped sample line {line}: {other:?}"),
                };
                assert_eq!(kept, raw);
            }
        }
    }

    #[test]
    fn parses_success_sample() {
        let ev = events(SUCCESS);
        assert_eq!(ev.len(), 5);
        let ClaudeEvent::Init(init) = &ev[0] else {
            panic!("{:?}", ev[0])
        };
        assert_eq!(init.session_id, "0b6c2f1e-5d2a-4b8e-9a51-3f0c8e7d1a22");
        assert_eq!(init.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(init.tools, ["Task", "Bash", "Read", "Edit", "Write"]);
        assert_eq!(init.cwd.as_deref(), Some("/srv/app"));
        assert_eq!(init.permission_mode.as_deref(), Some("default"));
        assert!(init.mcp_servers.is_empty());

        let ClaudeEvent::Assistant(a) = &ev[1] else {
            panic!("{:?}", ev[1])
        };
        assert_eq!(a.text(), "I'll read the file first.");
        assert_eq!(
            a.content[1],
            ContentBlock::ToolUse {
                id: "toolu_01".into(),
                name: "Read".into(),
                input: serde_json::json!({"file_path": "/srv/app/main.py"}),
            }
        );
        assert_eq!(a.stop_reason.as_deref(), Some("tool_use"));
        assert_eq!(a.usage.as_ref().unwrap().input_tokens, 120);
        assert_eq!(a.usage.as_ref().unwrap().output_tokens, 31);
        assert_eq!(a.error, None);
        assert_eq!(a.rate_limit(), None);

        let ClaudeEvent::User(u) = &ev[2] else {
            panic!("{:?}", ev[2])
        };
        let results: Vec<_> = u.tool_results().collect();
        assert_eq!(
            results,
            [("toolu_01", &Value::String("print(2 + 2)\n".into()), false)]
        );

        let ClaudeEvent::Assistant(a) = &ev[3] else {
            panic!("{:?}", ev[3])
        };
        assert_eq!(a.text(), "The script prints 4.");
        assert_eq!(a.usage.as_ref().unwrap().cache_read_input_tokens, 120);

        let r = result_of(SUCCESS);
        assert_eq!(r.subtype, "success");
        assert!(!r.is_error);
        assert!(r.is_success());
        assert_eq!(r.result.as_deref(), Some("The script prints 4."));
        assert_eq!(
            r.session_id.as_deref(),
            Some("0b6c2f1e-5d2a-4b8e-9a51-3f0c8e7d1a22")
        );
        assert_eq!(r.num_turns, 2);
        assert_eq!(r.duration, Some(Duration::from_millis(4210)));
        assert_eq!(r.duration_api, Some(Duration::from_millis(3980)));
        assert_eq!(r.total_cost_usd, Some(0.0123));
        assert_eq!(r.usage.input_tokens, 280);
        assert_eq!(r.usage.output_tokens, 40);
        assert_eq!(r.usage.cache_read_input_tokens, 120);
        assert_eq!(r.usage.cache_creation_input_tokens, 0);
        assert_eq!(r.api_error_status, None);
        assert!(r.errors.is_empty());
        assert_eq!(r.raw["stop_reason"], "end_turn");
        assert_eq!(r.rate_limit(), None);
    }

    #[test]
    fn usage_limit_sample() {
        let ev = events(USAGE_LIMIT);
        let ClaudeEvent::RateLimit(info) = &ev[1] else {
            panic!("{:?}", ev[1])
        };
        assert!(info.is_rejected());
        assert_eq!(info.status, "rejected");
        assert_eq!(info.resets_at, Some(1_900_000_000.0));
        assert_eq!(info.rate_limit_type.as_deref(), Some("five_hour"));
        let from_event = info.rate_limit().unwrap();
        assert_eq!(from_event.kind, RateLimitKind::UsageLimit);
        assert_eq!(epoch(from_event.reset_at.unwrap()), 1_900_000_000);

        let ClaudeEvent::Assistant(a) = &ev[2] else {
            panic!("{:?}", ev[2])
        };
        let from_message = a.rate_limit().unwrap();
        assert_eq!(from_message.kind, RateLimitKind::UsageLimit);
        assert_eq!(epoch(from_message.reset_at.unwrap()), 1_900_000_000);

        let r = result_of(USAGE_LIMIT);
        assert_eq!(r.subtype, "success");
        assert!(!r.is_error, "the CLI really reports it as no error");
        assert!(!r.is_success());
        let limit = r.rate_limit().unwrap();
        assert_eq!(limit.kind, RateLimitKind::UsageLimit);
        assert_eq!(limit.message, "Claude AI usage limit reached");
        assert_eq!(epoch(limit.reset_at.unwrap()), 1_900_000_000);
        assert_eq!(limit.text, "Claude AI usage limit reached|1900000000");
        assert!(limit.recoverable);
    }

    #[test]
    fn api_429_sample() {
        let ev = events(API_429);
        assert!(matches!(&ev[1], ClaudeEvent::System { subtype, raw }
            if subtype == "api_retry" && raw["error_status"] == 429));
        let r = result_of(API_429);
        assert!(r.is_error);
        assert_eq!(r.api_error_status, Some(429));
        let limit = r.rate_limit().unwrap();
        assert_eq!(limit.kind, RateLimitKind::Http429);
        assert!(limit.message.contains("429"), "{}", limit.message);
        assert!(
            limit.message.contains("per-minute rate limit"),
            "{}",
            limit.message
        );
        assert_eq!(limit.reset_at, None);
        assert!(limit.text.starts_with("API Error: 429"));
    }

    #[test]
    fn max_turns_sample() {
        let r = result_of(MAX_TURNS);
        assert_eq!(r.subtype, "error_max_turns");
        assert!(r.is_error);
        assert!(!r.is_success());
        assert_eq!(r.result, None);
        assert_eq!(r.errors, ["Reached maximum number of turns (1)"]);
        assert_eq!(r.total_cost_usd, Some(0.002));
        assert_eq!(r.rate_limit(), None);
    }

    #[test]
    fn hit_limit_new_wording_sample() {
        let r = result_of(HIT_LIMIT);
        let limit = r.rate_limit().unwrap();
        assert_eq!(limit.kind, RateLimitKind::UsageLimit);
        assert_eq!(limit.reset_at, None);
        assert_eq!(
            limit.message,
            "You've hit your limit · resets 3pm (Europe/Paris)"
        );
        assert_eq!(limit.text, limit.message);
    }

    #[test]
    fn no_sample_but_the_limit_ones_reports_a_limit() {
        for sample in [SUCCESS, MAX_TURNS] {
            for ev in events(sample) {
                let limit = match ev {
                    ClaudeEvent::Assistant(a) => a.rate_limit(),
                    ClaudeEvent::Result(r) => r.rate_limit(),
                    ClaudeEvent::RateLimit(i) => i.rate_limit(),
                    _ => None,
                };
                assert_eq!(limit, None);
            }
        }
    }

    #[test]
    fn odd_lines_never_fail() {
        assert_eq!(parse_line(""), ClaudeEvent::Text(String::new()));
        assert_eq!(parse_line("hello\n"), ClaudeEvent::Text("hello".into()));
        assert_eq!(
            parse_line("{not json"),
            ClaudeEvent::Text("{not json".into())
        );
        assert_eq!(parse_line("[1,2]"), ClaudeEvent::Text("[1,2]".into()));
        assert_eq!(parse_line("42"), ClaudeEvent::Text("42".into()));
        let unknown = r#"{"type":"brand_new","x":1}"#;
        assert_eq!(
            parse_line(unknown),
            ClaudeEvent::Unknown(serde_json::from_str(unknown).unwrap())
        );
        assert!(matches!(
            parse_line(r#"{"no":"type"}"#),
            ClaudeEvent::Unknown(_)
        ));
        assert!(matches!(
            parse_line(r#"{"type":"system","subtype":"compact_boundary"}"#),
            ClaudeEvent::System { subtype, .. } if subtype == "compact_boundary"
        ));
        assert!(matches!(
            parse_line(r#"{"type":"stream_event","event":{"type":"message_start"}}"#),
            ClaudeEvent::StreamEvent { event, .. } if event["type"] == "message_start"
        ));
        // Wrong field types degrade to defaults instead of failing.
        let ClaudeEvent::Result(r) = parse_line(
            r#"{"type":"result","subtype":7,"is_error":"yes","num_turns":-1,"usage":"x","errors":"boom"}"#,
        ) else {
            panic!()
        };
        assert_eq!(r.subtype, "");
        assert!(!r.is_error);
        assert_eq!(r.num_turns, 0);
        assert_eq!(r.usage.input_tokens, 0);
        assert_eq!(r.errors, ["boom"]);
        let ClaudeEvent::Assistant(a) = parse_line(
            r#"{"type":"assistant","message":{"content":[1,{"type":"image"},{"type":"text"}]}}"#,
        ) else {
            panic!()
        };
        assert!(a
            .content
            .iter()
            .all(|b| matches!(b, ContentBlock::Other(_))));
        let ClaudeEvent::Assistant(a) = parse_line(
            r#"{"type":"assistant","message":{"content":[{"type":"thinking","thinking":"hmm"}]},"error":"rate_limit"}"#,
        ) else {
            panic!()
        };
        assert_eq!(a.content, [ContentBlock::Thinking("hmm".into())]);
        assert_eq!(a.rate_limit().unwrap().kind, RateLimitKind::UsageLimit);
    }
}
