//! The job tools of `cc-executor-mcp`, driven over stdio by rmcp's client with the embedded
//! service: jobs that outlive the call that started them, paged output, bounded waits with
//! progress, pause / resume / cancel of the whole group, unknown ids, Claude jobs, and shutdown.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;
use cc_executor_server::Server;
use serde_json::{json, Value};
use tests::procs::{wait_group_gone, wait_group_stopped};

/// The tools that act on one job, named by its `id`.
const ON_A_JOB: [&str; 6] = [
    "job_status",
    "job_output",
    "job_wait",
    "job_pause",
    "job_resume",
    "job_cancel",
];

const GONE: Duration = Duration::from_secs(30);

/// Start a job and return its status.
pub(crate) async fn start_job(mcp: &Mcp, args: Value) -> Value {
    let r = call_ok(mcp, "job_start", args).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    structured(&r).clone()
}

/// Start `sh -c script` as a job whose argv holds `marker`, and wait for its `n` processes: its
/// status, id and process group.
async fn start_marked(mcp: &Mcp, script: &str, marker: &str, n: usize) -> (Value, u64, u32) {
    let command = format!("sh -c '{script}' {marker}");
    let s = start_job(mcp, json!({ "command": command })).await;
    let id = s["id"].as_u64().expect("integer id");
    (s, id, wait_group(marker, n).await)
}

/// Call a job tool that must succeed; its structured result.
pub(crate) async fn job(mcp: &Mcp, tool: &'static str, args: Value) -> Value {
    let r = call_ok(mcp, tool, args).await;
    assert_eq!(r.is_error, Some(false), "{tool}: {}", text(&r));
    structured(&r).clone()
}

/// Wait until every process of group `pgid` is stopped (`stopped`) or none is.
async fn wait_stopped(pgid: u32, stopped: bool) {
    if let Err(states) = wait_group_stopped(pgid, stopped, WAIT).await {
        let what = if stopped { "stop" } else { "continue" };
        panic!("group {pgid} did not {what}: states {states:?}");
    }
}

#[tokio::test]
async fn job_tools_are_listed_with_schemas() {
    let mcp = start(&[], &[]).await;
    let tools = bounded("tools/list", mcp.list_all_tools()).await.unwrap();
    for name in ["job_start", "job_list", "job_input"]
        .into_iter()
        .chain(ON_A_JOB)
    {
        let tool = tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tool {name}"));
        assert!(tool.description.as_deref().is_some_and(|d| !d.is_empty()));
        let output = tool.output_schema.as_ref().expect("output schema");
        assert!(output["properties"].as_object().is_some(), "{output:?}");
        if name != "job_start" && name != "job_list" {
            let id = &tool.input_schema["properties"]["id"];
            // `job_wait` takes `id` or `ids`.
            let integer = [json!("integer"), json!(["integer", "null"])];
            assert!(integer.contains(&id["type"]), "{name}: {id}");
            assert!(id["description"].is_string());
        }
    }
    let start_tool = tools.iter().find(|t| t.name == "job_start").unwrap();
    let props = start_tool.input_schema["properties"].as_object().unwrap();
    assert!(props.contains_key("command") && props.contains_key("claude"));
    assert!(props.contains_key("stdin") && props.contains_key("pty"));
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn a_job_outlives_its_call_and_its_output_reads_in_pages() {
    let out_dir = private_dir();
    let mcp = start(&["--output-dir", out_dir.path().to_str().unwrap()], &[]).await;
    let s = start_job(
        &mcp,
        json!({"command": "echo first; sleep 1; seq 1 3000; echo done"}),
    )
    .await;
    // Returned at once, while the command still runs.
    assert_eq!(s["state"], "running", "{s}");
    assert_eq!(s["kind"], "command");
    let id = s["id"].as_u64().expect("integer id");
    assert!(s["pid"].as_u64().unwrap() > 0);
    let file = PathBuf::from(s["output_file"].as_str().expect("output_file"));
    assert!(file.starts_with(out_dir.path()), "{}", file.display());

    let w = job(&mcp, "job_wait", json!({"id": id, "timeout_secs": 60})).await;
    assert_eq!(w["state"], "completed", "{w}");
    assert_eq!(w["exit_code"], 0);

    let expected = format!(
        "first\n{}done\n",
        (1..=3000).map(|i| format!("{i}\n")).collect::<String>()
    );
    let (mut read, mut offset, mut pages) = (String::new(), 0, 0);
    loop {
        let p = job(
            &mcp,
            "job_output",
            json!({"id": id, "offset": offset, "limit": 5000}),
        )
        .await;
        assert_eq!(p["offset"], offset);
        let data = p["data"].as_str().unwrap();
        assert!(data.len() <= 5000);
        read.push_str(data);
        offset = p["next_offset"].as_u64().unwrap();
        pages += 1;
        if p["eof"] == true {
            assert_eq!(p["state"], "completed");
            break;
        }
        assert!(pages < 100, "no end of output");
    }
    assert!(pages > 1, "one page only");
    assert!(read == expected, "the pages differ from the output");
    assert!(
        std::fs::read_to_string(&file).unwrap() == expected,
        "the output file differs"
    );

    let tail = job(
        &mcp,
        "job_output",
        json!({"id": id, "tail": true, "limit": 5}),
    )
    .await;
    assert_eq!(tail["data"], "done\n");
    assert_eq!(tail["eof"], true);
    assert_eq!(tail["total"], expected.len());

    let list = job(&mcp, "job_list", json!({})).await;
    let listed = list["jobs"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .any(|j| j["id"] == id && j["state"] == "completed"),
        "{list}"
    );
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn output_past_the_memory_window_is_counted_as_dropped_and_kept_in_the_file() {
    let mcp = start(&["--job-buffer-bytes", "1000"], &[]).await;
    let s = start_job(&mcp, json!({"command": "seq 1 2000"})).await;
    let id = s["id"].as_u64().unwrap();
    let w = job(&mcp, "job_wait", json!({"id": id, "timeout_secs": 60})).await;
    assert_eq!(w["state"], "completed", "{w}");
    let expected: String = (1..=2000).map(|i| format!("{i}\n")).collect();
    assert_eq!(w["output_bytes"], expected.len());
    assert_eq!(w["dropped_bytes"], expected.len() - 1000);
    let p = job(&mcp, "job_output", json!({"id": id, "offset": 0})).await;
    assert_eq!(p["dropped"], expected.len() - 1000);
    assert_eq!(p["offset"], p["dropped"], "{p}");
    assert_eq!(p["eof"], true);
    assert!(expected.ends_with(p["data"].as_str().unwrap()));
    let file = w["output_file"].as_str().unwrap();
    assert!(std::fs::read_to_string(file).unwrap() == expected);
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn job_wait_returns_at_its_timeout_with_progress_and_cancel_kills_the_group() {
    let mcp = start(&[], &[]).await;
    let marker = marker("wait");
    let (s, id, pgid) = start_marked(&mcp, "echo tick; sleep 300", &marker, 2).await;
    assert_eq!(s["pgid"], pgid);

    // The job outlives the wait: a status, not an error.
    let w = job(&mcp, "job_wait", json!({"id": id, "timeout_secs": 2})).await;
    assert_eq!(w["state"], "running", "{w}");
    assert!(w["exit_code"].is_null());
    let messages: Vec<String> = (mcp.service().progress.lock().unwrap().iter())
        .filter_map(|p| p.message.clone())
        .collect();
    assert!(messages.iter().any(|m| m == "tick"), "{messages:?}");

    let c = job(&mcp, "job_cancel", json!({"id": id})).await;
    assert_eq!(c["state"], "canceled", "{c}");
    assert_eq!(wait_group_gone(pgid, GONE).await, Ok(()), "group survived");
    let again = job(&mcp, "job_cancel", json!({"id": id})).await;
    assert_eq!(again["state"], "canceled");
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn pause_and_resume_stop_and_continue_the_group() {
    let mcp = start(&[], &[]).await;
    let marker = marker("pause");
    let ticker = "i=0; while true; do i=$((i+1)); echo line$i; sleep 0.1; done";
    let (_, id, pgid) = start_marked(&mcp, ticker, &marker, 2).await;

    let p = job(&mcp, "job_pause", json!({"id": id})).await;
    assert_eq!(p["state"], "paused", "{p}");
    wait_stopped(pgid, true).await;
    let r = job(&mcp, "job_resume", json!({"id": id})).await;
    assert_eq!(r["state"], "running", "{r}");
    wait_stopped(pgid, false).await;
    let before = r["output_bytes"].as_u64().unwrap();
    let more = bounded("output after resume", async {
        loop {
            let s = job(&mcp, "job_status", json!({"id": id})).await;
            if s["output_bytes"].as_u64().unwrap() > before {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(more["state"], "running");

    // Paused, then canceled: the stopped group must still die.
    job(&mcp, "job_pause", json!({"id": id})).await;
    wait_stopped(pgid, true).await;
    let c = job(&mcp, "job_cancel", json!({"id": id})).await;
    assert_eq!(c["state"], "canceled", "{c}");
    assert_eq!(wait_group_gone(pgid, GONE).await, Ok(()), "group survived");

    let e = call_ok(&mcp, "job_resume", json!({"id": id})).await;
    assert_eq!(e.is_error, Some(true), "{e:?}");
    assert!(text(&e).contains("already ended"), "{}", text(&e));
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn unknown_ids_and_bad_starts_are_clear_tool_errors() {
    let mcp = start(&[], &[]).await;
    for tool in ON_A_JOB {
        let r = call_ok(&mcp, tool, json!({"id": 4242})).await;
        assert_eq!(r.is_error, Some(true), "{tool}: {r:?}");
        assert!(text(&r).contains("no job 4242"), "{tool}: {}", text(&r));
    }
    for (args, expect) in [
        (json!({}), "exactly one"),
        (
            json!({"command": "true", "claude": {"prompt": "hi"}}),
            "exactly one",
        ),
        (json!({"command": "  "}), "empty"),
        (json!({"claude": {"prompt": ""}}), "empty"),
        (
            json!({"command": "true", "timeout_secs": 0}),
            "timeout_secs",
        ),
    ] {
        let r = call_ok(&mcp, "job_start", args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{args} accepted: {r:?}");
        assert!(text(&r).contains(expect), "{args}: {}", text(&r));
    }
    // An id of the wrong type does not reach the tool: a tool error names the bad value.
    let r = call_ok(&mcp, "job_status", json!({"id": "one"})).await;
    assert_eq!(r.is_error, Some(true), "string id accepted: {r:?}");
    assert!(
        text(&r).contains("invalid type: string \"one\""),
        "{}",
        text(&r)
    );
    // Nothing was started.
    let list = job(&mcp, "job_list", json!({})).await;
    assert_eq!(list["jobs"], json!([]));
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn closing_stdin_cancels_running_and_paused_jobs() {
    closing_stdin_cancels_jobs(false).await;
}

#[tokio::test]
async fn closing_stdin_cancels_jobs_on_a_separate_service() {
    closing_stdin_cancels_jobs(true).await;
}

async fn closing_stdin_cancels_jobs(external: bool) {
    let server = match external {
        true => Some(Server::builder().bind("127.0.0.1:0").await.unwrap()),
        false => None,
    };
    let url = server.as_ref().map(|s| s.url());
    let args: Vec<&str> = match &url {
        Some(url) => vec!["--url", url],
        None => vec![],
    };
    let mcp = start(&args, &[]).await;
    let (running, paused) = (marker("stdin-run"), marker("stdin-paused"));
    let mut groups = Vec::new();
    for m in [&running, &paused] {
        let (_, id, pgid) = start_marked(&mcp, "sleep 300 & sleep 300", m, 3).await;
        groups.push((id, pgid));
    }
    job(&mcp, "job_pause", json!({"id": groups[1].0})).await;
    wait_stopped(groups[1].1, true).await;
    // Closes the transport: the server sees EOF on stdin.
    bounded("client close", mcp.cancel()).await.unwrap();
    for (_, pgid) in groups {
        assert_eq!(wait_group_gone(pgid, GONE).await, Ok(()), "group {pgid}");
    }
    if let Some(server) = server {
        server.shutdown().await;
    }
}

/// A stand-in `claude` that prints a recorded sample slowly (after the file a `wait-for:<path>`
/// prompt names appears); returns `PATH` with it first.
///
/// Written once per test process: tests run in parallel threads and must not race on the file.
pub(crate) fn stand_in_path() -> OsString {
    static PATH: std::sync::OnceLock<OsString> = std::sync::OnceLock::new();
    PATH.get_or_init(write_stand_in).clone()
}

fn write_stand_in() -> OsString {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mcp-jobs-stand-in");
    std::fs::create_dir_all(&dir).unwrap();
    let fixtures = tests::fixtures_dir().join("claude");
    let script = format!(
        "#!/bin/sh\nfor prompt; do :; done\ncase \"$prompt\" in *usage*) s=usage_limit ;; *crash*) echo boom >&2; exit 3 ;; *) s=success ;; esac\n\
         case \"$prompt\" in wait-for:*) while [ ! -e \"${{prompt#wait-for:}}\" ]; do sleep 0.05; done ;; esac\n\
         while IFS= read -r line; do printf '%s\\n' \"$line\"; sleep 0.3; done < '{}'/$s.jsonl\n",
        fixtures.display()
    );
    let tmp = dir.join(format!("claude.{}.tmp", std::process::id()));
    std::fs::write(&tmp, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, dir.join("claude")).unwrap();
    let mut paths = vec![dir];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}

#[tokio::test]
async fn a_claude_job_reports_its_final_result() {
    let mcp = start(&[], &[("PATH", stand_in_path())]).await;
    let s = start_job(
        &mcp,
        json!({"claude": {"prompt": "what does main.py print?", "max_turns": 3}}),
    )
    .await;
    assert_eq!(s["kind"], "claude");
    assert!(s["claude"].is_null(), "a result before the end: {s}");
    let id = s["id"].as_u64().unwrap();
    let w = job(&mcp, "job_wait", json!({"id": id, "timeout_secs": 60})).await;
    assert_eq!(w["state"], "completed", "{w}");
    let c = &w["claude"];
    assert_eq!(c["result"], "The script prints 4.", "{w}");
    assert_eq!(c["session_id"], "0b6c2f1e-5d2a-4b8e-9a51-3f0c8e7d1a22");
    assert_eq!(c["total_cost_usd"], 0.0123);
    assert_eq!(c["subtype"], "success");
    assert_eq!(w["notes"], json!([]));
    let messages: Vec<String> = (mcp.service().progress.lock().unwrap().iter())
        .filter_map(|p| p.message.clone())
        .collect();
    assert!(messages.iter().any(|m| m == "tool: Read"), "{messages:?}");
    // The raw stream stays readable.
    let page = job(&mcp, "job_output", json!({"id": id})).await;
    assert!(page["data"].as_str().unwrap().contains("\"tool_use\""));

    let s = start_job(&mcp, json!({"claude": {"prompt": "hit the usage limit"}})).await;
    let id = s["id"].as_u64().unwrap();
    let w = job(&mcp, "job_wait", json!({"id": id, "timeout_secs": 60})).await;
    let notes = w["notes"].to_string();
    assert!(notes.contains("Rate limited"), "{w}");
    assert!(notes.contains("2030-03-17 17:46:40 UTC"), "{w}");

    let s = start_job(&mcp, json!({"claude": {"prompt": "crash now"}})).await;
    let id = s["id"].as_u64().unwrap();
    let w = job(&mcp, "job_wait", json!({"id": id, "timeout_secs": 60})).await;
    assert_eq!(w["state"], "failed", "{w}");
    assert_eq!(w["exit_code"], 3);
    assert!(w["claude"].is_null(), "{w}");
    assert!(
        w["notes"].to_string().contains("without its final result"),
        "{w}"
    );
    let page = job(&mcp, "job_output", json!({"id": id})).await;
    assert_eq!(page["data"], "boom\n");
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn a_claude_result_past_the_memory_window_is_read_from_the_file() {
    let mcp = start(&["--job-buffer-bytes", "100"], &[("PATH", stand_in_path())]).await;
    let s = start_job(
        &mcp,
        json!({"claude": {"prompt": "what does main.py print?"}}),
    )
    .await;
    let id = s["id"].as_u64().unwrap();
    let w = job(&mcp, "job_wait", json!({"id": id, "timeout_secs": 60})).await;
    assert!(w["dropped_bytes"].as_u64().unwrap() > 0, "{w}");
    assert_eq!(w["claude"]["result"], "The script prints 4.", "{w}");
    mcp.cancel().await.unwrap();
}

/// Start a job and wait for it to end; its status.
async fn run_job(mcp: &Mcp, command: &str) -> Value {
    let s = start_job(mcp, json!({"command": command})).await;
    let w = job(mcp, "job_wait", json!({"id": s["id"], "timeout_secs": 60})).await;
    assert_eq!(w["state"], "completed", "{w}");
    w
}

#[tokio::test]
async fn an_evicted_jobs_file_is_deleted_unless_outputs_are_kept() {
    for keep in [false, true] {
        let out_dir = private_dir();
        let mut args = vec![
            "--output-dir",
            out_dir.path().to_str().unwrap(),
            "--max-finished-jobs",
            "1",
        ];
        if keep {
            args.push("--keep-outputs");
        }
        let mcp = start(&args, &[]).await;
        let first = run_job(&mcp, "echo first").await;
        let first_file = PathBuf::from(first["output_file"].as_str().unwrap());
        assert_eq!(std::fs::read_to_string(&first_file).unwrap(), "first\n");
        let second = run_job(&mcp, "echo second").await;
        // Two finished jobs, one kept: the first is evicted.
        let list = job(&mcp, "job_list", json!({})).await;
        let ids: Vec<&Value> = list["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| &j["id"])
            .collect();
        assert_eq!(ids, [&second["id"]], "{list}");
        assert_eq!(first_file.exists(), keep, "keep: {keep}");
        assert!(Path::new(second["output_file"].as_str().unwrap()).exists());
        mcp.cancel().await.unwrap();
    }
}
