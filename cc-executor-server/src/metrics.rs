//! `GET /metrics`: the service's counters in the Prometheus text format (0.0.4).
//!
//! Sessions (active, opened, refused), runs (started, ended by outcome, active), bytes read from
//! the commands' pipes, run durations and detector events. The run counters also drive the drain:
//! it waits for `runs_active` to reach zero.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry, Unit};
use tokio::sync::Notify;

use crate::detect::Detections;

/// The `Content-Type` of `/metrics`.
pub(crate) const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// One label, e.g. `outcome="completed"`.
type Label = [(&'static str, &'static str); 1];

/// How a run ended, as counted in `cc_executor_runs_ended_total{outcome=...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Completed,
    Failed,
    Canceled,
    TimedOut,
    /// `execute` answered with an error: nothing ran.
    Refused,
}

impl Outcome {
    fn label(self) -> Label {
        let name = match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Canceled => "canceled",
            Outcome::TimedOut => "timed_out",
            Outcome::Refused => "refused",
        };
        [("outcome", name)]
    }
}

/// The service's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    sessions_active: Gauge,
    sessions_opened: Counter,
    sessions_refused: Family<Label, Counter>,
    runs_started: Counter,
    runs_ended: Family<Label, Counter>,
    runs_active: Gauge,
    output_bytes: Family<Label, Counter>,
    run_duration: Histogram,
    detector_events: Family<Label, Counter>,
    draining: Gauge,
    /// Runs going; `runs_active` mirrors it at each scrape.
    running: AtomicUsize,
    /// Woken when `running` drops to zero.
    no_runs: Notify,
}

/// A new metric, registered under `name` (after the prefix) with `help`.
fn registered<M: Metric + Clone + Default>(r: &mut Registry, name: &str, help: &str) -> M {
    let metric = M::default();
    r.register(name, help, metric.clone());
    metric
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cc_executor");
        let r = &mut registry;
        // 10 ms to about 11 h.
        let buckets = [
            0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 40000.0,
        ];
        let run_duration = Histogram::new(buckets);
        r.register_with_unit(
            "run_duration",
            "Run time of the commands that ended",
            Unit::Seconds,
            run_duration.clone(),
        );
        let output_bytes = Family::default();
        r.register_with_unit(
            "output",
            "Bytes read from the commands' stdout and stderr and streamed to clients",
            Unit::Bytes,
            output_bytes.clone(),
        );
        Metrics {
            sessions_active: registered(r, "sessions_active", "Open WebSocket sessions"),
            sessions_opened: registered(r, "sessions_opened", "WebSocket sessions accepted"),
            sessions_refused: registered(
                r,
                "sessions_refused",
                "WebSocket upgrades refused, by reason (limit, draining)",
            ),
            runs_started: registered(r, "runs_started", "Commands started"),
            runs_ended: registered(
                r,
                "runs_ended",
                "Runs ended, by outcome (completed, failed, canceled, timed_out; refused: execute \
                 answered with an error)",
            ),
            runs_active: registered(r, "runs_active", "Commands running"),
            output_bytes,
            run_duration,
            detector_events: registered(
                r,
                "detector_events",
                "Detector notifications sent, by kind (rate_limit, token_limit, early_completion)",
            ),
            draining: registered(
                r,
                "draining",
                "1 while the service drains (refuses new sessions)",
            ),
            running: AtomicUsize::new(0),
            no_runs: Notify::new(),
            registry,
        }
    }

    /// The text served at `/metrics`.
    pub fn encode(&self, sessions_active: usize, draining: bool) -> String {
        self.sessions_active.set(sessions_active as i64);
        self.runs_active
            .set(self.running.load(Ordering::SeqCst) as i64);
        self.draining.set(i64::from(draining));
        let mut text = String::new();
        if let Err(e) = prometheus_text::encode(&mut text, &self.registry) {
            tracing::error!("could not encode the metrics: {e}");
        }
        text
    }

    pub fn session_opened(&self) {
        self.sessions_opened.inc();
    }

    /// An upgrade refused: `reason` is `limit` or `draining`.
    pub fn session_refused(&self, reason: &'static str) {
        self.sessions_refused
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    /// A command started; the guard counts it as running until dropped.
    pub fn run_started(self: &Arc<Self>) -> RunningGuard {
        self.runs_started.inc();
        self.running.fetch_add(1, Ordering::SeqCst);
        RunningGuard {
            metrics: self.clone(),
        }
    }

    /// A run ended (after `duration`), or an `execute` was refused (`None`).
    pub fn run_ended(&self, outcome: Outcome, duration: Option<Duration>) {
        self.runs_ended.get_or_create(&outcome.label()).inc();
        if let Some(d) = duration {
            self.run_duration.observe(d.as_secs_f64());
        }
    }

    /// `n` bytes read from a command's `stream` (`stdout` or `stderr`).
    pub fn output(&self, stream: &'static str, n: usize) {
        self.output_bytes
            .get_or_create(&[("stream", stream)])
            .inc_by(n as u64);
    }

    /// The detector notifications sent for one line.
    pub fn detections(&self, found: &Detections) {
        for (hit, kind) in [
            (found.rate_limit.is_some(), "rate_limit"),
            (found.token_limit.is_some(), "token_limit"),
            (found.completion.is_some(), "early_completion"),
        ] {
            if hit {
                self.detector_events.get_or_create(&[("kind", kind)]).inc();
            }
        }
    }

    /// Commands running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Wait until no command is running.
    pub async fn no_runs(&self) {
        wait_until(&self.no_runs, || self.running() == 0).await
    }
}

/// Wait until `done()` holds, checking it each time `notify` wakes its waiters.
pub(crate) async fn wait_until(notify: &Notify, done: impl Fn() -> bool) {
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        // Registered before the check, so a wake-up between the two is not lost.
        notified.as_mut().enable();
        if done() {
            return;
        }
        notified.await;
    }
}

/// Counts one run as running until dropped.
#[derive(Debug)]
pub(crate) struct RunningGuard {
    metrics: Arc<Metrics>,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if self.metrics.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.metrics.no_runs.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_every_family() {
        let m = Arc::new(Metrics::new());
        let run = m.run_started();
        m.output("stdout", 5);
        m.run_ended(Outcome::TimedOut, Some(Duration::from_millis(1500)));
        m.run_ended(Outcome::Refused, None);
        drop(run);
        let text = m.encode(3, true);
        for line in [
            "cc_executor_sessions_active 3",
            "cc_executor_runs_started_total 1",
            "cc_executor_runs_ended_total{outcome=\"timed_out\"} 1",
            "cc_executor_runs_ended_total{outcome=\"refused\"} 1",
            "cc_executor_runs_active 0",
            "cc_executor_output_bytes_total{stream=\"stdout\"} 5",
            "cc_executor_run_duration_seconds_count 1",
            "cc_executor_draining 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
    }
}
