//! What to run: the command line and its options.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::protocol::ExecuteParams;

/// Timeouts longer than this (about 100 years) are no bound at all: they are neither sent nor
/// enforced, so that no clock arithmetic, here or in the service, can overflow.
const UNBOUNDED: Duration = Duration::from_secs(100 * 365 * 86_400);

/// A command line to run with the service's shell (`<shell> -c`, bash by default), and how to run it.
///
/// With the `schema` feature it deserializes from what a tool takes: `command`, `timeout_secs`
/// (at least 1; `timeout` is accepted too) and `cwd`; other fields are refused.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "schema", derive(serde::Deserialize, schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(deny_unknown_fields))]
pub struct Command {
    /// Shell command line, run by the service's shell (`<shell> -c`) in its own process group.
    #[cfg_attr(feature = "schema", serde(rename = "command"))]
    pub(crate) line: String,
    /// Seconds before the whole process group is killed (default: the server's default timeout).
    #[cfg_attr(
        feature = "schema",
        serde(default, rename = "timeout_secs", alias = "timeout"),
        serde(deserialize_with = "crate::schema::timeout_secs"),
        schemars(with = "Option<u64>")
    )]
    pub(crate) timeout: Option<Duration>,
    /// Working directory of the command (default: the service's working directory).
    #[cfg_attr(feature = "schema", serde(default))]
    pub(crate) cwd: Option<PathBuf>,
    #[cfg_attr(feature = "schema", serde(skip))]
    pub(crate) raw_chunks: bool,
}

impl Command {
    /// A command line, run by the service with its shell (`<shell> -c`).
    pub fn new(line: impl Into<String>) -> Self {
        Command {
            line: line.into(),
            timeout: None,
            cwd: None,
            raw_chunks: false,
        }
    }

    /// Bound the whole run: sent to the service and also enforced by the client, which cancels the
    /// run at the deadline and ends the stream with [`crate::Error::Timeout`].
    ///
    /// A timeout of more than 100 years (e.g. `Duration::MAX`) means no bound.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Bound the whole run by `timeout` unless it has a timeout already (e.g. a default).
    pub fn or_timeout(mut self, timeout: Duration) -> Self {
        self.timeout.get_or_insert(timeout);
        self
    }

    /// Working directory for the command on the service's machine.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Yield long lines as the service's raw chunks ([`crate::OutputEvent::Output`] with
    /// `chunk: Some(..)`) instead of reassembling them into one event.
    pub fn raw_chunks(mut self, raw: bool) -> Self {
        self.raw_chunks = raw;
        self
    }

    /// The command line.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The timeout, if any.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The working directory, if any.
    pub fn get_cwd(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }

    /// Whether long lines are yielded as raw chunks.
    pub fn get_raw_chunks(&self) -> bool {
        self.raw_chunks
    }

    /// Check that the command can be run: a non-blank command line (else
    /// [`Error::CommandNotAllowed`], as a service answers it), a timeout (when set) above zero
    /// (else [`Error::InvalidCommand`]). [`Client::execute`](crate::Client::execute) and the other
    /// ways to run a command call it first, so a bad command fails before anything is sent.
    pub fn validate(&self) -> Result<()> {
        if self.line.trim().is_empty() {
            return Err(Error::CommandNotAllowed {
                message: "the command line is empty".into(),
            });
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(invalid(
                "the timeout is zero; give a positive timeout, or none",
            ));
        }
        Ok(())
    }

    /// The timeout the run is held to: [`Command::get_timeout`] unless it is too long to matter.
    pub(crate) fn bound(&self) -> Option<Duration> {
        self.timeout.filter(|t| *t <= UNBOUNDED)
    }

    /// The `execute` params this command is sent as.
    pub(crate) fn to_params(&self) -> ExecuteParams {
        ExecuteParams {
            command: self.line.clone(),
            timeout: self.bound().map(|t| t.as_secs_f64()),
            cwd: self.cwd.as_ref().map(|d| d.to_string_lossy().into_owned()),
        }
    }
}

/// An [`Error::InvalidCommand`] for `reason`.
pub(crate) fn invalid(reason: &str) -> Error {
    Error::InvalidCommand {
        reason: reason.to_owned(),
    }
}

impl From<&str> for Command {
    fn from(line: &str) -> Self {
        Command::new(line)
    }
}

impl From<String> for Command {
    fn from(line: String) -> Self {
        Command::new(line)
    }
}

impl From<&Command> for Command {
    fn from(cmd: &Command) -> Self {
        cmd.clone()
    }
}

impl From<&String> for Command {
    fn from(line: &String) -> Self {
        Command::new(line.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_timeout_is_not_sent() {
        let cmd = Command::new("x").timeout(Duration::MAX);
        assert_eq!(cmd.get_timeout(), Some(Duration::MAX));
        assert_eq!(cmd.to_params().timeout, None);
        let cmd = Command::new("x").timeout(Duration::from_millis(1500));
        assert_eq!(cmd.to_params().timeout, Some(1.5));
    }

    #[test]
    fn blank_lines_and_zero_timeouts_are_refused() {
        assert!(matches!(
            Command::new(" \n").validate(),
            Err(Error::CommandNotAllowed { .. })
        ));
        let zero = Command::new("true").timeout(Duration::ZERO);
        assert!(matches!(zero.validate(), Err(Error::InvalidCommand { .. })));
        assert!(Command::new("true").validate().is_ok());
    }
}
