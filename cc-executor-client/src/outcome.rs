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
    /// Why it ended, when the service said (e.g. `timed out after 30s`) or the client's deadline
    /// ended it.
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
                    error: Some(Error::Timeout { after }.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn completed(status: RunStatus, exit_code: Option<i32>, timed_out: bool) -> OutputEvent {
        OutputEvent::Completed {
            status,
            exit_code,
            duration: Duration::from_secs(2),
            timed_out,
            error: None,
        }
    }

    fn ending(events: &[OutputEvent], cancel_sent: bool) -> Result<Ending> {
        let mut t = Tracker::new();
        for ev in events {
            t.event(ev);
        }
        t.finish(cancel_sent)
    }

    #[test]
    fn a_signal_after_a_cancel_from_this_client_is_a_cancel() {
        let killed = completed(RunStatus::Failed, Some(-15), false);
        assert_eq!(
            ending(std::slice::from_ref(&killed), true).unwrap().status,
            RunStatus::Canceled
        );
        assert_eq!(ending(&[killed], false).unwrap().status, RunStatus::Failed);
        // A timeout stays a timeout; an exit code stays a failure.
        let timed_out = completed(RunStatus::Failed, Some(-15), true);
        assert_eq!(
            ending(&[timed_out], true).unwrap().status,
            RunStatus::Failed
        );
        let exited = completed(RunStatus::Failed, Some(1), false);
        assert_eq!(ending(&[exited], true).unwrap().status, RunStatus::Failed);
    }

    #[test]
    fn canceled_without_completed_refused_runs_and_lost_streams() {
        let end = ending(&[OutputEvent::Canceled], true).unwrap();
        assert_eq!((end.status, end.exit_code), (RunStatus::Canceled, None));
        // A later `Completed` is what counts.
        let end = ending(
            &[
                OutputEvent::Canceled,
                completed(RunStatus::Canceled, Some(-15), false),
            ],
            true,
        )
        .unwrap();
        assert_eq!(
            (end.status, end.exit_code),
            (RunStatus::Canceled, Some(-15))
        );
        let end = ending(&[OutputEvent::Failed { error: None }], false).unwrap();
        assert_eq!(end.status.as_str(), "error");
        assert_eq!(end.not_run.as_deref(), Some("no reason given"));
        assert!(matches!(
            ending(&[OutputEvent::Paused], false),
            Err(Error::ConnectionClosed { .. })
        ));
    }

    #[test]
    fn the_client_deadline_is_a_timeout_and_other_errors_are_given_back() {
        let mut t = Tracker::new();
        let after = Duration::from_secs(1);
        assert!(t.error(Error::Timeout { after }).is_ok());
        let end = t.finish(true).unwrap();
        assert!(end.timed_out);
        assert_eq!((end.status, end.duration), (RunStatus::Failed, after));
        let lost = Error::ConnectionClosed {
            code: None,
            reason: String::new(),
        };
        assert!(matches!(
            Tracker::new().error(lost),
            Err(Error::ConnectionClosed { .. })
        ));
    }

    #[test]
    fn a_token_limit_comes_before_a_rate_limit() {
        use crate::event::RateLimitKind;
        let mut t = Tracker::new();
        t.event(&OutputEvent::RateLimitExceeded(RateLimit::new(
            RateLimitKind::Http429,
            "slow down",
            "raw",
        )));
        assert!(matches!(t.limit_error(), Some(Error::RateLimited(_))));
        t.event(&OutputEvent::TokenLimitExceeded(TokenLimit {
            limit: None,
            message: "too long".into(),
            suggestion: None,
            text: "raw".into(),
            recoverable: false,
        }));
        assert!(matches!(
            t.limit_error(),
            Some(Error::TokenLimitExceeded(_))
        ));
    }
}
