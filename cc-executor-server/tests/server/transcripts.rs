//! Replays the reference transcripts against the Rust service and compares what comes back
//! frame by frame: methods, key sets and key order, value types, and the deterministic values
//! (output text, statuses, exit codes, error codes). Where the Rust service deliberately
//! differs (documented in the crate), the expected frames are adapted first.
//!
//! Frames are matched per category: stdout output, stderr output, and everything else each
//! arrive in transcript order; output must come after its `process.started` and before its
//! `process.completed`. A `send` goes out once every frame before it in the transcript arrived,
//! which is the event the reference waited for.

use crate::support::{connected, Local};
use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use cc_executor_server::{Server, ServerBuilder};
use tests::ws::{Client, Event, OJson};

/// A marker value in an expected frame: any string is accepted.
const ANY: &str = "<any>";

#[derive(Debug, Clone)]
enum Step {
    Send(String),
    Recv(OJson),
}

fn transcript(name: &str) -> Vec<Step> {
    let path = tests::fixtures_dir()
        .join("transcripts")
        .join(format!("{name}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut steps = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v = OJson::parse(line);
        let Some(frame) = v.get("frame") else {
            continue; // a connection event
        };
        match v.get("dir").and_then(OJson::as_str) {
            Some("send") => {
                let raw = serde_json::from_str::<serde_json::Value>(line).unwrap()["frame"].clone();
                let text = match raw {
                    serde_json::Value::String(s) => s, // a raw (non-JSON) frame
                    other => other.to_string(),
                };
                steps.push(Step::Send(text));
            }
            _ => steps.push(Step::Recv(frame.clone())),
        }
    }
    steps
}

fn method_of(f: &OJson) -> &str {
    f.get("method").and_then(OJson::as_str).unwrap_or("")
}

/// Index (among `Recv` steps) of the expected frames with method `m`.
fn recv_with_method(steps: &[Step], m: &str) -> Vec<usize> {
    steps
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Step::Recv(f) if method_of(f) == m))
        .map(|(i, _)| i)
        .collect()
}

/// Index of the first received frame that has `key` (e.g. `"error"`, `"result"`).
fn first_recv_with(steps: &[Step], key: &str) -> usize {
    steps
        .iter()
        .position(|x| matches!(x, Step::Recv(f) if f.get(key).is_some()))
        .unwrap_or_else(|| panic!("no received frame with {key:?}"))
}

fn recv_mut(steps: &mut [Step], i: usize) -> &mut OJson {
    match &mut steps[i] {
        Step::Recv(f) => f,
        Step::Send(_) => panic!("step {i} is a send"),
    }
}

fn set_send(steps: &mut [Step], n: usize, text: &str) {
    let i = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Step::Send(_)))
        .map(|(i, _)| i)
        .nth(n)
        .expect("send step");
    steps[i] = Step::Send(text.to_owned());
}

/// Keys whose scalar values must be equal (others: same type only).
const EXACT: &[&str] = &[
    "jsonrpc",
    "method",
    "type",
    "data",
    "status",
    "exit_code",
    "truncated",
    "chunk_index",
    "total_chunks",
    "code",
    "message",
    "id",
    "error_type",
    "marker",
    "output_line",
    "error_text",
    "early_completion_detected",
    "completion_marker",
    "retry_after",
    "recoverable",
    "limit",
    "reset_timestamp",
    "suggestion",
    "enabled",
    "config_path",
    "timeout",
    "parallel",
];

/// Keys we add after the reference's own, where clients ignore them: `connected.params.shell`.
const EXTENSIONS: &[(&str, &str)] = &[("params", "shell")];

fn assert_shape(exp: &OJson, got: &OJson, key: &str, path: &str) {
    match (exp, got) {
        (OJson::Obj(e), OJson::Obj(g)) => {
            let ek: Vec<_> = e.iter().map(|(k, _)| k.as_str()).collect();
            let mut gk: Vec<_> = g.iter().map(|(k, _)| k.as_str()).collect();
            while let Some(last) = gk.last() {
                if !ek.contains(last) && EXTENSIONS.contains(&(key, *last)) {
                    gk.pop();
                } else {
                    break;
                }
            }
            assert_eq!(gk, ek, "keys (in order) at {path}");
            for ((k, ev), (_, gv)) in e.iter().zip(g) {
                assert_shape(ev, gv, k, &format!("{path}.{k}"));
            }
        }
        (OJson::Arr(e), OJson::Arr(g)) if key == "capabilities" => {
            assert!(g.iter().all(|x| x.kind() == "string"), "{path}: {got:?}");
            assert!(!e.is_empty() && !g.is_empty());
        }
        (OJson::Arr(e), OJson::Arr(g)) => {
            assert_eq!(e.len(), g.len(), "array length at {path}");
            for (i, (ev, gv)) in e.iter().zip(g).enumerate() {
                assert_shape(ev, gv, key, &format!("{path}[{i}]"));
            }
        }
        // The reference sometimes had not learned the pgid yet; we always know it.
        (OJson::Null, OJson::Num(_)) if key == "pgid" => {}
        (OJson::Str(s), OJson::Str(_)) if s == ANY => {}
        _ => {
            assert_eq!(
                got.kind(),
                exp.kind(),
                "type at {path}: got {got:?}, want {exp:?}"
            );
            if EXACT.contains(&key) {
                assert_eq!(got, exp, "value at {path}");
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Lane {
    Stdout,
    Stderr,
    Other,
}

fn lane(f: &OJson) -> Lane {
    if method_of(f) != "process.output" {
        return Lane::Other;
    }
    match f
        .get("params")
        .and_then(|p| p.get("type"))
        .and_then(OJson::as_str)
    {
        Some("stderr") => Lane::Stderr,
        _ => Lane::Stdout,
    }
}

/// Replay `steps` on a fresh connection to `url`, then close normally.
async fn replay(url: &str, steps: &[Step]) {
    let mut c = Client::try_connect(url, None).await.expect("connect");
    // Expected frames per lane, with their step index.
    let mut lanes: Vec<(Lane, VecDeque<(usize, OJson)>)> =
        [Lane::Stdout, Lane::Stderr, Lane::Other]
            .into_iter()
            .map(|l| (l, VecDeque::new()))
            .collect();
    for (i, s) in steps.iter().enumerate() {
        if let Step::Recv(f) = s {
            let l = lane(f);
            lanes
                .iter_mut()
                .find(|(x, _)| *x == l)
                .unwrap()
                .1
                .push_back((i, f.clone()));
        }
    }
    let mut matched: HashSet<usize> = HashSet::new();
    let mut next_send = 0;
    let total_recv = steps.iter().filter(|s| matches!(s, Step::Recv(_))).count();
    loop {
        // Send what is due: every expected frame before it has arrived.
        while let Some((i, text)) =
            steps
                .iter()
                .enumerate()
                .skip(next_send)
                .find_map(|(i, s)| match s {
                    Step::Send(t) => Some((i, t)),
                    Step::Recv(_) => None,
                })
        {
            if (0..i).all(|j| matches!(steps[j], Step::Send(_)) || matched.contains(&j)) {
                c.send_text(text).await;
                next_send = i + 1;
            } else {
                break;
            }
        }
        if matched.len() == total_recv {
            break;
        }
        let text = c.frame_text_no_ping().await;
        let got = OJson::parse(&text);
        let l = lane(&got);
        let queue = &mut lanes.iter_mut().find(|(x, _)| *x == l).unwrap().1;
        let (i, exp) = queue
            .pop_front()
            .unwrap_or_else(|| panic!("unexpected frame {text}"));
        assert_shape(&exp, &got, "", &format!("frame {i} ({})", method_of(&exp)));
        if l != Lane::Other {
            // Output after its run's `process.started`, before its `process.completed`.
            let started = (0..i)
                .rev()
                .find(|&j| matches!(&steps[j], Step::Recv(f) if method_of(f) == "process.started"));
            let completed = (i..steps.len()).find(
                |&j| matches!(&steps[j], Step::Recv(f) if method_of(f) == "process.completed"),
            );
            if let Some(s) = started {
                assert!(
                    matched.contains(&s),
                    "output before process.started: {text}"
                );
            }
            if let Some(e) = completed {
                assert!(
                    !matched.contains(&e),
                    "output after process.completed: {text}"
                );
            }
        }
        matched.insert(i);
    }
    // Nothing more was due; the service answers a normal close with 1000.
    let (extra, reply) = c.close_collect().await;
    assert!(
        extra.is_empty(),
        "frames the transcript does not have: {extra:?}"
    );
    match reply {
        Event::Close(Some((code, _))) => assert_eq!(code, 1000),
        other => panic!("close reply: {other:?}"),
    }
}

async fn serve(builder: ServerBuilder) -> cc_executor_server::ServerHandle {
    builder.kill_grace(Duration::from_millis(500)).local().await
}

async fn replay_as_is(name: &str) {
    let server = serve(Server::builder()).await;
    replay(&server.url(), &transcript(name)).await;
    server.shutdown().await;
}

async fn replay_adapted(name: &str, adapt: impl FnOnce(&mut Vec<Step>)) {
    let mut steps = transcript(name);
    adapt(&mut steps);
    let server = serve(Server::builder()).await;
    replay(&server.url(), &steps).await;
    server.shutdown().await;
}

/// Transcripts this service reproduces as recorded, one test each.
macro_rules! as_recorded {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            replay_as_is(stringify!($name)).await;
        }
    )*};
}

as_recorded!(
    a_connect_only,
    b_echo_hello,
    c_stdout_stderr_exit3,
    e_pause_resume,
    g_pause_no_process,
    h_unknown_method,
    j_execute_while_running,
    k_empty_command,
    l_http429_phrase,
    p_early_completion_marker,
    x_no_trailing_newline,
    x_sequential_reuse,
    x_string_id_and_no_id,
);

/// The error's message is ours, not the reference's: any text passes.
fn any_error_message(s: &mut [Step]) {
    let i = first_recv_with(s, "error");
    *recv_mut(s, i).at_mut(&["error", "message"]) = OJson::Str(ANY.into());
}

#[tokio::test]
async fn d_long_line_200k() {
    // Same output without python3: 200,000 'x' and a newline.
    replay_adapted("d_long_line_200k", |s| {
        set_send(
            s,
            0,
            r#"{"jsonrpc":"2.0","method":"execute","params":{"command":"head -c 200000 /dev/zero | tr '\\0' x; echo"},"id":1}"#,
        );
    })
    .await;
}

#[tokio::test]
async fn f_cancel_sleep() {
    // Ours: a final process.completed with status "canceled" once the group is gone.
    replay_adapted("f_cancel_sleep", |s| {
        let canceled = recv_with_method(s, "process.canceled")[0];
        let done = OJson::parse(
            r#"{"jsonrpc":"2.0","method":"process.completed","params":{"status":"canceled","pid":1,"pgid":1,"exit_code":-15,"error":null,"execution_time":0.5,"early_completion_detected":false,"early_completion_time":null,"time_saved":0,"completion_marker":null}}"#,
        );
        s.insert(canceled + 1, Step::Recv(done));
    })
    .await;
}

#[tokio::test]
async fn i_invalid_json() {
    // The parse error message is serde_json's, not Python's.
    replay_adapted("i_invalid_json", |s| any_error_message(s)).await;
}

#[tokio::test]
async fn l_usage_limit_phrase() {
    // Ours parses the reset epoch after the bar.
    replay_adapted("l_usage_limit_phrase", |s| {
        let i = recv_with_method(s, "error.rate_limit_exceeded")[0];
        *recv_mut(s, i).at_mut(&["params", "reset_timestamp"]) = OJson::Num(1_735_000_000.0);
    })
    .await;
}

#[tokio::test]
async fn l_token_limit_phrase() {
    // The reference missed this real token-limit message; ours reports it before the line.
    replay_adapted("l_token_limit_phrase", |s| {
        let out = recv_with_method(s, "process.output")[0];
        let hit = OJson::parse(
            r#"{"jsonrpc":"2.0","method":"error.token_limit_exceeded","params":{"session_id":"<any>","error_type":"token_limit","limit":32000,"message":"Output exceeded 32000 token limit","suggestion":"Retry with a more concise prompt or specify word/token limits","error_text":"Error: output token limit of 32000 exceeded","recoverable":true}}"#,
        );
        s.insert(out, Step::Recv(hit));
    })
    .await;
}

#[tokio::test]
async fn l_truncated_word() {
    // "truncated" alone is not a token limit: ours sends no notification.
    replay_adapted("l_truncated_word", |s| {
        let i = recv_with_method(s, "error.token_limit_exceeded")[0];
        s.remove(i);
    })
    .await;
}

#[tokio::test]
async fn x_control_after_exit() {
    // Ours: control after the run ended is "No process is running" (clients treat both alike).
    replay_adapted("x_control_after_exit", |s| {
        let i = first_recv_with(s, "error");
        let f = recv_mut(s, i);
        *f.at_mut(&["error", "code"]) = OJson::Num(-32002.0);
        *f.at_mut(&["error", "message"]) = OJson::Str("No process is running".into());
    })
    .await;
}

#[tokio::test]
async fn x_execute_missing_command() {
    replay_adapted("x_execute_missing_command", |s| any_error_message(s)).await;
}

#[tokio::test]
async fn x_hook_status() {
    // This service runs no hooks.
    replay_adapted("x_hook_status", |s| {
        let i = first_recv_with(s, "result");
        let f = recv_mut(s, i);
        *f.at_mut(&["result", "enabled"]) = OJson::Bool(false);
        *f.at_mut(&["result", "config_path"]) = OJson::Null;
        *f.at_mut(&["result", "hooks_configured"]) = OJson::Arr(Vec::new());
    })
    .await;
}

#[tokio::test]
async fn x_invalid_control_type() {
    replay_adapted("x_invalid_control_type", |s| any_error_message(s)).await;
}

#[tokio::test]
async fn x_output_ellipsis() {
    // We do not copy the reference's "..." quirk: an unchunked line is never truncated.
    replay_adapted("x_output_ellipsis", |s| {
        let i = recv_with_method(s, "process.output")[0];
        *recv_mut(s, i).at_mut(&["params", "truncated"]) = OJson::Bool(false);
    })
    .await;
}

#[tokio::test]
async fn x_raw_echo_hello() {
    // `sh` (dash) prints `\"` differently from bash's printf; the parse error text is ours.
    replay_adapted("x_raw_echo_hello", |s| {
        let i = recv_with_method(s, "process.output")[1];
        *recv_mut(s, i).at_mut(&["params", "data"]) = OJson::Str(ANY.into());
        let e = s
            .iter()
            .position(|x| matches!(x, Step::Recv(f) if f.get("error").is_some()))
            .unwrap();
        *recv_mut(s, e).at_mut(&["error", "message"]) = OJson::Str(ANY.into());
    })
    .await;
}

#[tokio::test]
async fn x_raw_echo_hello_wire_text() {
    // Byte-exact frames where nothing varies: the first output line.
    let (server, mut c) = connected(serve(Server::builder()).await).await;
    c.send_text(r#"{"jsonrpc":"2.0","method":"execute","params":{"command":"echo héllo"},"id":1}"#)
        .await;
    let _result = c.frame_text_no_ping().await;
    let _started = c.frame_text_no_ping().await;
    assert_eq!(
        c.frame_text_no_ping().await,
        r#"{"jsonrpc":"2.0","method":"process.output","params":{"type":"stdout","data":"héllo\n","truncated":false,"chunk_index":null,"total_chunks":null}}"#
    );
    c.send_text("{not json").await;
    // The completion and the error answer come on independent paths: either may be first.
    let (a, b) = (c.frame_text_no_ping().await, c.frame_text_no_ping().await);
    let (done, err) = if a.contains("process.completed") {
        (a, b)
    } else {
        (b, a)
    };
    assert!(done.contains("process.completed"), "{done}");
    assert!(
        err.starts_with(r#"{"jsonrpc":"2.0","error":{"code":-32603,"message":""#)
            && err.ends_with(r#"","data":null}}"#),
        "{err}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn x_session_limit_refused() {
    let server = serve(Server::builder().max_sessions(1)).await;
    let holder = Client::connect(&server.url()).await;
    let steps = transcript("x_session_limit_refused");
    let Step::Recv(expected) = &steps[0] else {
        panic!("the transcript starts with the refusal")
    };
    let mut c = Client::try_connect(&server.url(), None)
        .await
        .expect("the upgrade itself is accepted");
    let got = OJson::parse(&c.frame_text().await);
    assert_shape(expected, &got, "", "refusal");
    match c.event().await {
        Event::Close(Some((code, reason))) => {
            assert_eq!(code, 1008);
            assert_eq!(reason, "Session limit exceeded");
        }
        other => panic!("expected close 1008, got {other:?}"),
    }
    // The slot frees once the holder leaves.
    drop(holder.close().await);
    let mut again = None;
    for _ in 0..100 {
        let mut c = Client::try_connect(&server.url(), None)
            .await
            .expect("connect");
        let first: serde_json::Value = serde_json::from_str(&c.frame_text().await).unwrap();
        if first["method"] == "connected" {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "a session slot was never freed");
    server.shutdown().await;
}
