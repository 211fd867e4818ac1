//! Drive the real `cc-executor-mcp` binary over stdio with rmcp's client, as an MCP host would.

use std::ffi::OsString;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::ProgressNotificationParam;
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceError, ServiceExt};
use serde_json::{json, Value};
use tests::procs;

/// Generous bound for anything a test waits on (CI is a loaded 2-core machine).
pub const WAIT: Duration = Duration::from_secs(60);

/// Fail the test instead of hanging.
pub async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A client handler recording every progress notification.
#[derive(Clone, Default)]
pub struct Recorder {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    /// Declare the tasks extension (`io.modelcontextprotocol/tasks`), as a host taking tasks does.
    pub tasks: bool,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }

    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        if self.tasks {
            info.capabilities = ClientCapabilities::builder().enable_tasks().build();
        }
        info
    }
}

pub type Mcp = RunningService<RoleClient, Recorder>;

/// Start `cc-executor-mcp` with `args` and extra environment, and initialize the MCP session.
pub async fn start(args: &[&str], envs: &[(&str, OsString)]) -> Mcp {
    start_as(Recorder::default(), args, envs).await
}

/// [`start`] with `host` as the client handler (e.g. one declaring the tasks extension).
pub async fn start_as(host: Recorder, args: &[&str], envs: &[(&str, OsString)]) -> Mcp {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_cc-executor-mcp"));
    cmd.args(args)
        .env_remove("CC_EXECUTOR_WEBSOCKET_URL")
        .env_remove("CC_EXECUTOR_TOKEN")
        .env_remove("CC_EXECUTOR_TOKEN_FILE");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let transport = TokioChildProcess::new(cmd).expect("spawn cc-executor-mcp");
    bounded("initialize", host.serve(transport))
        .await
        .expect("MCP initialize")
}

/// Call `tool` with `args` (a JSON object).
pub async fn call(
    mcp: &Mcp,
    tool: &'static str,
    args: Value,
) -> Result<CallToolResult, ServiceError> {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    bounded(
        tool,
        mcp.call_tool(CallToolRequestParams::new(tool).with_arguments(args)),
    )
    .await
}

/// Call `tool` with `args` and return its result; a protocol error fails the test.
pub async fn call_ok(mcp: &Mcp, tool: &'static str, args: Value) -> CallToolResult {
    call(mcp, tool, args).await.expect("tools/call")
}

/// Poll job `id` (bounded) until `done` holds for its whole output held so far; that output.
pub async fn job_output_until(mcp: &Mcp, id: &Value, done: impl Fn(&str) -> bool) -> String {
    bounded("the job's output", async {
        loop {
            let page = crate::jobs::job(mcp, "job_output", json!({"id": id, "tail": true})).await;
            let data = page["data"].as_str().unwrap_or_default().to_owned();
            if done(&data) {
                return data;
            }
            assert_ne!(page["eof"], true, "the job ended first: {data:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// The structured content of a result (panics when absent).
pub fn structured(result: &CallToolResult) -> &Value {
    result
        .structured_content
        .as_ref()
        .unwrap_or_else(|| panic!("no structuredContent in {result:?}"))
}

/// All text blocks of a result, joined.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The process group of a live process whose command line contains `marker`.
pub fn group_with_marker(marker: &str) -> Option<u32> {
    procs::live_processes_where(|cmdline| cmdline.contains(marker))
        .first()
        .map(|(_, stat)| stat.pgrp)
}

/// Wait until a group holding `marker` runs at least `n` processes; returns its pgid.
pub async fn wait_group(marker: &str, n: usize) -> u32 {
    bounded("the command's process group", async {
        loop {
            if let Some(pgid) = group_with_marker(marker) {
                if procs::processes_in_group(pgid).len() >= n {
                    return pgid;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// A marker unique to this test run, to find a command's processes.
pub fn marker(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("mcp-test-{name}-{}-{nanos}", std::process::id())
}

/// A temporary folder only this user can open, as an output folder must be.
pub fn private_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}
