//! The `cc-executor-server` binary's command line.
//!
//! Living in this package also makes `cargo test --workspace` build the binary, which the
//! workspace's integration tests (`tests/`) start as a real process.

use std::process::Command;

#[test]
fn help_lists_the_options_and_bad_flags_fail() {
    let out = Command::new(env!("CARGO_BIN_EXE_cc-executor-server"))
        .arg("--help")
        .output()
        .expect("run cc-executor-server --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--listen", "--max-sessions", "--token", "--allow"] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_cc-executor-server"))
        .arg("--no-such-flag")
        .output()
        .expect("run cc-executor-server --no-such-flag");
    assert!(!bad.status.success());
}
