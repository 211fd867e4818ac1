//! The `cc-executor-server` program: it prints its URL, serves, and on SIGTERM shuts down
//! gracefully, killing every process group it started; its secrets do not reach commands.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;
use tests::procs::{wait_group_gone, wait_group_members};
use tests::service::ServiceProcess;
use tests::ws::{output_of, Client, WAIT};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn sigterm_drains_then_kills_the_groups() {
    let mut server = Command::new(env!("CARGO_BIN_EXE_cc-executor-server"))
        .args(["--listen", "127.0.0.1:0", "--kill-grace", "0.5"])
        .args(["--drain-timeout", "0.5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the server");
    let stdout = server.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(WAIT, BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("the server printed its URL")
        .unwrap();
    let url = line.trim();
    assert!(
        url.starts_with("ws://127.0.0.1:") && url.ends_with("/ws"),
        "{url}"
    );

    let mut c = Client::connect(url).await;
    c.execute(json!({"command": "sleep 300 & sleep 300"}), 1)
        .await;
    let result = c.frame().await;
    let pgid = result["result"]["pgid"].as_u64().expect("pgid") as u32;
    wait_group_members(pgid, 2, WAIT)
        .await
        .expect("the command started its children");

    kill(Pid::from_raw(server.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(WAIT, server.wait())
        .await
        .expect("the server exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    if let Err(left) = wait_group_gone(pgid, Duration::from_secs(15)).await {
        panic!("processes survived the server: {left:?}");
    }
}

#[tokio::test]
async fn help_and_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_cc-executor-server"))
        .arg("--help")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--max-sessions",
        "--heartbeat-interval",
        "--allow",
        "--working-dir",
        "--token",
        "CC_EXECUTOR_TOKEN",
        "--token-file",
        "CC_EXECUTOR_TOKEN_FILE",
        "--allow-origin",
        "CC_EXECUTOR_ALLOW_ORIGINS",
        "--allow-host",
        "CC_EXECUTOR_ALLOW_HOSTS",
        "--drain-timeout",
        "CC_EXECUTOR_DRAIN_TIMEOUT",
        "--handshake-timeout",
        "--shell",
        "CC_EXECUTOR_SHELL",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_cc-executor-server"))
        .arg("--no-such-flag")
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_cc-executor-server"))
        .args(["--listen", "127.0.0.1:0", "--heartbeat-interval", "0"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("heartbeat-interval"));
}

#[tokio::test]
async fn secrets_do_not_reach_commands() {
    // The token in the service's environment, and a token file.
    let service =
        ServiceProcess::start_with(&[], &[("CC_EXECUTOR_TOKEN", "s3cret-token".as_ref())]).await;
    let mut c = Client::connect_with(&service.url, Some("s3cret-token")).await;
    assert_eq!(c.stdout_of(r#"echo "[$CC_EXECUTOR_TOKEN]""#).await, "[]\n");
    let frames = c.run("env").await;
    assert!(!output_of(&frames, "stdout").contains("s3cret"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "file-token\n").unwrap();
    let service =
        ServiceProcess::start_with(&[], &[("CC_EXECUTOR_TOKEN_FILE", file.as_os_str())]).await;
    let mut c = Client::connect_with(&service.url, Some("file-token")).await;
    assert_eq!(
        c.stdout_of(r#"echo "[$CC_EXECUTOR_TOKEN_FILE]""#).await,
        "[]\n"
    );
}
