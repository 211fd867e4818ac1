//! Protocol behaviour of the Rust service over real WebSockets: `connected`, `/health`, the
//! bearer token, the allowlist, malformed requests, the heartbeat, detectors.

use std::time::Duration;

use crate::support::{connected, end, pinging_every, server, Local};
use cc_executor_server::Server;
use serde_json::{json, Value};
use tests::procs::wait_group_gone;
use tests::ws::{find, http_get, output_of, Client, Event, OJson};
use tokio_tungstenite::tungstenite;

#[tokio::test]
async fn connected_advertises_our_capabilities() {
    let server = server().await;
    let c = Client::connect(&server.url()).await;
    let p = &c.connected["params"];
    assert_eq!(p["version"], "1.0.0");
    assert_eq!(
        p["capabilities"],
        json!([
            "execute",
            "control",
            "stream",
            "completed_after_cancel",
            "run_timeout",
            "cwd",
            "stdin",
            "pty",
            "batch_output"
        ])
    );
    // The shell that runs commands, after the capabilities (bash by default).
    let keys = OJson::parse(&c.connected.to_string());
    assert_eq!(
        keys.get("params").unwrap().keys(),
        ["session_id", "version", "capabilities", "shell"]
    );
    let shell = p["shell"].as_str().unwrap();
    assert!(
        shell.starts_with('/') && shell.ends_with("/bash"),
        "{shell}"
    );
    let id = c.session_id();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(id.as_bytes()[14], b'4', "a v4 uuid: {id}");
    // /ws/mcp speaks the same protocol.
    let mcp = Client::connect(&format!("ws://{}/ws/mcp", server.local_addr())).await;
    assert_ne!(mcp.session_id(), id);
    drop((c, mcp));
    server.shutdown().await;
}

#[tokio::test]
async fn health_reports_sessions() {
    let server = Server::builder().max_sessions(7).local().await;
    let c = Client::connect(&server.url()).await;
    let (status, body) = http_get(server.local_addr(), "/health", &[]).await;
    assert_eq!(status, 200);
    let h = OJson::parse(&body);
    assert_eq!(
        h.keys(),
        [
            "status",
            "service",
            "version",
            "active_sessions",
            "max_sessions",
            "uptime_seconds",
            "shell"
        ]
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["service"], "cc-executor-websocket");
    assert_eq!(
        Some(v["shell"].clone()),
        c.connected["params"].get("shell").cloned()
    );
    assert!(v["shell"].as_str().unwrap().ends_with("/bash"), "{v}");
    assert_eq!(v["version"], "1.0.0");
    assert_eq!(v["active_sessions"], 1);
    assert_eq!(v["max_sessions"], 7);
    assert!(v["uptime_seconds"].as_f64().unwrap() >= 0.0);
    end(c, server).await;
}

#[tokio::test]
async fn healthz_and_the_shell_in_allowlist_mode() {
    let server = Server::builder().shell("sh").local().await;
    let (status, body) = http_get(server.local_addr(), "/healthz", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body, r#"{"status":"ok"}"#);
    let (_, body) = http_get(server.local_addr(), "/health", &[]).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["shell"].as_str().unwrap().ends_with("/sh"), "{v}");
    let c = Client::connect(&server.url()).await;
    assert!(c.connected["params"]["shell"]
        .as_str()
        .unwrap()
        .ends_with("/sh"));
    end(c, server).await;

    // With an allowlist, commands run without a shell: none is reported.
    let server = Server::builder().allowed_commands(["echo"]).local().await;
    let c = Client::connect(&server.url()).await;
    assert!(
        c.connected["params"].get("shell").is_none(),
        "{}",
        c.connected
    );
    let (_, body) = http_get(server.local_addr(), "/health", &[]).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["shell"], Value::Null);
    end(c, server).await;
}

fn http_status(e: tungstenite::Error) -> u16 {
    match e {
        tungstenite::Error::Http(resp) => resp.status().as_u16(),
        other => panic!("expected an HTTP error, got {other:?}"),
    }
}

#[tokio::test]
async fn bearer_token_is_required_when_configured() {
    let server = Server::builder().token("s3cret").local().await;
    let url = server.url();
    let e = Client::try_connect(&url, None)
        .await
        .err()
        .expect("refused");
    assert_eq!(http_status(e), 401);
    let e = Client::try_connect(&url, Some("wrong"))
        .await
        .err()
        .expect("refused");
    assert_eq!(http_status(e), 401);
    let e = Client::try_connect(&url, Some("s3cret-and-more"))
        .await
        .err()
        .expect("refused");
    assert_eq!(http_status(e), 401);
    let mut c = Client::connect_with(&url, Some("s3cret")).await;
    assert_eq!(c.stdout_of("echo authorized").await, "authorized\n");
    // /health stays open.
    let (status, _) = http_get(server.local_addr(), "/health", &[]).await;
    assert_eq!(status, 200);
    end(c, server).await;
}

#[tokio::test]
async fn a_private_service_is_on_loopback_behind_a_token_of_its_own() {
    let server = Server::builder().bind_private().await.unwrap();
    assert!(server.local_addr().ip().is_loopback());
    let token = server.token().expect("a token").to_owned();
    assert!(token.len() >= 32, "{token}");
    let url = server.url();
    let e = Client::try_connect(&url, None)
        .await
        .err()
        .expect("refused");
    assert_eq!(http_status(e), 401);
    let mut c = Client::connect_with(&url, Some(&token)).await;
    assert_eq!(c.stdout_of("echo private").await, "private\n");
    end(c, server).await;
    // Another one gets another token; a token set on the builder is kept.
    let other = Server::builder().bind_private().await.unwrap();
    assert_ne!(other.token(), Some(token.as_str()));
    other.shutdown().await;
    let chosen = Server::builder()
        .token("mine")
        .bind_private()
        .await
        .unwrap();
    assert_eq!(chosen.token(), Some("mine"));
    chosen.shutdown().await;

    // A tool's service: the one at a URL as given, or one of its own.
    let given = vec!["ws://h:1/ws".into(), "ws://h:2/ws".into()];
    let (urls, token, started) = cc_executor_server::url_or_embedded(given.clone(), None)
        .await
        .unwrap();
    assert_eq!((urls, token, started.is_none()), (given, None, true));
    let own = cc_executor_server::url_or_embedded(Vec::new(), Some("t0k".into()));
    let (urls, token, started) = own.await.unwrap();
    let started = started.expect("a service of its own");
    assert_eq!((urls, token.as_deref()), (vec![started.url()], Some("t0k")));
    let mut c = Client::connect_with(&started.url(), Some("t0k")).await;
    assert_eq!(output_of(&c.run("echo own").await, "stdout"), "own\n");
    drop(c);
    started.shutdown().await;
}

#[tokio::test]
async fn allowlist_refuses_over_the_wire() {
    let (server, mut c) = connected(
        Server::builder()
            .allowed_commands(["echo", "printf"])
            .local()
            .await,
    )
    .await;
    for (i, bad) in [
        "ls",
        "rm -rf /nonexistent",
        "echo hi; ls",
        "echo hi && ls",
        "echo hi | sh",
        "echo $(ls)",
        "echo `ls`",
        "echo hi\nls",
        "X=1 ls",
        "echo hi &",
        // A redirection in front of the program is not the program.
        ">/dev/null/echo rm -rf /nonexistent",
        "2>/dev/null/printf ls",
        // Variables that would load other code into an allowed program.
        "LD_PRELOAD=/nonexistent.so echo hi",
        "PATH=/nonexistent echo hi",
    ]
    .iter()
    .enumerate()
    {
        c.execute(json!({ "command": bad }), i as i64).await;
        let f = c.frame().await;
        assert_eq!(f["error"]["code"], -32001, "{bad:?}: {f}");
        assert_eq!(f["id"], i);
    }
    assert_eq!(c.stdout_of("echo 'a;b|c'").await, "a;b|c\n");
    assert_eq!(c.stdout_of("/bin/echo fine").await, "fine\n");
    end(c, server).await;
}

#[tokio::test]
async fn malformed_requests_get_errors_and_the_session_goes_on() {
    let (server, mut c) = connected(server().await).await;

    c.send_text("{not json").await;
    let f = c.frame().await;
    assert_eq!(f["error"]["code"], -32603);
    assert!(f.get("id").is_none(), "{f}");
    assert!(f["error"]["data"].is_null());

    // Valid JSON that is not a request: the id is kept when it can be read.
    c.send(&json!({"jsonrpc":"2.0","id":9})).await;
    let f = c.frame().await;
    assert_eq!(f["error"]["code"], -32603, "{f}");
    assert_eq!(f["id"], 9);

    for (params, id) in [
        (json!({}), 1),
        (json!({"command": 5}), 2),
        (json!("echo"), 3),
        (json!({"command": "echo", "timeout": -1}), 4),
        (json!({"command": "echo", "timeout": 0}), 5),
    ] {
        c.execute(params.clone(), id).await;
        let f = c.frame().await;
        assert_eq!(f["error"]["code"], -32603, "{params}: {f}");
        assert_eq!(f["id"], id);
        assert!(
            f["error"]["message"].as_str().unwrap().contains("execute"),
            "{f}"
        );
    }
    c.send(&json!({"jsonrpc":"2.0","method":"execute","id":6}))
        .await;
    assert_eq!(c.frame().await["error"]["code"], -32603);
    c.execute(json!({"command": "   "}), 7).await;
    let f = c.frame().await;
    assert_eq!(
        f["error"],
        json!({"code": -32001, "message": "Command cannot be empty", "data": null})
    );

    c.send(&json!({"jsonrpc":"2.0","method":"control","params":{"type":"STOP"},"id":8}))
        .await;
    let f = c.frame().await;
    assert_eq!(f["error"]["code"], -32603);
    assert!(
        f["error"]["message"].as_str().unwrap().contains("STOP"),
        "{f}"
    );
    c.send(&json!({"jsonrpc":"2.0","method":"control","id":10}))
        .await;
    assert_eq!(c.frame().await["error"]["code"], -32603);

    c.send(&json!({"jsonrpc":"2.0","method":"nope","id":"x"}))
        .await;
    let f = c.frame().await;
    assert_eq!(f["error"]["code"], -32601);
    assert_eq!(f["error"]["message"], "Unknown method: nope");
    assert_eq!(f["id"], "x");

    // `pong` gets no answer: the next frame answers the next request.
    c.send(&json!({"jsonrpc":"2.0","method":"pong"})).await;
    c.send(&json!({"jsonrpc":"2.0","method":"hook_status","id":11}))
        .await;
    let f = c.frame().await;
    assert_eq!(f["id"], 11);
    assert_eq!(
        f["result"],
        json!({"enabled":false,"config_path":null,"hooks_configured":[],"timeout":60,"parallel":false})
    );

    assert_eq!(c.stdout_of("echo still-alive").await, "still-alive\n");
    end(c, server).await;
}

#[tokio::test]
async fn silent_client_is_cut_off_with_a_close_frame_and_its_group_killed() {
    let (server, mut c) = pinging_every(Duration::from_millis(200)).await;
    c.execute(json!({"command": "sleep 300 & sleep 300"}), 1)
        .await;
    let mut pgid = None;
    let mut pings = 0;
    let close = loop {
        match c.event().await {
            Event::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["method"] == "ping" {
                    pings += 1;
                    assert!(v["params"]["timestamp"].as_f64().unwrap() > 1.0e9);
                }
                if let Some(p) = v["result"]["pgid"].as_u64() {
                    pgid = Some(p as u32);
                }
            }
            other => break other,
        }
    };
    assert_eq!(
        close,
        Event::Close(Some((1008, "heartbeat timeout".into())))
    );
    assert!(pings >= 1);
    let pgid = pgid.expect("execute result");
    // The group was killed (before the close was sent).
    assert!(wait_group_gone(pgid, Duration::from_secs(10)).await.is_ok());
    server.shutdown().await;
}

/// A session answering pings outlives the cut-off for silent ones (two intervals): with nothing
/// else sent, a service that did not count the pongs would close it at the second ping's turn,
/// and the third ping would never come. The interval leaves the test seconds to answer each.
#[tokio::test]
async fn answering_pings_keeps_the_session() {
    let (server, mut c) = connected(
        Server::builder()
            .heartbeat_interval(Duration::from_secs(2))
            .local()
            .await,
    )
    .await;
    for _ in 0..3 {
        let t = c.frame_text().await;
        let v: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["method"], "ping", "{t}");
        assert_eq!(OJson::parse(&t).keys(), ["jsonrpc", "method", "params"]);
        c.send_text(tests::ws::PONG).await;
    }
    // Past the cut-off the session still works (the helper answers pings while it waits).
    assert_eq!(c.stdout_of("echo alive").await, "alive\n");
    end(c, server).await;
}

#[tokio::test]
async fn detectors_precede_their_line() {
    let (server, mut c) = connected(server().await).await;
    let event = r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1900000000}}"#;
    let cases = [
        (
            "echo 'Claude AI usage limit reached|1735000000'".to_owned(),
            "error.rate_limit_exceeded",
            json!({"error_type": "usage_limit", "reset_timestamp": 1735000000.0}),
        ),
        (
            "echo \"You've hit your limit · resets 3pm (Europe/Paris)\"".to_owned(),
            "error.rate_limit_exceeded",
            json!({"error_type": "usage_limit", "reset_timestamp": null}),
        ),
        (
            format!("echo '{event}'"),
            "error.rate_limit_exceeded",
            json!({"error_type": "usage_limit", "reset_timestamp": 1900000000.0}),
        ),
        (
            "echo 'API Error: 429 rate_limit_error'".to_owned(),
            "error.rate_limit_exceeded",
            json!({"error_type": "rate_limit_429", "retry_after": 60}),
        ),
        (
            "echo \"Claude's response exceeded the 32000 output token maximum\"".to_owned(),
            "error.token_limit_exceeded",
            json!({"error_type": "token_limit", "limit": 32000}),
        ),
    ];
    for (command, method, expect) in cases {
        let frames = c.run(&command).await;
        let i = frames
            .iter()
            .position(|f| f["method"] == method)
            .unwrap_or_else(|| panic!("{command}: no {method} in {frames:?}"));
        assert_eq!(frames[i + 1]["method"], "process.output", "{command}");
        for (k, v) in expect.as_object().unwrap() {
            assert_eq!(&frames[i]["params"][k], v, "{command}: {k}");
        }
        assert_eq!(frames[i]["params"]["session_id"], c.session_id());
        assert_eq!(frames[frames.len() - 1]["params"]["status"], "completed");
    }
    // A rate_limit_event that is not a rejection, and "truncated", fire nothing.
    let quiet = c
        .run(r#"echo '{"type":"rate_limit_event","rate_limit_info":{"status":"allowed"}}'; echo 'the text was truncated'"#)
        .await;
    assert!(find(&quiet, "error.rate_limit_exceeded").is_none());
    assert!(find(&quiet, "error.token_limit_exceeded").is_none());
    end(c, server).await;
}

#[tokio::test]
async fn many_sessions_at_once() {
    let server = server().await;
    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(Client::connect(&server.url()).await);
    }
    for (i, c) in clients.iter_mut().enumerate() {
        c.execute(json!({ "command": format!("echo {i}") }), 1)
            .await;
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let frames = c.until_completed().await;
        assert_eq!(output_of(&frames, "stdout"), format!("{i}\n"));
    }
    assert_eq!(server.active_sessions(), 50);
    drop(clients);
    server.shutdown().await;
}

/// Error messages quote client input (a method name, a control type, a path); a reply must not
/// be as large as the request, or a few queued replies would hold megabytes per session.
#[tokio::test]
async fn error_replies_do_not_echo_huge_input() {
    let (server, mut c) = connected(server().await).await;
    let huge = "x".repeat(1_000_000);
    let requests = [
        json!({"jsonrpc":"2.0","method":huge,"id":1}),
        json!({"jsonrpc":"2.0","method":"control","params":{"type":huge},"id":2}),
        json!({"jsonrpc":"2.0","method":"execute","params":{"command":"true","cwd":huge},"id":3}),
    ];
    for (i, req) in requests.iter().enumerate() {
        c.send(req).await;
        let reply = c.frame_text_no_ping().await;
        assert!(reply.len() < 4096, "reply {i} is {} bytes", reply.len());
        let v: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(v["id"], i + 1);
        assert!(v["error"]["message"].as_str().unwrap().ends_with("..."));
    }
    // Short messages are unchanged.
    c.send(&json!({"jsonrpc":"2.0","method":"nope","id":4}))
        .await;
    assert_eq!(c.frame().await["error"]["message"], "Unknown method: nope");
    end(c, server).await;
}

/// A client that sends requests but never reads the answers fills the session's queue. The
/// session must not wait on it for ever (deaf to the heartbeat and to shutdown, with its
/// command running): it ends and kills the group.
#[tokio::test]
async fn a_client_that_floods_requests_without_reading_is_cut_off() {
    let (server, mut c) = pinging_every(Duration::from_millis(300)).await;
    // Output that fills the connection, so that the answers below can no longer be written.
    c.execute(json!({"command": "yes"}), 1).await;
    let result = c.frame().await;
    let pgid = result["result"]["pgid"].as_u64().expect("pgid") as u32;
    // Requests until the service stops reading them (or drops the connection).
    for id in 0..1_000_000 {
        let req = json!({"jsonrpc":"2.0","method":"hook_status","id":id}).to_string();
        match tokio::time::timeout(Duration::from_secs(5), c.try_send_text(&req)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    if let Err(left) = wait_group_gone(pgid, Duration::from_secs(30)).await {
        panic!("the session hangs: its group still runs: {left:?}");
    }
    let t = tokio::time::Instant::now();
    while server.active_sessions() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the session never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    end(c, server).await;
}

/// `Duration::MAX` reads as "no heartbeat" and "wait for ever"; it must not overflow.
#[tokio::test]
async fn huge_heartbeat_and_grace_are_accepted() {
    let (server, mut c) = connected(
        Server::builder()
            .heartbeat_interval(Duration::MAX)
            .kill_grace(Duration::MAX)
            .local()
            .await,
    )
    .await;
    assert_eq!(c.stdout_of("echo fine").await, "fine\n");
    c.execute(json!({"command": "sleep 30"}), 2).await;
    c.frames_until(|f| f["method"] == "process.started").await;
    c.control("CANCEL", 3).await;
    let frames = c.until_completed().await;
    assert_eq!(frames[frames.len() - 1]["params"]["status"], "canceled");
    end(c, server).await;
}
