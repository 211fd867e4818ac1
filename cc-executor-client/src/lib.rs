//! # cc-executor-client
//!
//! A typed, async, streaming client for the cc-executor protocol (JSON-RPC 2.0 over WebSocket):
//! hand a command, or a fresh `claude -p` instance, to an executor service, stream its output,
//! and pause, resume or cancel its whole process group.
//!
//! ```no_run
//! use cc_executor_client::{Client, OutputEvent, OutputStream};
//! use futures_util::StreamExt;
//!
//! # async fn demo() -> Result<(), cc_executor_client::Error> {
//! let client = Client::new("ws://127.0.0.1:8004/ws")?;
//! let mut run = client.execute("echo hello; echo oops >&2").await?;
//! while let Some(event) = run.next().await {
//!     match event? {
//!         OutputEvent::Output { stream: OutputStream::Stdout, data, .. } => print!("{data}"),
//!         OutputEvent::Completed { exit_code, .. } => println!("exit {exit_code:?}"),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod capture;
pub mod claude;
mod client;
mod command;
mod connection;
pub mod error;
pub mod event;
mod execution;
pub mod jobs;
pub mod protocol;
mod session;
mod transport;

pub use client::{Client, ClientBuilder};
pub use command::Command;
pub use error::{Error, Result};
pub use event::{
    Chunk, OutputEvent, OutputStream, RateLimit, RateLimitKind, RunStatus, TokenLimit,
};
pub use execution::{Controller, Execution, Outcome};
pub use session::Session;

/// The TLS library used for `wss://`, for [`ClientBuilder::tls_config`].
pub use rustls;

/// The README's Rust examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
