//! Draining: on SIGTERM (or `ServerHandle::drain`) the service refuses new sessions and runs,
//! reports it on `/ready` and `/health`, lets running commands finish, and exits 0; a second
//! signal, or the drain timeout, kills what is left.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use serde_json::{json, Value};
use tests::procs::wait_group_gone;
use tests::service::ServiceProcess;
use tests::ws::{http_get, output_of, Client, WAIT};
use tokio_tungstenite::tungstenite;

use crate::support::{addr_of, wait_until_draining};

/// Start a command that waits for `flag` to exist, then prints `finished`; returns its pgid.
async fn start_waiting(c: &mut Client, flag: &std::path::Path) -> u32 {
    let cmd = format!(
        "while [ ! -e '{}' ]; do sleep 0.02; done; echo finished",
        flag.display()
    );
    c.execute(json!({ "command": cmd }), 1).await;
    let result = c.frame().await;
    result["result"]["pgid"].as_u64().expect("started") as u32
}

async fn exits_successfully(service: &mut ServiceProcess, what: &str) {
    let status = tokio::time::timeout(WAIT, service.child.wait())
        .await
        .unwrap_or_else(|_| panic!("the service did not exit {what}"))
        .expect("wait for the service");
    assert!(
        status.success(),
        "the service exited with {status:?} {what}"
    );
}

#[tokio::test]
async fn sigterm_lets_a_running_command_finish_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("go");
    let mut service = ServiceProcess::start_with(&["--drain-timeout", "120"], &[]).await;
    let addr = addr_of(&service.url);
    assert_eq!(http_get(addr, "/ready", &[]).await.0, 200);
    let mut running = Client::connect(&service.url).await;
    let mut idle = Client::connect(&service.url).await;
    start_waiting(&mut running, &flag).await;

    kill(service.pid(), Signal::SIGTERM).unwrap();
    wait_until_draining(addr).await;
    let (status, health) = http_get(addr, "/health", &[]).await;
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!((status, health["status"].as_str()), (200, Some("draining")));
    // No new session, and no new run on a session already open.
    match Client::try_connect(&service.url, None).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        Err(e) => panic!("expected HTTP 503, got {e}"),
        Ok(_) => panic!("a draining service accepted a session"),
    }
    idle.execute(json!({"command": "echo no"}), 7).await;
    let refused = idle.frame().await;
    assert_eq!(refused["error"]["code"], -32003, "{refused}");

    // The running command is not disturbed; once it ends the service exits 0.
    std::fs::write(&flag, "").unwrap();
    let frames = running.until_completed().await;
    assert_eq!(output_of(&frames, "stdout"), "finished\n");
    let completed = frames.last().unwrap();
    assert_eq!(completed["params"]["status"], "completed", "{completed}");
    exits_successfully(&mut service, "once its last run ended").await;
}

#[tokio::test]
async fn a_second_signal_ends_the_drain_at_once() {
    let mut service = ServiceProcess::start_with(&["--drain-timeout", "600"], &[]).await;
    let addr = addr_of(&service.url);
    let mut c = Client::connect(&service.url).await;
    let dir = tempfile::tempdir().unwrap();
    let pgid = start_waiting(&mut c, &dir.path().join("never")).await;
    kill(service.pid(), Signal::SIGTERM).unwrap();
    wait_until_draining(addr).await;
    kill(service.pid(), Signal::SIGINT).unwrap();
    exits_successfully(&mut service, "after a second signal").await;
    if let Err(left) = wait_group_gone(pgid, WAIT).await {
        panic!("the run survived the end of the drain: {left:?}");
    }
}

#[tokio::test]
async fn drain_in_process_reports_whether_runs_ended_in_time() {
    let server = crate::support::server().await;
    let mut c = Client::connect(&server.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let pgid = start_waiting(&mut c, &dir.path().join("never")).await;
    assert_eq!(server.running(), 1);
    assert!(!server.is_draining());
    let finished = server.drain(Duration::from_millis(300)).await;
    assert!(!finished, "a run that never ends cannot finish in time");
    if let Err(left) = wait_group_gone(pgid, WAIT).await {
        panic!("the run survived the drain: {left:?}");
    }

    let server = crate::support::server().await;
    let mut c = Client::connect(&server.url()).await;
    let flag = dir.path().join("go");
    start_waiting(&mut c, &flag).await;
    let url = server.url();
    let drained = tokio::spawn(server.drain(WAIT));
    wait_until_draining(addr_of(&url)).await;
    std::fs::write(&flag, "").unwrap();
    assert_eq!(
        output_of(&c.until_completed().await, "stdout"),
        "finished\n"
    );
    assert!(drained.await.unwrap(), "the run ended within the drain");
}
