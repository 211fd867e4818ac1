//! A real nginx in front of several services, configured from the project's own
//! `deploy/nginx.conf` (with the test's ports, certificate and a private prefix), and a reader of
//! nginx configuration files.
//!
//! nginx runs as one unprivileged process (`master_process off`) on a high loopback port, with
//! its pid file, logs and temporary folders in a temporary directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ws::WAIT;

/// The project's `deploy/` folder.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// One directive of an nginx configuration: its name, arguments and block (if any).
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    /// The directive's name.
    pub name: String,
    /// Its arguments, quotes removed.
    pub args: Vec<String>,
    /// The directives of its block; empty for a simple directive.
    pub block: Vec<Directive>,
}

impl Directive {
    /// The directives named `name` in this block.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Directive> {
        self.block.iter().filter(move |d| d.name == name)
    }

    /// The first directive named `name` in this block.
    pub fn get<'a>(&'a self, name: &'a str) -> Option<&'a Directive> {
        self.all(name).next()
    }
}

/// Parse an nginx configuration into its directives (as the block of a root directive named
/// `main`). Panics on unbalanced braces or a directive without its `;`.
pub fn parse(text: &str) -> Directive {
    let mut tokens = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(c) = rest.trim_start().chars().next() {
            rest = rest.trim_start();
            if c == '#' {
                break;
            }
            if matches!(c, '{' | '}' | ';') {
                tokens.push(c.to_string());
                rest = &rest[1..];
            } else if c == '\'' || c == '"' {
                let end = rest[1..].find(c).expect("a closing quote") + 1;
                tokens.push(rest[1..end].to_owned());
                rest = &rest[end + 1..];
            } else {
                let end = rest
                    .find(|ch: char| ch.is_whitespace() || matches!(ch, '{' | '}' | ';'))
                    .unwrap_or(rest.len());
                tokens.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    let mut it = tokens.into_iter();
    let block = parse_block(&mut it, true);
    Directive {
        name: "main".into(),
        args: Vec::new(),
        block,
    }
}

fn parse_block(it: &mut impl Iterator<Item = String>, top: bool) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    loop {
        let Some(t) = it.next() else {
            assert!(
                top && words.is_empty(),
                "unexpected end of the configuration"
            );
            return out;
        };
        match t.as_str() {
            ";" | "{" => {
                assert!(!words.is_empty(), "a directive without a name");
                let name = words.remove(0);
                let block = if t == "{" {
                    parse_block(it, false)
                } else {
                    Vec::new()
                };
                out.push(Directive {
                    name,
                    args: std::mem::take(&mut words),
                    block,
                });
            }
            "}" => {
                assert!(!top && words.is_empty(), "unbalanced braces");
                return out;
            }
            _ => words.push(t),
        }
    }
}

/// A self-signed certificate for 127.0.0.1, as PEM, and a client TLS configuration trusting it.
pub struct TestCert {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PEM).
    pub key_pem: String,
    /// A client configuration whose only root is this certificate.
    pub client_config: Arc<rustls::ClientConfig>,
}

impl TestCert {
    /// A fresh certificate.
    pub fn new() -> TestCert {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TestCert {
            cert_pem: cert.cert.pem(),
            key_pem: cert.signing_key.serialize_pem(),
            client_config: Arc::new(client_config),
        }
    }
}

impl Default for TestCert {
    fn default() -> Self {
        Self::new()
    }
}

/// nginx running with `deploy/nginx.conf` in front of some services; killed on drop.
pub struct Nginx {
    /// The `wss://` URL of the WebSocket endpoint.
    pub url: String,
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Start nginx terminating TLS with `cert` on a free loopback port and balancing over the
    /// services at `upstreams` (`host:port` each). Panics when nginx is not installed.
    pub async fn start(upstreams: &[String], cert: &TestCert) -> Nginx {
        let binary = find_nginx().expect(
            "nginx is not installed (Debian: apt-get install nginx); the deployment tests need it",
        );
        raise_nofile_limit();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("tls.crt"), &cert.cert_pem).unwrap();
        std::fs::write(p.join("tls.key"), &cert.key_pem).unwrap();
        let port = free_port();
        let template = std::fs::read_to_string(deploy_dir().join("nginx.conf")).unwrap();
        let conf = configure(&template, upstreams, port, p);
        std::fs::write(p.join("nginx.conf"), conf).unwrap();
        let child = std::process::Command::new(binary)
            .arg("-p")
            .arg(p)
            .arg("-c")
            .arg(p.join("nginx.conf"))
            .arg("-e")
            .arg(p.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx {
            url: format!("wss://127.0.0.1:{port}/ws"),
            child,
            dir,
        };
        nginx.wait_listening(port).await;
        nginx
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    async fn wait_listening(&mut self, port: u16) {
        let start = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nginx exited with {status}:\n{}", self.error_log());
            }
            assert!(
                start.elapsed() < WAIT,
                "nginx did not listen:\n{}",
                self.error_log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_nginx() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

/// Raise this process's open-file limit to its hard limit (nginx inherits it): one session
/// through nginx holds two descriptors there.
fn raise_nofile_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `deploy/nginx.conf` with the test's upstreams, port, certificate and private paths: the
/// directives that only name places on a real host are replaced, the rest is kept as written.
fn configure(template: &str, upstreams: &[String], port: u16, dir: &Path) -> String {
    let d = dir.display();
    let mut out = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n"
    );
    let mut in_upstream = false;
    for line in template.lines() {
        let t = line.trim();
        let first = t.split_whitespace().next().unwrap_or("");
        match first {
            "pid" | "error_log" | "worker_processes" | "user" => continue,
            "access_log" => {
                out.push_str("    access_log off;\n");
                continue;
            }
            "upstream" => in_upstream = true,
            "}" if in_upstream => {
                for u in upstreams {
                    out.push_str(&format!(
                        "        server {u} max_fails=1 fail_timeout=10s;\n"
                    ));
                }
                in_upstream = false;
            }
            "server" if in_upstream => continue,
            "listen" => {
                out.push_str(&format!("        listen 127.0.0.1:{port} ssl;\n"));
                continue;
            }
            "ssl_certificate" => {
                out.push_str(&format!("        ssl_certificate {d}/tls.crt;\n"));
                continue;
            }
            "ssl_certificate_key" => {
                out.push_str(&format!("        ssl_certificate_key {d}/tls.key;\n"));
                continue;
            }
            _ => {}
        }
        out.push_str(line);
        out.push('\n');
        if t == "http {" {
            for temp in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
                out.push_str(&format!("    {temp}_temp_path {d}/{temp}_temp;\n"));
            }
        }
    }
    out
}
