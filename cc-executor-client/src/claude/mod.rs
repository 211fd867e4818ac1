//! Run fresh `claude -p` instances on an executor service and read their stream-json output.
//!
//! - [`ClaudeCommand`] builds a safe command line: every value shell-quoted, the prompt passed
//!   verbatim as one argument after `--`, the variables of a nested Claude Code instance removed,
//!   stdin closed.
//! - [`parse_line`] turns one line of `--output-format stream-json` into a typed [`ClaudeEvent`]
//!   and never fails.
//! - [`crate::Client::execute_claude`] streams a run as [`ClaudeEvent`]s ([`ClaudeExecution`]);
//!   [`crate::Client::run_claude`] waits for its [`ClaudeResult`], turning usage limits and API
//!   429s into [`crate::Error::RateLimited`].
//! - [`ClaudeResult::failure`] says why a run failed as typed data ([`ClaudeFailure`]), read from
//!   `is_error`, `terminal_reason` and `api_error_status`; [`ClaudeEvent::readable`] shows a run
//!   as lines a person reads.
//!
//! ```no_run
//! use std::time::Duration;
//! use cc_executor_client::claude::ClaudeCommand;
//! use cc_executor_client::{Client, Error};
//!
//! # async fn demo() -> Result<(), Error> {
//! let client = Client::new("ws://127.0.0.1:8004/ws")?;
//! let first = client
//!     .run_claude(
//!         ClaudeCommand::new("Write a haiku about Rust")
//!             .model("sonnet")
//!             .max_turns(1)
//!             .timeout(Duration::from_secs(300)),
//!     )
//!     .await?;
//! println!("{}", first.result.as_deref().unwrap_or_default());
//!
//! // Continue the conversation: take the session id of the latest result.
//! if let Some(session) = &first.session_id {
//!     let next = client
//!         .run_claude(ClaudeCommand::new("Now one about Python").resume(session.as_str()))
//!         .await?;
//!     println!("{}", next.result.as_deref().unwrap_or_default());
//! }
//! # Ok(()) }
//! ```

mod bounded;
mod command;
mod failure;
mod limit;
mod readable;
mod run;
mod stream;

pub use bounded::BoundedResult;
pub use command::{shell_quote, user_message, ClaudeCommand, NestedEnv, NESTED_ENV_VARS};
pub use failure::ClaudeFailure;
pub use run::{result_from_output, ClaudeExecution};
pub use stream::{
    parse_line, AssistantMessage, ClaudeEvent, ClaudeResult, ContentBlock, Init, RateLimitInfo,
    Usage, UserMessage,
};
