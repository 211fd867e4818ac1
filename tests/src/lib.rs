//! Shared helpers for the workspace's integration tests.
//!
//! The tests are six binaries, one per concern: `client`, `claude`, `jobs` and `protocol` in this
//! crate (`tests/<concern>/main.rs`), `server` in `cc-executor-server/tests/server` and `mcp` in
//! `cc-executor-mcp/tests/mcp` (there, `CARGO_BIN_EXE_*` names the binary under test). Each
//! `main.rs` declares one module per topic.
//!
//! - [`bins`]: locate the workspace's binaries (`cc-executor-server`, `cc-executor-mcp`) built by
//!   `cargo test --workspace`.
//! - [`nginx`]: a real nginx from `deploy/nginx.conf` in front of services, a self-signed
//!   certificate, and a reader of nginx configurations.
//! - [`output`]: commands that exercise how output is framed (batched or line by line).
//! - [`procs`]: inspect `/proc` to prove that no process of a group survived.
//! - [`service`]: the `cc-executor-server` binary as a child process.
//! - [`ws`]: a raw WebSocket client for the executor protocol, and key-order-preserving JSON.
//! - [`fixtures_dir`]: the recorded samples and transcripts the tests replay.

use std::path::PathBuf;

pub mod bins;
pub mod nginx;
pub mod output;
pub mod procs;
pub mod service;
pub mod ws;

/// The directory of the tests' fixtures (`claude/` stream-json samples, `transcripts/` of the
/// reference service), wherever the calling test lives.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}
