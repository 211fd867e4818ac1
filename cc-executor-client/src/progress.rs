//! Progress of a run for people watching it: what it is doing lately, at most so often, and a
//! sign of life while it is silent.
//!
//! ```
//! use std::time::Duration;
//! use cc_executor_client::progress::{report_while, Latest};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let latest = Latest::default();
//! let noted = latest.clone();
//! let work = async move {
//!     noted.note("building…\nstep one\n");
//!     tokio::time::sleep(Duration::from_millis(100)).await;
//!     42
//! };
//! let mut seen = Vec::new();
//! let out = report_while(work, || latest.take(), |message| {
//!     seen.push(message);
//!     async {}
//! })
//! .await;
//! assert_eq!((out, seen), (42, vec!["step one".to_owned()]));
//! # }
//! ```

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use crate::text::secs;

/// Longest message, in characters.
const MESSAGE_CHARS: usize = 200;

/// A report at most this often suits a person or a model watching (about 10 a second).
pub const EVERY: Duration = Duration::from_millis(100);

/// A sign of life after this long without a report: well under the idle timeouts of hosts that
/// drop a silent call.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// The latest line noted, for the next report. Cheap to clone: note from one task, take from
/// another.
#[derive(Debug, Clone, Default)]
pub struct Latest(Arc<Mutex<Option<String>>>);

impl Latest {
    /// Remember the last non-blank line of `text` (trimmed, at most 200 characters); blank text
    /// leaves the line noted before.
    pub fn note(&self, text: &str) {
        if let Some(line) = last_line(text) {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(line);
        }
    }

    /// The line noted since the last take, if any.
    pub fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Await `work` while reporting its progress: every [`EVERY`], `report` gets the last non-blank
/// line of what `next` gives, if anything, or `running for 12s` once [`HEARTBEAT`] has passed
/// since the last report.
pub async fn report_while<T, R: Future<Output = ()>>(
    work: impl Future<Output = T>,
    next: impl FnMut() -> Option<String>,
    report: impl FnMut(String) -> R,
) -> T {
    report_at(work, EVERY, HEARTBEAT, next, report).await
}

/// [`report_while`] at another pace: every `every`, with a heartbeat after `heartbeat`.
pub async fn report_at<T, R: Future<Output = ()>>(
    work: impl Future<Output = T>,
    every: Duration,
    heartbeat: Duration,
    mut next: impl FnMut() -> Option<String>,
    mut report: impl FnMut(String) -> R,
) -> T {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let (started, mut last) = (Instant::now(), Instant::now());
    tokio::pin!(work);
    loop {
        tokio::select! {
            // Work that is done wins over a tick due at the same moment: no report after the end.
            biased;
            out = &mut work => return out,
            _ = tick.tick() => {}
        }
        let message = match next().as_deref().and_then(last_line) {
            Some(line) => line,
            None if last.elapsed() >= heartbeat => {
                let running = Duration::from_secs(started.elapsed().as_secs());
                format!("running for {}", secs(running))
            }
            None => continue,
        };
        last = Instant::now();
        report(message).await;
    }
}

/// The last non-blank line of `text`, trimmed and cut to [`MESSAGE_CHARS`].
fn last_line(text: &str) -> Option<String> {
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(MESSAGE_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn silence_gets_a_heartbeat_and_lines_are_reported_once() {
        let latest = Latest::default();
        let noted = latest.clone();
        let work = async move {
            noted.note("first\n");
            tokio::time::sleep(Duration::from_secs(3)).await;
            noted.note("  \n");
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let mut seen = Vec::new();
        let every = Duration::from_millis(100);
        let heartbeat = Duration::from_secs(2);
        report_at(
            work,
            every,
            heartbeat,
            || latest.take(),
            |m| {
                seen.push(m);
                async {}
            },
        )
        .await;
        assert_eq!(seen, ["first", "running for 2s"]);
    }
}
