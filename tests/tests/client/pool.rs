//! Several services: runs spread over them, directly (a client with several endpoints) and
//! through a real nginx configured from `deploy/nginx.conf` (`wss://`, a test certificate); a
//! refused, draining, full or dead service is skipped before a run starts; a drained one finishes
//! its runs and gets no new ones; a killed one fails its runs with `ConnectionClosed` and new
//! runs go elsewhere.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use cc_executor_client::{Client, EndpointHealth, Error, Execution, OutputEvent};
use cc_executor_server::Server;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tests::nginx::{Nginx, TestCert};
use tests::procs::wait_group_gone;
use tests::service::ServiceProcess;

use crate::support::{bounded, next_matching, start_with, stream_end, BOUND};

/// Services each running commands in a folder of its own, so that `pwd` tells which one ran a
/// command.
struct Services {
    dirs: Vec<PathBuf>,
    _root: tempfile::TempDir,
}

impl Services {
    fn new(n: usize) -> Services {
        let root = tempfile::tempdir().unwrap();
        let dirs = (0..n)
            .map(|i| {
                let d = root.path().join(format!("service-{i}"));
                std::fs::create_dir(&d).unwrap();
                d.canonicalize().unwrap()
            })
            .collect();
        Services { dirs, _root: root }
    }

    /// Which service printed `pwd` output `line`.
    fn which(&self, line: &str) -> usize {
        let dir = PathBuf::from(line.trim());
        self.dirs
            .iter()
            .position(|d| *d == dir)
            .unwrap_or_else(|| panic!("{line:?} is no service's folder"))
    }

    /// The service binaries, one per folder, draining for up to a minute on SIGTERM.
    async fn processes(&self) -> Vec<ServiceProcess> {
        let mut out = Vec::new();
        for d in &self.dirs {
            let d = d.to_str().unwrap();
            let args = ["--working-dir", d, "--drain-timeout", "60"];
            out.push(ServiceProcess::start_with(&args, &[]).await);
        }
        out
    }

    /// Run `pwd` `n` times at once through `client`; how many ran on each service.
    async fn spread(&self, client: &Client, n: usize) -> Vec<usize> {
        let runs = (0..n).map(|_| client.run("sleep 0.2; pwd"));
        let outcomes = bounded("the runs", futures_util::future::join_all(runs)).await;
        let mut counts = vec![0; self.dirs.len()];
        for o in outcomes {
            let o = o.expect("every run succeeds");
            counts[self.which(&o.stdout)] += 1;
        }
        counts
    }
}

/// No service had more than twice the runs of another.
fn assert_even(counts: &[usize]) {
    eprintln!("runs per service: {counts:?}");
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(*min > 0 && *max <= 2 * *min, "uneven spread: {counts:?}");
}

/// `host:port` of a `ws://host:port/ws` URL.
fn authority(url: &str) -> String {
    url.trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned()
}

/// Start a run that prints its folder, then waits for `flag` (or forever); returns the run, the
/// service it went to and its pgid.
async fn start_waiting(
    client: &Client,
    services: &Services,
    flag: &std::path::Path,
) -> (Execution, usize, u32) {
    let line = format!(
        "pwd; while [ ! -e '{}' ]; do sleep 0.05; done; echo finished",
        flag.display()
    );
    let mut run = bounded("execute", client.execute(line)).await.unwrap();
    let pgid = run.pgid().expect("pgid");
    let OutputEvent::Output { data, .. } = next_matching(&mut run, "its folder", |e| {
        matches!(e, OutputEvent::Output { .. })
    })
    .await
    else {
        unreachable!()
    };
    (run, services.which(&data), pgid)
}

/// The rest of a run's output and how it ended.
async fn finish(run: Execution) -> (String, Result<cc_executor_client::Outcome, Error>) {
    let outcome = bounded("the run ends", run.wait()).await;
    let stdout = outcome
        .as_ref()
        .map(|o| o.stdout.clone())
        .unwrap_or_default();
    (stdout, outcome)
}

/// The scenario both set-ups share, over three service processes reached through `client`:
/// runs spread; one drained mid-way finishes its runs and gets no new ones; one killed fails its
/// runs promptly with `ConnectionClosed`, without a retry, and new runs go to the last one.
async fn spread_drain_kill(client: &Client, services: &Services, procs: &mut [ServiceProcess]) {
    assert_even(&services.spread(client, 100).await);

    // Drain one that has a run going.
    let flags = tempfile::tempdir().unwrap();
    let flag = flags.path().join("go");
    let mut going = Vec::new();
    while going.len() < 6 || !(0..3).all(|s| going.iter().any(|(_, w, _)| *w == s)) {
        assert!(going.len() < 30, "runs never reached every service");
        going.push(start_waiting(client, services, &flag).await);
    }
    let drained = going[0].1;
    kill(procs[drained].pid(), Signal::SIGTERM).unwrap();
    let addr = authority(&procs[drained].url).parse().unwrap();
    wait_until_not_ready(addr).await;
    let during = services.spread(client, 30).await;
    assert_eq!(
        during[drained], 0,
        "a draining service got new runs: {during:?}"
    );
    std::fs::write(&flag, "").unwrap();
    for (run, _, _) in going {
        let (stdout, outcome) = finish(run).await;
        assert!(outcome.unwrap().success());
        assert!(stdout.ends_with("finished\n"), "{stdout:?}");
    }
    let status = bounded("the drained service exits", procs[drained].child.wait()).await;
    assert!(status.unwrap().success(), "a drain ends with exit 0");
    // A client of several services notices that one is gone (behind nginx there is one).
    let several = client.endpoints().len() > 1;
    bounded("the client sees the drained service gone", async {
        while several && client.endpoints()[drained].health != EndpointHealth::Down {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // Kill another while it runs commands; the runs it had fail and are not run again.
    let left: Vec<usize> = (0..3).filter(|&s| s != drained).collect();
    let marks = flags.path().join("marks");
    let mut going = Vec::new();
    while !left.iter().all(|&s| going.iter().any(|(_, w, _)| *w == s)) {
        assert!(going.len() < 30, "runs never reached both services");
        // The mark comes before the output awaited below, so each run seen has left its mark.
        let line = format!("echo x >> '{}'; pwd; sleep 300", marks.display());
        let mut run = bounded("execute", client.execute(line)).await.unwrap();
        let pgid = run.pgid().unwrap();
        let first = next_matching(&mut run, "its folder", |e| {
            matches!(e, OutputEvent::Output { .. })
        })
        .await;
        let OutputEvent::Output { data, .. } = first else {
            unreachable!()
        };
        going.push((run, services.which(&data), pgid));
    }
    let (killed, alive) = (left[0], left[1]);
    let started = going.len();
    procs[killed].child.start_kill().unwrap();
    let mut survivors = Vec::new();
    for (mut run, on, pgid) in going {
        if on == killed {
            let end = stream_end(&mut run, "the killed service's run notices").await;
            assert!(
                matches!(end, Some(Err(Error::ConnectionClosed { .. }))),
                "{end:?}"
            );
            let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
            wait_group_gone(pgid, BOUND).await.unwrap();
        } else {
            survivors.push(run);
        }
    }
    let after = services.spread(client, 20).await;
    assert_eq!(
        after[alive], 20,
        "new runs go to the live service: {after:?}"
    );
    let marks = std::fs::read_to_string(&marks).unwrap();
    assert_eq!(marks.lines().count(), started, "no run was started twice");
    drop(survivors);
}

/// Wait (bounded) until the service at `addr` answers `/ready` with 503.
async fn wait_until_not_ready(addr: std::net::SocketAddr) {
    bounded("/ready turns 503", async {
        while tests::ws::http_get(addr, "/ready", &[]).await.0 != 503 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_client_with_several_endpoints_spreads_drains_and_survives_a_kill() {
    let services = Services::new(3);
    let mut procs = services.processes().await;
    let client = Client::builder_with_endpoints(procs.iter().map(|p| p.url.clone()))
        .build()
        .unwrap();
    spread_drain_kill(&client, &services, &mut procs).await;
}

#[tokio::test]
async fn nginx_with_the_deploy_config_spreads_drains_and_survives_a_kill() {
    let services = Services::new(3);
    let mut procs = services.processes().await;
    let cert = TestCert::new();
    let upstreams: Vec<String> = procs.iter().map(|p| authority(&p.url)).collect();
    let nginx = Nginx::start(&upstreams, &cert).await;
    assert!(nginx.url.starts_with("wss://"));
    let client = Client::builder(&nginx.url)
        .tls_config(cert.client_config.clone())
        .build()
        .unwrap();
    spread_drain_kill(&client, &services, &mut procs).await;
    drop(nginx);
}

#[tokio::test]
async fn refused_draining_full_and_dead_services_are_skipped() {
    let services = Services::new(4);
    let [dead_dir, draining_dir, full_dir, good_dir] = &services.dirs[..] else {
        unreachable!()
    };
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("ws://{}/ws", l.local_addr().unwrap())
    };
    let _ = dead_dir;
    let draining = start_with(Server::builder().working_dir(draining_dir)).await;
    draining.begin_drain();
    let full = start_with(Server::builder().working_dir(full_dir).max_sessions(0)).await;
    let good = start_with(Server::builder().working_dir(good_dir)).await;
    let urls = [dead.clone(), draining.url(), full.url(), good.url()];
    let client = Client::builder_with_endpoints(&urls).build().unwrap();
    for _ in 0..12 {
        let outcome = bounded("a run", client.run("pwd")).await.unwrap();
        assert_eq!(services.which(&outcome.stdout), 3);
    }
    // A session too.
    drop(bounded("a session", client.session()).await.unwrap());
    // What the client learned, then what the background checks say.
    let health = |c: &Client| -> HashMap<String, EndpointHealth> {
        c.endpoints()
            .into_iter()
            .map(|e| (e.url.to_string(), e.health))
            .collect()
    };
    let seen = health(&client);
    assert_eq!(seen[&dead], EndpointHealth::Down);
    assert_eq!(seen[&draining.url()], EndpointHealth::Draining);
    assert_eq!(seen[&good.url()], EndpointHealth::Healthy);
    bounded("the health checks", async {
        loop {
            let all = client.endpoints();
            if all.iter().all(|e| e.checked_at.is_some()) {
                let h = health(&client);
                assert_eq!(h[&dead], EndpointHealth::Down);
                assert_eq!(h[&draining.url()], EndpointHealth::Draining);
                assert_eq!(h[&full.url()], EndpointHealth::Healthy);
                let good_status = all.iter().find(|e| e.url.as_str() == good.url()).unwrap();
                assert_eq!(good_status.health, EndpointHealth::Healthy);
                assert!(good_status.active_sessions.is_some());
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    // With no usable service left, the last error is reported.
    let only_dead = Client::builder_with_endpoints([&dead, &draining.url()])
        .build()
        .unwrap();
    let err = bounded("no service", only_dead.run("true"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Connect { .. } | Error::Unavailable { .. }),
        "{err:?}"
    );
}
