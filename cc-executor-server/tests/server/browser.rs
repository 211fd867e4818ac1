//! A real browser: a page served from another loopback port tries to run a command through
//! the service. Headless Chromium loads it and dumps the DOM, where the page's script wrote
//! what happened. Refused without `--allow-origin`; with it (the control) the command runs.
//!
//! Chromium's `--virtual-time-budget` does not wait for WebSockets: virtual time runs ahead
//! while the page is idle, and the DOM would be dumped before the connection's events. It stops
//! while a `fetch` is pending (and so does the page's script), so until its final state the
//! page keeps one `/tick` request in flight, which the page server answers after [`TICK`] of
//! real time; between ticks the script handles its WebSocket events. Once final, the page
//! stops ticking, the budget runs out and the DOM is dumped.

use crate::support::Local;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cc_executor_server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bound of one Chromium run; a healthy one takes a few seconds.
const BROWSER_WAIT: Duration = Duration::from_secs(120);
/// Real time each `/tick` takes.
const TICK: Duration = Duration::from_millis(200);
/// Ticks the page waits at most for a final state (a minute of real time).
const MAX_TICKS: u32 = 300;

/// What the page reported through `/done?<state>`.
#[derive(Default)]
struct Page {
    reported: Mutex<Option<String>>,
}

/// Serve `html` at `/` (plus `/hold` and `/done`) on `listener`, for as long as the test runs.
fn serve_page(listener: TcpListener, html: String) -> Arc<Page> {
    let page = Arc::new(Page::default());
    let shared = page.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(answer(tcp, html.clone(), shared.clone()));
        }
    });
    page
}

/// One HTTP/1.1 request.
async fn answer(mut tcp: TcpStream, html: String, page: Arc<Page>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let (status, body) = if path == "/" {
        ("200 OK", html)
    } else if path == "/tick" {
        tokio::time::sleep(TICK).await;
        ("200 OK", "tick".to_owned())
    } else if let Some(state) = path.strip_prefix("/done?") {
        *page.reported.lock().unwrap() = Some(state.to_owned());
        ("200 OK", "ok".to_owned())
    } else {
        ("404 Not Found", String::new())
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.write_all(reply.as_bytes()).await;
    let _ = tcp.shutdown().await;
}

/// The page: opens the service's WebSocket, runs `command`, and writes into the DOM what it saw.
fn html(ws_url: &str, command: &str) -> String {
    let request = serde_json::json!({
        "jsonrpc": "2.0", "method": "execute", "params": {"command": command}, "id": 1
    });
    format!(
        r#"<!doctype html><html><body data-state="loading"><pre id="log"></pre><script>
const log = (s) => {{ document.getElementById('log').textContent += s + '\n'; }};
const state = (s) => {{ document.body.dataset.state = s; }};
let finished = false, ticks = 0;
const finish = (s) => {{
  if (finished) return;
  finished = true; state(s); log('final ' + s);
  fetch('/done?' + s);
}};
const tick = () => {{
  if (finished) return;
  if (++ticks > {max_ticks}) return finish('timeout');
  fetch('/tick', {{cache: 'no-store'}}).then(tick, tick);
}};
state('started');
tick();
let ws;
try {{ ws = new WebSocket({url}); }} catch (e) {{ log('throw ' + e); finish('error'); }}
if (ws) {{
  ws.onopen = () => {{ log('open'); state('opened'); ws.send({request}); }};
  ws.onmessage = (e) => {{
    const m = JSON.parse(e.data);
    log('message ' + (m.method || ('reply ' + JSON.stringify(m.result || m.error))));
    if (m.method === 'process.completed') {{ ws.close(); finish('completed'); }}
  }};
  ws.onerror = () => {{ log('error'); }};
  ws.onclose = (e) => {{ log('close ' + e.code); finish('closed'); }};
}}
</script></body></html>
"#,
        url = serde_json::Value::from(ws_url),
        request = serde_json::Value::from(request.to_string()),
        max_ticks = MAX_TICKS,
    )
}

/// Load `url` in headless Chromium and return the DOM it dumped.
async fn dump_dom(url: &str, profile: &Path) -> String {
    let mut cmd = tokio::process::Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(["--virtual-time-budget=5000", "--dump-dom", url])
    .stdin(Stdio::null())
    .kill_on_drop(true);
    let out = match tokio::time::timeout(BROWSER_WAIT, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "chromium is not installed: this test needs a real browser \
             (Debian: apt-get install -y chromium; .ci/run installs it)"
        ),
        Ok(Err(e)) => panic!("could not run chromium: {e}"),
        Err(_) => panic!("chromium did not finish within {BROWSER_WAIT:?}"),
    };
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && dom.contains("</html>"),
        "chromium failed ({}); stdout: {dom}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    dom
}

/// The `data-state` the script left on `<body>`.
fn page_state(dom: &str) -> &str {
    let start = dom
        .find("<body data-state=\"")
        .unwrap_or_else(|| panic!("no state in the DOM: {dom}"))
        + "<body data-state=\"".len();
    let len = dom[start..].find('"').expect("closing quote");
    &dom[start..start + len]
}

/// The events the script logged.
fn page_log(dom: &str) -> &str {
    let start = dom.find("<pre id=\"log\">").expect("log element") + "<pre id=\"log\">".len();
    let len = dom[start..].find("</pre>").expect("end of log");
    &dom[start..start + len]
}

/// Serve a page that runs `touch <marker>` against a service (that lists the page's origin
/// when `allow` is set); return the dumped DOM and what the page reported.
async fn visit(allow: bool, dir: &Path, marker: &Path) -> (String, Option<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page_addr: SocketAddr = listener.local_addr().unwrap();
    let page_origin = format!("http://{page_addr}");
    let mut builder = Server::builder();
    if allow {
        builder = builder.allow_origin(&page_origin);
    }
    let server = builder.local().await;
    let command = format!("touch '{}'", marker.display());
    let page = serve_page(listener, html(&server.url(), &command));
    let profile = dir.join(if allow { "profile-listed" } else { "profile" });
    let dom = dump_dom(&format!("{page_origin}/"), &profile).await;
    let reported = page.reported.lock().unwrap().clone();
    server.shutdown().await;
    (dom, reported)
}

#[tokio::test]
async fn a_web_page_cannot_run_commands_unless_its_origin_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");

    let (dom, reported) = visit(false, dir.path(), &marker).await;
    let log = page_log(&dom);
    assert_eq!(
        page_state(&dom),
        "closed",
        "the script ran and saw a refusal: {dom}"
    );
    assert_eq!(reported.as_deref(), Some("closed"), "{dom}");
    assert!(log.contains("error") && log.contains("close 1006"), "{log}");
    assert!(!log.contains("open"), "the WebSocket opened: {log}");
    assert!(!marker.exists(), "the page ran its command");

    // Control: the same page from a listed origin runs the command, so the test can fail.
    let (dom, reported) = visit(true, dir.path(), &marker).await;
    assert_eq!(page_state(&dom), "completed", "{dom}");
    assert_eq!(reported.as_deref(), Some("completed"), "{dom}");
    assert!(page_log(&dom).contains("open"), "{dom}");
    assert!(marker.exists(), "the listed origin's command did not run");
}
