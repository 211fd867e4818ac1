//! Talking to a running command: `execute` with `"stdin": "pipe"` or `"pty": true`, and the
//! `input` method (its answers, its errors, its bound on input nobody reads).

use std::time::Duration;

use crate::support::server;
use serde_json::{json, Value};
use tests::procs::wait_group_gone;
use tests::ws::{output_of, Client};

/// Send `input` with `params` and id `id`; the answer (frames met before it are returned too).
async fn input(c: &mut Client, params: Value, id: i64) -> (Value, Vec<Value>) {
    c.send(&json!({"jsonrpc":"2.0","method":"input","params":params,"id":id}))
        .await;
    let mut frames = c.frames_until(|f| f["id"] == id).await;
    let answer = frames.pop().unwrap();
    (answer, frames)
}

/// Execute `params`; the pgid from its answer (after `process.started`).
async fn start(c: &mut Client, params: Value) -> u32 {
    c.execute(params, 1).await;
    let answer = c.frame().await;
    assert_eq!(answer["result"]["status"], "started", "{answer}");
    let started = c.frame().await;
    assert_eq!(started["method"], "process.started");
    answer["result"]["pgid"].as_u64().unwrap() as u32
}

/// Wait (bounded) until group `pgid` is gone.
async fn gone(pgid: u32) {
    if let Err(left) = wait_group_gone(pgid, Duration::from_secs(30)).await {
        panic!("group {pgid} outlived its run: {left:?}");
    }
}

/// Frames until the output contains `text`.
async fn until_output(c: &mut Client, text: &str) -> Vec<Value> {
    until_output_is(c, |seen| seen.contains(text)).await
}

/// Frames until the output so far satisfies `done`.
async fn until_output_is(c: &mut Client, done: impl Fn(&str) -> bool) -> Vec<Value> {
    let mut seen = String::new();
    c.frames_until(|f| {
        if f["method"] == "process.output" {
            seen.push_str(f["params"]["data"].as_str().unwrap_or_default());
        }
        assert_ne!(f["method"], "process.completed", "ended early: {seen:?}");
        done(&seen)
    })
    .await
}

#[tokio::test]
async fn input_reaches_a_pipe_and_eof_ends_it() {
    let server = server().await;
    let mut c = Client::connect(&server.url()).await;
    start(
        &mut c,
        json!({"command": "read a; echo \"got $a\"; cat", "stdin": "pipe"}),
    )
    .await;
    let (answer, _) = input(&mut c, json!({"data": "héllo\n"}), 2).await;
    assert_eq!(answer["result"], json!({"status": "ok", "bytes": 7}));
    until_output(&mut c, "got héllo\n").await;
    let (answer, _) = input(&mut c, json!({"data": "rest", "eof": true}), 3).await;
    assert_eq!(answer["result"]["bytes"], 4);
    let frames = c.until_completed().await;
    assert_eq!(output_of(&frames, "stdout"), "rest");
    let done = frames.last().unwrap();
    assert_eq!(done["params"]["exit_code"], 0, "{done}");
    server.shutdown().await;
}

#[tokio::test]
async fn input_errors_are_typed() {
    let server = server().await;
    let mut c = Client::connect(&server.url()).await;
    // No process.
    let (answer, _) = input(&mut c, json!({"data": "x"}), 1).await;
    assert_eq!(answer["error"]["code"], -32002, "{answer}");
    // A run without a stdin pipe: its stdin is /dev/null.
    c.execute(json!({"command": "cat; sleep 30"}), 2).await;
    c.frames_until(|f| f["method"] == "process.started").await;
    let (answer, _) = input(&mut c, json!({"data": "x"}), 3).await;
    assert_eq!(answer["error"]["code"], -32004, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("no stdin"), "{answer}");
    c.control("CANCEL", 4).await;
    c.until_completed().await;
    // Stdin closed with eof: later input is refused while the command still runs.
    start(
        &mut c,
        json!({"command": "cat; echo closed; sleep 30", "stdin": "pipe"}),
    )
    .await;
    input(&mut c, json!({"eof": true}), 5).await;
    until_output(&mut c, "closed").await;
    let (answer, _) = input(&mut c, json!({"data": "late"}), 6).await;
    assert_eq!(answer["error"]["code"], -32004, "{answer}");
    // Malformed params.
    let (answer, _) = input(&mut c, json!({"data": 5}), 7).await;
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    c.control("CANCEL", 8).await;
    c.until_completed().await;
    server.shutdown().await;
}

#[tokio::test]
async fn input_nobody_reads_is_bounded_at_one_mib() {
    let server = server().await;
    let mut c = Client::connect(&server.url()).await;
    let pgid = start(&mut c, json!({"command": "sleep 60", "stdin": "pipe"})).await;
    // 1 MiB may wait (the pipe takes some of it)...
    let mib = "x".repeat(1 << 20);
    let (answer, _) = input(&mut c, json!({ "data": mib }), 2).await;
    assert_eq!(answer["result"]["bytes"], 1 << 20, "{answer}");
    // ...but not 1 MiB more, nor anything beyond what the pipe took.
    let (answer, _) = input(&mut c, json!({ "data": mib }), 3).await;
    assert_eq!(answer["error"]["code"], -32005, "{answer}");
    let (answer, _) = input(&mut c, json!({ "data": "y".repeat(128 * 1024) }), 4).await;
    assert_eq!(answer["error"]["code"], -32005, "{answer}");
    // The session is still fine and the run ends as usual.
    c.control("CANCEL", 5).await;
    c.until_completed().await;
    gone(pgid).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_pty_run_has_a_terminal_and_merges_its_output() {
    let server = server().await;
    let mut c = Client::connect(&server.url()).await;
    let cmd = "test -t 0 && test -t 1 && test -t 2 && echo is-a-tty; echo to-stderr >&2; \
               stty size; echo \"TERM=$TERM\"";
    start(&mut c, json!({"command": cmd, "pty": true})).await;
    let frames = c.until_completed().await;
    let out = output_of(&frames, "stdout");
    assert_eq!(output_of(&frames, "stderr"), "");
    assert!(out.contains("is-a-tty"), "{out:?}");
    assert!(out.contains("to-stderr"), "{out:?}");
    assert!(out.contains("40 120"), "{out:?}");
    assert!(out.contains("TERM=xterm-256color"), "{out:?}");
    assert_eq!(frames.last().unwrap()["params"]["exit_code"], 0);
    // A size of its own.
    let sized = json!({"command": "stty size", "pty": true, "pty_size": {"cols": 80, "rows": 24}});
    start(&mut c, sized).await;
    let out = output_of(&c.until_completed().await, "stdout");
    assert!(out.contains("24 80"), "{out:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_pty_repl_answers_and_ctrl_d_ends_a_reader() {
    let server = server().await;
    let mut c = Client::connect(&server.url()).await;
    start(&mut c, json!({"command": "python3 -i -q", "pty": true})).await;
    input(&mut c, json!({"data": "6*7\n"}), 2).await;
    until_output(&mut c, "42\r\n").await;
    input(&mut c, json!({"data": "exit()\n"}), 3).await;
    let frames = c.until_completed().await;
    let done = frames.last().unwrap();
    assert_eq!(done["params"]["exit_code"], 0, "{done}");
    // `eof` on a terminal is Ctrl-D: a command reading it to its end finishes.
    start(
        &mut c,
        json!({"command": "cat; echo cat-done", "pty": true}),
    )
    .await;
    input(&mut c, json!({"data": "line\n"}), 4).await;
    // The terminal echoes the line, then cat writes it.
    until_output_is(&mut c, |seen| seen.matches("line").count() == 2).await;
    input(&mut c, json!({"eof": true}), 5).await;
    let frames = c.until_completed().await;
    assert!(output_of(&frames, "stdout").contains("cat-done"));
    assert_eq!(frames.last().unwrap()["params"]["exit_code"], 0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_pty_run_still_ends_as_one_group() {
    let server = server().await;
    // Canceled, then with its session gone.
    for vanish in [false, true] {
        let mut c = Client::connect(&server.url()).await;
        let cmd = "sleep 300 & sleep 300 & echo up; wait";
        let pgid = start(&mut c, json!({"command": cmd, "pty": true})).await;
        until_output(&mut c, "up").await;
        assert!(tests::procs::processes_in_group(pgid).len() >= 3);
        if vanish {
            c.vanish();
        } else {
            c.control("CANCEL", 2).await;
            let frames = c.until_completed().await;
            assert_eq!(frames.last().unwrap()["params"]["status"], "canceled");
        }
        gone(pgid).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_service_may_refuse_input() {
    let server = cc_executor_server::Server::builder()
        .accept_input(false)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut c = Client::connect(&server.url()).await;
    let caps = c.connected["params"]["capabilities"].as_array().unwrap();
    assert!(!caps.iter().any(|c| c == "stdin" || c == "pty"), "{caps:?}");
    for params in [
        json!({"command": "cat", "stdin": "pipe"}),
        json!({"command": "cat", "pty": true}),
    ] {
        c.execute(params, 1).await;
        let answer = c.frame().await;
        assert_eq!(answer["error"]["code"], -32603, "{answer}");
    }
    let frames = c.run("echo still-fine").await;
    assert_eq!(output_of(&frames, "stdout"), "still-fine\n");
    server.shutdown().await;
}

#[tokio::test]
async fn input_is_data_even_under_an_allowlist() {
    let server = cc_executor_server::Server::builder()
        .allowed_commands(["cat"])
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut c = Client::connect(&server.url()).await;
    start(&mut c, json!({"command": "cat", "stdin": "pipe"})).await;
    let line = "rm -rf / ; $(touch pwned) `id`\n";
    input(&mut c, json!({"data": line, "eof": true}), 2).await;
    let frames = c.until_completed().await;
    assert_eq!(output_of(&frames, "stdout"), line);
    server.shutdown().await;
}

/// The output frame that ends the output seen so far with `text`.
async fn shown(c: &mut Client, text: &str) -> Value {
    let frames = until_output_is(c, |seen| seen.ends_with(text)).await;
    frames.last().unwrap().clone()
}

#[tokio::test]
async fn a_prompt_shows_before_its_line_ends_when_the_run_takes_input() {
    let server = server().await;
    let mut c = Client::connect(&server.url()).await;
    // On a terminal: the REPL's prompt, before any input.
    start(&mut c, json!({"command": "python3 -i -q", "pty": true})).await;
    let frame = shown(&mut c, ">>> ").await;
    assert_eq!(frame["params"]["chunk_index"], Value::Null, "{frame}");
    input(&mut c, json!({"data": "6*7\n"}), 2).await;
    until_output_is(&mut c, |seen| {
        seen.contains("42\r\n") && seen.ends_with(">>> ")
    })
    .await;
    input(&mut c, json!({"data": "exit()\n"}), 3).await;
    assert_eq!(
        c.until_completed().await.last().unwrap()["params"]["exit_code"],
        0
    );
    // On a pipe, one frame per line or batched: the prompt alone, then the rest of its line.
    for output in [json!(null), json!("batched")] {
        let cmd = "printf 'Name? '; read n; echo \"hi $n\"";
        let params = json!({"command": cmd, "stdin": "pipe", "output": output});
        start(&mut c, params).await;
        let frame = shown(&mut c, "Name? ").await;
        assert_eq!(frame["params"]["data"], "Name? ", "{frame}");
        input(&mut c, json!({"data": "bob\n"}), 4).await;
        let frames = c.until_completed().await;
        assert_eq!(output_of(&frames, "stdout"), "hi bob\n");
        assert_eq!(frames.last().unwrap()["params"]["exit_code"], 0);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_run_without_input_still_sends_whole_lines() {
    let server = server().await;
    let mut c = Client::connect(&server.url()).await;
    let frames = c.run("printf 'a'; sleep 0.3; printf 'b\\n'").await;
    let pieces: Vec<&Value> = frames
        .iter()
        .filter(|f| f["method"] == "process.output")
        .collect();
    assert_eq!(pieces.len(), 1, "{pieces:?}");
    assert_eq!(pieces[0]["params"]["data"], "ab\n");
    server.shutdown().await;
}
