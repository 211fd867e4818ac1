//! Background jobs (`cc_executor_client::jobs`) against the real service over real sockets.

mod calls;
mod lifecycle;
mod many;
