//! `--token-file`: the token stays out of the command line, and a bad file is a clear error.

use tests::service::ServiceProcess;
use tests::ws::{output_of, Client};
use tokio::process::Command;
use tokio_tungstenite::tungstenite;

fn server_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cc-executor-server"));
    cmd.env_remove("CC_EXECUTOR_TOKEN")
        .env_remove("CC_EXECUTOR_TOKEN_FILE")
        .kill_on_drop(true);
    cmd
}

fn refused_with(r: Result<Client, tungstenite::Error>) -> u16 {
    match r {
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("a wrong token was accepted"),
    }
}

#[tokio::test]
async fn the_service_takes_its_token_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "file-s3cret\n").unwrap();
    let service = ServiceProcess::start_with(&["--token-file", path.to_str().unwrap()], &[]).await;
    let url = service.url.as_str();

    // The trailing newline is not part of the token, and the token is not on the command line.
    let cmdline = tests::procs::cmdline(service.pid().as_raw() as u32).expect("the command line");
    assert!(!cmdline.contains("file-s3cret"));
    let mut c = Client::connect_with(url, Some("file-s3cret")).await;
    assert_eq!(output_of(&c.run("echo in").await, "stdout"), "in\n");
    for wrong in [Some("file-s3cre"), Some("wrong"), None] {
        assert_eq!(refused_with(Client::try_connect(url, wrong).await), 401);
    }
    drop(c);
    service.shutdown().await;
}

#[tokio::test]
async fn unusable_token_files_are_clear_start_up_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let missing = dir.path().join("missing");
    let cases = [
        (empty.clone(), vec![], "is empty"),
        (missing.clone(), vec![], "cannot read the token file"),
        (empty.clone(), vec!["--token", "x"], "cannot be used with"),
    ];
    for (path, extra, expected) in cases {
        let out = server_cmd()
            .args(["--listen", "127.0.0.1:0", "--token-file"])
            .arg(&path)
            .args(&extra)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{path:?} {extra:?}");
        assert!(stderr.contains(expected), "{path:?} {extra:?}: {stderr}");
        assert!(out.stdout.is_empty(), "it listened anyway");
    }
    // The environment variable works as well.
    let out = server_cmd()
        .args(["--listen", "127.0.0.1:0"])
        .env("CC_EXECUTOR_TOKEN_FILE", &missing)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(missing.to_str().unwrap()));
}
