//! Sub-agents under control, as an orchestrating host uses them: Claude's own limits and typed
//! answers, plain failures, waiting on several jobs, finding lines in output, and schemas every
//! host accepts. Stand-in `claude` programs print recorded stream-json samples.

use std::collections::BTreeSet;

use crate::claude::{args_of, stand_in};
use crate::jobs::{job, stand_in_path, start_job};
use crate::support::*;
use cc_executor_client::schema::STANDARD_FORMATS;
use serde_json::{json, Value};

/// Every `format` keyword value in a schema.
fn formats(schema: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(f)) = map.get("format") {
                out.insert(f.clone());
            }
            map.values().for_each(|v| formats(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| formats(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn tool_schemas_use_only_standard_formats_and_keep_unsigned_bounds() {
    let mcp = start(&[], &[]).await;
    let tools = bounded("tools/list", mcp.list_all_tools()).await.unwrap();
    let mut seen = BTreeSet::new();
    for tool in &tools {
        formats(&Value::Object((*tool.input_schema).clone()), &mut seen);
        if let Some(output) = &tool.output_schema {
            formats(&Value::Object((**output).clone()), &mut seen);
        }
    }
    // What schemars writes for Rust's numbers, and anything else outside the standard's list.
    let numeric = ["int", "uint", "double", "float"];
    let odd: Vec<&String> = (seen.iter())
        .filter(|f| {
            numeric.iter().any(|n| f.starts_with(n)) || !STANDARD_FORMATS.contains(&f.as_str())
        })
        .collect();
    assert!(odd.is_empty(), "non-standard formats: {odd:?}");
    let run = tools.iter().find(|t| t.name == "execute_claude").unwrap();
    let turns = &run.input_schema["properties"]["max_turns"];
    assert_eq!(turns["minimum"], 0, "{turns}");
    let budget = &run.input_schema["properties"]["max_budget_usd"];
    assert!(budget.is_object(), "{:?}", run.input_schema);
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn every_new_option_reaches_the_cli_as_one_argument() {
    let mcp = start(&[], &[("PATH", stand_in().1.clone())]).await;
    let tag = marker("options");
    let schema = json!({"type": "object", "properties": {"answer": {"type": "string", "description": "it's $(id)"}}});
    let r = call_ok(
        &mcp,
        "execute_claude",
        json!({
            "prompt": format!("structured please {tag}"),
            "max_budget_usd": 0.25,
            "json_schema": schema,
            "permission_mode": "acceptEdits",
            "disallowed_tools": ["Write", "Bash(rm -rf:*)"],
            "append_system_prompt": "Be brief; don't `touch` $HOME",
            "add_dirs": ["/tmp/a dir", "../it's"],
            "fallback_model": "sonnet",
            "effort": "high",
        }),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let args = args_of(&tag);
    // Each flag is followed by exactly its values, each one argument.
    let after = |flag: &str, n: usize| -> Vec<String> {
        let at = args.iter().position(|a| a == flag);
        let at = at.unwrap_or_else(|| panic!("no {flag} in {args:?}"));
        args[at + 1..at + 1 + n].to_vec()
    };
    assert_eq!(after("--max-budget-usd", 1), ["0.25"]);
    let sent: Value = serde_json::from_str(&after("--json-schema", 1)[0]).unwrap();
    assert_eq!(sent, schema);
    assert_eq!(after("--permission-mode", 1), ["acceptEdits"]);
    assert_eq!(after("--disallowed-tools", 2), ["Write", "Bash(rm -rf:*)"]);
    assert_eq!(
        after("--append-system-prompt", 1),
        ["Be brief; don't `touch` $HOME"]
    );
    assert_eq!(after("--add-dir", 2), ["/tmp/a dir", "../it's"]);
    assert_eq!(after("--fallback-model", 1), ["sonnet"]);
    assert_eq!(after("--effort", 1), ["high"]);
    assert_eq!(args[args.len() - 2], "--");

    // Options not given are not passed.
    let plain = marker("plain");
    let r = call_ok(&mcp, "execute_claude", json!({"prompt": plain})).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let args = args_of(&plain);
    for flag in ["--max-budget-usd", "--json-schema", "--effort", "--add-dir"] {
        assert!(!args.iter().any(|a| a == flag), "{flag} in {args:?}");
    }

    // Checked before anything starts.
    for (bad, word) in [
        (json!({"max_budget_usd": 0}), "max_budget_usd"),
        (json!({"max_budget_usd": -1.5}), "max_budget_usd"),
        (json!({"json_schema": "an object please"}), "json_schema"),
        (json!({"json_schema": [1, 2]}), "json_schema"),
    ] {
        let never = marker("refused");
        let mut args = bad.as_object().unwrap().clone();
        args.insert("prompt".into(), json!(never));
        let r = call_ok(&mcp, "execute_claude", Value::Object(args)).await;
        assert_eq!(r.is_error, Some(true), "{bad} accepted");
        assert!(text(&r).contains(word), "{bad}: {}", text(&r));
        let runs = std::fs::read_to_string(stand_in().0.join("argv.log")).unwrap();
        assert!(!runs.contains(&never), "{bad} started claude");
    }
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn a_run_without_login_says_claude_failed() {
    let mcp = start(&[], &[("PATH", stand_in().1.clone())]).await;
    let r = call_ok(
        &mcp,
        "execute_claude",
        json!({"prompt": "you are not logged in"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let first = r.content[0].as_text().expect("a text first").text.clone();
    assert!(first.starts_with("Claude failed (api_error)"), "{first}");
    assert!(first.contains("Not logged in"), "{first}");
    let s = structured(&r);
    assert_eq!(s["terminal_reason"], "api_error");
    assert_eq!(s["subtype"], "success");
    assert_eq!(s["is_error"], true);
    // A budget stop is its own note, with the amount spent.
    let r = call_ok(&mcp, "execute_claude", json!({"prompt": "over budget"})).await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let t = text(&r);
    assert!(t.starts_with("Claude stopped at its budget"), "{t}");
    assert!(t.contains("$0.5123"), "{t}");
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn structured_output_comes_back_as_json() {
    let mcp = start(&[], &[("PATH", stand_in().1.clone())]).await;
    let schema = json!({"type": "object", "properties": {"answer": {"type": "integer"}}});
    let r = call_ok(
        &mcp,
        "execute_claude",
        json!({"prompt": "a structured answer", "json_schema": schema}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let s = structured(&r);
    assert_eq!(
        s["structured_output"],
        json!({"answer": 4, "files": ["main.py"]})
    );
    // Asked for, not given: said so.
    let r = call_ok(
        &mcp,
        "execute_claude",
        json!({"prompt": "plain answer", "json_schema": schema}),
    )
    .await;
    assert!(text(&r).contains("no structured_output"), "{}", text(&r));
    assert_eq!(structured(&r)["result"], "The script prints 4.");
    // The same for background jobs.
    for (prompt, structured_output) in [
        (
            "a structured answer",
            json!({"answer": 4, "files": ["main.py"]}),
        ),
        ("plain answer", Value::Null),
    ] {
        let claude = json!({"prompt": prompt, "json_schema": schema});
        let s = start_job(&mcp, json!({ "claude": claude })).await;
        let w = job(&mcp, "job_wait", json!({"id": s["id"], "timeout_secs": 60})).await;
        assert_eq!(w["claude"]["structured_output"], structured_output, "{w}");
        let noted = w["notes"].to_string().contains("no structured_output");
        assert_eq!(noted, structured_output.is_null(), "{w}");
    }
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn waiting_on_three_jobs_returns_when_the_first_ends_and_names_it() {
    let mcp = start(&[], &[("PATH", stand_in_path())]).await;
    let mut ids = Vec::new();
    for m in [marker("wait-a"), marker("wait-b")] {
        let s = start_job(&mcp, json!({"command": format!("sleep 300 # {m}")})).await;
        ids.push(s["id"].clone());
    }
    // A Claude job that ends once `go` exists: the first to end.
    let dir = private_dir();
    let go = dir.path().join("go");
    let prompt = format!("wait-for:{}", go.display());
    let c = start_job(&mcp, json!({"claude": {"prompt": prompt}})).await;
    ids.push(c["id"].clone());
    // Far longer than the call's own bound: only the end of the Claude job can return in time.
    let args = json!({"ids": ids, "mode": "any", "timeout_secs": 600});
    let wait = call_ok(&mcp, "job_wait", args);
    let named = format!("running: {}, {}, {}", ids[0], ids[1], ids[2]);
    let release = async {
        bounded("progress naming the running jobs", async {
            while !progress_messages(&mcp)
                .iter()
                .any(|m| m.starts_with(&named))
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await;
        std::fs::write(&go, "").unwrap();
    };
    let (r, ()) = tokio::join!(wait, release);
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let w = structured(&r);
    assert_eq!(w["ended"], json!([c["id"]]), "{w}");
    assert_eq!(w["running"], json!([ids[0], ids[1]]), "{w}");
    let jobs = w["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3, "{w}");
    assert_eq!(jobs[2]["claude"]["result"], "The script prints 4.", "{w}");
    assert_eq!(jobs[0]["state"], "running");
    // Both others, canceled: `all` returns once both ended.
    for id in &ids[..2] {
        call_ok(&mcp, "job_cancel", json!({"id": id})).await;
    }
    let w = job(
        &mcp,
        "job_wait",
        json!({"ids": [ids[0], ids[1]], "mode": "all", "timeout_secs": 600}),
    )
    .await;
    assert_eq!(w["ended"], json!([ids[0], ids[1]]), "{w}");
    assert_eq!(w["running"], json!([]), "{w}");
    // Not both `id` and `ids`; not an unknown job.
    for bad in [
        json!({"id": ids[0], "ids": [ids[1]]}),
        json!({"ids": []}),
        json!({"ids": [ids[0], 999_999]}),
    ] {
        let r = call_ok(&mcp, "job_wait", bad.clone()).await;
        assert_eq!(r.is_error, Some(true), "{bad}: {r:?}");
    }
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn grep_finds_the_matching_lines_with_their_offsets() {
    let mcp = start(&[], &[]).await;
    let s = start_job(
        &mcp,
        json!({"command": "printf 'alpha\\nbeta\\nerror one\\ngamma\\nerror two\\ndelta\\n'"}),
    )
    .await;
    let id = s["id"].clone();
    job(&mcp, "job_wait", json!({"id": id, "timeout_secs": 60})).await;
    let g = job(&mcp, "job_output", json!({"id": id, "grep": "^error"})).await;
    assert_eq!(g["match_count"], 2, "{g}");
    assert_eq!(
        g["lines"],
        json!([
            {"offset": 11, "line": "error one", "match": true},
            {"offset": 27, "line": "error two", "match": true},
        ]),
        "{g}"
    );
    assert_eq!(g["eof"], true, "{g}");
    let g = job(
        &mcp,
        "job_output",
        json!({"id": id, "grep": "one", "context": 1}),
    )
    .await;
    assert_eq!(
        g["lines"],
        json!([
            {"offset": 6, "line": "beta", "match": false},
            {"offset": 11, "line": "error one", "match": true},
            {"offset": 21, "line": "gamma", "match": false},
        ]),
        "{g}"
    );
    let none = job(&mcp, "job_output", json!({"id": id, "grep": "zeta"})).await;
    assert_eq!(
        (none["match_count"].clone(), none["lines"].clone()),
        (json!(0), json!([]))
    );
    // Nothing was consumed.
    let page = job(&mcp, "job_output", json!({"id": id})).await;
    assert_eq!(
        page["data"],
        "alpha\nbeta\nerror one\ngamma\nerror two\ndelta\n"
    );
    let r = call_ok(&mcp, "job_output", json!({"id": id, "grep": "(unclosed"})).await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert!(text(&r).contains("regular expression"), "{}", text(&r));
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn a_claude_jobs_output_reads_as_text() {
    let mcp = start(&[], &[("PATH", stand_in_path())]).await;
    let s = start_job(
        &mcp,
        json!({"claude": {"prompt": "what does main.py print?"}}),
    )
    .await;
    let id = s["id"].clone();
    job(&mcp, "job_wait", json!({"id": id, "timeout_secs": 60})).await;
    let page = job(&mcp, "job_output", json!({"id": id, "format": "text"})).await;
    let data = page["data"].as_str().unwrap();
    assert!(data.contains("I'll read the file first.\n"), "{data}");
    assert!(
        data.contains("Tool: Read {\"file_path\":\"/srv/app/main.py\"}\n"),
        "{data}"
    );
    assert!(
        data.ends_with("Result (success): The script prints 4.\n"),
        "{data}"
    );
    assert!(!data.contains("\"type\""), "stream-json left in {data}");
    assert_eq!(page["eof"], true, "{page}");
    // Grep reads the text too, at the offsets of the stream-json lines.
    let g = job(
        &mcp,
        "job_output",
        json!({"id": id, "format": "text", "grep": "^Tool: "}),
    )
    .await;
    let lines = g["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{g}");
    let raw = job(&mcp, "job_output", json!({"id": id})).await;
    let raw = raw["data"].as_str().unwrap();
    let at = lines[0]["offset"].as_u64().unwrap() as usize;
    assert!(raw[at..].starts_with("{\"type\":\"assistant\""), "{g}");
    mcp.cancel().await.unwrap();
}

/// The messages of the progress notifications received so far.
fn progress_messages(mcp: &Mcp) -> Vec<String> {
    let progress = mcp.service().progress.lock().unwrap();
    progress.iter().filter_map(|p| p.message.clone()).collect()
}
