//! `Execution`: one running command as a stream of events, with a control handle.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;

use crate::error::Result;
use crate::event::{OutputEvent, RunStatus};

/// A running command: a `Stream` of its [`OutputEvent`]s, ending with `None` after the terminal
/// event. Dropping it cancels the run unless [`Execution::detach`] was called.
#[derive(Debug)]
pub struct Execution {
    _priv: (),
}

/// Pause, resume or cancel a running command from any task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Controller {
    _priv: (),
}

/// The collected result of a run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Outcome {
    /// How it ended.
    pub status: RunStatus,
    /// Exit code (negative signal number when killed by a signal).
    pub exit_code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// Run time as the service measured it.
    pub duration: Duration,
    /// Killed at its timeout.
    pub timed_out: bool,
    /// The events seen other than output (limits, early completion, warnings, ...).
    pub events: Vec<OutputEvent>,
}

impl Outcome {
    /// Exit code 0 and status completed.
    pub fn success(&self) -> bool {
        self.status.success() && self.exit_code == Some(0)
    }
}

impl Execution {
    /// A handle to pause, resume or cancel this run from another task.
    pub fn controller(&self) -> Controller {
        todo!()
    }

    /// Pid of the group leader.
    pub fn pid(&self) -> u32 {
        todo!()
    }

    /// Process group id, when the service reported it.
    pub fn pgid(&self) -> Option<u32> {
        todo!()
    }

    /// Keep the run going when this `Execution` is dropped (by default a drop cancels it).
    pub fn detach(&mut self) {
        todo!()
    }

    /// Read the stream to the end and collect an [`Outcome`].
    pub async fn wait(self) -> Result<Outcome> {
        todo!()
    }
}

impl Stream for Execution {
    type Item = Result<OutputEvent>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        todo!()
    }
}

impl Controller {
    /// SIGSTOP the process group; resolves on the service's response.
    pub async fn pause(&self) -> Result<()> {
        todo!()
    }

    /// SIGCONT the process group; resolves on the service's response.
    pub async fn resume(&self) -> Result<()> {
        todo!()
    }

    /// SIGTERM (then SIGKILL) the process group; resolves on the service's response.
    pub async fn cancel(&self) -> Result<()> {
        todo!()
    }
}
