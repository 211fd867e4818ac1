//! Nothing outlives its run: processes that leave the run's process group (`setsid` in the
//! background, from a subshell that exits at once, `setsid -f`) are killed with the run in every
//! ending, also when the service itself is killed with SIGKILL, and PAUSE / RESUME reach them.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use serde_json::json;
use tests::procs::{live_processes_where, processes_in_group, wait_procs_gone, wait_state, Proc};
use tests::service::ServiceProcess;
use tests::ws::Client;

use crate::process::{start, GONE_BOUND};
use crate::support::{connected, end, server_with, under_each_shell};

under_each_shell!(
    escaped_processes_end_with_every_ending,
    pause_and_resume_reach_escaped_processes,
);

/// A command that starts three processes that leave its process group (`setsid` in the
/// background, `setsid` from a subshell that exits at once, `setsid -f`), prints their pids
/// once they run, then runs `tail`. The escaped processes hold the output pipes.
fn escaping(dir: &Path, tail: &str) -> String {
    let d = dir.display();
    format!(
        "setsid sh -c 'echo $$ > {d}/a; exec sleep 300' & \
         ( setsid sh -c 'echo $$ > {d}/b; exec sleep 300' & ) ; \
         setsid -f sh -c 'echo $$ > {d}/c; exec sleep 300'; \
         while [ ! -s {d}/a ] || [ ! -s {d}/b ] || [ ! -s {d}/c ]; do sleep 0.01; done; \
         cat {d}/a {d}/b {d}/c; {tail}"
    )
}

/// Start `escaping(dir, tail)` and return the escaped processes and the command's process.
async fn start_escaping(c: &mut Client, dir: &Path, tail: &str, timeout: Option<f64>) -> Vec<Proc> {
    let mut params = json!({ "command": escaping(dir, tail) });
    if let Some(t) = timeout {
        params["timeout"] = json!(t);
    }
    let (result, _) = start(c, params).await;
    let shell = result["result"]["pid"].as_u64().expect("pid") as u32;
    let mut out = String::new();
    c.frames_until(|f| {
        if f["method"] == "process.output" && f["params"]["type"] == "stdout" {
            out.push_str(f["params"]["data"].as_str().unwrap_or(""));
        }
        assert_ne!(f["method"], "process.completed", "ended early: {f}");
        out.lines().count() >= 3
    })
    .await;
    let mut procs: Vec<Proc> = out
        .lines()
        .map(|l| {
            let pid = l.trim().parse().expect("a pid");
            let p = Proc::of(pid).expect("the escaped process runs");
            assert!(
                !processes_in_group(result["result"]["pgid"].as_u64().unwrap() as u32)
                    .contains(&pid),
                "{pid} left the group"
            );
            p
        })
        .collect();
    procs.extend(Proc::of(shell));
    procs
}

async fn assert_procs_gone(procs: &[Proc], ending: &str) {
    if let Err(left) = wait_procs_gone(procs, GONE_BOUND).await {
        panic!("{ending}: processes outlived the run: {left:?}");
    }
}

async fn escaped_processes_end_with_every_ending(shell: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut c) = connected(server_with(shell).await).await;
    // The run ends when the test creates `go`.
    let go = dir.path().join("go");
    let wait_go = format!("while [ ! -e {} ]; do sleep 0.01; done", go.display());

    for (ending, code) in [("completion", 0), ("failure", 3)] {
        let sub = tempfile::tempdir_in(dir.path()).unwrap();
        let tail = format!("{wait_go}; exit {code}");
        let procs = start_escaping(&mut c, sub.path(), &tail, None).await;
        std::fs::write(&go, "").unwrap();
        let frames = c.until_completed().await;
        assert_eq!(frames[frames.len() - 1]["params"]["exit_code"], code);
        assert_procs_gone(&procs, ending).await;
        std::fs::remove_file(&go).unwrap();
    }

    let sub = tempfile::tempdir_in(dir.path()).unwrap();
    let procs = start_escaping(&mut c, sub.path(), "sleep 300", None).await;
    c.control("CANCEL", 2).await;
    let frames = c.until_completed().await;
    assert_eq!(frames[frames.len() - 1]["params"]["status"], "canceled");
    assert_procs_gone(&procs, "cancel").await;

    let sub = tempfile::tempdir_in(dir.path()).unwrap();
    let procs = start_escaping(&mut c, sub.path(), "sleep 300", Some(2.0)).await;
    let frames = c.until_completed().await;
    assert_eq!(frames[frames.len() - 1]["params"]["timed_out"], true);
    assert_procs_gone(&procs, "timeout").await;

    let sub = tempfile::tempdir_in(dir.path()).unwrap();
    let procs = start_escaping(&mut c, sub.path(), "sleep 300", None).await;
    c.vanish();
    assert_procs_gone(&procs, "client disconnect").await;

    let mut c = Client::connect(&server.url()).await;
    let sub = tempfile::tempdir_in(dir.path()).unwrap();
    let procs = start_escaping(&mut c, sub.path(), "sleep 300", None).await;
    server.shutdown().await;
    assert_procs_gone(&procs, "service shutdown").await;
}

async fn pause_and_resume_reach_escaped_processes(shell: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut c) = connected(server_with(shell).await).await;
    let procs = start_escaping(&mut c, dir.path(), "sleep 300", None).await;
    // The escaped ones (the shell, last, is in the group: the process tests cover it).
    let escaped = &procs[..3];
    c.control("PAUSE", 2).await;
    c.frames_until(|f| f["method"] == "process.paused").await;
    for p in escaped {
        if let Err(state) = wait_state(*p, |s| s == Some('T'), GONE_BOUND).await {
            panic!("{} not stopped by PAUSE: {state:?}", p.pid);
        }
    }
    c.control("RESUME", 3).await;
    c.frames_until(|f| f["method"] == "process.resumed").await;
    for p in escaped {
        if let Err(state) = wait_state(*p, |s| s.is_some_and(|s| s != 'T'), GONE_BOUND).await {
            panic!("{} still stopped after RESUME: {state:?}", p.pid);
        }
    }
    // A paused tree can be canceled, escaped processes included.
    c.control("PAUSE", 4).await;
    c.frames_until(|f| f["method"] == "process.paused").await;
    c.control("CANCEL", 5).await;
    let frames = c.until_completed().await;
    assert_eq!(frames[frames.len() - 1]["params"]["status"], "canceled");
    assert_procs_gone(&procs, "cancel while paused").await;
    end(c, server).await;
}

/// SIGKILL gives the service no chance to clean up: the run's supervisor must see it go and
/// kill every process of the run, those that left the process group included.
#[tokio::test]
async fn sigkill_of_the_service_leaves_no_process_of_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServiceProcess::start().await;
    let url = server.url.clone();
    let d = dir.path().display();
    // In the group (a background job), out of it (setsid; setsid from a subshell that exits at
    // once; setsid -f), and the shell itself in the foreground.
    let command = format!(
        "sleep 300 & echo $! > {d}/a; \
         setsid sh -c 'echo $$ > {d}/b; exec sleep 300' & \
         ( setsid sh -c 'echo $$ > {d}/c; exec sleep 300' & ) ; \
         setsid -f sh -c 'echo $$ > {d}/e; exec sleep 300'; \
         while [ ! -s {d}/b ] || [ ! -s {d}/c ] || [ ! -s {d}/e ]; do sleep 0.01; done; \
         cat {d}/a {d}/b {d}/c {d}/e; sleep 300"
    );
    let mut clients = Vec::new();
    let mut procs = Vec::new();
    // Two sessions, so two runs.
    for _ in 0..2 {
        let mut c = Client::connect(&url).await;
        c.execute(json!({ "command": command }), 1).await;
        let result = c.frame().await;
        let shell = result["result"]["pid"].as_u64().expect("pid") as u32;
        procs.extend(Proc::of(shell));
        let mut out = String::new();
        c.frames_until(|f| {
            if f["method"] == "process.output" {
                out.push_str(f["params"]["data"].as_str().unwrap_or(""));
            }
            out.lines().count() >= 4
        })
        .await;
        for line in out.lines() {
            let pid = line.trim().parse().expect("a pid");
            procs.push(Proc::of(pid).expect("the process runs"));
        }
        clients.push(c);
    }
    assert_eq!(procs.len(), 10);

    kill(server.pid(), Signal::SIGKILL).unwrap();
    server.child.wait().await.unwrap();
    if let Err(left) = wait_procs_gone(&procs, Duration::from_secs(10)).await {
        panic!("processes outlived the killed service: {left:?}");
    }
}

/// The service forks a spawner process (and the supervisors it keeps waiting) when it starts; if
/// someone kills them, the next run starts a new spawner instead of failing.
#[tokio::test]
async fn a_killed_spawner_is_replaced() {
    // A setting no other test uses tells this service's processes apart.
    let service = ServiceProcess::start_with(&["--kill-grace", "0.737"], &[]).await;
    let mut c = Client::connect(&service.url).await;
    assert_eq!(c.stdout_of("echo before").await, "before\n");
    let service_pid = service.pid().as_raw() as u32;
    let helpers: Vec<u32> = live_processes_where(|cmd| cmd.contains("--kill-grace 0.737"))
        .into_iter()
        .map(|(pid, _)| pid)
        .filter(|&pid| pid != service_pid)
        .collect();
    assert!(!helpers.is_empty(), "no spawner found");
    let procs: Vec<Proc> = helpers.iter().filter_map(|&pid| Proc::of(pid)).collect();
    for &pid in &helpers {
        let _ = kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    if let Err(left) = wait_procs_gone(&procs, GONE_BOUND).await {
        panic!("the spawner survived SIGKILL: {left:?}");
    }
    assert_eq!(c.stdout_of("echo after").await, "after\n");
    drop(c);
    service.shutdown().await;
}
