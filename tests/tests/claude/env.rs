//! A fresh `claude` must not see the variables of a nested Claude Code instance, even when the
//! service itself runs inside Claude Code. The service runs as a child process with those
//! variables in its environment, so that this test process's environment stays untouched.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cc_executor_client::claude::{shell_quote, ClaudeCommand, NestedEnv};
use cc_executor_client::Client;
use tests::service::ServiceProcess;

const NESTED: [(&str, &str); 3] = [
    ("CLAUDECODE", "1"),
    ("CLAUDE_CODE_ENTRYPOINT", "cli"),
    ("CLAUDE_CODE_SSE_PORT", "12345"),
];
/// User configuration that must still reach the child.
const KEPT: (&str, &str) = ("CLAUDE_CODE_CC_EXECUTOR_TEST_KEEP", "kept");
const WAIT: Duration = Duration::from_secs(30);

/// A stand-in `claude` that records its environment and prints the success sample.
fn stand_in(dir: &Path) -> (PathBuf, PathBuf) {
    let env_file = dir.join("env");
    let sample = tests::fixtures_dir().join("claude/success.jsonl");
    let script = dir.join("claude");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nenv > {}\ncat {}\n",
            shell_quote(env_file.to_str().unwrap()),
            shell_quote(sample.to_str().unwrap())
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, env_file)
}

fn env_lines(env_file: &Path) -> Vec<String> {
    std::fs::read_to_string(env_file)
        .expect("the stand-in recorded env")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn nested_variables_do_not_reach_a_fresh_instance() {
    // The service's environment holds the variables of a nested instance and a kept one.
    let envs: Vec<(&str, &OsStr)> = NESTED
        .iter()
        .chain([&KEPT])
        .map(|(k, v)| (*k, OsStr::new(v)))
        .collect();
    let service = ServiceProcess::start_with(&[], &envs).await;
    let client = Client::new(&service.url).unwrap();
    let run = |cmd: ClaudeCommand| {
        let client = client.clone();
        async move {
            tokio::time::timeout(
                WAIT,
                client.run_claude(cmd.timeout(Duration::from_secs(20))),
            )
            .await
            .expect("run in time")
        }
    };
    let kept = format!("{}={}", KEPT.0, KEPT.1);

    // Default: `env -u` removes them.
    let dir = tempfile::tempdir().unwrap();
    let (script, env_file) = stand_in(dir.path());
    let result = run(ClaudeCommand::new("hi").program(script.to_str().unwrap()))
        .await
        .expect("success sample");
    assert_eq!(result.result.as_deref(), Some("The script prints 4."));
    let env = env_lines(&env_file);
    for (k, _) in NESTED {
        assert!(
            !env.iter().any(|l| l.starts_with(&format!("{k}="))),
            "{k} reached the child: {env:?}"
        );
    }
    assert!(env.contains(&kept), "{kept} missing: {env:?}");

    // `NestedEnv::Empty` sets them to empty; `NestedEnv::Keep` is the control case, proving the
    // variables were there to remove.
    let env_with = |mode| async move {
        let dir = tempfile::tempdir().unwrap();
        let (script, env_file) = stand_in(dir.path());
        let cmd = ClaudeCommand::new("hi").program(script.to_str().unwrap());
        run(cmd.nested_env(mode)).await.expect("success sample");
        env_lines(&env_file)
    };
    let env = env_with(NestedEnv::Empty).await;
    for (k, _) in NESTED {
        assert!(env.contains(&format!("{k}=")), "{k} not empty: {env:?}");
    }
    assert!(env.contains(&kept), "{kept} missing: {env:?}");
    let env = env_with(NestedEnv::Keep).await;
    assert!(env.contains(&"CLAUDECODE=1".to_owned()), "{env:?}");
}
