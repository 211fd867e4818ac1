//! Process handling of the Rust service over real WebSockets: no orphans after cancel,
//! disconnect, timeout or shutdown; pause really stops a group; exit codes, chunking, invalid
//! UTF-8, background processes holding the pipes, working directories. The process-group tests
//! run under bash and under sh; processes that leave the group are in `containment`.

use std::time::Duration;

use crate::support::{connected, end, server, server_with, under_each_shell, Local};
use cc_executor_server::Server;
use serde_json::{json, Value};
use tests::procs::{wait_group_gone, wait_group_members, wait_group_stopped};
use tests::ws::{find, output_of, Client, Event};

pub(crate) const GONE_BOUND: Duration = tests::ws::WAIT;

under_each_shell!(
    cancel_kills_grandchildren_and_completes_as_canceled,
    disconnect_kills_the_group,
    timeout_bounds_the_whole_run,
    shutdown_kills_every_group,
    dropping_the_handle_kills_every_group,
    background_process_holding_the_pipe_does_not_hang_the_run,
    pause_stops_output_and_a_paused_group_can_be_canceled,
    exit_codes_and_signals,
    control_edge_cases,
);

/// Execute and return (result, process.started).
pub(crate) async fn start(c: &mut Client, params: Value) -> (Value, Value) {
    c.execute(params, 1).await;
    let result = c.frame().await;
    assert_eq!(result["result"]["status"], "started", "{result}");
    let started = c.frame().await;
    assert_eq!(started["method"], "process.started", "{started}");
    (result, started)
}

pub(crate) fn pgid_of(result: &Value) -> u32 {
    result["result"]["pgid"].as_u64().expect("pgid") as u32
}

/// Wait until the group has at least `n` live processes (the shell has forked its children).
async fn wait_members(pgid: u32, n: usize) {
    if let Err(members) = wait_group_members(pgid, n, GONE_BOUND).await {
        panic!("group {pgid} never had {n} members: {members:?}");
    }
}

/// The numbers the producer printed, in the order their output frames came.
fn numbers(frames: &[Value]) -> Vec<u64> {
    output_of(frames, "stdout")
        .lines()
        .map(|l| l.parse().expect("the producer prints numbers"))
        .collect()
}

pub(crate) async fn assert_gone(pgid: u32) {
    if let Err(left) = wait_group_gone(pgid, GONE_BOUND).await {
        panic!("processes of group {pgid} survived: {left:?}");
    }
}

const TWO_SLEEPS: &str = "sleep 300 & sleep 300";

async fn cancel_kills_grandchildren_and_completes_as_canceled(shell: &str) {
    let (server, mut c) = connected(server_with(shell).await).await;
    let (result, _) = start(&mut c, json!({ "command": TWO_SLEEPS })).await;
    let pgid = pgid_of(&result);
    wait_members(pgid, 2).await;
    c.control("CANCEL", 2).await;
    let frames = c.until_completed().await;
    assert_eq!(frames[0]["result"]["status"], "canceled");
    assert_eq!(frames[0]["id"], 2);
    assert_eq!(frames[1]["method"], "process.canceled");
    assert_eq!(frames[1]["params"]["status"], "canceled");
    let done = &frames[frames.len() - 1]["params"];
    assert_eq!(done["status"], "canceled");
    assert_eq!(done["exit_code"], -15);
    assert_eq!(done["pgid"], pgid);
    assert_gone(pgid).await;
    // The session is free again.
    assert_eq!(c.stdout_of("echo again").await, "again\n");
    end(c, server).await;
}

async fn disconnect_kills_the_group(shell: &str) {
    let server = server_with(shell).await;
    // A client that vanishes without a close handshake.
    let mut c = Client::connect(&server.url()).await;
    let (result, _) = start(&mut c, json!({ "command": TWO_SLEEPS })).await;
    let pgid = pgid_of(&result);
    wait_members(pgid, 2).await;
    c.vanish();
    assert_gone(pgid).await;
    // A client that closes normally (x_disconnect_while_running).
    let mut c = Client::connect(&server.url()).await;
    let (result, _) = start(&mut c, json!({ "command": TWO_SLEEPS })).await;
    let pgid = pgid_of(&result);
    wait_members(pgid, 2).await;
    match c.close().await {
        Event::Close(Some((code, _))) => assert_eq!(code, 1000),
        other => panic!("close reply: {other:?}"),
    }
    assert_gone(pgid).await;
    server.shutdown().await;
}

async fn timeout_bounds_the_whole_run(shell: &str) {
    let (server, mut c) = connected(server_with(shell).await).await;
    // x_timeout_process_outlives, our way: the run is killed at the deadline.
    let (result, _) = start(
        &mut c,
        json!({ "command": "sleep 10; echo late", "timeout": 1 }),
    )
    .await;
    let pgid = pgid_of(&result);
    let frames = c.until_completed().await;
    assert!(find(&frames, "process.output").is_none(), "{frames:?}");
    let done = &frames[frames.len() - 1]["params"];
    assert_eq!(done["status"], "failed");
    assert_eq!(done["exit_code"], -15);
    assert_eq!(done["error"], "timed out after 1s");
    assert_eq!(done["timed_out"], true);
    assert_gone(pgid).await;
    // The next command runs (the reference said "A process is already running").
    let frames = c.run("echo after").await;
    assert_eq!(output_of(&frames, "stdout"), "after\n");
    let done = &frames[frames.len() - 1]["params"];
    assert_eq!(done["status"], "completed");
    assert!(
        done.get("timed_out").is_none(),
        "only present when timed out: {done}"
    );

    // Grandchildren go too, and fractional seconds are reported as given.
    let (result, _) = start(&mut c, json!({ "command": TWO_SLEEPS, "timeout": 0.5 })).await;
    let pgid = pgid_of(&result);
    let frames = c.until_completed().await;
    assert_eq!(
        frames[frames.len() - 1]["params"]["error"],
        "timed out after 0.5s"
    );
    assert_gone(pgid).await;
    end(c, server).await;
}

async fn shutdown_kills_every_group(shell: &str) {
    let server = server_with(shell).await;
    let mut pgids = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(&server.url()).await;
        let (result, _) = start(&mut c, json!({ "command": TWO_SLEEPS })).await;
        pgids.push(pgid_of(&result));
        clients.push(c);
    }
    for &p in &pgids {
        wait_members(p, 2).await;
    }
    server.shutdown().await;
    for p in pgids {
        assert_gone(p).await;
    }
    // Each client was told with a close frame.
    for mut c in clients {
        loop {
            match c.event().await {
                Event::Text(_) => continue,
                Event::Close(Some((code, _))) => {
                    assert_eq!(code, 1001);
                    break;
                }
                other => panic!("expected close 1001, got {other:?}"),
            }
        }
    }
}

async fn dropping_the_handle_kills_every_group(shell: &str) {
    let (server, mut c) = connected(server_with(shell).await).await;
    let (result, _) = start(&mut c, json!({ "command": TWO_SLEEPS })).await;
    let pgid = pgid_of(&result);
    wait_members(pgid, 2).await;
    drop(server);
    assert_gone(pgid).await;
}

async fn background_process_holding_the_pipe_does_not_hang_the_run(shell: &str) {
    let (server, mut c) = connected(server_with(shell).await).await;
    let (result, _) = start(&mut c, json!({ "command": "sleep 300 & echo hi" })).await;
    let pgid = pgid_of(&result);
    let frames = c.until_completed().await;
    assert_eq!(output_of(&frames, "stdout"), "hi\n");
    let done = &frames[frames.len() - 1]["params"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["exit_code"], 0);
    assert_gone(pgid).await;

    // A background job that closed its pipes is not left behind either.
    let (result, _) = start(
        &mut c,
        json!({ "command": "sleep 300 >/dev/null 2>&1 & echo bye" }),
    )
    .await;
    let pgid = pgid_of(&result);
    let frames = c.until_completed().await;
    assert_eq!(output_of(&frames, "stdout"), "bye\n");
    assert_gone(pgid).await;
    end(c, server).await;
}

/// Send control `kind` (PAUSE or RESUME) as request `id`; the frames up to its notification,
/// which must include the answer to `id`.
async fn acknowledged(c: &mut Client, kind: &str, id: i64) -> Vec<Value> {
    let (method, status) = match kind {
        "PAUSE" => ("process.paused", "paused"),
        _ => ("process.resumed", "resumed"),
    };
    c.control(kind, id).await;
    let frames = c.frames_until(|f| f["method"] == method).await;
    let answered = |f: &Value| f["result"]["status"] == status && f["id"] == id;
    assert!(frames.iter().any(answered), "{kind} {id}: {frames:?}");
    frames
}

async fn pause_stops_output_and_a_paused_group_can_be_canceled(shell: &str) {
    let (server, mut c) = connected(server_with(shell).await).await;
    let producer = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done";
    let (result, _) = start(&mut c, json!({ "command": producer })).await;
    let pgid = pgid_of(&result);
    let mut seen = c.frames_until(|f| f["params"]["data"] == "3\n").await;

    seen.extend(acknowledged(&mut c, "PAUSE", 2).await);
    // Paused means every process of the group is stopped, so none can print: checked in the
    // kernel's view rather than by watching the output for a while. Lines already in flight may
    // still arrive. Without pause this wait fails at its bound.
    if let Err(states) = wait_group_stopped(pgid, true, GONE_BOUND).await {
        panic!("the group did not stop: states {states:?}");
    }
    // Pausing again is fine.
    seen.extend(acknowledged(&mut c, "PAUSE", 3).await);
    assert!(wait_group_stopped(pgid, true, GONE_BOUND).await.is_ok());

    seen.extend(acknowledged(&mut c, "RESUME", 4).await);
    if let Err(states) = wait_group_stopped(pgid, false, GONE_BOUND).await {
        panic!("the group did not continue: states {states:?}");
    }
    // The producer continues where it stopped: a line beyond those seen comes, and the numbers
    // run on without a gap or a repeat (the same process, stopped and continued).
    let last = numbers(&seen).last().copied().unwrap_or(0);
    seen.extend(
        c.frames_until(|f| {
            f["method"] == "process.output"
                && f["params"]["data"]
                    .as_str()
                    .and_then(|d| d.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > last)
        })
        .await,
    );
    let got = numbers(&seen);
    let want: Vec<u64> = (1..=got.len() as u64).collect();
    assert_eq!(got, want, "the output did not run on across the pause");

    c.control("PAUSE", 5).await;
    c.frames_until(|f| f["method"] == "process.paused").await;
    c.control("CANCEL", 6).await;
    let frames = c.until_completed().await;
    assert!(find(&frames, "process.canceled").is_some());
    let done = &frames[frames.len() - 1]["params"];
    assert_eq!(done["status"], "canceled");
    assert_gone(pgid).await;
    end(c, server).await;
}

async fn exit_codes_and_signals(shell: &str) {
    let (server, mut c) = connected(server_with(shell).await).await;
    let frames = c.run("exit 7").await;
    let done = &frames[frames.len() - 1]["params"];
    assert_eq!(
        (done["status"].as_str(), done["exit_code"].as_i64()),
        (Some("failed"), Some(7))
    );
    let frames = c.run("kill -9 $$").await;
    let done = &frames[frames.len() - 1]["params"];
    assert_eq!(
        (done["status"].as_str(), done["exit_code"].as_i64()),
        (Some("failed"), Some(-9))
    );
    end(c, server).await;
}

#[tokio::test]
async fn invalid_utf8_becomes_replacement_characters() {
    let (server, mut c) = connected(server().await).await;
    let frames = c.run(r"printf 'a\377\376b\n\303'").await;
    assert_eq!(output_of(&frames, "stdout"), "a\u{fffd}\u{fffd}b\n\u{fffd}");
    // n_binary_urandom: random bytes still make well-formed frames and a normal completion.
    let frames = c.run("head -c 3000 /dev/urandom").await;
    let outputs: Vec<_> = frames
        .iter()
        .filter(|f| f["method"] == "process.output")
        .collect();
    assert!(!outputs.is_empty());
    for o in outputs {
        assert!(o["params"]["data"].is_string());
        assert_eq!(o["params"]["chunk_index"], Value::Null);
        assert_eq!(o["params"]["truncated"], false);
    }
    assert_eq!(frames[frames.len() - 1]["params"]["exit_code"], 0);
    end(c, server).await;
}

#[tokio::test]
async fn very_long_line_is_streamed_in_chunks() {
    let (server, mut c) = connected(server().await).await;
    // 1,000,000 characters without newline: more than the buffered limit of 8 chunks.
    let frames = c.run("head -c 1000000 /dev/zero | tr '\\0' y").await;
    let chunks: Vec<&Value> = frames
        .iter()
        .filter(|f| f["method"] == "process.output")
        .map(|f| &f["params"])
        .collect();
    assert_eq!(chunks.len(), 16);
    let n = chunks.len();
    for (i, ch) in chunks.iter().enumerate() {
        assert_eq!(ch["chunk_index"], i);
        if i + 1 < n {
            assert_eq!(ch["data"].as_str().unwrap().len(), 65536);
            assert_eq!(ch["truncated"], true);
            assert_eq!(ch["total_chunks"], Value::Null);
        } else {
            assert_eq!(ch["truncated"], false);
            assert_eq!(ch["total_chunks"], n);
        }
    }
    assert_eq!(output_of(&frames, "stdout").len(), 1_000_000);
    end(c, server).await;
}

#[tokio::test]
async fn working_directories() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let (server, mut c) = connected(
        Server::builder()
            .working_dir(dir.path())
            .kill_grace(Duration::from_millis(500))
            .local()
            .await,
    )
    .await;
    let canonical = |p: &std::path::Path| p.canonicalize().unwrap().display().to_string();
    let frames = c.run("pwd -P").await;
    assert_eq!(
        output_of(&frames, "stdout"),
        format!("{}\n", canonical(dir.path()))
    );
    // Relative to the configured directory, or absolute.
    c.execute(json!({"command": "pwd -P", "cwd": "sub"}), 2)
        .await;
    let frames = c.until_completed().await;
    assert_eq!(
        output_of(&frames, "stdout"),
        format!("{}\n", canonical(&sub))
    );
    c.execute(
        json!({"command": "pwd -P", "cwd": sub.display().to_string()}),
        3,
    )
    .await;
    let frames = c.until_completed().await;
    assert_eq!(
        output_of(&frames, "stdout"),
        format!("{}\n", canonical(&sub))
    );
    // A missing directory is an error response, and the session goes on.
    c.execute(json!({"command": "pwd", "cwd": "no/such/dir"}), 4)
        .await;
    let err = c.frame().await;
    assert_eq!(err["error"]["code"], -32603, "{err}");
    assert_eq!(err["id"], 4);
    assert_eq!(c.stdout_of("echo ok").await, "ok\n");
    end(c, server).await;
}

#[tokio::test]
async fn early_completion_fields_and_stderr_detection() {
    let (server, mut c) = connected(server().await).await;
    let frames = c
        .run("echo 'Task completed successfully'; sleep 0.2; echo 'Prompt is too long' >&2")
        .await;
    let methods: Vec<&str> = frames.iter().filter_map(|f| f["method"].as_str()).collect();
    let early = methods
        .iter()
        .position(|m| *m == "task.early_completion")
        .unwrap();
    assert_eq!(
        methods[early + 1],
        "process.output",
        "detector before its line"
    );
    let token = find(&frames, "error.token_limit_exceeded").expect("stderr lines are examined");
    assert_eq!(token["params"]["error_text"], "Prompt is too long");
    assert_eq!(token["params"]["session_id"], c.session_id());
    let done = &frames[frames.len() - 1]["params"];
    assert_eq!(done["early_completion_detected"], true);
    assert_eq!(done["completion_marker"], "Task completed successfully");
    let t = done["early_completion_time"].as_f64().unwrap();
    let total = done["execution_time"].as_f64().unwrap();
    assert!(t <= total);
    assert!(done["time_saved"].as_f64().unwrap() > 0.0);
    end(c, server).await;
}

async fn control_edge_cases(shell: &str) {
    let (server, mut c) = connected(server_with(shell).await).await;
    let (result, _) = start(&mut c, json!({ "command": "sleep 30" })).await;
    let pgid = pgid_of(&result);
    c.control("CANCEL", 2).await;
    c.frames_until(|f| f["method"] == "process.canceled").await;
    // A second CANCEL while the group dies is harmless: "canceled" again, or "no process"
    // when the run has already ended.
    c.control("CANCEL", 3).await;
    let (mut completed, mut answered) = (false, false);
    while !(completed && answered) {
        let f = c.frame().await;
        if f["id"] == 3 {
            answered = true;
            assert!(
                f["result"]["status"] == "canceled" || f["error"]["code"] == -32002,
                "{f}"
            );
        }
        if f["method"] == "process.completed" {
            completed = true;
            assert_eq!(f["params"]["status"], "canceled");
        }
    }
    assert_gone(pgid).await;
    // Control after the run ended: "No process is running".
    c.control("RESUME", 4).await;
    let err = c.frame().await;
    assert_eq!(err["error"]["code"], -32002);
    assert_eq!(err["id"], 4);
    end(c, server).await;
}

/// A group that dies at once of the CANCEL's SIGTERM still reports `canceled`, not `failed`
/// (the cancel is recorded before the signal goes out), and the CANCEL's answers still come
/// before `process.completed`.
// Several workers, as in the service binary: the session and the run then race for real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_dying_cancel_is_always_reported_as_canceled() {
    let (server, mut c) = connected(server().await).await;
    // A busy core makes the service's threads lose the CPU at any point, which is when the
    // run and the session race.
    let mut busy = Client::connect(&server.url()).await;
    start(
        &mut busy,
        json!({ "command": "yes > /dev/null & exec yes > /dev/null" }),
    )
    .await;
    for round in 0..300 {
        let (result, _) = start(&mut c, json!({ "command": "sleep 30" })).await;
        c.control("CANCEL", 2).await;
        let frames = c.until_completed().await;
        // The answer and `process.canceled` come before `process.completed`, never after it.
        let methods: Vec<&str> = frames
            .iter()
            .map(|f| f["method"].as_str().unwrap_or("(response)"))
            .collect();
        assert_eq!(
            methods,
            ["(response)", "process.canceled", "process.completed"],
            "round {round}"
        );
        assert_eq!(frames[0]["result"]["status"], "canceled", "round {round}");
        let done = &frames[frames.len() - 1]["params"];
        assert_eq!(done["status"], "canceled", "round {round}: {done}");
        assert_eq!(done["exit_code"], -15, "round {round}: {done}");
        assert_gone(pgid_of(&result)).await;
    }
    drop((c, busy));
    server.shutdown().await;
}
