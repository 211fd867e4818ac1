//! Runs every benchmark scenario at a tiny size so the benchmark cannot rot. Asserts that each
//! scenario produced its figure and that nothing failed; never asserts a speed.

use std::process::Command;

#[test]
fn every_scenario_runs_at_a_tiny_size() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("--smoke")
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run the bench binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed\n{stdout}\n{stderr}");

    let figures: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in [
        "latency_reused_ms",
        "latency_connect_ms",
        "lines_per_s",
        "lines_batched_per_s",
        "payload_mb_per_s",
        "payload_batched_mb_per_s",
        "service_peak_rss_mb",
        "client_peak_rss_mb",
        "concurrent_ok",
        "concurrent_failed",
        "concurrent_wall_s",
        "pool_concurrent_ok",
        "pool_concurrent_wall_s",
        "pool_spread_max_over_min",
        "mcp_execute_ms",
        "mcp_flood_short_s",
        "mcp_flood_long_s",
        "limit_lines_per_s",
        "limit_payload_mb_per_s",
    ] {
        let v = figures
            .get(key)
            .and_then(|v| v.as_f64())
            .unwrap_or_else(|| panic!("figure {key} missing in {figures:?}\n{stderr}"));
        assert!(v.is_finite() && v >= 0.0, "{key} = {v}");
    }
    assert_eq!(figures["concurrent_failed"].as_f64(), Some(0.0));
    assert!(figures["concurrent_ok"].as_f64().unwrap() >= 1.0);
    assert_eq!(
        figures["pool_concurrent_ok"].as_f64(),
        Some(10.0),
        "every pooled run succeeds"
    );
    assert!(stdout.contains("latency_reused_ms"), "table printed");
}
