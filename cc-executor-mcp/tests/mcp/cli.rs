//! The `cc-executor-mcp` binary's command line.
//!
//! Living in this package also makes `cargo test --workspace` build the binary, which the
//! workspace's integration tests (`tests/`) drive over stdio as an MCP host would.

use std::process::Command;

#[test]
fn help_lists_the_settings_and_bad_flags_fail() {
    let out = Command::new(env!("CARGO_BIN_EXE_cc-executor-mcp"))
        .arg("--help")
        .output()
        .expect("run cc-executor-mcp --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for setting in [
        "--url",
        "CC_EXECUTOR_WEBSOCKET_URL",
        "--default-timeout",
        "--max-output-chars",
    ] {
        assert!(help.contains(setting), "--help lacks {setting}:\n{help}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_cc-executor-mcp"))
        .arg("--no-such-flag")
        .output()
        .expect("run cc-executor-mcp --no-such-flag");
    assert!(!bad.status.success());
}
