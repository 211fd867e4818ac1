//! How a run ended: the one place that decides it, from the run's events.
//!
//! [`Execution::wait`](crate::Execution::wait), [`Execution::collect_bounded`], background jobs
//! and Claude runs all feed a [`Tracker`] with what their stream yields and take its [`Ending`].
//! The rules:
//!
//! - `Completed` gives the status, exit code, run time and whether the service killed the run at
//!   its timeout. After a cancel sent by this client, a run killed by a signal was canceled,
//!   whatever status the service reports (it may see the exit before it records the cancel).
//! - `Failed` (the service could not run the command) is status `error`, with the service's
//!   reason.
//! - The client's own deadline ([`Error::Timeout`]) is a failed, timed-out run.
//! - A stream that ends after `Canceled` with no `Completed` (a service without
//!   `completed_after_cancel`) is a canceled run without exit code.
//! - A stream that ends with none of these is an error: the run's end is not known.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::event::{OutputEvent, RateLimit, RunStatus, TokenLimit};

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ending {
    /// Completed, failed, canceled, or `error` when the service could not run it.
    pub(crate) status: RunStatus,
    /// Exit code; a negative signal number when killed by a signal.
    pub(crate) exit_code: Option<i32>,
    /// Run time: as the service measured it; the timeout at the client's deadline; until the
    /// cancel (or the service's refusal) otherwise.
    pub(crate) duration: Duration,
    /// Killed at its timeout.
    pub(crate) timed_out: bool,
    /// Why the service could not run the command, when it could not.
    pub(crate) not_run: Option<String>,
    /// The service's reason for the end (e.g. `timed out after 30s`), when it gave one.
    pub(crate) error: Option<String>,
}

/// What is known so far of a run's end, from its events in order.
#[derive(Debug)]
pub(crate) struct Tracker {
    started: Instant,
    canceled_at: Option<Duration>,
    end: Option<Ending>,
    token_limit: Option<TokenLimit>,
    rate_limit: Option<RateLimit>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker::new()
    }
}

impl Tracker {
    /// Start tracking a run that has just started.
    pub(crate) fn new() -> Self {
        Tracker {
            started: Instant::now(),
            canceled_at: None,
            end: None,
            token_limit: None,
            rate_limit: None,
        }
    }

    /// Note one event. Returns whether it ends the run.
    pub(crate) fn event(&mut self, ev: &OutputEvent) -> bool {
        match ev {
            OutputEvent::Completed {
                status,
                exit_code,
                duration,
                timed_out,
                error,
            } => {
                self.end = Some(Ending {
                    status: status.clone(),
                    exit_code: *exit_code,
                    duration: *duration,
                    timed_out: *timed_out,
                    not_run: None,
                    error: error.clone(),
                });
                true
            }
            OutputEvent::Failed { error } => {
                self.end = Some(Ending {
                    status: RunStatus::Other(crate::protocol::status::ERROR.into()),
                    exit_code: None,
                    duration: self.started.elapsed(),
                    timed_out: false,
                    not_run: Some(error.clone().unwrap_or_else(|| "no reason given".into())),
                    error: error.clone(),
                });
                true
            }
            OutputEvent::Canceled => {
                self.canceled_at.get_or_insert(self.started.elapsed());
                false
            }
            OutputEvent::TokenLimitExceeded(t) => {
                self.token_limit.get_or_insert_with(|| t.clone());
                false
            }
            OutputEvent::RateLimitExceeded(r) => {
                self.rate_limit.get_or_insert_with(|| r.clone());
                false
            }
            _ => false,
        }
    }

    /// Note an error of the stream: the client's deadline ends the run as timed out; any other
    /// error (a lost connection, a malformed frame) leaves its end unknown and is given back.
    pub(crate) fn error(&mut self, e: Error) -> Result<()> {
        match e {
            Error::Timeout { after } => {
                self.end = Some(Ending {
                    status: RunStatus::Failed,
                    exit_code: None,
                    duration: after,
                    timed_out: true,
                    not_run: None,
                    error: None,
                });
                Ok(())
            }
            other => Err(other),
        }
    }

    /// The stream is over: how the run ended. `cancel_sent` tells whether a CANCEL went out for
    /// the run (see the module's rules).
    pub(crate) fn finish(&self, cancel_sent: bool) -> Result<Ending> {
        let mut end = match (&self.end, self.canceled_at) {
            (Some(end), _) => end.clone(),
            (None, Some(at)) => Ending {
                status: RunStatus::Canceled,
                exit_code: None,
                duration: at,
                timed_out: false,
                not_run: None,
                error: None,
            },
            (None, None) => {
                return Err(Error::ConnectionClosed {
                    code: None,
                    reason: "the stream ended before the run did".into(),
                })
            }
        };
        let by_signal = end.exit_code.is_some_and(|c| c < 0);
        if cancel_sent && by_signal && !end.timed_out {
            end.status = RunStatus::Canceled;
        }
        Ok(end)
    }

    /// The first limit the service reported, as an error: a token limit before a rate limit.
    pub(crate) fn limit_error(&self) -> Option<Error> {
        match (&self.token_limit, &self.rate_limit) {
            (Some(t), _) => Some(Error::TokenLimitExceeded(t.clone())),
            (None, Some(r)) => Some(Error::RateLimited(r.clone())),
            (None, None) => None,
        }
    }
}
