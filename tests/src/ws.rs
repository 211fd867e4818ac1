//! A raw WebSocket client for the executor protocol (no client library in between), a tiny
//! HTTP GET, and JSON that keeps its key order, for tests that check frames on the wire.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Bound of every wait in these helpers: generous, so a loaded machine does not fail a test,
/// while a hang still does.
pub const WAIT: Duration = Duration::from_secs(30);

/// The client's answer to a heartbeat `ping`.
pub const PONG: &str = r#"{"jsonrpc":"2.0","method":"pong"}"#;

/// What came from the service.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A text frame.
    Text(String),
    /// A close frame: code and reason (`None` for a close without a payload).
    Close(Option<(u16, String)>),
    /// The connection ended without a close frame (or failed).
    Ended,
}

/// A raw protocol client. Reading with [`Client::frame`] and the calls built on it answers the
/// service's heartbeat pings; [`Client::event`] and [`Client::frame_text`] return them as they come.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `connected` frame, when [`Client::connect`] read it.
    pub connected: Value,
}

impl Client {
    /// Connect, optionally with a bearer token; does not read anything.
    pub async fn try_connect(url: &str, token: Option<&str>) -> Result<Client, tungstenite::Error> {
        let mut req = url.into_client_request()?;
        if let Some(t) = token {
            req.headers_mut()
                .insert("Authorization", format!("Bearer {t}").parse().unwrap());
        }
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .expect("connect timed out")?;
        Ok(Client {
            ws,
            connected: Value::Null,
        })
    }

    /// Connect and read the `connected` notification.
    pub async fn connect(url: &str) -> Client {
        Self::connect_with(url, None).await
    }

    /// Connect with a token and read the `connected` notification.
    pub async fn connect_with(url: &str, token: Option<&str>) -> Client {
        let mut c = Self::try_connect(url, token).await.expect("connect");
        let first = c.frame().await;
        assert_eq!(first["method"], "connected", "first frame: {first}");
        c.connected = first;
        c
    }

    /// The session id from `connected`.
    pub fn session_id(&self) -> String {
        self.connected["params"]["session_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Send a JSON frame.
    pub async fn send(&mut self, v: &Value) {
        self.send_text(&v.to_string()).await;
    }

    /// Send a text frame as is.
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.to_owned().into()))
            .await
            .expect("send");
    }

    /// Send a text frame as is; `Err` when the connection failed.
    pub async fn try_send_text(&mut self, text: &str) -> Result<(), tungstenite::Error> {
        self.ws.send(Message::Text(text.to_owned().into())).await
    }

    /// Send `execute` with `params` and id `id`.
    pub async fn execute(&mut self, params: Value, id: i64) {
        self.send(&json!({"jsonrpc":"2.0","method":"execute","params":params,"id":id}))
            .await;
    }

    /// Send `control` of `kind` with id `id`.
    pub async fn control(&mut self, kind: &str, id: i64) {
        self.send(&json!({"jsonrpc":"2.0","method":"control","params":{"type":kind},"id":id}))
            .await;
    }

    /// The next event, within [`WAIT`].
    pub async fn event(&mut self) -> Event {
        self.event_within(WAIT)
            .await
            .expect("no frame from the service within the wait bound")
    }

    /// The next event within `bound`, `None` if nothing came.
    pub async fn event_within(&mut self, bound: Duration) -> Option<Event> {
        let next = tokio::time::timeout(bound, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => return Event::Text(t.to_string()),
                    Some(Ok(Message::Close(f))) => {
                        return Event::Close(f.map(|f| (u16::from(f.code), f.reason.to_string())))
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return Event::Ended,
                }
            }
        });
        next.await.ok()
    }

    /// The next text frame, heartbeat pings included; panics on a close.
    pub async fn frame_text(&mut self) -> String {
        match self.event().await {
            Event::Text(t) => t,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next frame that is not a `ping`, as JSON; answers the pings met meanwhile.
    pub async fn frame(&mut self) -> Value {
        let t = self.frame_text_no_ping().await;
        serde_json::from_str(&t).expect("service frames are JSON")
    }

    /// The next frame that is not a `ping`, as text; answers the pings met meanwhile with a
    /// `pong`, as a live client does, so that a short heartbeat does not cut a test off while it
    /// waits. (Tests of the heartbeat itself read with [`Client::event`], which answers nothing.)
    pub async fn frame_text_no_ping(&mut self) -> String {
        loop {
            let t = self.frame_text().await;
            let v: Value = serde_json::from_str(&t).expect("service frames are JSON");
            if v["method"] != "ping" {
                return t;
            }
            // A failed send shows as the close or end read next, a clearer failure.
            let _ = self.try_send_text(PONG).await;
        }
    }

    /// Frames (no pings) up to and including the first one `done` accepts.
    pub async fn frames_until(&mut self, mut done: impl FnMut(&Value) -> bool) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let f = self.frame().await;
            let stop = done(&f);
            out.push(f);
            if stop {
                return out;
            }
        }
    }

    /// Frames up to and including `process.completed`.
    pub async fn until_completed(&mut self) -> Vec<Value> {
        self.frames_until(|f| f["method"] == "process.completed")
            .await
    }

    /// Execute `command` and return every frame up to and including `process.completed`.
    pub async fn run(&mut self, command: &str) -> Vec<Value> {
        self.execute(json!({ "command": command }), 1).await;
        self.until_completed().await
    }

    /// Execute `command` and return its stdout, concatenated.
    pub async fn stdout_of(&mut self, command: &str) -> String {
        output_of(&self.run(command).await, "stdout")
    }

    /// Send a normal close and return the service's close reply.
    pub async fn close(self) -> Event {
        self.close_collect().await.1
    }

    /// Send a normal close; return the frames (pings excluded) that came before the service's
    /// close reply, and that reply.
    pub async fn close_collect(mut self) -> (Vec<String>, Event) {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = self.ws.send(Message::Close(Some(frame))).await;
        let mut before = Vec::new();
        loop {
            match self.event().await {
                Event::Text(t) => {
                    if !t.contains(r#""method":"ping""#) {
                        before.push(t);
                    }
                }
                other => return (before, other),
            }
        }
    }

    /// Drop the TCP connection without a close handshake.
    pub fn vanish(self) {
        drop(self.ws);
    }
}

/// Output `data` of the frames, concatenated per stream (`"stdout"` or `"stderr"`).
pub fn output_of(frames: &[Value], stream: &str) -> String {
    frames
        .iter()
        .filter(|f| f["method"] == "process.output" && f["params"]["type"] == stream)
        .map(|f| f["params"]["data"].as_str().unwrap_or_default())
        .collect()
}

/// The first frame with method `m`.
pub fn find<'a>(frames: &'a [Value], m: &str) -> Option<&'a Value> {
    frames.iter().find(|f| f["method"] == m)
}

/// `GET path` on `addr` with HTTP/1.1; returns the status code and the body.
pub async fn http_get(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut s = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut raw))
        .await
        .expect("read timed out")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// JSON that keeps the order of object keys (`serde_json::Value` sorts them).
#[derive(Debug, Clone, PartialEq)]
pub enum OJson {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number.
    Num(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<OJson>),
    /// An object, keys in document order.
    Obj(Vec<(String, OJson)>),
}

impl OJson {
    /// Parse JSON text.
    pub fn parse(text: &str) -> OJson {
        serde_json::from_str(text).expect("valid JSON")
    }

    /// The value at `key` of an object.
    pub fn get(&self, key: &str) -> Option<&OJson> {
        match self {
            OJson::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value at a path of object keys, for editing.
    pub fn at_mut(&mut self, path: &[&str]) -> &mut OJson {
        let mut cur = self;
        for key in path {
            cur = match cur {
                OJson::Obj(kv) => {
                    &mut kv
                        .iter_mut()
                        .find(|(k, _)| k == key)
                        .unwrap_or_else(|| panic!("no key {key}"))
                        .1
                }
                other => panic!("not an object at {key}: {other:?}"),
            };
        }
        cur
    }

    /// Keys of an object, in order.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            OJson::Obj(kv) => kv.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// A short type name.
    pub fn kind(&self) -> &'static str {
        match self {
            OJson::Null => "null",
            OJson::Bool(_) => "bool",
            OJson::Num(_) => "number",
            OJson::Str(_) => "string",
            OJson::Arr(_) => "array",
            OJson::Obj(_) => "object",
        }
    }

    /// The string value, if a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            OJson::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for OJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OJson;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E: de::Error>(self) -> Result<OJson, E> {
                Ok(OJson::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<OJson, E> {
                Ok(OJson::Null)
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<OJson, E> {
                Ok(OJson::Bool(b))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<OJson, E> {
                Ok(OJson::Num(n as f64))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<OJson, E> {
                Ok(OJson::Num(n as f64))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<OJson, E> {
                Ok(OJson::Num(n))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<OJson, E> {
                Ok(OJson::Str(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<OJson, E> {
                Ok(OJson::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<OJson, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(OJson::Arr(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<OJson, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = a.next_entry::<String, OJson>()? {
                    v.push((k, x));
                }
                Ok(OJson::Obj(v))
            }
        }
        d.deserialize_any(V)
    }
}
