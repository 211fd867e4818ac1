//! MCP progress notifications for one tool call: the latest output line, coalesced, plus a
//! heartbeat so hosts do not abort a call whose command is silent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleServer};
use tokio::time::{Instant, Interval, MissedTickBehavior};

/// At most one notification per tick (~10 per second).
const TICK: Duration = Duration::from_millis(100);
/// Longest silence: well under the idle timeouts of hosts.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Longest message, in characters.
const MESSAGE_CHARS: usize = 200;

pub struct Progress {
    peer: Peer<RoleServer>,
    token: Option<ProgressToken>,
    sent: u64,
    latest: Latest,
    last_sent: Instant,
    started: Instant,
    interval: Interval,
}

impl Progress {
    pub fn new(ctx: &RequestContext<RoleServer>) -> Self {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Progress {
            peer: ctx.peer.clone(),
            token: ctx.meta.get_progress_token(),
            sent: 0,
            latest: Latest(ctx.meta.get_progress_token().map(|_| Arc::default())),
            last_sent: Instant::now(),
            started: Instant::now(),
            interval,
        }
    }

    /// Remember `text` (its last non-blank line) as the message of the next notification.
    pub fn note(&self, text: &str) {
        self.latest.note(text);
    }

    /// A handle to note lines from a callback while this waits for its ticks.
    pub fn latest(&self) -> Latest {
        self.latest.clone()
    }

    /// Wait for the next tick (never resolves without a progress token).
    pub async fn tick(&mut self) {
        if self.token.is_none() {
            return std::future::pending().await;
        }
        self.interval.tick().await;
    }

    /// Send the latest line if there is a new one, or a heartbeat after a silence.
    pub async fn flush(&mut self) {
        let Some(token) = &self.token else { return };
        let message = match self.latest.take() {
            Some(line) => line,
            None if self.last_sent.elapsed() >= HEARTBEAT => {
                format!("running for {}s", self.started.elapsed().as_secs())
            }
            None => return,
        };
        self.sent += 1;
        self.last_sent = Instant::now();
        let param =
            ProgressNotificationParam::new(token.clone(), self.sent as f64).with_message(message);
        if let Err(e) = self.peer.notify_progress(param).await {
            tracing::debug!("progress notification not sent: {e}");
        }
    }
}

/// The line waiting for the next notification (nothing is kept without a progress token).
#[derive(Clone)]
pub struct Latest(Option<Arc<Mutex<Option<String>>>>);

impl Latest {
    /// Remember `text` (its last non-blank line).
    pub fn note(&self, text: &str) {
        let Some(slot) = &self.0 else { return };
        if let Some(line) = text.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(line.chars().take(MESSAGE_CHARS).collect());
        }
    }

    fn take(&self) -> Option<String> {
        let slot = self.0.as_ref()?;
        slot.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}
