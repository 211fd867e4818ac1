//! The client library (`cc-executor-client`) against the real service over real WebSockets:
//! streaming, batched output, control, failure paths, several services (directly and behind
//! nginx), and the benchmark at a tiny size.
//!
//! One module per topic; [`support`] holds the helpers they share.

mod batching;
mod bench;
mod control;
mod failures;
mod pool;
mod stdin;
mod stream;
mod support;
