//! `GET /metrics`: Prometheus text behind the token, with counters that match the runs made;
//! `/health` and `/ready` stay open to probes.

use std::collections::HashMap;

use cc_executor_server::Server;
use serde_json::json;
use tests::ws::{http_get, output_of, Client};

use crate::support::addr_of;

/// Each sample as `name{label="value",...}` (labels sorted) with its value.
fn samples(text: &str) -> HashMap<String, f64> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    scrape
        .samples
        .into_iter()
        .filter_map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => return None,
            };
            let mut labels: Vec<_> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            labels.sort();
            let name = if labels.is_empty() {
                s.metric
            } else {
                format!("{}{{{}}}", s.metric, labels.join(","))
            };
            Some((name, value))
        })
        .collect()
}

#[tokio::test]
async fn counters_match_the_runs_made() {
    let server = Server::builder()
        .token("m3trics")
        .kill_grace(std::time::Duration::from_millis(300))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = addr_of(&server.url());
    // The probes are open; the metrics are not.
    assert_eq!(http_get(addr, "/health", &[]).await.0, 200);
    assert_eq!(http_get(addr, "/ready", &[]).await.0, 200);
    assert_eq!(http_get(addr, "/metrics", &[]).await.0, 401);
    let bearer = [("Authorization", "Bearer m3trics")];
    let (status, before) = http_get(addr, "/metrics", &bearer).await;
    assert_eq!(status, 200);
    assert_eq!(samples(&before)["cc_executor_runs_started_total"], 0.0);

    let mut c = Client::connect_with(&server.url(), Some("m3trics")).await;
    let mut stdout = 0;
    for i in 0..3 {
        stdout += output_of(&c.run(&format!("echo run {i}")).await, "stdout").len();
    }
    stdout += output_of(
        &c.run("echo Task completed successfully; exit 3").await,
        "stdout",
    )
    .len();
    c.execute(json!({"command": "sleep 30", "timeout": 0.2}), 10)
        .await;
    c.until_completed().await;
    c.execute(json!({"command": "sleep 30"}), 11).await;
    c.frame().await;
    c.control("CANCEL", 12).await;
    c.until_completed().await;
    c.execute(json!({"command": "  "}), 13).await;
    assert!(c.frame().await["error"].is_object());
    let other = Client::connect_with(&server.url(), Some("m3trics")).await;

    let (_, text) = http_get(addr, "/metrics", &bearer).await;
    let m = samples(&text);
    let expect = [
        ("cc_executor_sessions_active", 2.0),
        ("cc_executor_sessions_opened_total", 2.0),
        ("cc_executor_runs_started_total", 6.0),
        ("cc_executor_runs_active", 0.0),
        ("cc_executor_runs_ended_total{outcome=\"completed\"}", 3.0),
        ("cc_executor_runs_ended_total{outcome=\"failed\"}", 1.0),
        ("cc_executor_runs_ended_total{outcome=\"timed_out\"}", 1.0),
        ("cc_executor_runs_ended_total{outcome=\"canceled\"}", 1.0),
        ("cc_executor_runs_ended_total{outcome=\"refused\"}", 1.0),
        (
            "cc_executor_output_bytes_total{stream=\"stdout\"}",
            stdout as f64,
        ),
        (
            "cc_executor_detector_events_total{kind=\"early_completion\"}",
            1.0,
        ),
        ("cc_executor_draining", 0.0),
    ];
    for (name, value) in expect {
        assert_eq!(m.get(name), Some(&value), "{name} in\n{text}");
    }
    let durations = scrape_count(&text, "cc_executor_run_duration_seconds");
    assert_eq!(durations, 6, "one duration per run that started:\n{text}");
    drop((c, other));
    server.shutdown().await;
}

/// The `_count` of histogram `name`.
fn scrape_count(text: &str, name: &str) -> u64 {
    let count = format!("{name}_count ");
    let line = text.lines().find(|l| l.starts_with(&count));
    let line = line.unwrap_or_else(|| panic!("no {count}in\n{text}"));
    line[count.len()..].trim().parse().expect("a count")
}
