//! Shared helpers for the workspace's integration tests.
//!
//! - [`bins`]: locate the workspace's binaries (`cc-executor-server`, `cc-executor-mcp`) built by
//!   `cargo test --workspace`.
//! - [`procs`]: inspect `/proc` to prove that no process of a group survived.
//! - [`ws`]: a raw WebSocket client for the executor protocol, and key-order-preserving JSON.

pub mod bins;
pub mod procs;
pub mod ws;
