//! The wire format: serde types for every JSON-RPC 2.0 frame of the executor protocol.
//!
//! These types mirror the frames byte-for-byte in shape (field names, field order, `null` where
//! the reference service sends `null`). They are shared by the client (`cc-executor-client`, which
//! re-exports this crate as `cc_executor_client::protocol` and maps frames to its own public event
//! types) and the service (`cc-executor-server`).
//!
//! Decoding is forward compatible: unknown fields are ignored and unknown notification methods
//! decode as [`ServerNotification::Unknown`].
//!
//! ```
//! use cc_executor_protocol::{ServerFrame, ServerNotification};
//!
//! let text = r#"{"jsonrpc":"2.0","method":"process.output","params":{"type":"stdout","data":"hi\n","truncated":false,"chunk_index":null,"total_chunks":null}}"#;
//! match ServerFrame::decode(text).unwrap() {
//!     ServerFrame::Notification(ServerNotification::ProcessOutput(out)) => assert_eq!(out.data, "hi\n"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```
//!
//! What is here: the names used on the wire ([`method`], [`code`], [`capability`], [`status`]),
//! the JSON-RPC envelope ([`Request`], [`Response`], [`Id`], [`ErrorObject`], [`Notification`]),
//! the params of each method ([`ExecuteParams`], [`OutputParams`], …), the frames a service sends
//! ([`ServerFrame`], [`ServerNotification`]) and [`codec`], the hand-written fast path for
//! `process.output`.
#![warn(missing_docs)]

pub mod codec;
#[cfg(test)]
mod decode_differential;
mod envelope;
mod frame;
mod names;
mod params;
mod quote;

pub use envelope::{ErrorObject, Id, Notification, Request, Response};
pub use frame::{DecodeError, ServerFrame, ServerNotification};
pub use names::{
    capability, code, method, status, BATCH_BYTES, CHUNK_CHARS, JSONRPC_VERSION, MAX_PENDING_INPUT,
    PROTOCOL_VERSION,
};
pub use params::{
    CompletedParams, ConnectedParams, ControlParams, ControlResult, ControlType,
    EarlyCompletionParams, ExecuteParams, ExecuteResult, InputParams, InputResult, OutputMode,
    OutputParams, OutputStream, PingParams, ProcessStatusParams, PtySize, RateLimitParams,
    StdinMode, TokenLimitParams,
};
pub use quote::shell_quote;
