//! Tasks (the `io.modelcontextprotocol/tasks` extension): a host that declares it gets a task for
//! `execute` and `execute_claude`. The task's status message follows the run, the run is a job
//! (`job_list`, `job_output`), canceling the task kills the run's process group, and the task
//! ends with the very result a blocking call gives.

use std::ffi::OsString;
use std::time::Duration;

use crate::support::*;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, DetailedTask,
    GetTaskParams, TaskPayload, TaskStatus,
};
use serde_json::{json, Value};

/// An MCP server for a host that declares the tasks extension.
async fn host(envs: &[(&str, OsString)]) -> Mcp {
    let host = Recorder {
        tasks: true,
        ..Recorder::default()
    };
    start_as(host, &[], envs).await
}

/// Call `tool` with `args` (a JSON object) and take the task it answers with: its id.
async fn task(mcp: &Mcp, tool: &'static str, args: Value) -> String {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    let call = mcp.call_tool_once(CallToolRequestParams::new(tool).with_arguments(args));
    match bounded(tool, call).await.expect("tools/call") {
        CallToolResponse::Task(created) => created.task.task_id,
        other => panic!("{tool} answered without a task: {other:?}"),
    }
}

/// Poll task `id` (`tasks/get`) until `done` holds for it; the task then.
async fn until(
    mcp: &Mcp,
    id: &str,
    what: &str,
    mut done: impl FnMut(&DetailedTask) -> bool,
) -> DetailedTask {
    bounded(what, async {
        loop {
            let got = mcp.peer().get_task(GetTaskParams::new(id)).await;
            let got = got.expect("tasks/get").task;
            if done(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// The status message of a task.
fn message(task: &DetailedTask) -> Option<&str> {
    task.task.status_message.as_deref()
}

/// The end of task `id`: its final result (it must have completed).
async fn result_of(mcp: &Mcp, id: &str) -> CallToolResult {
    let end = until(mcp, id, "the task's end", |t| t.status().is_terminal()).await;
    match end.payload {
        TaskPayload::Completed { result } => serde_json::from_value(Value::Object(result)).unwrap(),
        other => panic!("task {id} did not complete: {other:?}"),
    }
}

/// A result as JSON with its run time zeroed, in the structured content and in the text that
/// repeats it: the one thing two runs of the same command may differ in. Without `resultType`,
/// which rmcp writes in a task's payload and leaves out of an answer to a peer of this protocol
/// version: it says what kind of result this is, not what it holds.
fn timeless(result: CallToolResult) -> Value {
    let zero = |v: &mut Value| {
        if let Some(secs) = v.get_mut("duration_secs") {
            *secs = json!(0);
        }
    };
    let mut v = serde_json::to_value(result).unwrap();
    v.as_object_mut().unwrap().remove("resultType");
    zero(&mut v["structuredContent"]);
    for block in v["content"].as_array_mut().into_iter().flatten() {
        let text = block["text"].as_str().unwrap_or_default();
        if let Ok(mut repeated @ Value::Object(_)) = serde_json::from_str::<Value>(text) {
            zero(&mut repeated);
            block["text"] = json!(repeated.to_string());
        }
    }
    v
}

/// The job `job_list` shows for task `id` (labeled with the task id).
async fn job_of(mcp: &Mcp, id: &str) -> Value {
    let list = call_ok(mcp, "job_list", json!({})).await;
    let jobs = structured(&list)["jobs"].as_array().unwrap().clone();
    jobs.into_iter()
        .find(|job| job["label"] == id)
        .unwrap_or_else(|| panic!("no job for task {id} in {list:?}"))
}

#[tokio::test]
async fn a_long_execute_is_a_task_that_moves_is_a_job_and_dies_with_its_group() {
    let mcp = host(&[]).await;
    let marker = marker("task");
    let ticks = "sleep 300 & i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done";
    let id = task(
        &mcp,
        "execute",
        json!({ "command": format!("sh -c '{ticks}' {marker}") }),
    )
    .await;
    // sh -c, the background sleep and the loop's sleep.
    let pgid = wait_group(&marker, 2).await;

    // A heartbeat may come first on a loaded machine: wait for the ticks themselves.
    let tick = |t: &DetailedTask| message(t).is_some_and(|m| m.starts_with("tick "));
    let first = until(&mcp, &id, "a tick as the status message", tick).await;
    let first = message(&first).unwrap().to_owned();
    let moved = |t: &DetailedTask| tick(t) && message(t) != Some(&first);
    let next = until(&mcp, &id, "the status message to move", moved).await;
    assert_eq!(next.status(), TaskStatus::Working);

    // The task is a job: listed, running, its output readable.
    let job = job_of(&mcp, &id).await;
    assert_eq!(job["state"], "running", "{job}");
    assert!(job["command"].as_str().unwrap().contains(&marker), "{job}");
    let page = call_ok(&mcp, "job_output", json!({ "id": job["id"] })).await;
    let data = structured(&page)["data"].as_str().unwrap().to_owned();
    assert!(data.starts_with("tick 1\ntick 2\n"), "{data}");

    let cancel = mcp.peer().cancel_task(CancelTaskParams::new(id.clone()));
    bounded("tasks/cancel", cancel).await.unwrap();
    let end = until(&mcp, &id, "the task's end", |t| t.status().is_terminal()).await;
    assert_eq!(end.status(), TaskStatus::Cancelled);
    let gone = tests::procs::wait_group_gone(pgid, Duration::from_secs(30)).await;
    assert_eq!(gone, Ok(()), "processes left in group {pgid}");
    let status = call_ok(&mcp, "job_status", json!({ "id": job["id"] })).await;
    assert_eq!(structured(&status)["state"], "canceled", "{status:?}");
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn an_execute_task_ends_with_the_blocking_calls_result() {
    let (tasks, plain) = (host(&[]).await, start(&[], &[]).await);
    let cases = [
        (
            json!({"command": "echo out; echo err >&2"}),
            Some("completed"),
        ),
        (json!({"command": "echo out; exit 3"}), Some("failed")),
        // Refused before it runs: no job, and a plain error.
        (json!({"command": "pwd", "cwd": "/no/such/dir"}), None),
    ];
    for (args, state) in cases {
        let id = task(&tasks, "execute", args.clone()).await;
        let from_task = result_of(&tasks, &id).await;
        let blocking = call_ok(&plain, "execute", args.clone()).await;
        assert_eq!(timeless(from_task), timeless(blocking), "{args}");
        if let Some(state) = state {
            assert_eq!(job_of(&tasks, &id).await["state"], state, "{args}");
        }
    }
    tasks.cancel().await.unwrap();
    plain.cancel().await.unwrap();
}

#[tokio::test]
async fn an_execute_claude_task_shows_claudes_activity_and_ends_with_the_blocking_result() {
    let envs = [("PATH", crate::claude::stand_in().1.clone())];
    let (tasks, plain) = (host(&envs).await, start(&[], &envs).await);
    // The stand-in writes its stream-json lines slowly for such a prompt.
    let args = json!({"prompt": "answer slowly"});
    let id = task(&tasks, "execute_claude", args.clone()).await;
    // Its text or tool in use (a heartbeat may come first on a loaded machine).
    let known = [
        "I'll read the file first.",
        "tool: Read",
        "The script prints 4.",
    ];
    let said = |t: &DetailedTask| message(t).is_some_and(|m| known.contains(&m));
    until(&tasks, &id, "Claude's activity as the status message", said).await;
    let from_task = result_of(&tasks, &id).await;
    assert_eq!(from_task.is_error, Some(false), "{from_task:?}");
    let blocking = call_ok(&plain, "execute_claude", args).await;
    assert_eq!(timeless(from_task), timeless(blocking));
    assert_eq!(job_of(&tasks, &id).await["kind"], "claude");
    tasks.cancel().await.unwrap();
    plain.cancel().await.unwrap();
}
