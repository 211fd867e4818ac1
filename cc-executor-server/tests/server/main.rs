//! The executor service over real WebSockets: process control, the wire protocol, the allowlist,
//! the reference transcripts, backpressure, and the `cc-executor-server` program itself.
//!
//! One module per topic. Helpers shared with the workspace's other tests (raw WebSocket client,
//! `/proc` inspection, fixtures) come from the `tests` crate.

mod allowlist;
mod backpressure;
mod binary;
mod cli;
mod process;
mod protocol;
mod transcripts;
