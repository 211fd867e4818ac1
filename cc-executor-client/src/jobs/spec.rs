//! What a caller asks of the registry in one value: a job to start ([`NewJob`]) and input for a
//! running job ([`JobInput`]). With the `schema` feature both deserialize from a tool's
//! arguments.

use std::time::Duration;

use super::{JobId, JobKind, Jobs};
use crate::claude::{user_message, ClaudeCommand};
use crate::command::{invalid, Command};
use crate::error::Result;

/// Why a [`NewJob`] is refused when it names neither or both of `command` and `claude`.
const ONE_JOB: &str = "give exactly one of `command` (a shell command line) and `claude` (an \
                       object with a `prompt`)";

/// A job to start: exactly one of `command` and `claude` ([`Jobs::start_new`]).
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "schema", derive(serde::Deserialize, schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct NewJob {
    /// Shell command line to run in the background (the service's shell, in its own process group).
    pub command: Option<String>,
    /// A fresh `claude -p` instance to run in the background (`interactive: true` keeps its
    /// input open for job_input). Its own `timeout_secs` and `cwd` take precedence over the ones
    /// beside it.
    pub claude: Option<ClaudeCommand>,
    /// Seconds before the job's process group is killed (default: the server's default timeout).
    #[cfg_attr(
        feature = "schema",
        serde(default, alias = "timeout"),
        serde(deserialize_with = "crate::schema::timeout_secs"),
        schemars(with = "Option<u64>")
    )]
    pub timeout_secs: Option<Duration>,
    /// Working directory of the job (default: the service's working directory).
    pub cwd: Option<String>,
    /// Keep the command's stdin open for job_input (default: stdin is empty).
    #[cfg_attr(feature = "schema", serde(default))]
    pub stdin: bool,
    /// Run the command on a pseudo-terminal (120×40; stdout and stderr merged; job_input types
    /// into it), for programs that insist on one.
    #[cfg_attr(feature = "schema", serde(default))]
    pub pty: bool,
}

impl NewJob {
    /// A command job running `line`.
    pub fn command(line: impl Into<String>) -> NewJob {
        NewJob {
            command: Some(line.into()),
            ..NewJob::default()
        }
    }
}

/// Input for a running job ([`Jobs::input`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(serde::Deserialize, schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct JobInput {
    /// The job id: the integer `id` that `job_start` returned.
    pub id: u64,
    /// Text for the job: written as is to a command's stdin (add the newline a program waits
    /// for); sent as one user message to an interactive Claude job.
    #[cfg_attr(feature = "schema", serde(default))]
    pub text: Option<String>,
    /// Then close the job's input (on a terminal: Ctrl-D); an interactive Claude ends after its
    /// current turn.
    #[cfg_attr(feature = "schema", serde(default))]
    pub eof: bool,
}

impl JobInput {
    /// `text` for job `id`.
    pub fn text(id: JobId, text: impl Into<String>) -> JobInput {
        JobInput {
            id: id.0,
            text: Some(text.into()),
            eof: false,
        }
    }

    /// The end of job `id`'s input.
    pub fn eof(id: JobId) -> JobInput {
        JobInput {
            id: id.0,
            text: None,
            eof: true,
        }
    }
}

impl Jobs {
    /// Start `job`: a command (with its stdin kept open or on a terminal, when asked) or a
    /// Claude run; returns once the service has started it.
    pub async fn start_new(&self, job: NewJob) -> Result<JobId> {
        let (timeout, cwd) = (job.timeout_secs, job.cwd);
        match (job.command, job.claude) {
            (Some(line), None) => {
                let mut cmd = cwd.into_iter().fold(Command::new(line), Command::cwd);
                cmd = timeout.into_iter().fold(cmd, Command::timeout);
                cmd = if job.stdin { cmd.stdin_pipe() } else { cmd };
                self.start(if job.pty { cmd.pty() } else { cmd }).await
            }
            (None, Some(_)) if job.pty => Err(invalid(
                "a Claude job runs without a terminal; leave out `pty`",
            )),
            (None, Some(c)) => {
                let c = cwd.into_iter().fold(c, ClaudeCommand::or_cwd);
                let c = timeout.into_iter().fold(c, ClaudeCommand::or_timeout);
                self.start_claude(if job.stdin { c.interactive() } else { c })
                    .await
            }
            _ => Err(invalid(ONE_JOB)),
        }
    }

    /// Send `input` to its job: text to a command's stdin, or a user message to a Claude job
    /// (started interactive), then the end of its input when `eof` is set. Returns the job's id.
    pub async fn input(&self, input: JobInput) -> Result<JobId> {
        let id = JobId(input.id);
        let job = self.job(id)?;
        if let Some(text) = input.text.filter(|t| !t.is_empty()) {
            let text = match job.status().kind {
                JobKind::Claude => user_message(&text),
                _ => text,
            };
            job.controller.write_stdin(text).await?;
        }
        if input.eof {
            job.controller.close_stdin().await?;
        }
        Ok(id)
    }
}
