//! The allowlist over the wire: an accepted line runs as an argv without a shell; lines that
//! need a shell are refused with -32001, run nothing, and leave the session usable.

use crate::support::{connected, end, Local};
use std::time::Duration;

use cc_executor_server::{Server, ServerHandle};
use serde_json::json;
use tests::ws::{find, output_of};

async fn allowing(names: &[&str], dir: &std::path::Path) -> ServerHandle {
    Server::builder()
        .allowed_commands(names.iter().copied())
        .working_dir(dir)
        .kill_grace(Duration::from_millis(500))
        .local()
        .await
}

#[tokio::test]
async fn an_accepted_line_runs_its_exact_argv() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut c) = connected(allowing(&["printf", "ls"], dir.path()).await).await;
    let frames = c
        .run(r#"printf '%s|' 'a b' "c\"d" e\ f '$HOME' '*' "" 'it'\''s' < /dev/null"#)
        .await;
    assert_eq!(output_of(&frames, "stdout"), "a b|c\"d|e f|$HOME|*||it's|");
    let completed = find(&frames, "process.completed").expect("completed");
    assert_eq!(completed["params"]["exit_code"], 0, "{completed}");
    // An absolute path runs as given when its basename is allowed.
    assert_eq!(c.stdout_of("/bin/printf %s x").await, "x");
    end(c, server).await;
}

#[tokio::test]
async fn lines_that_need_a_shell_are_refused_and_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut c) = connected(allowing(&["ls", "echo", "cat"], dir.path()).await).await;
    // Each would create `pwned` in the working directory if a shell ran it.
    let attacks = [
        "sh${IFS}-c${IFS}'touch pwned'${IFS}/ls",
        "echo \"${X:-\"'\"}\";touch pwned;echo \\'",
        "ls; touch pwned",
        "ls;touch pwned",
        "ls && touch pwned",
        "ls || touch pwned",
        "ls | touch pwned",
        "ls & touch pwned",
        "ls $(touch pwned)",
        "ls `touch pwned`",
        "echo \"$(touch pwned)\"",
        "echo \"`touch pwned`\"",
        "ls\ntouch pwned",
        "ls\rtouch pwned",
        "ls\u{a0};touch pwned",
        "ls\u{3000}&&touch pwned",
        "ls >pwned",
        "cat </dev/null >pwned",
        "X=1 touch pwned",
        "PATH=/nonexistent ls",
        "touch pwned",
        "sh -c 'touch pwned'",
        "/bin/sh -c 'touch pwned'",
        "./ls",
        "{ touch pwned; }",
        "(touch pwned)",
        "ls ~ *",
        "echo 'unbalanced",
        "no-such-program-here",
    ];
    for (i, line) in attacks.iter().enumerate() {
        c.execute(json!({ "command": line }), i as i64).await;
        let f = c.frame().await;
        assert_eq!(f["error"]["code"], -32001, "{line:?}: {f}");
        assert_eq!(f["id"], i, "{f}");
        let message = f["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("Command refused: "), "{message}");
    }
    // The message names the construct and says why.
    c.execute(json!({ "command": "sh${IFS}-c${IFS}id${IFS}/ls" }), 100)
        .await;
    let f = c.frame().await;
    assert_eq!(
        f["error"]["message"],
        "Command refused: \"${\" (parameter expansion) needs a shell, which the allowlist does not run"
    );
    // The session goes on, and nothing ran.
    assert_eq!(c.stdout_of("ls -a").await, ".\n..\n");
    assert!(!dir.path().join("pwned").exists());
    end(c, server).await;
}

#[tokio::test]
async fn a_program_not_on_path_is_a_clear_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut c) = connected(allowing(&["no-such-program-here"], dir.path()).await).await;
    c.execute(json!({ "command": "no-such-program-here x" }), 1)
        .await;
    let f = c.frame().await;
    assert_eq!(f["error"]["code"], -32001, "{f}");
    assert_eq!(
        f["error"]["message"],
        "Command refused: \"no-such-program-here\" not found on PATH"
    );
    end(c, server).await;
}
