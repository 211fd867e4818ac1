//! Hostile input must not exhaust the service: ids it cannot echo, a flood of huge ids from
//! clients that never read, a client that stops reading its replies, and connections that
//! never finish their upgrade.

use crate::support::{connected, end, Local};
use std::time::Duration;

use cc_executor_server::Server;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tests::procs::{self, wait_group_gone};
use tests::service::ServiceProcess;
use tests::ws::{http_get, output_of, Client, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Bound of the flood (2 GB through a debug build on a loaded machine).
const FLOOD_WAIT: Duration = Duration::from_secs(600);

#[tokio::test]
async fn ids_that_cannot_be_echoed_are_invalid_requests_with_a_null_id() {
    let (server, mut c) = connected(Server::builder().local().await).await;
    let bad_ids = [
        json!("x".repeat(257)),
        json!("é".repeat(129)), // 258 bytes
        json!("x".repeat(1_000_000)),
        json!(1.5),
        json!(u64::MAX),
        json!(true),
        json!({"a": 1}),
        json!([1]),
    ];
    for id in bad_ids {
        let shown = id.to_string().chars().take(40).collect::<String>();
        c.send(&json!({"jsonrpc":"2.0","method":"execute","params":{"command":"true"},"id":id}))
            .await;
        let text = c.frame_text_no_ping().await;
        assert!(text.len() < 512, "{shown}: a {} byte reply", text.len());
        assert!(text.ends_with(r#","id":null}"#), "{shown}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], -32600, "{shown}: {text}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("id must be"),
            "{text}"
        );
    }
    // The longest accepted string id, negative ids, and the session goes on.
    let long = "y".repeat(256);
    c.send(&json!({"jsonrpc":"2.0","method":"hook_status","id":long}))
        .await;
    assert_eq!(c.frame().await["id"], long.as_str());
    c.send(&json!({"jsonrpc":"2.0","method":"hook_status","id":-7}))
        .await;
    assert_eq!(c.frame().await["id"], -7);
    assert_eq!(output_of(&c.run("echo alive").await, "stdout"), "alive\n");
    end(c, server).await;
}

/// Peak resident memory of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    procs::status_kib(Some(pid), "VmHWM").expect("VmHWM in /proc/PID/status")
}

/// A WebSocket upgrade by hand on `tcp`; returns once the service answered 101.
async fn raw_upgrade(tcp: &mut TcpStream, host: &str) {
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(tcp.read(&mut byte).await.unwrap(), 1, "the service hung up");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
}

/// One masked text frame (with a zero mask key, so the payload goes as is).
fn text_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x81, 0x80 | 127];
    f.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Two connections each send 70 requests with a 15 MiB string id and read nothing: the replies
/// must not echo the ids, and the service must stay small and keep serving.
#[tokio::test]
async fn a_flood_of_huge_ids_keeps_the_service_small() {
    let service = ServiceProcess::start().await;
    let pid = service.pid().as_raw() as u32;
    let url = service.url.clone();
    let host = url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned();
    let id = "x".repeat(15 * 1024 * 1024);
    let frame = text_frame(
        json!({"jsonrpc":"2.0","method":"hook_status","id":id})
            .to_string()
            .as_bytes(),
    );
    drop(id);
    let frame = std::sync::Arc::new(frame);
    let mut floods = Vec::new();
    for _ in 0..2 {
        let (frame, host) = (frame.clone(), host.clone());
        floods.push(tokio::spawn(async move {
            let mut tcp = TcpStream::connect(&host).await.unwrap();
            raw_upgrade(&mut tcp, &host).await;
            for _ in 0..70 {
                tcp.write_all(&frame)
                    .await
                    .expect("the service read the flood");
            }
            // Then a marker, and only now read: its answer says every frame was handled.
            let last = json!({"jsonrpc":"2.0","method":"hook_status","id":"last"}).to_string();
            tcp.write_all(&text_frame(last.as_bytes())).await.unwrap();
            let mut seen = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            let last_reply = br#""id":"last"}"#;
            while !seen.windows(last_reply.len()).any(|w| w == last_reply) {
                let n = tcp.read(&mut buf).await.unwrap();
                assert!(n > 0, "the service closed a flooding connection");
                seen.extend_from_slice(&buf[..n]);
            }
            // Every answer to a huge id was small.
            assert!(seen.len() < 64 * 1024, "{} bytes of replies", seen.len());
            let null_id = br#""id":null"#;
            let nulls = seen.windows(null_id.len()).filter(|w| w == null_id).count();
            assert_eq!(nulls, 70);
            tcp
        }));
    }
    let mut conns = Vec::new();
    for f in floods {
        let tcp = tokio::time::timeout(FLOOD_WAIT, f)
            .await
            .expect("the flood finished")
            .unwrap();
        conns.push(tcp);
    }
    let mut c = Client::connect(&url).await;
    assert_eq!(output_of(&c.run("echo fresh").await, "stdout"), "fresh\n");
    let peak_mib = peak_rss_kib(pid) / 1024;
    eprintln!("peak RSS of the service during the flood: {peak_mib} MiB");
    assert!(peak_mib < 256, "peak RSS {peak_mib} MiB");
    drop((c, conns, service));
}

/// A client that sends requests and stops reading fills its reply queue (1 MiB); after two
/// heartbeat intervals without room the session is closed with 1008 and a reason, after its
/// run has been killed. The client sees the close once it reads again.
#[tokio::test]
async fn a_client_that_stops_reading_is_closed_with_1008() {
    let server = Server::builder()
        .heartbeat_interval(Duration::from_secs(3))
        .kill_grace(Duration::from_millis(200))
        .local()
        .await;
    let (ws, _) = tokio_tungstenite::connect_async(server.url())
        .await
        .unwrap();
    let (mut tx, mut rx) = ws.split();
    let connected = rx.next().await.unwrap().unwrap();
    assert!(connected.to_text().unwrap().contains("connected"));
    let exec = json!({"jsonrpc":"2.0","method":"execute","params":{"command":"sleep 300"},"id":0});
    tx.send(Message::Text(exec.to_string().into()))
        .await
        .unwrap();
    let pgid = loop {
        let m = rx.next().await.unwrap().unwrap();
        let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        if let Some(pgid) = v["result"]["pgid"].as_u64() {
            break pgid as u32;
        }
    };
    // About 1 KiB answers (an unknown method, quoted up to 1 KiB), far more than the queue,
    // the socket buffers and the client's reading window hold.
    let method = "m".repeat(2000);
    let sender = tokio::spawn(async move {
        for id in 1..100_000 {
            let req = json!({"jsonrpc":"2.0","method":method,"id":id}).to_string();
            if tx.send(Message::Text(req.into())).await.is_err() {
                break;
            }
        }
        tx
    });
    // The session ends by killing its run first: that is the sign the service gave up.
    if let Err(left) = wait_group_gone(pgid, WAIT).await {
        panic!("the session never gave up on its client: {left:?}");
    }
    let mut replies = 0;
    let close = loop {
        match tokio::time::timeout(WAIT, rx.next())
            .await
            .expect("a frame")
        {
            Some(Ok(Message::Text(_))) => replies += 1,
            Some(Ok(Message::Close(f))) => break f.expect("a close frame with a code"),
            Some(Ok(_)) => {}
            other => panic!("the connection ended without a close frame: {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1008);
    assert!(close.reason.contains("not reading"), "{}", close.reason);
    assert!(replies > 500, "only {replies} replies before the close");
    sender.abort();
    let t = tokio::time::Instant::now();
    while server.active_sessions() > 0 {
        assert!(t.elapsed() < WAIT, "the session never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}

/// Connections that send nothing, or half a request, are closed at the handshake deadline;
/// an upgraded session is not, and is served meanwhile.
#[tokio::test]
async fn half_open_connections_are_closed_at_the_handshake_deadline() {
    let server = Server::builder()
        .handshake_timeout(Duration::from_secs(1))
        .local()
        .await;
    let addr = server.local_addr();
    let mut c = Client::connect(&server.url()).await;
    let mut half_open = Vec::new();
    for i in 0..60 {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            let partial = format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n");
            tcp.write_all(partial.as_bytes()).await.unwrap();
        }
        half_open.push(tcp);
    }
    assert_eq!(
        output_of(&c.run("echo meanwhile").await, "stdout"),
        "meanwhile\n"
    );
    for (i, mut tcp) in half_open.into_iter().enumerate() {
        let mut buf = [0u8; 1024];
        let ended = tokio::time::timeout(WAIT, async {
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    // Whatever hyper says about a cut-off request; the close comes next.
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "connection {i} is still open");
    }
    // Past the deadline, the upgraded session and new connections work.
    assert_eq!(output_of(&c.run("echo after").await, "stdout"), "after\n");
    let (status, _) = http_get(addr, "/health", &[]).await;
    assert_eq!(status, 200);
    end(c, server).await;
}
