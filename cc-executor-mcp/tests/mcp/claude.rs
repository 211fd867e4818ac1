//! `execute_claude` through `cc-executor-mcp`, with a stand-in `claude` on PATH that checks its
//! arguments and prints recorded stream-json samples; both with the embedded service and with a
//! separately started `cc-executor-server` given by `--url`.
//!
//! The stand-in must be found by the service: its directory comes first on the `PATH` given to
//! the process running the service (the MCP binary, or the separate service).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::jobs::{job, start_job};
use crate::support::*;
use serde_json::{json, Value};
use tests::service::ServiceProcess;

/// The directory holding the stand-in `claude`, and `PATH` with that directory first.
pub(crate) fn stand_in() -> &'static (PathBuf, OsString) {
    static DIR: OnceLock<(PathBuf, OsString)> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mcp-claude-stand-in");
        std::fs::create_dir_all(&dir).unwrap();
        let fixtures = tests::fixtures_dir().join("claude");
        let script = STAND_IN
            .replace("@FIXTURES@", fixtures.to_str().unwrap())
            .replace("@LOG@", dir.join("argv.log").to_str().unwrap())
            .replace("@DIR@", dir.to_str().unwrap());
        let tmp = dir.join("claude.tmp");
        std::fs::write(&tmp, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&tmp, dir.join("claude")).unwrap();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![dir.clone()];
        paths.extend(std::env::split_paths(&path));
        (dir, std::env::join_paths(paths).unwrap())
    })
}

/// Checks the flags every run gets, logs its arguments (also NUL-separated, one file a run),
/// then prints the sample the prompt names. With `--input-format stream-json` it reads user
/// messages instead, answers each with an assistant message, and writes a result naming them
/// all at end of input.
const STAND_IN: &str = r#"#!/bin/sh
printf '%s\n' "$*" >> '@LOG@'
printf '%s\0' "$@" > '@DIR@'/argv.$$
[ "$1" = "-p" ] || { echo "stand-in claude: expected -p first: $*" >&2; exit 2; }
case " $* " in
  *" --output-format stream-json "*) ;;
  *) echo "stand-in claude: no --output-format stream-json: $*" >&2; exit 2 ;;
esac
case " $* " in
  *" --input-format stream-json "*) exec python3 -c '
import json, sys
def say(obj):
    print(json.dumps(obj), flush=True)
sid = "5e55i0n-1"
say({"type": "system", "subtype": "init", "session_id": sid, "tools": [], "model": "stand-in"})
heard = []
for line in iter(sys.stdin.readline, ""):
    msg = json.loads(line)
    assert msg["type"] == "user" and msg["message"]["role"] == "user", line
    text = "".join(b["text"] for b in msg["message"]["content"] if b["type"] == "text")
    heard.append(text)
    content = [{"type": "text", "text": "heard: " + text}]
    say({"type": "assistant", "message": {"role": "assistant", "content": content}, "session_id": sid})
say({"type": "result", "subtype": "success", "is_error": False, "num_turns": len(heard),
     "result": "heard: " + " | ".join(heard), "session_id": sid, "total_cost_usd": 0})
' ;;
esac
for prompt; do :; done
case "$prompt" in
  *"usage limit"*) sample=usage_limit ;;
  *"get a 429"*) sample=api_429 ;;
  *"many turns"*) sample=max_turns ;;
  *"not logged in"*) sample=not_logged_in ;;
  *"structured"*) sample=structured_output ;;
  *"budget"*) sample=max_budget ;;
  *) sample=success ;;
esac
case "$prompt" in
  *slow*) while IFS= read -r line; do printf '%s\n' "$line"; sleep 0.3; done < '@FIXTURES@'/$sample.jsonl ;;
  *) cat '@FIXTURES@'/$sample.jsonl ;;
esac
# The CLI exits 1 after a failed run, its result line written.
[ "$sample" != not_logged_in ]
"#;

/// The arguments the stand-in got for the run whose prompt holds `marker`.
fn argv_of(marker: &str) -> String {
    let log = std::fs::read_to_string(stand_in().0.join("argv.log")).unwrap_or_default();
    log.lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("the stand-in claude never ran for {marker}"))
        .to_owned()
}

/// The arguments, one by one, the stand-in got for the run whose prompt holds `marker`.
pub(crate) fn args_of(marker: &str) -> Vec<String> {
    let files = std::fs::read_dir(&stand_in().0).unwrap();
    let runs = files.filter_map(|f| std::fs::read(f.ok()?.path()).ok());
    let run = runs
        .filter_map(|raw| String::from_utf8(raw).ok())
        .find(|argv| argv.contains('\0') && argv.contains(marker))
        .unwrap_or_else(|| panic!("the stand-in claude never ran for {marker}"));
    let mut args: Vec<String> = run.split('\0').map(str::to_owned).collect();
    assert_eq!(args.pop().as_deref(), Some(""), "argv ends with a NUL");
    args
}

/// An MCP server with its embedded service, or one using a service started here.
async fn mcp(external: bool) -> (Mcp, Option<ServiceProcess>) {
    let path = &stand_in().1;
    if !external {
        return (start(&[], &[("PATH", path.clone())]).await, None);
    }
    let service = ServiceProcess::start_with(&[], &[("PATH", path)]).await;
    let url = service.url.clone();
    (start(&["--url", &url], &[]).await, Some(service))
}

async fn success_returns_the_final_result(external: bool) {
    let (mcp, server) = mcp(external).await;
    let marker = marker("success");
    let r = call_ok(
        &mcp,
        "execute_claude",
        json!({
            "prompt": format!("slow: what does main.py print? {marker}"),
            "model": "opus",
            "allowed_tools": ["Read", "Grep"],
            "max_turns": 3,
            "timeout_secs": 120,
        }),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let s = structured(&r);
    assert_eq!(s["result"], "The script prints 4.");
    assert_eq!(s["session_id"], "0b6c2f1e-5d2a-4b8e-9a51-3f0c8e7d1a22");
    assert_eq!(s["num_turns"], 2);
    assert_eq!(s["total_cost_usd"], 0.0123);
    assert_eq!(s["usage"]["input_tokens"], 280);
    assert_eq!(s["usage"]["output_tokens"], 40);
    assert_eq!(s["is_error"], false);
    assert_eq!(s["subtype"], "success");
    // Only the result, not the stream.
    assert!(!text(&r).contains("tool_use"), "{}", text(&r));

    let argv = argv_of(&marker);
    assert!(argv.contains("--model opus"), "{argv}");
    assert!(argv.contains("--allowedTools Read Grep"), "{argv}");
    assert!(argv.contains("--max-turns 3"), "{argv}");

    let messages: Vec<String> = mcp
        .service()
        .progress
        .lock()
        .unwrap()
        .iter()
        .filter_map(|p| p.message.clone())
        .collect();
    assert!(
        messages.iter().any(|m| m == "tool: Read"),
        "no progress naming the tool in use: {messages:?}"
    );
    mcp.cancel().await.unwrap();
    if let Some(server) = server {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn success_with_the_embedded_service() {
    success_returns_the_final_result(false).await;
}

#[tokio::test]
async fn success_with_a_separate_service() {
    success_returns_the_final_result(true).await;
}

fn assert_rate_limited(r: &rmcp::model::CallToolResult, expect: &[&str]) {
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let t = text(r);
    assert!(t.starts_with("Rate limited"), "{t}");
    for e in expect {
        assert!(t.contains(e), "{e:?} missing in {t}");
    }
}

/// Over both services: `prompt` makes the stand-in hit a limit, and the tool result says so.
async fn rate_limited(prompt: &str, expected: &[&str]) {
    for external in [false, true] {
        let (mcp, server) = mcp(external).await;
        let r = call_ok(&mcp, "execute_claude", json!({ "prompt": prompt })).await;
        assert_rate_limited(&r, expected);
        mcp.cancel().await.unwrap();
        if let Some(server) = server {
            server.shutdown().await;
        }
    }
}

#[tokio::test]
async fn usage_limit_is_an_error_with_the_reset_time() {
    rate_limited(
        "hit the usage limit",
        &["usage limit", "2030-03-17 17:46:40 UTC"],
    )
    .await;
}

#[tokio::test]
async fn api_429_is_an_error() {
    rate_limited("get a 429", &["429", "per-minute rate limit"]).await;
}

#[tokio::test]
async fn max_turns_is_an_error_with_the_structured_result_and_resume_is_passed() {
    let (mcp, _) = mcp(false).await;
    let marker = marker("turns");
    let r = call_ok(
        &mcp,
        "execute_claude",
        json!({
            "prompt": format!("too many turns {marker}"),
            "max_turns": 1,
            "resume_session_id": "0b6c2f1e-5d2a-4b8e-9a51-3f0c8e7d1a22",
        }),
    )
    .await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let s: &Value = structured(&r);
    assert_eq!(s["subtype"], "error_max_turns");
    assert_eq!(s["is_error"], true);
    assert_eq!(s["session_id"], "e9f8a7b6-1111-4c2d-8e3f-0a1b2c3d4e5f");
    assert!(
        text(&r).contains("Reached maximum number of turns"),
        "{}",
        text(&r)
    );
    let argv = argv_of(&marker);
    assert!(
        argv.contains("--resume 0b6c2f1e-5d2a-4b8e-9a51-3f0c8e7d1a22"),
        "{argv}"
    );

    let e = call_ok(&mcp, "execute_claude", json!({"prompt": ""})).await;
    assert_eq!(e.is_error, Some(true));
    let e = call(
        &mcp,
        "execute_claude",
        json!({"prompt": "x", "max_turns": "two"}),
    )
    .await;
    assert!(
        e.as_ref().map_or(true, |r| r.is_error == Some(true)),
        "wrong type accepted: {e:?}"
    );
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn a_cut_answer_is_saved_whole_to_a_private_file() {
    let root = private_dir();
    let dir = root.path().join("outputs");
    let args = [
        "--output-dir",
        dir.to_str().unwrap(),
        "--max-output-chars",
        "10",
    ];
    let mcp = start(&args, &[("PATH", stand_in().1.clone())]).await;
    // `timeout` is the seed's name for `timeout_secs`. No marker in the prompt: its digits could
    // pick another sample.
    let prompt = "what does main.py print?";
    let r = call_ok(
        &mcp,
        "execute_claude",
        json!({"prompt": prompt, "timeout": 120}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let s = structured(&r);
    assert_ne!(s["result"], "The script prints 4.", "not cut: {s}");
    let file = PathBuf::from(s["output_file"].as_str().expect("output_file"));
    assert_eq!(file.parent(), Some(dir.as_path()));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "The script prints 4."
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&dir), mode(&file)), (0o700, 0o600));
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn an_interactive_claude_job_takes_messages_mid_run() {
    let (mcp, _) = mcp(false).await;
    let claude = json!({"prompt": "first task", "interactive": true});
    let s = start_job(&mcp, json!({ "claude": claude })).await;
    let id = &s["id"];
    let heard = |what: &'static str| {
        let mcp = &mcp;
        async move {
            bounded(what, async {
                loop {
                    let s = job(mcp, "job_status", json!({ "id": id })).await;
                    if s["assistant"] == format!("heard: {what}") {
                        return;
                    }
                    assert_eq!(s["state"], "running", "{s}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            })
            .await
        }
    };
    heard("first task").await;
    for message in ["second task", "third task"] {
        job(&mcp, "job_input", json!({"id": id, "text": message})).await;
        heard(message).await;
    }
    job(&mcp, "job_input", json!({"id": id, "eof": true})).await;
    let done = job(&mcp, "job_wait", json!({"id": id, "timeout_secs": 60})).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(
        done["claude"]["result"],
        "heard: first task | second task | third task"
    );
    assert_eq!(done["claude"]["num_turns"], 3);
    mcp.cancel().await.unwrap();
}
