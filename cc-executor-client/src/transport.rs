//! Opening a connection: TCP, TLS, the WebSocket upgrade and the service's `connected` frame.

use std::sync::{Arc, OnceLock};

use futures_util::{SinkExt, StreamExt};
use rustls::ClientConfig;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::UrlError;
use tokio_tungstenite::tungstenite::http::{header::AUTHORIZATION, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use url::Url;

use crate::client::Config;
use crate::error::{BoxError, Error, Result};
use crate::protocol::{ConnectedParams, Request, ServerFrame, ServerNotification};

/// The WebSocket type every connection uses.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<BufReader<TcpStream>>>;

/// Bytes read from the socket at a time.
///
/// tungstenite asks for little more than the frame it is reading, so without this buffer a
/// stream of small frames costs about one `recv` per frame.
const SOCKET_READ_BUFFER: usize = 64 * 1024;

/// Bytes tungstenite takes from [`SOCKET_READ_BUFFER`] at a time. It zeroes that much of its own
/// buffer on every read (128 KiB by default): with many short-lived connections that zeroing was
/// a good part of the client's CPU time.
const FRAME_READ_BUFFER: usize = 8 * 1024;

/// A TLS configuration trusting the platform's roots plus the Mozilla roots, with the `ring`
/// provider chosen explicitly: rustls cannot pick a process-level provider on its own here.
pub(crate) fn default_tls_config() -> Result<Arc<ClientConfig>, BoxError> {
    static DEFAULT: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            // Missing or unreadable platform roots are not fatal: the Mozilla roots remain.
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(Into::into)
}

/// The TLS configuration for `wss://` connections to `url`: the client's, else the default.
pub(crate) fn tls_config(cfg: &Config, url: &str) -> Result<Arc<ClientConfig>> {
    match &cfg.tls {
        Some(tls) => Ok(tls.clone()),
        None => default_tls_config().map_err(|source| Error::Tls {
            url: url.to_owned(),
            source,
        }),
    }
}

/// Connect to `url`, upgrade and wait for `connected`, all bounded by the connect timeout.
pub(crate) async fn connect(cfg: &Config, url: &Url) -> Result<(Ws, ConnectedParams)> {
    let target = url;
    let url = url.as_str();
    match tokio::time::timeout(cfg.connect_timeout, connect_inner(cfg, target)).await {
        Ok(r) => r,
        Err(_) => Err(Error::ConnectTimeout {
            url: url.to_owned(),
            after: cfg.connect_timeout,
        }),
    }
}

async fn connect_inner(cfg: &Config, target: &Url) -> Result<(Ws, ConnectedParams)> {
    let url = target.as_str();
    let mut request = url.into_client_request().map_err(|e| Error::InvalidUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    if let Some(token) = &cfg.token {
        let value =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| Error::InvalidUrl {
                url: url.to_owned(),
                reason: format!("the token cannot be sent in a header: {e}"),
            })?;
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    let connector = if target.scheme() == "wss" {
        Connector::Rustls(tls_config(cfg, url)?)
    } else {
        Connector::Plain
    };
    let tcp = connect_tcp(&request)
        .await
        .map_err(|e| classify_connect_error(url, e))?;
    // The default limits (64 MiB a message) hold any chunk: 65,536 characters, even escaped.
    let config = WebSocketConfig::default().read_buffer_size(FRAME_READ_BUFFER);
    let (mut ws, _response) = tokio_tungstenite::client_async_tls_with_config(
        request,
        BufReader::with_capacity(SOCKET_READ_BUFFER, tcp),
        Some(config),
        Some(connector),
    )
    .await
    .map_err(|e| classify_connect_error(url, e))?;
    let connected = read_connected(url, &mut ws).await?;
    Ok((ws, connected))
}

/// The TCP connection for `request`, with Nagle's algorithm off: requests and `pong`s are small
/// and must not wait for an ACK.
async fn connect_tcp(
    request: &tungstenite::handshake::client::Request,
) -> std::result::Result<TcpStream, tungstenite::Error> {
    let uri = request.uri();
    let host = uri
        .host()
        .ok_or(tungstenite::Error::Url(UrlError::NoHostName))?;
    // An IPv6 address comes in brackets.
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = uri
        .port_u16()
        .or(match uri.scheme_str() {
            Some("wss") => Some(443),
            Some("ws") => Some(80),
            _ => None,
        })
        .ok_or(tungstenite::Error::Url(UrlError::UnsupportedUrlScheme))?;
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Map a handshake failure to the error a caller can act on.
fn classify_connect_error(url: &str, e: tungstenite::Error) -> Error {
    use tungstenite::Error as E;
    match e {
        E::Http(resp) if resp.status() == StatusCode::UNAUTHORIZED => Error::Unauthorized,
        E::Http(resp) if resp.status() == StatusCode::SERVICE_UNAVAILABLE => Error::Unavailable {
            url: url.to_owned(),
        },
        E::Tls(e) => Error::Tls {
            url: url.to_owned(),
            source: Box::new(e),
        },
        // tokio-rustls reports handshake failures as I/O errors wrapping the rustls error.
        E::Io(io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) =>
        {
            Error::Tls {
                url: url.to_owned(),
                source: Box::new(io),
            }
        }
        E::Url(e) => Error::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        },
        E::Http(resp) => Error::Connect {
            url: url.to_owned(),
            source: format!(
                "the WebSocket upgrade was refused with HTTP {}",
                resp.status()
            )
            .into(),
        },
        other => Error::Connect {
            url: url.to_owned(),
            source: Box::new(other),
        },
    }
}

/// Wait for `connected`; a -32003 error (or close 1008) first means the session limit.
async fn read_connected(url: &str, ws: &mut Ws) -> Result<ConnectedParams> {
    loop {
        let msg = match ws.next().await {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                return Err(Error::Connect {
                    url: url.to_owned(),
                    source: Box::new(e),
                })
            }
            None => {
                return Err(Error::ConnectionClosed {
                    code: None,
                    reason: String::new(),
                })
            }
        };
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (Some(u16::from(f.code)), f.reason.to_string()))
                    .unwrap_or((None, String::new()));
                return Err(Error::closed(code, reason));
            }
            Message::Binary(_) => {
                return Err(Error::protocol(
                    "expected `connected`, got a binary frame",
                    "<binary>",
                ))
            }
            _ => continue,
        };
        match ServerFrame::decode(&text) {
            Ok(ServerFrame::Notification(ServerNotification::Connected(c))) => return Ok(c),
            Ok(ServerFrame::Notification(ServerNotification::Ping(_))) => {
                // Answering is harmless and keeps a strict service happy.
                let _ = ws.send(Message::text(Request::pong().encode())).await;
            }
            Ok(ServerFrame::Response(resp)) => {
                if let Some(err) = resp.error {
                    return Err(Error::from_rpc(err, false));
                }
                return Err(Error::protocol("expected `connected`", &text));
            }
            Ok(ServerFrame::Notification(_)) => {
                return Err(Error::protocol("expected `connected` first", &text))
            }
            Err(e) => return Err(Error::protocol(e.to_string(), &text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::http::Response;

    #[test]
    fn the_default_tls_config_needs_no_process_level_provider() {
        let config = default_tls_config().expect("TLS config with ring and the bundled roots");
        assert!(config.crypto_provider().cipher_suites.len() > 1);
    }

    #[test]
    fn handshake_failures_are_classified() {
        let http = |status: u16| {
            let resp = Response::builder().status(status).body(None).unwrap();
            tungstenite::Error::Http(Box::new(resp))
        };
        assert!(matches!(
            classify_connect_error("ws://h/ws", http(401)),
            Error::Unauthorized
        ));
        assert!(matches!(
            classify_connect_error("ws://h/ws", http(404)),
            Error::Connect { .. }
        ));
        let tls = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert!(matches!(
            classify_connect_error("wss://h/ws", tungstenite::Error::Io(tls)),
            Error::Tls { .. }
        ));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            classify_connect_error("ws://h/ws", tungstenite::Error::Io(refused)),
            Error::Connect { .. }
        ));
    }
}
