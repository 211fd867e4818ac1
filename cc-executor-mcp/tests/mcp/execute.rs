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
async fn execute_echo_returns_structured_output() {
    let mcp = start(&[], &[]).await;
    let r = call(&mcp, "execute", json!({"command": "echo hi"}))
        .await
        .unwrap();
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
    let r = call(
        &mcp,
        "execute",
        json!({"command": "echo out; echo oops >&2; exit 3"}),
    )
    .await
    .unwrap();
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
    let r = call(
        &mcp,
        "execute",
        json!({"command": "pwd", "cwd": dir.path().to_str().unwrap()}),
    )
    .await
    .unwrap();
    let pwd = structured(&r)["stdout"].as_str().unwrap().trim().to_owned();
    assert_eq!(
        std::fs::canonicalize(pwd).unwrap(),
        std::fs::canonicalize(dir.path()).unwrap()
    );

    let r = call(
        &mcp,
        "execute",
        json!({"command": "echo started; sleep 30", "timeout_secs": 1}),
    )
    .await
    .unwrap();
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert_eq!(structured(&r)["timed_out"], true);
    assert_eq!(structured(&r)["stdout"], "started\n");
    assert!(text(&r).contains("timed out"), "{}", text(&r));
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_the_server_keeps_serving() {
    let mcp = start(&[], &[]).await;
    let r = call(&mcp, "execute", json!({"command": "  "}))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("empty"), "{}", text(&r));

    let r = call(
        &mcp,
        "execute",
        json!({"command": "true", "timeout_secs": 0}),
    )
    .await
    .unwrap();
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

    let r = call(&mcp, "execute", json!({"command": "echo still here"}))
        .await
        .unwrap();
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
    let r = call(&mcp, "execute", json!({"command": "echo hi"}))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert!(text(&r).contains(&url), "{}", text(&r));
    // Still alive.
    bounded("tools/list", mcp.list_all_tools()).await.unwrap();
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn long_output_is_bounded_and_saved_whole() {
    let out_dir = tempfile::tempdir().unwrap();
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
    let r = call(&mcp, "execute", json!({"command": "seq 1 200000"}))
        .await
        .unwrap();
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
    let r = call(
        &mcp,
        "execute",
        json!({"command": "echo step one; sleep 0.5; echo step two; sleep 7; echo step three"}),
    )
    .await
    .unwrap();
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
    let r = call(&mcp, "execute", json!({"command": "echo after"}))
        .await
        .unwrap();
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
    let r = call(&mcp, "execute", json!({"command": "echo through"}))
        .await
        .unwrap();
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
    let r = call(&mcp, "execute", json!({"command": "echo through"}))
        .await
        .unwrap();
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
