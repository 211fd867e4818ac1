//! Batched output (`execute` with `"output": "batched"`): many whole lines of one stream in one
//! `process.output` frame, carrying byte for byte what one frame per line carries, in the same
//! order per stream, with the detectors' notifications still before their line; and no frame held
//! back while the command is silent.

use serde_json::{json, Value};
use tests::output::{Trickle, MIXED};
use tests::ws::{find, output_of, Client};

use crate::support::server;

/// The frames of `MIXED` up to `process.completed`, asked for with `output` (none: absent).
async fn frames(url: &str, output: Option<&str>) -> Vec<Value> {
    let mut c = Client::connect(url).await;
    let mut params = json!({ "command": MIXED });
    if let Some(mode) = output {
        params["output"] = json!(mode);
    }
    c.execute(params, 1).await;
    let frames = c.until_completed().await;
    assert_eq!(frames[0]["result"]["status"], "started", "{}", frames[0]);
    let completed = find(&frames, "process.completed").expect("completed");
    assert_eq!(completed["params"]["exit_code"], 0, "{completed}");
    frames
}

/// What a stream carried, frame by frame: `(method, data, chunk_index, total_chunks)`; in the
/// stdout lane also the detector notifications (`MIXED`'s detected line is on stdout; they name
/// no stream, and their place among the other stream's frames depends on timing).
fn lane(frames: &[Value], stream: &str) -> Vec<(String, String, Value, Value)> {
    frames
        .iter()
        .filter(|f| {
            let m = f["method"].as_str().unwrap_or_default();
            (m.starts_with("error.") && stream == "stdout")
                || (m == "process.output" && f["params"]["type"] == stream)
        })
        .map(|f| {
            let p = &f["params"];
            (
                f["method"].as_str().unwrap_or_default().to_owned(),
                p["data"].as_str().unwrap_or_default().to_owned(),
                p["chunk_index"].clone(),
                p["total_chunks"].clone(),
            )
        })
        .collect()
}

/// The lane with its unchunked frames split into lines: what a line-by-line reader sees.
fn lines(lane: &[(String, String, Value, Value)]) -> Vec<(String, String, Value, Value)> {
    let mut out = Vec::new();
    for (method, data, index, total) in lane {
        if method == "process.output" && index.is_null() {
            for line in data.split_inclusive('\n') {
                out.push((method.clone(), line.to_owned(), Value::Null, Value::Null));
            }
        } else {
            out.push((method.clone(), data.clone(), index.clone(), total.clone()));
        }
    }
    out
}

#[tokio::test]
async fn batched_output_is_byte_for_byte_the_line_by_line_output() {
    let server = server().await;
    let url = server.url();
    let plain = frames(&url, None).await;
    let batched = frames(&url, Some("batched")).await;

    for stream in ["stdout", "stderr"] {
        let (p, b) = (lane(&plain, stream), lane(&batched, stream));
        // Without the opt-in: one frame per line, as the reference sends.
        assert_eq!(
            lines(&p),
            p,
            "{stream}: one frame per line without batching"
        );
        assert_eq!(
            lines(&b),
            p,
            "{stream}: the same lines, chunks and notifications"
        );
        assert_eq!(output_of(&batched, stream), output_of(&plain, stream));
    }
    let (p, b) = (lane(&plain, "stdout"), lane(&batched, "stdout"));
    assert!(b.len() * 10 < p.len(), "{} frames for {}", b.len(), p.len());
    assert!(
        p.iter().any(|f| f.0 == "error.rate_limit_exceeded"),
        "detected"
    );
    let out = output_of(&batched, "stdout");
    assert!(
        out.contains("half \u{fffd}\n") && out.ends_with("\nlast line"),
        "stdout"
    );
    let err = output_of(&batched, "stderr");
    assert!(err.starts_with("err 1\nerr 2\n") && err.contains("bad \u{fffd}\u{fffd} utf8\n"));
    assert!(err.ends_with("3000\nerr last"));

    // Frames hold whole lines, up to 64 KiB of data unless one line is longer.
    let mut biggest_batch = 0;
    for f in batched.iter().filter(|f| f["method"] == "process.output") {
        let p = &f["params"];
        let data = p["data"].as_str().unwrap();
        if p["chunk_index"].is_null() {
            let n = data.split_inclusive('\n').count();
            assert!(
                data.len() <= 64 * 1024 || n == 1,
                "{} bytes, {n} lines",
                data.len()
            );
            assert!(
                data.ends_with('\n') || data.ends_with("last line") || data.ends_with("err last")
            );
            biggest_batch = biggest_batch.max(n);
        }
        assert_eq!(
            p.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["type", "data", "truncated", "chunk_index", "total_chunks"]
        );
    }
    assert!(
        biggest_batch > 100,
        "lines in the fullest frame: {biggest_batch}"
    );
    server.shutdown().await;
}

/// A command that writes a line and then waits for the test gets that line at once, in a frame
/// of its own: the service sends what the pipe holds rather than waiting to fill a batch. Each
/// next line is written only once the previous one has arrived, so a service that held lines
/// back would never send them (and the test would fail at its wait bound).
#[tokio::test]
async fn a_trickle_arrives_line_by_line_with_batching_on() {
    let server = server().await;
    let mut trickle = Trickle::new();
    let command = trickle.command();
    let mut c = Client::connect(&server.url()).await;
    c.execute(json!({ "command": command, "output": "batched" }), 1)
        .await;
    let started = c.frames_until(|f| f["method"] == "process.started").await;
    assert_eq!(started[0]["result"]["status"], "started", "{started:?}");
    for i in 1..=3 {
        let frame = c.frame().await;
        assert_eq!(frame["method"], "process.output", "{frame}");
        assert_eq!(frame["params"]["data"], format!("tick {i}\n"), "{frame}");
        trickle.release().await;
    }
    let rest = c.until_completed().await;
    assert_eq!(output_of(&rest, "stdout"), "done\n");
    server.shutdown().await;
}

#[tokio::test]
async fn an_unknown_output_mode_is_refused_with_a_clear_error() {
    let server = server().await;
    let mut c = Client::connect(&server.url()).await;
    c.execute(json!({ "command": "echo hi", "output": "fast" }), 7)
        .await;
    let reply = c.frame().await;
    assert_eq!(reply["id"], 7);
    assert_eq!(reply["error"]["code"], -32603, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Invalid params for execute: unknown variant `fast`"),
        "{message}"
    );
    // The session goes on.
    let frames = c.run("echo ok").await;
    assert_eq!(output_of(&frames, "stdout"), "ok\n");
    server.shutdown().await;
}
