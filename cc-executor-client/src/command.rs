//! What to run: the command line and its options.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::protocol::{capability, ExecuteParams, PtySize, StdinMode, MAX_PENDING_INPUT};

/// Timeouts longer than this (about 100 years) are no bound at all: they are neither sent nor
/// enforced, so that no clock arithmetic, here or in the service, can overflow.
const UNBOUNDED: Duration = Duration::from_secs(100 * 365 * 86_400);

/// A command line to run with the service's shell (`<shell> -c`, bash by default), and how to run it.
///
/// With the `schema` feature it deserializes from what a tool takes: `command`, `timeout_secs`
/// (at least 1; `timeout` is accepted too), `cwd`, `stdin` (text) and `pty`; other fields are
/// refused.
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
    /// Text written to the command's stdin, which is then closed (at most 1 MiB; default: stdin
    /// is empty, /dev/null).
    #[cfg_attr(feature = "schema", serde(default, rename = "stdin"))]
    pub(crate) stdin_text: Option<String>,
    /// Keep stdin open for writes while the command runs.
    #[cfg_attr(feature = "schema", serde(skip))]
    pub(crate) stdin_pipe: bool,
    /// Run on a pseudo-terminal (120×40): for programs that insist on one (REPLs, prompts).
    /// stdout and stderr arrive merged; ANSI escapes are stripped from what is returned.
    #[cfg_attr(feature = "schema", serde(default))]
    pub(crate) pty: bool,
    #[cfg_attr(feature = "schema", serde(skip))]
    pub(crate) pty_size: Option<PtySize>,
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
            stdin_text: None,
            stdin_pipe: false,
            pty: false,
            pty_size: None,
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

    /// Keep the command's stdin open: write to it with
    /// [`Controller::write_stdin`](crate::Controller::write_stdin) and close it with
    /// [`Controller::close_stdin`](crate::Controller::close_stdin). Without it (or
    /// [`Command::stdin`], or [`Command::pty`]) stdin is `/dev/null`. Needs a service that
    /// advertises [`capability::STDIN`], else running it fails with [`Error::Unsupported`].
    pub fn stdin_pipe(mut self) -> Self {
        self.stdin_pipe = true;
        self
    }

    /// Write `text` (at most 1 MiB) to the command's stdin as soon as it starts, then close it
    /// (unless [`Command::stdin_pipe`] keeps it open). Needs a service that advertises
    /// [`capability::STDIN`].
    pub fn stdin(mut self, text: impl Into<String>) -> Self {
        self.stdin_text = Some(text.into());
        self
    }

    /// Run the command on a pseudo-terminal of 120×40 (see [`Command::pty_size`]): stdout and
    /// stderr arrive merged as stdout, and its stdin is the terminal (write to it with
    /// [`Controller::write_stdin`](crate::Controller::write_stdin);
    /// [`Controller::close_stdin`](crate::Controller::close_stdin) sends Ctrl-D). Needs a
    /// service that advertises [`capability::PTY`].
    pub fn pty(mut self) -> Self {
        self.pty = true;
        self
    }

    /// Run on a pseudo-terminal of `cols` columns and `rows` rows (see [`Command::pty`]).
    pub fn pty_size(mut self, cols: u16, rows: u16) -> Self {
        self.pty = true;
        self.pty_size = Some(PtySize { cols, rows });
        self
    }

    /// Yield output as the service sends it instead of one event per line: long lines as their
    /// raw chunks ([`crate::OutputEvent::Output`] with `chunk: Some(..)`), and the whole lines
    /// that a service with batched output sends together as one event (`chunk: None`, its `data`
    /// holding every line with its `\n`), as they arrive. For readers that do not need lines
    /// (a log, a file, a byte count): it saves an event per line.
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

    /// The text written to stdin at the start, if any.
    pub fn get_stdin(&self) -> Option<&str> {
        self.stdin_text.as_deref()
    }

    /// Whether stdin stays open for writes ([`Command::stdin_pipe`] or [`Command::pty`]).
    pub fn has_stdin(&self) -> bool {
        self.stdin_pipe || self.stdin_text.is_some() || self.pty
    }

    /// Whether the command runs on a pseudo-terminal.
    pub fn get_pty(&self) -> bool {
        self.pty
    }

    /// Whether output is yielded as the service sends it (see [`Command::raw_chunks`]).
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
        if self
            .stdin_text
            .as_ref()
            .is_some_and(|t| t.len() > MAX_PENDING_INPUT)
        {
            return Err(invalid(
                "the stdin text is larger than 1 MiB; pass a file path to the command instead",
            ));
        }
        if self.pty_size.is_some_and(|s| s.cols == 0 || s.rows == 0) {
            return Err(invalid("the terminal needs at least 1 column and 1 row"));
        }
        Ok(())
    }

    /// The capability the service must advertise to run this command, if it lacks one.
    pub(crate) fn missing_capability(&self, has: impl Fn(&str) -> bool) -> Option<&'static str> {
        if self.pty && !has(capability::PTY) {
            return Some(capability::PTY);
        }
        (self.has_stdin() && !has(capability::STDIN)).then_some(capability::STDIN)
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
            stdin: (self.has_stdin() && !self.pty).then_some(StdinMode::Pipe),
            pty: self.pty,
            pty_size: self.pty_size,
            // Set by the connection, which knows whether the service batches output.
            output: None,
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
