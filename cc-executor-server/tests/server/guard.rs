//! The browser and DNS-rebinding guard over real WebSockets: a foreign `Origin` or `Host` is
//! refused with 403 and a reason, listed ones are served, clients without `Origin` keep working.

use crate::support::{end, Local};
use std::ffi::OsStr;

use cc_executor_server::Server;
use tests::service::ServiceProcess;
use tests::ws::{http_get, output_of, Client, WAIT};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Error};

/// Open a WebSocket to `url` with extra headers; `Ok` once upgraded.
async fn upgrade(url: &str, headers: &[(&'static str, &str)]) -> Result<(), Error> {
    let mut req = url.into_client_request()?;
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .expect("connect timed out")?;
    drop(ws);
    Ok(())
}

/// The status and body of a refused upgrade.
fn refusal(r: Result<(), Error>) -> (u16, String) {
    match r {
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp.body().as_deref().unwrap_or_default();
            (resp.status().as_u16(), String::from_utf8_lossy(body).into())
        }
        other => panic!("expected a refused upgrade, got {other:?}"),
    }
}

#[tokio::test]
async fn foreign_origins_are_refused_and_listed_ones_served() {
    let server = Server::builder()
        .allow_origin("http://app.example:3000")
        .local()
        .await;
    let url = server.url();
    let mcp_url = format!("ws://{}/ws/mcp", server.local_addr());
    for u in [&url, &mcp_url] {
        for origin in ["http://evil.example", "null", "http://app.example:3001"] {
            let (status, body) = refusal(upgrade(u, &[("origin", origin)]).await);
            assert_eq!(status, 403, "{u} {origin}");
            assert!(body.contains(origin), "{body}");
            assert!(body.contains("--allow-origin"), "{body}");
        }
        upgrade(u, &[("origin", "http://app.example:3000")])
            .await
            .unwrap_or_else(|e| panic!("{u}: the listed origin was refused: {e}"));
    }
    // A listed origin gets a working session; a client without Origin (ours) as well.
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "http://app.example:3000".parse().unwrap());
    let (_ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    let mut c = Client::connect(&url).await;
    assert_eq!(
        output_of(&c.run("echo no-origin").await, "stdout"),
        "no-origin\n"
    );
    end(c, server).await;
}

#[tokio::test]
async fn foreign_hosts_are_refused_on_loopback() {
    let server = Server::builder()
        .allow_host("proxy.example")
        .token("s3cret")
        .local()
        .await;
    let url = server.url();
    let auth = ("authorization", "Bearer s3cret");
    for host in ["attacker.example", "attacker.example:8004", "10.1.2.3"] {
        let (status, body) = refusal(upgrade(&url, &[("host", host), auth]).await);
        assert_eq!(status, 403, "{host}");
        assert!(
            body.contains(host) && body.contains("--allow-host"),
            "{body}"
        );
    }
    for host in [
        "localhost:1234",
        "localhost",
        "127.0.0.1",
        "127.0.0.2:80",
        "[::1]:8004",
        "proxy.example",
        "proxy.example:443",
    ] {
        upgrade(&url, &[("host", host), auth])
            .await
            .unwrap_or_else(|e| panic!("Host {host} was refused: {e}"));
    }
    // The guard comes before the token: a browser learns nothing about it.
    let (status, _) = refusal(upgrade(&url, &[("host", "attacker.example")]).await);
    assert_eq!(status, 403);
    // /health stays open and does not carry the token.
    let (status, body) = http_get(
        server.local_addr(),
        "/health",
        &[("Origin", "http://evil.example")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(!body.contains("s3cret"), "{body}");
    assert_eq!(server.active_sessions(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn the_binary_takes_origins_and_hosts_from_flags_and_the_environment() {
    let origins = OsStr::new("http://a.example, http://b.example:8080");
    let service = ServiceProcess::start_with(
        &["--allow-host", "proxy.example"],
        &[("CC_EXECUTOR_ALLOW_ORIGINS", origins)],
    )
    .await;
    let url = service.url.clone();
    for origin in ["http://a.example", "http://b.example:8080"] {
        upgrade(&url, &[("origin", origin)])
            .await
            .unwrap_or_else(|e| panic!("{origin} was refused: {e}"));
    }
    let (status, _) = refusal(upgrade(&url, &[("origin", "http://c.example")]).await);
    assert_eq!(status, 403);
    upgrade(&url, &[("host", "proxy.example:80")])
        .await
        .expect("the listed host");
    let (status, _) = refusal(upgrade(&url, &[("host", "attacker.example")]).await);
    assert_eq!(status, 403);
    drop(service);

    // An origin without a scheme could never match: say so at start-up.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_cc-executor-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--allow-origin",
            "localhost:3000",
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--allow-origin") && stderr.contains("localhost:3000"),
        "{stderr}"
    );
}
