//! `cc-executor-mcp` over stdio with its embedded service: tools, `execute`, output bounding,
//! progress, cancellation and shutdown.

use std::time::Duration;

use crate::support::*;
use rmcp::model::{CallToolRequestParams, ClientRequest, Request};
use rmcp::service::PeerRequestOptions;
use serde_json::json;

#[tokio::test]
async fn initialize_reports_the_server_and_lists_tools_with_schemas() {
    let mcp = start(&[], &[]).await;
    let info = mcp.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("cc-executor")
    );
    let tools = bounded("tools/list", mcp.list_all_tools()).await.unwrap();
    for name in ["execute", "execute_claude"] {
        let tool = tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tool {name} in {tools:?}"));
        assert!(tool.description.as_deref().is_some_and(|d| !d.is_empty()));
        let props = tool.input_schema["properties"].as_object().unwrap();
        let output = tool.output_schema.as_ref().expect("output schema");
        assert!(output["properties"].as_object().is_some(), "{output:?}");
        if name == "execute" {
            assert!(props["command"]["description"].is_string(), "{props:?}");
            assert!(props.contains_key("timeout_secs") && props.contains_key("cwd"));
            assert!(output["properties"]["exit_code"].is_object());
            assert!(output["properties"]["output_file"].is_object());
        } else {
            assert!(props["prompt"]["description"].is_string(), "{props:?}");
            assert!(output["properties"]["session_id"].is_object());
        }
    }
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn the_embedded_service_runs_bash_by_default_and_honours_cc_executor_shell() {
    for (envs, want) in [
        (vec![], "1 2 3\n"),
        (vec![("CC_EXECUTOR_SHELL", "sh".into())], "{1..3}\n"),
    ] {
        let mcp = start(&[], &envs).await;
        let r = call_ok(&mcp, "execute", json!({"command": "echo {1..3}"})).await;
        assert_eq!(structured(&r)["stdout"], want, "{envs:?}: {r:?}");
        mcp.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn execute_echo_returns_structured_output() {
    let mcp = start(&[], &[]).await;
    let r = call_ok(&mcp, "execute", json!({"command": "echo hi"})).await;
    assert_eq!(r.is_error, Some(false), "{r:?}");
    let s = structured(&r);
    assert_eq!(s["exit_code"], 0);
    assert_eq!(s["status"], "completed");
    assert_eq!(s["stdout"], "hi\n");
    assert_eq!(s["stderr"], "");
    assert_eq!(s["timed_out"], false);
    assert_eq!(s["truncated"], false);
    assert!(s["output_file"].is_null());
    assert!(s["duration_secs"].as_f64().unwrap() >= 0.0);
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn failing_command_is_a_tool_error_with_its_output() {
    let mcp = start(&[], &[]).await;
    let r = call_ok(
        &mcp,
        "execute",
        json!({"command": "echo out; echo oops >&2; exit 3"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let s = structured(&r);
    assert_eq!(s["exit_code"], 3);
    assert_eq!(s["status"], "failed");
    assert_eq!(s["stdout"], "out\n");
    assert_eq!(s["stderr"], "oops\n");
    assert!(text(&r).contains("exit code 3"), "{}", text(&r));
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn cwd_and_timeout_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mcp = start(&[], &[]).await;
    let r = call_ok(
        &mcp,
        "execute",
        json!({"command": "pwd", "cwd": dir.path().to_str().unwrap()}),
    )
    .await;
    let pwd = structured(&r)["stdout"].as_str().unwrap().trim().to_owned();
    assert_eq!(
        std::fs::canonicalize(pwd).unwrap(),
        std::fs::canonicalize(dir.path()).unwrap()
    );

    let r = call_ok(
        &mcp,
        "execute",
        json!({"command": "echo started; sleep 30", "timeout_secs": 1}),
    )
    .await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert_eq!(structured(&r)["timed_out"], true);
    assert_eq!(structured(&r)["stdout"], "started\n");
    assert!(text(&r).contains("timed out"), "{}", text(&r));
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_the_server_keeps_serving() {
    let mcp = start(&[], &[]).await;
    let r = call_ok(&mcp, "execute", json!({"command": "  "})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("empty"), "{}", text(&r));

    let r = call_ok(
        &mcp,
        "execute",
        json!({"command": "true", "timeout_secs": 0}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));

    // Wrong types, missing fields and unknown tools: a JSON-RPC error or a tool error, both clear.
    for (tool, args) in [
        ("execute", json!({"command": 5})),
        ("execute", json!({})),
        (
            "execute",
            json!({"command": "true", "timeout_secs": "soon"}),
        ),
        ("no_such_tool", json!({})),
    ] {
        match call(&mcp, tool, args.clone()).await {
            Err(e) => assert!(!e.to_string().is_empty()),
            Ok(r) => {
                assert_eq!(r.is_error, Some(true), "{tool} {args} accepted: {r:?}");
                assert!(!text(&r).is_empty());
            }
        }
    }

    let r = call_ok(&mcp, "execute", json!({"command": "echo still here"})).await;
    assert_eq!(structured(&r)["stdout"], "still here\n");
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn a_service_that_is_down_is_a_tool_error() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let mcp = start(&["--url", &url], &[]).await;
    let r = call_ok(&mcp, "execute", json!({"command": "echo hi"})).await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert!(text(&r).contains(&url), "{}", text(&r));
    // Still alive.
    bounded("tools/list", mcp.list_all_tools()).await.unwrap();
    mcp.cancel().await.unwrap();
}

/// Several services (`--url` repeated, or comma-separated in `CC_EXECUTOR_WEBSOCKET_URL`): runs
/// spread over the live ones and skip the one that is down.
#[tokio::test]
async fn runs_spread_over_several_urls_and_skip_a_dead_one() {
    let dirs = [private_dir(), private_dir()];
    let mut services = Vec::new();
    for d in &dirs {
        let builder = cc_executor_server::Server::builder().working_dir(d.path());
        services.push(builder.bind("127.0.0.1:0").await.unwrap());
    }
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("ws://{}/ws", l.local_addr().unwrap())
    };
    let (a, b) = (services[0].url(), services[1].url());
    let by_flag = start(&["--url", &dead, "--url", &a, "--url", &b], &[]).await;
    let listed = format!("{dead},{a},{b}");
    let by_env = start(&[], &[("CC_EXECUTOR_WEBSOCKET_URL", listed.into())]).await;
    for mcp in [by_flag, by_env] {
        let mut seen = [0; 2];
        for _ in 0..6 {
            let r = call_ok(&mcp, "execute", json!({"command": "pwd"})).await;
            assert_eq!(r.is_error, Some(false), "{}", text(&r));
            let pwd = structured(&r)["stdout"].as_str().unwrap().trim().to_owned();
            let at = dirs
                .iter()
                .position(|d| d.path().canonicalize().unwrap().to_str() == Some(&pwd));
            seen[at.unwrap_or_else(|| panic!("{pwd} is no service's folder"))] += 1;
        }
        assert!(
            seen[0] > 0 && seen[1] > 0,
            "runs went to one service: {seen:?}"
        );
        mcp.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn long_output_is_bounded_and_saved_whole() {
    let out_dir = private_dir();
    let mcp = start(
        &[
            "--output-dir",
            out_dir.path().to_str().unwrap(),
            "--max-output-chars",
            "20000",
        ],
        &[],
    )
    .await;
    let r = call_ok(&mcp, "execute", json!({"command": "seq 1 200000"})).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let s = structured(&r);
    assert_eq!(s["truncated"], true);
    let stdout = s["stdout"].as_str().unwrap();
    assert!(stdout.len() <= 20_100, "returned {} bytes", stdout.len());
    assert!(stdout.starts_with("1\n2\n3\n"));
    assert!(stdout.ends_with("199999\n200000\n"));
    assert!(stdout.contains("bytes omitted"));
    let file = s["output_file"].as_str().expect("output_file");
    assert!(std::path::Path::new(file).starts_with(out_dir.path()));
    let full = std::fs::read_to_string(file).unwrap();
    let expected: String = (1..=200_000).map(|i| format!("{i}\n")).collect();
    assert!(full == expected, "the saved output differs");
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn progress_carries_output_lines_and_heartbeats() {
    let mcp = start(&[], &[]).await;
    // rmcp's client puts a progress token on every request.
    let r = call_ok(
        &mcp,
        "execute",
        json!({"command": "echo step one; sleep 0.5; echo step two; sleep 7; echo step three"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let progress = mcp.service().progress.lock().unwrap().clone();
    let messages: Vec<String> = progress.iter().filter_map(|p| p.message.clone()).collect();
    assert!(
        progress.windows(2).all(|w| w[0].progress < w[1].progress),
        "progress must increase: {progress:?}"
    );
    assert!(messages.iter().any(|m| m == "step one"), "{messages:?}");
    assert!(messages.iter().any(|m| m == "step two"), "{messages:?}");
    assert!(
        messages.iter().any(|m| m.starts_with("running for")),
        "no heartbeat during 7 s of silence: {messages:?}"
    );
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn cancelling_a_call_kills_the_process_group() {
    let mcp = start(&[], &[]).await;
    let marker = marker("cancel");
    let command = format!("sh -c 'sleep 300 & sleep 300' {marker}");
    let args = json!({ "command": command });
    let request = ClientRequest::CallToolRequest(Request::new(
        CallToolRequestParams::new("execute").with_arguments(args.as_object().unwrap().clone()),
    ));
    let handle = bounded(
        "tools/call",
        mcp.peer()
            .send_cancellable_request(request, PeerRequestOptions::no_options()),
    )
    .await
    .unwrap();
    // sh -c, the inner sh and two sleeps.
    let pgid = wait_group(&marker, 3).await;
    bounded("cancel", handle.cancel(Some("test".into())))
        .await
        .unwrap();
    let gone = tests::procs::wait_group_gone(pgid, Duration::from_secs(30)).await;
    assert_eq!(gone, Ok(()), "processes left in group {pgid}");
    // The server still serves.
    let r = call_ok(&mcp, "execute", json!({"command": "echo after"})).await;
    assert_eq!(structured(&r)["stdout"], "after\n");
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn closing_stdin_kills_running_commands_and_exits() {
    let mcp = start(&[], &[]).await;
    let marker = marker("stdin");
    let command = format!("sh -c 'sleep 300 & sleep 300' {marker}");
    let peer = mcp.peer().clone();
    let call = tokio::spawn(async move {
        let args = json!({ "command": command });
        peer.call_tool(
            CallToolRequestParams::new("execute").with_arguments(args.as_object().unwrap().clone()),
        )
        .await
    });
    let pgid = wait_group(&marker, 3).await;
    // Closes the transport: the server sees EOF on stdin.
    bounded("client close", mcp.cancel()).await.unwrap();
    let gone = tests::procs::wait_group_gone(pgid, Duration::from_secs(30)).await;
    assert_eq!(gone, Ok(()), "processes left in group {pgid}");
    let result = bounded("the abandoned call", call).await.unwrap();
    assert!(result.is_err(), "a call outlived the session: {result:?}");
}

/// `--token-file` gives the token sent to a `--url` service; the token stays off the command
/// line, and an unreadable file stops the server at start-up with a clear error.
#[tokio::test]
async fn the_token_for_a_service_can_come_from_a_file() {
    let service = cc_executor_server::Server::builder()
        .token("mcp-s3cret")
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let url = service.url();
    let dir = tempfile::tempdir().unwrap();
    let right = dir.path().join("right");
    std::fs::write(&right, "mcp-s3cret\n").unwrap();
    let mcp = start(
        &["--url", &url, "--token-file", right.to_str().unwrap()],
        &[],
    )
    .await;
    let r = call_ok(&mcp, "execute", json!({"command": "echo through"})).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    assert_eq!(structured(&r)["stdout"], "through\n");
    mcp.cancel().await.unwrap();

    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-it").unwrap();
    let mcp = start(
        &["--url", &url, "--token-file", wrong.to_str().unwrap()],
        &[],
    )
    .await;
    let r = call_ok(&mcp, "execute", json!({"command": "echo through"})).await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert!(text(&r).contains("401"), "{}", text(&r));
    mcp.cancel().await.unwrap();

    let missing = dir.path().join("missing");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_cc-executor-mcp"))
        .args(["--url", &url, "--token-file", missing.to_str().unwrap()])
        .env_remove("CC_EXECUTOR_TOKEN")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read the token file"), "{stderr}");
    service.shutdown().await;
}

// Output files: a private folder and private files, refused folders, symlinks, retention.

/// The permission bits of `path` (not following a symlink).
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// Arguments that cut `execute`'s output early, so it is saved to a file, with outputs in `dir`.
fn cutting(dir: &std::path::Path) -> Vec<String> {
    let dir = dir.to_str().unwrap().to_owned();
    ["--output-dir", &dir, "--max-output-chars", "200"]
        .map(String::from)
        .to_vec()
}

async fn start_with(args: &[String], envs: &[(&str, std::ffi::OsString)]) -> Mcp {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    start(&args, envs).await
}

/// `execute` a command with long output; its structured result (a success).
async fn execute_long(mcp: &Mcp) -> serde_json::Value {
    let r = call_ok(mcp, "execute", json!({"command": "seq 1 5000"})).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let s = structured(&r).clone();
    assert_eq!(s["truncated"], true, "{s}");
    s
}

#[tokio::test]
async fn output_files_and_their_folder_are_private() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("outputs");
    let mcp = start_with(&cutting(&dir), &[]).await;
    let s = execute_long(&mcp).await;
    let file = std::path::PathBuf::from(s["output_file"].as_str().expect("output_file"));
    assert_eq!(file.parent(), Some(dir.as_path()));
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&file), 0o600);
    let expected: String = (1..=5000).map(|i| format!("{i}\n")).collect();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), expected);

    let r = call_ok(&mcp, "job_start", json!({"command": "echo job"})).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let job_file = std::path::PathBuf::from(structured(&r)["output_file"].as_str().unwrap());
    assert_eq!(job_file.parent(), Some(dir.as_path()));
    assert_eq!(mode(&job_file), 0o600);
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn the_default_folder_is_private_in_the_runtime_dir() {
    let runtime = tempfile::tempdir().unwrap();
    let mcp = start(
        &["--max-output-chars", "200"],
        &[("XDG_RUNTIME_DIR", runtime.path().into())],
    )
    .await;
    let s = execute_long(&mcp).await;
    let file = std::path::PathBuf::from(s["output_file"].as_str().expect("output_file"));
    let dir = runtime.path().join("cc-executor");
    assert_eq!(file.parent(), Some(dir.as_path()));
    assert_eq!((mode(&dir), mode(&file)), (0o700, 0o600));
    mcp.cancel().await.unwrap();
}

/// `execute` and `job_start` still answer with `dir` refused, and say why there is no file.
async fn refused(dir: &std::path::Path, why: &str) {
    let mcp = start_with(&cutting(dir), &[]).await;
    let s = execute_long(&mcp).await;
    assert!(s["output_file"].is_null(), "{s}");
    let error = s["output_error"].as_str().expect("output_error");
    assert!(error.contains("refusing the output folder"), "{error}");
    assert!(error.contains(why), "{error}");
    assert!(s["stdout"].as_str().unwrap().starts_with("1\n2\n"));

    let r = call_ok(&mcp, "job_start", json!({"command": "echo job"})).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let job = structured(&r);
    assert!(job["output_file"].is_null(), "{job}");
    assert!(job["output_error"].as_str().unwrap().contains(why), "{job}");
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn a_folder_open_to_others_is_refused_and_the_tools_still_answer() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("open");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    refused(&dir, "mode 750").await;
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "wrote into it");
}

#[tokio::test]
async fn a_folder_of_another_user_is_refused() {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        eprintln!("skipped: only root can give a folder to another user");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("foreign");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    refused(&dir, "belongs to uid 65534").await;
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "wrote into it");
}

#[tokio::test]
async fn a_symlinked_folder_is_not_followed() {
    let root = tempfile::tempdir().unwrap();
    // A private folder of this very user: the link alone is the problem.
    let target = private_dir();
    let link = root.path().join("link");
    std::os::unix::fs::symlink(target.path(), &link).unwrap();
    refused(&link, "symbolic link").await;
    assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 0);
}

/// The pid of the live `cc-executor-mcp` whose command line holds `marker`.
fn mcp_pid(marker: &str) -> u32 {
    tests::procs::live_processes_where(|c| c.contains("cc-executor-mcp") && c.contains(marker))
        .first()
        .expect("the MCP server's process")
        .0
}

#[tokio::test]
async fn a_symlink_planted_at_the_next_file_is_not_followed() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(marker("planted"));
    let mcp = start_with(&cutting(&dir), &[]).await;
    // Outputs are named `output-<unix secs>-<pid>-<n>.log`: plant the first name for each second
    // the call may start in, all pointing at a file another user would want written.
    let bait = root.path().join("bait");
    std::fs::write(&bait, "untouched").unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    let pid = mcp_pid(dir.file_name().unwrap().to_str().unwrap());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for secs in now - 2..now + WAIT.as_secs() {
        let name = format!("output-{secs}-{pid}-1.log");
        std::os::unix::fs::symlink(&bait, dir.join(name)).unwrap();
    }
    let s = execute_long(&mcp).await;
    let file = std::path::PathBuf::from(s["output_file"].as_str().expect("output_file"));
    assert!(!std::fs::symlink_metadata(&file).unwrap().is_symlink());
    assert!(
        file.to_str().unwrap().ends_with("-2.log"),
        "{}",
        file.display()
    );
    assert_eq!(std::fs::read_to_string(&bait).unwrap(), "untouched");
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn old_cut_outputs_are_removed_at_start() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("outputs");
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&dir)
        .unwrap();
    let day_ago = std::time::SystemTime::now() - Duration::from_secs(25 * 3600);
    let plant = |name: &str, old: bool| {
        let path = dir.join(name);
        let file = std::fs::File::create(&path).unwrap();
        if old {
            file.set_modified(day_ago).unwrap();
        }
        path
    };
    let old = plant("output-1-2-3.log", true);
    let old_answer = plant("answer-1-2-3.txt", true);
    let fresh = plant("output-4-5-6.log", false);
    let not_ours = plant("notes.log", true);
    let mcp = start_with(&cutting(&dir), &[]).await;
    assert!(!old.exists() && !old_answer.exists(), "old outputs kept");
    assert!(fresh.exists() && not_ours.exists());
    mcp.cancel().await.unwrap();

    // A shorter retention removes younger files too.
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&fresh)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let mut args = cutting(&dir);
    args.extend(["--output-retention".into(), "1".into()]);
    let mcp = start_with(&args, &[]).await;
    assert!(!fresh.exists() && not_ours.exists());
    mcp.cancel().await.unwrap();
}

// The seed's argument names, and misspelt ones.

#[tokio::test]
async fn timeout_is_accepted_as_timeout_secs() {
    let mcp = start(&[], &[]).await;
    // Accepted, not advertised.
    let tools = bounded("tools/list", mcp.list_all_tools()).await.unwrap();
    for tool in &tools {
        let props = tool
            .input_schema
            .get("properties")
            .and_then(|p| p.as_object());
        assert!(props.is_none_or(|p| !p.contains_key("timeout")), "{tool:?}");
    }
    let r = call_ok(&mcp, "execute", json!({"command": "sleep 3", "timeout": 1})).await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert_eq!(structured(&r)["timed_out"], true, "{}", text(&r));

    let r = call_ok(
        &mcp,
        "job_start",
        json!({"command": "sleep 3", "timeout": 1}),
    )
    .await;
    let id = structured(&r)["id"].clone();
    let r = call_ok(&mcp, "job_wait", json!({"id": id, "timeout": 60})).await;
    assert_eq!(structured(&r)["state"], "timed_out", "{}", text(&r));
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn an_unknown_argument_is_a_tool_error_naming_it() {
    let mcp = start(&[], &[]).await;
    let flag = std::env::temp_dir().join(marker("unknown-arg"));
    let command = format!("touch {}", flag.display());
    let r = call_ok(&mcp, "execute", json!({"command": command, "timout": 5})).await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let t = text(&r);
    for name in ["timout", "command", "timeout_secs", "cwd"] {
        assert!(t.contains(&format!("`{name}`")), "{name} not in {t}");
    }
    assert!(!flag.exists(), "the command ran");

    for (tool, args, unknown) in [
        ("job_start", json!({"command": "true", "cmd": "x"}), "cmd"),
        (
            "job_start",
            json!({"claude": {"prompt": "hi", "allowed_tool": ["Read"]}}),
            "allowed_tool",
        ),
        (
            "execute_claude",
            json!({"prompt": "hi", "turns": 3}),
            "turns",
        ),
        ("job_status", json!({"id": 1, "verbose": true}), "verbose"),
        ("job_list", json!({"all": true}), "all"),
    ] {
        let r = call_ok(&mcp, tool, args).await;
        assert_eq!(r.is_error, Some(true), "{tool}: {r:?}");
        assert!(
            text(&r).contains(&format!("`{unknown}`")),
            "{tool}: {}",
            text(&r)
        );
    }
    mcp.cancel().await.unwrap();
}
