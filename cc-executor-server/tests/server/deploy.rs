//! The files of `deploy/` name only ports, flags and paths the service really has: each is
//! parsed, its flags are compared with `cc-executor-server --help`, and its probe paths are asked
//! of a running service.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;
use tests::nginx::{deploy_dir, parse, Directive};
use tests::ws::http_get;

/// What `--help` says: the flags, the default port and the default heartbeat and drain (s).
struct Help {
    flags: BTreeSet<String>,
    port: u16,
    heartbeat: f64,
    drain: f64,
}

fn help() -> Help {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cc-executor-server"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let flags = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_alphanumeric())
                .to_owned()
        })
        .collect();
    // The `[default: ...]` that follows the description of `--name`.
    let default_of = |flag: &str| -> String {
        let at = text.find(&format!("{flag} <")).expect(flag);
        let rest = &text[at..];
        let d = rest.find("[default: ").expect("a default") + "[default: ".len();
        rest[d..d + rest[d..].find(']').unwrap()].to_owned()
    };
    let listen = default_of("--listen");
    Help {
        flags,
        port: listen.rsplit(':').next().unwrap().parse().unwrap(),
        heartbeat: default_of("--heartbeat-interval").parse().unwrap(),
        drain: default_of("--drain-timeout").parse().unwrap(),
    }
}

/// Every `--flag` of `args` (`--flag=value` or `--flag value`) is one the binary has; returns
/// the value of each.
fn flag_values(args: &[String], help: &Help) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        let Some(flag) = a.strip_prefix("--") else {
            continue;
        };
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n.to_owned(), v.to_owned()),
            None => (flag.to_owned(), it.next().cloned().unwrap_or_default()),
        };
        assert!(
            help.flags.contains(&format!("--{name}")),
            "--{name} is no flag of cc-executor-server"
        );
        out.push((name, value));
    }
    out
}

fn value_of<'a>(flags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    flags
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Paths the service answers with 200 (a running one is asked).
async fn assert_served(paths: &[&str]) {
    let server = crate::support::server().await;
    for path in paths {
        let (status, _) = http_get(server.local_addr(), path, &[]).await;
        // The WebSocket path answers a plain GET with an upgrade error, not 404.
        assert_ne!(status, 404, "the service has no {path}");
        if !path.starts_with("/ws") {
            assert_eq!(status, 200, "{path}");
        }
    }
    server.shutdown().await;
}

fn seconds(value: &str) -> f64 {
    value.trim_end_matches('s').parse().expect("seconds")
}

#[tokio::test]
async fn nginx_conf_balances_websockets_over_the_service_port() {
    let help = help();
    let text = std::fs::read_to_string(deploy_dir().join("nginx.conf")).unwrap();
    let main = parse(&text);
    let http = main.get("http").expect("an http block");
    let upstream = http.get("upstream").expect("an upstream");
    assert!(upstream.get("least_conn").is_some(), "least_conn balancing");
    let servers: Vec<&Directive> = upstream.all("server").collect();
    assert!(servers.len() >= 2, "several services");
    for s in &servers {
        let port: u16 = s.args[0].rsplit(':').next().unwrap().parse().unwrap();
        assert_eq!(port, help.port, "the service's default port");
    }
    let server = http.get("server").expect("a server block");
    let listen = server.get("listen").unwrap();
    assert!(listen.args.iter().any(|a| a == "ssl"), "TLS ends at nginx");
    assert!(server.get("ssl_certificate").is_some() && server.get("ssl_certificate_key").is_some());
    let locations: Vec<&Directive> = server.all("location").collect();
    let paths: Vec<&str> = locations
        .iter()
        .map(|l| l.args.last().unwrap().as_str())
        .collect();
    let ws = locations
        .iter()
        .find(|l| l.args.last().unwrap() == "/ws")
        .expect("a /ws location");
    let upstream_name = &upstream.args[0];
    assert_eq!(
        ws.get("proxy_pass").unwrap().args[0],
        format!("http://{upstream_name}")
    );
    assert_eq!(ws.get("proxy_http_version").unwrap().args, ["1.1"]);
    let headers: Vec<(&str, &str)> = ws
        .all("proxy_set_header")
        .map(|h| (h.args[0].as_str(), h.args[1].as_str()))
        .collect();
    assert!(
        headers.contains(&("Upgrade", "$http_upgrade")),
        "{headers:?}"
    );
    assert!(
        headers.contains(&("Connection", "$connection_upgrade")),
        "{headers:?}"
    );
    // Sessions idle longer than a heartbeat interval must not be cut.
    for timeout in ["proxy_read_timeout", "proxy_send_timeout"] {
        let t = seconds(&ws.get(timeout).expect(timeout).args[0]);
        assert!(t > 2.0 * help.heartbeat, "{timeout} {t}s");
    }
    assert_served(&paths).await;
}

#[tokio::test]
async fn kubernetes_yaml_probes_ready_and_outlasts_the_drain() {
    let help = help();
    let text = std::fs::read_to_string(deploy_dir().join("kubernetes.yaml")).unwrap();
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("valid YAML"))
        .collect();
    let of_kind = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    let deployment = of_kind("Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args: Vec<String> = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let flags = flag_values(&args, &help);
    let listen = value_of(&flags, "listen").expect("--listen");
    let port: u64 = listen.rsplit(':').next().unwrap().parse().unwrap();
    let container_port = &container["ports"][0];
    assert_eq!(container_port["containerPort"].as_u64(), Some(port));
    let port_name = container_port["name"].as_str().unwrap();
    let readiness = &container["readinessProbe"]["httpGet"];
    assert_eq!(readiness["path"], "/ready");
    assert_eq!(readiness["port"], port_name);
    let liveness = container["livenessProbe"]["httpGet"]["path"]
        .as_str()
        .unwrap();
    assert!(
        value_of(&flags, "token-file").is_some(),
        "a token from a Secret"
    );
    let drain = value_of(&flags, "drain-timeout").map_or(help.drain, |v| v.parse().unwrap());
    let grace = pod["terminationGracePeriodSeconds"].as_f64().unwrap();
    assert!(
        grace > drain + 2.0,
        "grace {grace}s against a {drain}s drain"
    );

    let service = of_kind("Service");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port_name);
    let ingress = of_kind("Ingress");
    let annotations = ingress["metadata"]["annotations"].as_mapping().unwrap();
    for key in ["proxy-read-timeout", "proxy-send-timeout"] {
        let key = format!("nginx.ingress.kubernetes.io/{key}");
        let t: f64 = annotations[key.as_str()].as_str().unwrap().parse().unwrap();
        assert!(t > 2.0 * help.heartbeat, "{key} {t}");
    }
    let path = &ingress["spec"]["rules"][0]["http"]["paths"][0];
    assert_eq!(
        path["backend"]["service"]["name"],
        service["metadata"]["name"]
    );
    let ws_path = path["path"].as_str().unwrap();
    assert!(
        ingress["spec"]["tls"].as_sequence().is_some(),
        "TLS at the Ingress"
    );
    assert_served(&["/ready", liveness, ws_path]).await;
}

#[tokio::test]
async fn the_systemd_unit_is_hardened_and_reads_its_token_as_a_credential() {
    let help = help();
    let text = std::fs::read_to_string(deploy_dir().join("cc-executor-server.service")).unwrap();
    let entries: Vec<(&str, &str)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .map(|l| l.split_once('=').expect("key=value"))
        .collect();
    let get = |k: &str| {
        entries
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no {k}="))
    };
    assert_eq!(get("NoNewPrivileges"), "yes");
    assert!(["strict", "full"].contains(&get("ProtectSystem")));
    assert_eq!(
        get("KillMode"),
        "mixed",
        "SIGTERM to the service only: it drains"
    );
    let (credential, _) = get("LoadCredential").split_once(':').unwrap();
    let exec: Vec<String> = get("ExecStart")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert!(exec[0].ends_with("/cc-executor-server"));
    let flags = flag_values(&exec[1..], &help);
    assert_eq!(
        value_of(&flags, "token-file"),
        Some(format!("%d/{credential}").as_str()),
        "the token file is the credential"
    );
    let listen = value_of(&flags, "listen").unwrap();
    assert_eq!(listen.rsplit(':').next().unwrap(), help.port.to_string());
    let drain = value_of(&flags, "drain-timeout").map_or(help.drain, |v| v.parse().unwrap());
    let stop: f64 = get("TimeoutStopSec").parse().unwrap();
    assert!(
        stop > drain + 2.0,
        "TimeoutStopSec {stop} against a {drain}s drain"
    );
}
