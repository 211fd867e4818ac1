//! The client library (`cc-executor-client`) against the real service over real WebSockets:
//! streaming, control, failure paths, and the benchmark at a tiny size.
//!
//! One module per topic; [`support`] holds the helpers they share.

mod bench;
mod control;
mod failures;
mod stdin;
mod stream;
mod support;
