//! # cc-executor-client
//!
//! A typed, async, streaming client for the cc-executor protocol (JSON-RPC 2.0 over WebSocket):
//! hand a command, or a fresh `claude -p` instance, to an executor service, stream its output as
//! it is produced, and pause, resume or cancel its whole process group.
//!
//! ```
//! use cc_executor_client::{Client, OutputEvent, OutputStream, RunStatus};
//! use futures_util::StreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let service = cc_executor_server::Server::builder().bind("127.0.0.1:0").await?;
//! # let url = service.url();
//! // `url` is e.g. "ws://127.0.0.1:8004/ws".
//! let client = Client::new(&url)?;
//! let mut run = client.execute("echo hello; echo oops >&2; exit 3").await?;
//! let ctl = run.controller(); // pause / resume / cancel from any task
//! # let _ = ctl;
//! let mut stdout = String::new();
//! while let Some(event) = run.next().await {
//!     match event? {
//!         OutputEvent::Output { stream: OutputStream::Stdout, data, .. } => stdout.push_str(&data),
//!         OutputEvent::Completed { status, exit_code, .. } => {
//!             assert_eq!(status, RunStatus::Failed);
//!             assert_eq!(exit_code, Some(3));
//!         }
//!         _ => {}
//!     }
//! }
//! assert_eq!(stdout, "hello\n");
//!
//! // Or collect everything at once.
//! let outcome = client.run("uname -s").await?;
//! assert!(outcome.success());
//! # Ok(()) }
//! ```
//!
//! ## What is here
//!
//! - [`Client`] (built with [`Client::builder`]: token, connect timeout, heartbeat, TLS) runs each
//!   command in a fresh session: [`Client::execute`] gives an [`Execution`], a `Stream` of
//!   [`OutputEvent`]s with a cloneable [`Controller`]; [`Client::run`] collects an [`Outcome`];
//!   [`Client::session`] keeps one connection for several runs. With several services
//!   ([`Client::builder_with_endpoints`]) it spreads sessions over them and skips the ones down
//!   or draining ([`Client::endpoints`]).
//! - [`Command`]: the command line, a timeout that bounds the whole run (enforced by the client too),
//!   a working directory.
//! - [`claude`]: safe `claude -p` command lines, a typed stream-json parser and
//!   [`Client::run_claude`].
//! - [`jobs`]: background runs to come back to (status, paged output, wait, cancel).
//! - [`capture`]: bounded head-and-tail capture of a run's output with the whole output in a file.
//! - [`output_dir`]: where whole outputs are saved (a private folder, private files) and for how
//!   long.
//! - [`protocol`]: the wire format, for services and tools that speak it.
//!
//! Errors are one [`Error`] enum with distinct variants for what a caller acts on: a refused
//! command, a run already going, the service's session limit, a timeout, a closed or silent
//! connection, and Claude's token and rate limits (with their reset time).
//!
//! The client works with the Rust service (`cc-executor-server`) and with the reference Python
//! service; where the two differ (a final `process.completed` after a cancel, `timeout` bounding
//! the whole run), it reads the service's `connected.capabilities` and behaves the same for both.
#![warn(missing_docs)]

mod ansi;
pub mod capture;
pub mod claude;
mod client;
mod command;
mod connection;
mod endpoints;
pub mod error;
pub mod event;
mod execution;
pub mod jobs;
mod outcome;
pub mod output_dir;
pub mod progress;
#[cfg(feature = "schema")]
pub mod schema;
mod session;
mod text;
mod transport;
mod wire;

pub use ansi::strip_ansi;
pub use client::{Client, ClientBuilder};
pub use command::Command;
pub use endpoints::{EndpointHealth, EndpointStatus};
pub use error::{Error, Result};
pub use event::{
    Chunk, OutputEvent, OutputStream, RateLimit, RateLimitKind, RunStatus, TokenLimit,
};
pub use execution::{Controller, Execution, Outcome};
pub use session::Session;

/// The wire format, re-exported from [`cc_executor_protocol`].
pub use cc_executor_protocol as protocol;
/// The TLS library used for `wss://`, for [`ClientBuilder::tls_config`].
pub use rustls;

/// The README's Rust examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
