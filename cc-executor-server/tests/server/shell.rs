//! The shell that runs commands: bash by default, `--shell` / `CC_EXECUTOR_SHELL` /
//! `ServerBuilder::shell`, a missing shell stops the service at start; and `execute`'s timeout
//! as a numeric string.

use cc_executor_server::Server;
use serde_json::json;
use tests::service::ServiceProcess;
use tests::ws::{output_of, Client, WAIT};

use crate::process::{assert_gone, pgid_of, start};
use crate::support::{connected, end, server, server_with, Local};

#[tokio::test]
async fn default_shell_is_bash() {
    let (server, mut c) = connected(server().await).await;
    assert_eq!(c.stdout_of("[[ 1 == 1 ]] && echo ok").await, "ok\n");
    assert_eq!(c.stdout_of("echo {1..3}").await, "1 2 3\n");
    // An invalid byte reaches the client as U+FFFD.
    assert_eq!(c.stdout_of(r"printf 'a\xffb\n'").await, "a\u{fffd}b\n");
    end(c, server).await;
}

#[tokio::test]
async fn shell_sh_behaves_as_dash() {
    let (server, mut c) = connected(server_with("sh").await).await;
    let frames = c.run("[[ 1 == 1 ]] && echo ok").await;
    assert_eq!(output_of(&frames, "stdout"), "");
    assert!(
        output_of(&frames, "stderr").contains("[[: not found"),
        "{frames:?}"
    );
    assert_eq!(c.stdout_of("echo {1..3}").await, "{1..3}\n");
    // dash's printf has no \x escape.
    assert_eq!(c.stdout_of(r"printf 'a\xffb\n'").await, "a\\xffb\n");
    end(c, server).await;
}

#[tokio::test]
async fn a_missing_shell_stops_the_service_at_start() {
    for shell in ["no-such-shell-here", "/no/such/dir/bash"] {
        let err = Server::builder()
            .shell(shell)
            .bind("127.0.0.1:0")
            .await
            .expect_err("a missing shell is an error");
        assert!(err.to_string().contains(shell), "{err}");
    }
}

#[tokio::test]
async fn a_numeric_string_timeout_bounds_the_run() {
    let (server, mut c) = connected(server().await).await;
    let (result, _) = start(&mut c, json!({ "command": "sleep 30", "timeout": "1" })).await;
    let frames = c.until_completed().await;
    let done = &frames[frames.len() - 1]["params"];
    assert_eq!(done["status"], "failed");
    assert_eq!(done["timed_out"], true);
    assert_eq!(done["exit_code"], -15);
    assert_eq!(done["error"], "timed out after 1s");
    assert_gone(pgid_of(&result)).await;
    // Anything else that is not a number is refused, naming the field.
    for (id, bad) in [json!("soon"), json!(true), json!([1])]
        .into_iter()
        .enumerate()
    {
        let id = id as i64 + 10;
        c.execute(json!({ "command": "echo no", "timeout": bad }), id)
            .await;
        let err = c.frame().await;
        assert_eq!(err["id"], id, "{err}");
        assert_eq!(err["error"]["code"], -32603, "{err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("timeout"),
            "{err}"
        );
    }
    assert_eq!(c.stdout_of("echo fine").await, "fine\n");
    end(c, server).await;
}

#[tokio::test]
async fn a_shell_that_vanishes_after_start_fails_the_run_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let shell = dir.path().join("myshell");
    std::os::unix::fs::symlink("/bin/sh", &shell).unwrap();
    let (server, mut c) = connected(Server::builder().shell(&shell).local().await).await;
    assert_eq!(c.stdout_of("echo via myshell").await, "via myshell\n");
    std::fs::remove_file(&shell).unwrap();
    c.execute(json!({ "command": "echo never" }), 7).await;
    let err = c.frame().await;
    assert_eq!(err["id"], 7, "{err}");
    assert_eq!(err["error"]["code"], -32603, "{err}");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Failed to start command") && message.contains("No such file"),
        "{message}"
    );
    // The session goes on.
    std::os::unix::fs::symlink("/bin/sh", &shell).unwrap();
    assert_eq!(c.stdout_of("echo back").await, "back\n");
    end(c, server).await;
}

#[tokio::test]
async fn shell_option_and_a_missing_shell() {
    // `--shell sh`: reported in `connected` and /health, and used.
    let service = ServiceProcess::start_with(&["--shell", "sh"], &[]).await;
    let mut c = Client::connect(&service.url).await;
    let shell = c.connected["params"]["shell"].as_str().unwrap().to_owned();
    assert!(shell.starts_with('/') && shell.ends_with("/sh"), "{shell}");
    assert_eq!(c.stdout_of("echo {1..3}").await, "{1..3}\n");
    // CC_EXECUTOR_SHELL does the same.
    let service = ServiceProcess::start_with(&[], &[("CC_EXECUTOR_SHELL", "bash".as_ref())]).await;
    let c = Client::connect(&service.url).await;
    let shell = c.connected["params"]["shell"].as_str().unwrap();
    assert!(shell.ends_with("/bash"), "{shell}");

    for (args, env) in [
        (vec!["--shell", "no-such-shell-here"], vec![]),
        (vec![], vec![("CC_EXECUTOR_SHELL", "no-such-shell-here")]),
    ] {
        let out = tokio::time::timeout(
            WAIT,
            tokio::process::Command::new(env!("CARGO_BIN_EXE_cc-executor-server"))
                .args(["--listen", "127.0.0.1:0"])
                .args(args)
                .envs(env)
                .output(),
        )
        .await
        .expect("the service stops at once")
        .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no-such-shell-here"), "{stderr}");
        assert!(out.stdout.is_empty(), "it never listened");
    }
}

#[tokio::test]
async fn a_command_with_a_nul_byte_is_refused_cleanly() {
    let (server, mut c) = connected(server().await).await;
    c.execute(json!({ "command": "echo a\u{0}b" }), 3).await;
    let err = c.frame().await;
    assert_eq!(err["id"], 3, "{err}");
    assert_eq!(err["error"]["code"], -32603, "{err}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("NUL"),
        "{err}"
    );
    assert_eq!(c.stdout_of("echo fine").await, "fine\n");
    end(c, server).await;
}
