//! Failure paths of the client against real parts: refused connections (auth, session limit,
//! allowlist), TLS and connect failures, a service killed or frozen mid-run, and many concurrent
//! executions from one `Client`.
//!
//! The killed / frozen service tests run the `cc-executor-server` binary as a child process; they
//! rely on `cargo test --workspace` having built it (or `cargo build -p cc-executor-server`).

use std::time::Duration;

use crate::support::*;
use cc_executor_client::{Client, Error, OutputEvent};
use cc_executor_server::Server;
use futures_util::StreamExt;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tests::procs::{self, wait_group_gone};
use tests::service::ServiceProcess;

#[tokio::test]
async fn a_missing_or_wrong_token_is_unauthorized() {
    let server = start_with(Server::builder().token("s3cret")).await;
    let anonymous = Client::new(server.url()).unwrap();
    assert!(matches!(
        bounded("no token", anonymous.session()).await,
        Err(Error::Unauthorized)
    ));
    let wrong = Client::builder(server.url()).token("nope").build().unwrap();
    assert!(matches!(
        bounded("wrong token", wrong.run("echo hi")).await,
        Err(Error::Unauthorized)
    ));
    let right = Client::builder(server.url())
        .token("s3cret")
        .build()
        .unwrap();
    let outcome = bounded("right token", right.run("echo hi")).await.unwrap();
    assert_eq!(outcome.stdout, "hi\n");
}

#[tokio::test]
async fn the_session_limit_is_reported() {
    let (_server, client) = client_of(start_with(Server::builder().max_sessions(1)).await);
    let first = bounded("first session", client.session()).await.unwrap();
    match bounded("second session", client.session()).await {
        Err(Error::SessionLimit) => {}
        other => panic!("expected SessionLimit, got {other:?}"),
    }
    assert!(matches!(
        bounded("execute over the limit", client.execute("echo x")).await,
        Err(Error::SessionLimit)
    ));
    bounded("close", first.close()).await.unwrap();
}

#[tokio::test]
async fn the_allowlist_refusal_is_command_not_allowed() {
    let (_server, client) =
        client_of(start_with(Server::builder().allowed_commands(["echo"])).await);
    match bounded("refused", client.execute("rm -rf nothing-here")).await {
        Err(Error::CommandNotAllowed { message }) => assert!(!message.is_empty()),
        other => panic!("expected CommandNotAllowed, got {other:?}"),
    }
    let outcome = bounded("allowed", client.run("echo allowed"))
        .await
        .unwrap();
    assert_eq!(outcome.stdout, "allowed\n");
}

#[tokio::test]
async fn connect_failures_are_typed() {
    // Nothing listens on a port we bound and released.
    let port = free_port();
    let client = Client::new(format!("ws://127.0.0.1:{port}/ws")).unwrap();
    assert!(matches!(
        bounded("refused", client.session()).await,
        Err(Error::Connect { .. })
    ));

    // A listener that accepts TCP but never answers the upgrade.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", silent.local_addr().unwrap());
    let client = Client::builder(url)
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    match bounded("silent", client.session()).await {
        Err(Error::ConnectTimeout { after, .. }) => assert_eq!(after, Duration::from_millis(300)),
        other => panic!("expected ConnectTimeout, got {other:?}"),
    }
}

#[tokio::test]
async fn tls_against_a_plain_service_is_a_tls_error_not_a_panic() {
    let server = start().await;
    let url = format!("wss://{}/ws", server.local_addr());
    let client = Client::new(url).unwrap();
    match bounded("wss to plain", client.session()).await {
        Err(Error::Tls { .. }) => {}
        other => panic!("expected Tls, got {other:?}"),
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kill a group the (dead) service can no longer kill.
async fn reap_group(pgid: u32) {
    let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
    wait_group_gone(pgid, BOUND).await.unwrap();
}

#[tokio::test]
async fn a_killed_service_ends_the_stream_with_connection_closed() {
    let mut service = ServiceProcess::start().await;
    let client = Client::new(&service.url).unwrap();
    let mut run = bounded(
        "execute",
        client.execute("while :; do echo tick; sleep 0.1; done"),
    )
    .await
    .unwrap();
    let pgid = run.pgid().expect("pgid");
    next_matching(&mut run, "output", |e| {
        matches!(e, OutputEvent::Output { .. })
    })
    .await;
    service.child.start_kill().unwrap();
    let end = stream_end(&mut run, "the stream notices").await;
    assert!(
        matches!(end, Some(Err(Error::ConnectionClosed { .. }))),
        "{end:?}"
    );
    assert!(bounded("end", run.next()).await.is_none());
    reap_group(pgid).await;
}

#[tokio::test]
async fn a_frozen_service_ends_the_stream_with_heartbeat_timeout() {
    let service = ServiceProcess::start().await;
    let client = Client::builder(&service.url)
        .heartbeat_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let (mut run, pgid) = start_run(&client, "sleep 300").await;
    kill(service.pid(), Signal::SIGSTOP).unwrap();
    let end = bounded("the heartbeat notices", run.next()).await;
    match end {
        Some(Err(Error::HeartbeatTimeout { idle })) => assert!(idle >= Duration::from_secs(2)),
        other => panic!("expected HeartbeatTimeout, got {other:?}"),
    }
    assert!(bounded("end", run.next()).await.is_none());
    drop(service);
    reap_group(pgid).await;
}

#[tokio::test]
async fn an_unanswered_request_fails_at_the_request_timeout() {
    let service = ServiceProcess::start().await;
    // A long heartbeat: the request timeout, not the heartbeat, must end these waits. The short
    // request timeout is what is tested while the service is frozen; the requests it answers
    // (below, outside a freeze) are retried on `NoResponse`, as a loaded machine may answer them
    // later than that.
    let client = Client::builder(&service.url)
        .heartbeat_timeout(Duration::from_secs(120))
        .request_timeout(Duration::from_secs(1))
        .connect_timeout(BOUND)
        .build()
        .unwrap();

    // A control the frozen service does not answer.
    let run = bounded("execute", async {
        loop {
            match client.execute("sleep 300").await {
                // The late answer's session is closed, and its run with it.
                Err(Error::NoResponse { .. }) => continue,
                other => return other.unwrap(),
            }
        }
    })
    .await;
    let pgid = run.pgid().expect("pgid");
    let ctl = run.controller();
    freeze(&service).await;
    match bounded("pause", ctl.pause()).await {
        Err(Error::NoResponse { method, after }) => {
            assert_eq!(method, "control");
            assert_eq!(after, Duration::from_secs(1));
        }
        other => panic!("expected NoResponse, got {other:?}"),
    }

    // An execute the frozen service does not answer, on an already open session.
    kill(service.pid(), Signal::SIGCONT).unwrap();
    let session = bounded("session", client.session()).await.unwrap();
    freeze(&service).await;
    // A command line no other process on the machine has (other test runs may run this test).
    let late = format!("sleep 301.{}", std::process::id());
    match bounded("execute", session.execute(late.as_str())).await {
        Err(Error::NoResponse { method, .. }) => assert_eq!(method, "execute"),
        other => panic!("expected NoResponse, got {other:?}"),
    }
    // Once the service runs again, the first run is still under control, and the session
    // whose execute went unanswered is closed.
    kill(service.pid(), Signal::SIGCONT).unwrap();
    bounded("cancel", async {
        let mut retried = false;
        loop {
            match ctl.cancel().await {
                Ok(()) => return,
                Err(Error::NoResponse { .. }) => retried = true,
                // An earlier cancel, answered too late, ended the run.
                Err(Error::NoProcess { .. }) if retried => return,
                Err(e) => panic!("cancel after the freeze: {e}"),
            }
        }
    })
    .await;
    // The group's end proves the cancel took effect.
    wait_group_gone(pgid, BOUND).await.unwrap();
    assert!(matches!(
        bounded("closed session", session.execute("true")).await,
        Err(Error::ConnectionClosed { .. })
    ));
    // Whatever the service started late for it went with the connection.
    bounded("the late run is killed", async {
        while !procs::live_processes_where(|cmdline| cmdline == late).is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    drop(run);
}

/// SIGSTOP the service and wait until every one of its threads has stopped (`kill` returns
/// before threads running on another CPU have).
async fn freeze(service: &ServiceProcess) {
    kill(service.pid(), Signal::SIGSTOP).unwrap();
    let pid = service.pid().as_raw() as u32;
    bounded("the service stops", async {
        while !procs::all_threads_stopped(pid) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn two_hundred_concurrent_executions_from_one_client_all_complete() {
    let (_server, client) = start_client().await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { (i, client.run(format!("echo run-{i}")).await) })
        })
        .collect();
    bounded("200 runs", async {
        for task in tasks {
            let (i, res) = task.await.unwrap();
            let outcome = res.unwrap_or_else(|e| panic!("run {i}: {e}"));
            assert_eq!(outcome.stdout, format!("run-{i}\n"));
            assert!(outcome.success());
        }
    })
    .await;
}

/// A TLS listener on a loopback port with a fresh self-signed certificate (for 127.0.0.1): it
/// answers handshakes, which a client that trusts the usual roots refuses, and nothing else.
fn untrusted_tls_listener() -> std::net::SocketAddr {
    use std::sync::Arc;
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { return };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
            let mut conn = rustls::ServerConnection::new(config.clone()).unwrap();
            // Runs until the client aborts the handshake.
            while conn.complete_io(&mut tcp).is_ok() && conn.is_handshaking() {}
        }
    });
    addr
}

#[tokio::test]
async fn the_execute_example_reports_an_untrusted_certificate_in_words() {
    let addr = untrusted_tls_listener();
    let run = tokio::process::Command::new(tests::bins::example_path("execute"))
        .env("CC_EXECUTOR_WEBSOCKET_URL", format!("wss://{addr}/ws"))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = bounded("the execute example", run).await.unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "exit 0: {printed}");
    for debug in ["Custom {", "kind:", "Tls {", "source:"] {
        assert!(
            !printed.contains(debug),
            "Debug text {debug:?} in {printed}"
        );
    }
    let expected = format!(
        "error: could not open a secure (TLS) connection to wss://{addr}/ws: the service's \
         certificate is not signed by an authority this client trusts"
    );
    assert!(printed.starts_with(&expected), "{printed}");
    assert!(
        printed.contains("\n  caused by: invalid peer certificate: UnknownIssuer"),
        "{printed}"
    );
}
