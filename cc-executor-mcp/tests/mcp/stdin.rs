//! Talking to running commands through `cc-executor-mcp`, as a host would: `execute` with
//! `stdin`, jobs started with `stdin` or `pty` and fed with `job_input`, ANSI-free tool text,
//! and a service without the `stdin` capability.

use crate::jobs::{job, start_job};
use crate::support::*;
use rmcp::model::CallToolResult;
use serde_json::{json, Value};
use tests::service::ServiceProcess;

/// Call `execute` with `args`.
async fn execute(mcp: &Mcp, args: Value) -> CallToolResult {
    call(mcp, "execute", args).await.unwrap()
}

#[tokio::test]
async fn job_input_reaches_stdin_and_eof_ends_the_job() {
    let mcp = start(&[], &[]).await;
    let s = start_job(&mcp, json!({"command": "cat", "stdin": true})).await;
    let id = &s["id"];
    job(&mcp, "job_input", json!({"id": id, "text": "ping-1\n"})).await;
    job_output_until(&mcp, id, |out| out.contains("ping-1\n")).await;
    job(
        &mcp,
        "job_input",
        json!({"id": id, "text": "ping-2\n", "eof": true}),
    )
    .await;
    let done = job(&mcp, "job_wait", json!({"id": id, "timeout_secs": 60})).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["exit_code"], 0);
    let page = job(&mcp, "job_output", json!({"id": id})).await;
    assert_eq!(page["data"], "ping-1\nping-2\n");
    // Closed: more input is an error that says so.
    let r = call(&mcp, "job_input", json!({"id": id, "text": "late"}))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    // A job started without stdin refuses input.
    let s = start_job(&mcp, json!({"command": "sleep 30"})).await;
    let r = call(&mcp, "job_input", json!({"id": s["id"], "text": "x"}))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("stdin"), "{}", text(&r));
    job(&mcp, "job_cancel", json!({"id": s["id"]})).await;
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn execute_feeds_stdin_text() {
    let mcp = start(&[], &[]).await;
    let r = execute(&mcp, json!({"command": "wc -c", "stdin": "hello wörld\n"})).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    assert_eq!(structured(&r)["stdout"].as_str().unwrap().trim(), "13");
    // Without it, stdin is empty: `cat` ends at once.
    let r = execute(&mcp, json!({"command": "cat; echo end"})).await;
    assert_eq!(structured(&r)["stdout"], "end\n");
    // On a terminal: stdout and stderr merged, line ends without the terminal's `\r`.
    let on_pty = json!({"command": "test -t 0 && echo tty && echo err >&2", "pty": true});
    let r = execute(&mcp, on_pty).await;
    assert_eq!(structured(&r)["stdout"], "tty\nerr\n", "{}", text(&r));
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn a_pty_job_has_a_terminal_and_a_repl_answers() {
    let mcp = start(&[], &[]).await;
    let s = start_job(
        &mcp,
        json!({"command": "test -t 0 && test -t 1 && echo is-a-tty", "pty": true}),
    )
    .await;
    let done = job(&mcp, "job_wait", json!({"id": s["id"], "timeout_secs": 60})).await;
    assert_eq!(done["exit_code"], 0, "{done}");
    let page = job(&mcp, "job_output", json!({"id": s["id"]})).await;
    assert_eq!(page["data"], "is-a-tty\n");

    let s = start_job(&mcp, json!({"command": "python3 -i -q", "pty": true})).await;
    let id = &s["id"];
    // The prompt shows before any input, though its line has not ended.
    let out = job_output_until(&mcp, id, |out| out.ends_with(">>> ")).await;
    assert_eq!(out, ">>> ");
    job(&mcp, "job_input", json!({"id": id, "text": "6*7\n"})).await;
    // The answer, then the next prompt: the REPL waits for its next line.
    let answered = |out: &str| out.lines().any(|l| l == "42") && out.ends_with("\n>>> ");
    let out = job_output_until(&mcp, id, answered).await;
    assert!(!out.contains('\x1b') && !out.contains('\r'), "{out:?}");
    // End of input at the prompt (Ctrl-D on a terminal) ends the REPL.
    job(&mcp, "job_input", json!({"id": id, "eof": true})).await;
    let done = job(&mcp, "job_wait", json!({"id": id, "timeout_secs": 60})).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["exit_code"], 0, "{done}");
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn tools_return_text_without_escapes_and_files_keep_them() {
    let out_dir = private_dir();
    let mcp = start(&["--output-dir", out_dir.path().to_str().unwrap()], &[]).await;
    let colored = r"printf '\033[1;31mred\033[0m plain\n'";
    let r = execute(&mcp, json!({ "command": colored })).await;
    assert_eq!(structured(&r)["stdout"], "red plain\n");
    let s = start_job(&mcp, json!({ "command": colored })).await;
    let done = job(&mcp, "job_wait", json!({"id": s["id"], "timeout_secs": 60})).await;
    let page = job(&mcp, "job_output", json!({"id": s["id"]})).await;
    assert_eq!(page["data"], "red plain\n");
    let file = done["output_file"].as_str().expect("an output file");
    let raw = std::fs::read_to_string(file).unwrap();
    assert_eq!(raw, "\x1b[1;31mred\x1b[0m plain\n");
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn a_service_without_stdin_gets_a_typed_error_not_a_hang() {
    let service = ServiceProcess::start_with(&["--no-input"], &[]).await;
    let mcp = start(&["--url", &service.url], &[]).await;
    let r = execute(&mcp, json!({"command": "cat", "stdin": "x"})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text(&r).contains("does not support `stdin`"),
        "{}",
        text(&r)
    );
    for args in [
        json!({"command": "cat", "stdin": true}),
        json!({"command": "cat", "pty": true}),
    ] {
        let r = call(&mcp, "job_start", args).await.unwrap();
        assert_eq!(r.is_error, Some(true));
        assert!(text(&r).contains("does not support"), "{}", text(&r));
    }
    mcp.cancel().await.unwrap();
    service.shutdown().await;
}
