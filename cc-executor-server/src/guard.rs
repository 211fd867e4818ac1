//! The browser and DNS-rebinding guard checked before every WebSocket upgrade.
//!
//! Browsers let any web page open a WebSocket to any address, loopback included, and always
//! send the page's `Origin` with the upgrade; other clients (ours, the Python one, `websocat`)
//! send none. So an upgrade with an `Origin` comes from a web page, and is refused unless that
//! origin was listed. A DNS-rebinding page reaches a loopback service under a name of its own,
//! which shows in `Host`: on a loopback listener only loopback addresses and `localhost`, plus
//! the listed names, are accepted.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::http::{header, HeaderMap};

/// Longest header value quoted back in a refusal.
const MAX_QUOTED: usize = 200;

/// What is accepted.
#[derive(Debug)]
pub(crate) struct Guard {
    origins: Vec<String>,
    hosts: Vec<String>,
    /// The service listens on a loopback address: check `Host`.
    check_host: bool,
}

/// Why an upgrade was refused; its `Display` is the plain-text body of the 403.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A web page of an origin that was not listed.
    Origin(String),
    /// A `Host` that is neither loopback nor listed.
    Host(String),
    /// A header that is not visible ASCII.
    Unreadable(&'static str),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Origin(o) => write!(
                f,
                "origin {o:?} is not allowed: the service refuses WebSocket connections from web \
                 pages unless their origin is listed with --allow-origin"
            ),
            Refusal::Host(h) => write!(
                f,
                "host {h:?} is not allowed: a service listening on loopback accepts only \
                 loopback addresses and localhost unless the host is listed with --allow-host"
            ),
            Refusal::Unreadable(name) => write!(f, "the {name} header is not readable text"),
        }
    }
}

impl Guard {
    /// The guard of a service bound to `local`.
    pub fn new(origins: &[String], hosts: &[String], local: SocketAddr) -> Self {
        let clean = |list: &[String]| -> Vec<String> {
            list.iter()
                .map(|s| s.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Guard {
            origins: clean(origins),
            hosts: clean(hosts),
            check_host: local.ip().is_loopback(),
        }
    }

    /// Accept or refuse an upgrade with these headers.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        for origin in headers.get_all(header::ORIGIN) {
            let origin = origin.to_str().map_err(|_| Refusal::Unreadable("Origin"))?;
            let wanted = origin.trim().trim_end_matches('/');
            if !self.origins.iter().any(|o| o.eq_ignore_ascii_case(wanted)) {
                return Err(Refusal::Origin(quote(origin)));
            }
        }
        if self.check_host {
            // No Host at all is no browser (they always send one).
            if let Some(host) = headers.get(header::HOST) {
                let host = host.to_str().map_err(|_| Refusal::Unreadable("Host"))?;
                if !self.host_allowed(host.trim()) {
                    return Err(Refusal::Host(quote(host)));
                }
            }
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        is_loopback(name)
            || self
                .hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(name))
    }
}

/// `localhost`, a loopback IPv4 address, or a bracketed loopback IPv6 address.
fn is_loopback(name: &str) -> bool {
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match name.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .and_then(|v6| v6.parse::<Ipv6Addr>().ok())
            .is_some_and(|ip| ip.is_loopback()),
        None => name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback()),
    }
}

/// The name part of a `Host` value (brackets kept for IPv6): the value without its `:port`.
fn host_name(host: &str) -> &str {
    let (name, port) = match host.rfind(']') {
        Some(end) if host.starts_with('[') => host.split_at(end + 1),
        _ => match host.rfind(':') {
            Some(colon) => host.split_at(colon),
            None => (host, ""),
        },
    };
    match port.strip_prefix(':') {
        None if port.is_empty() => name,
        Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// `value` clipped for quoting in a refusal.
fn quote(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn guard(origins: &[&str], hosts: &[&str], local: &str) -> Guard {
        let own = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Guard::new(&own(origins), &own(hosts), local.parse().unwrap())
    }

    #[test]
    fn origins() {
        let g = guard(&["http://localhost:3000/"], &[], "127.0.0.1:8004");
        assert_eq!(g.check(&headers(&[])), Ok(()));
        assert_eq!(
            g.check(&headers(&[("origin", "HTTP://LOCALHOST:3000")])),
            Ok(())
        );
        for bad in ["http://evil.example", "null", "http://localhost:3001"] {
            let r = g.check(&headers(&[("origin", bad)]));
            assert_eq!(r, Err(Refusal::Origin(bad.into())), "{bad}");
        }
        // Every Origin header must be listed.
        let two = headers(&[
            ("origin", "http://localhost:3000"),
            ("origin", "http://evil.example"),
        ]);
        assert!(g.check(&two).is_err());
        let msg = Refusal::Origin("http://evil.example".into()).to_string();
        assert!(msg.contains("http://evil.example") && msg.contains("--allow-origin"));
    }

    #[test]
    fn hosts_on_loopback() {
        let g = guard(&[], &["proxy.internal", "box.lan:9000"], "127.0.0.1:8004");
        for ok in [
            "127.0.0.1:8004",
            "127.0.0.1",
            "127.1.2.3:1",
            "localhost:1234",
            "LocalHost",
            "[::1]:8004",
            "[::1]",
            "proxy.internal",
            "proxy.internal:443",
            "box.lan:9000",
        ] {
            assert_eq!(g.check(&headers(&[("host", ok)])), Ok(()), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:8004",
            "localhost.attacker.example",
            "127.0.0.1.nip.io",
            "10.0.0.1:8004",
            "[::2]:8004",
            "box.lan:9001",
            "[::1",
            "[::1]x",
            "::1",
            "localhost:x",
        ] {
            assert_eq!(
                g.check(&headers(&[("host", bad)])),
                Err(Refusal::Host(bad.into())),
                "{bad}"
            );
        }
        let long = "a".repeat(1000);
        match g.check(&headers(&[("host", &long)])) {
            Err(Refusal::Host(h)) => assert_eq!(h.len(), MAX_QUOTED + 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hosts_off_loopback_are_not_checked() {
        let g = guard(&[], &[], "0.0.0.0:8004");
        assert_eq!(g.check(&headers(&[("host", "anything.example")])), Ok(()));
        // Origins still are.
        assert!(g
            .check(&headers(&[("origin", "http://anything.example")]))
            .is_err());
    }
}
