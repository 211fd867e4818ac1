//! The executor service over real WebSockets: process control, the wire protocol, the allowlist,
//! the reference transcripts, backpressure, batched output, the `cc-executor-server` program
//! itself, and trust at the network edge (the browser and rebinding guard, bounded replies, the
//! handshake deadline, `--token-file`), the shell, containment (no process of a run outlives
//! it), draining, metrics, and the deployment files of `deploy/`.
//!
//! One module per topic; [`support`] holds the helpers they share. Helpers shared with the
//! workspace's other tests (raw WebSocket client, `/proc` inspection, fixtures) come from the
//! `tests` crate.

mod allowlist;
mod backpressure;
mod batching;
mod binary;
mod browser;
mod containment;
mod deploy;
mod drain;
mod guard;
mod limits;
mod metrics;
mod process;
mod protocol;
mod shell;
mod stdin;
mod support;
mod token_file;
mod transcripts;
