//! The current run of a connection: its events on their way to the consumer.
//!
//! Events are queued in batches and handed over while the consumer's channel has room; while
//! anything is queued the actor does not read the socket (backpressure).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Batch, Item, RunShared};
use crate::error::Error;
use crate::event::OutputEvent;
use crate::protocol::ServerNotification;
use crate::wire::RunEvents;

/// Events handed to the consumer at a time, at most.
pub(super) const BATCH_ITEMS: usize = 64;
/// Bytes of output handed to the consumer at a time: a batch ends after the event that passes
/// it (batched output puts up to 64 KiB in one event).
const BATCH_BYTES: usize = 256 * 1024;
/// Batches buffered per run before the actor stops reading the socket (with [`BATCH_ITEMS`]
/// and [`BATCH_BYTES`], at most 256 events and about 1 MiB of output).
const EVENT_BATCHES: usize = 4;

/// The run a connection is busy with.
pub(super) struct Run {
    pub(super) shared: Arc<RunShared>,
    pub(super) queue: Queue,
    events: RunEvents,
    /// The `Execution` was dropped without being detached.
    pub(super) abandoned: bool,
    /// The service has ended the run (or the connection is gone).
    pub(super) service_done: bool,
    /// The client's deadline and the timeout it stands for.
    pub(super) deadline: Option<(Instant, Duration)>,
}

impl Run {
    /// A run about to be requested: `raw_chunks` and `completed_after_cancel` as for
    /// [`RunEvents::new`].
    pub(super) fn new(
        id: u64,
        raw_chunks: bool,
        completed_after_cancel: bool,
        deadline: Option<(Instant, Duration)>,
    ) -> Run {
        let (tx, rx) = mpsc::channel(EVENT_BATCHES);
        Run {
            shared: Arc::new(RunShared {
                id,
                finished: watch::channel(false).0,
                cancel_sent: AtomicBool::new(false),
            }),
            queue: Queue {
                tx,
                rx: Some(rx),
                batches: VecDeque::new(),
                last_bytes: 0,
                sealed: false,
                discard: false,
            },
            events: RunEvents::new(raw_chunks, completed_after_cancel),
            abandoned: false,
            service_done: false,
            deadline,
        }
    }

    /// A notification for this run.
    pub(super) fn on_notification(&mut self, n: ServerNotification) {
        let Run { events, queue, .. } = self;
        let fed = events.feed(n, |ev| queue.push(Ok(ev)));
        if fed.canceled {
            // The service canceled the group: no other CANCEL is needed.
            self.mark_cancel_sent();
        }
        if fed.end {
            self.service_done = true;
            self.queue.sealed = true;
            self.deadline = None;
        }
    }

    /// End the run's stream with `err`, after what was gathered of unfinished lines.
    pub(super) fn end_with(&mut self, err: Error) {
        let Run { events, queue, .. } = self;
        events.flush(|ev| queue.push(Ok(ev)));
        queue.push(Err(err));
    }

    /// Whether a CANCEL was sent for this run (or the service reported it canceled).
    pub(super) fn cancel_sent(&self) -> bool {
        self.shared.cancel_sent.load(Ordering::Acquire)
    }

    /// Note that a CANCEL goes out for this run.
    pub(super) fn mark_cancel_sent(&self) {
        self.shared.cancel_sent.store(true, Ordering::Release);
    }

    /// Whether the actor still has work for this run.
    pub(super) fn over(&self) -> bool {
        self.service_done && (self.queue.discard || self.queue.batches.is_empty())
    }
}

/// A run's items on their way to its consumer.
pub(super) struct Queue {
    tx: mpsc::Sender<Batch>,
    /// Held until the `execute` response hands it to the caller.
    pub(super) rx: Option<mpsc::Receiver<Batch>>,
    /// Items not yet accepted by the channel, in batches (only the last one still grows); the
    /// socket is not read while this is non-empty.
    batches: VecDeque<Batch>,
    /// Bytes of output in the last batch.
    last_bytes: usize,
    /// The last item for the consumer has been queued (terminal event or error).
    pub(super) sealed: bool,
    /// Nobody reads any more: drop events until the service ends the run.
    pub(super) discard: bool,
}

impl Queue {
    /// Queue an item, unless the stream is sealed or nobody reads it; an error or a terminal
    /// event seals it.
    pub(super) fn push(&mut self, item: Item) {
        if !self.sealed && !self.discard {
            let last = match &item {
                Ok(ev) => ev.is_terminal(),
                Err(_) => true,
            };
            let bytes = match &item {
                Ok(OutputEvent::Output { data, .. }) => data.len(),
                _ => 0,
            };
            match self.batches.back_mut() {
                Some(batch) if batch.len() < BATCH_ITEMS && self.last_bytes < BATCH_BYTES => {
                    batch.push(item);
                    self.last_bytes += bytes;
                }
                _ => {
                    let mut batch = Vec::with_capacity(BATCH_ITEMS);
                    batch.push(item);
                    self.batches.push_back(batch);
                    self.last_bytes = bytes;
                }
            }
            self.sealed = last;
        }
    }

    /// Room in the consumer's channel for the next batch, when one waits to be handed over.
    pub(super) fn next_room(
        &self,
    ) -> Option<impl std::future::Future<Output = Result<mpsc::OwnedPermit<Batch>, SendError>>>
    {
        (!self.discard && !self.batches.is_empty()).then(|| self.tx.clone().reserve_owned())
    }

    /// Hand the next batch over through `permit`.
    pub(super) fn deliver(&mut self, permit: mpsc::OwnedPermit<Batch>) {
        if let Some(batch) = self.batches.pop_front() {
            permit.send(batch);
        }
    }

    /// Hand queued items to the consumer while its channel has room (never waits).
    pub(super) fn hand_over(&mut self) {
        while !self.discard && !self.batches.is_empty() {
            let closed = match self.tx.try_reserve() {
                Ok(permit) => {
                    if let Some(batch) = self.batches.pop_front() {
                        permit.send(batch);
                    }
                    false
                }
                Err(mpsc::error::TrySendError::Full(())) => return,
                Err(mpsc::error::TrySendError::Closed(())) => true,
            };
            if closed {
                self.receiver_gone();
            }
        }
    }

    /// The `Execution` is gone (detached and dropped, or dropped and an `Abandon` follows):
    /// keep the run going but discard its events.
    pub(super) fn receiver_gone(&mut self) {
        self.discard = true;
        self.batches.clear();
    }
}

/// The consumer's channel is closed.
pub(super) type SendError = mpsc::error::SendError<()>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::OutputStream;

    #[test]
    fn nothing_is_queued_after_the_terminal_item() {
        let mut r = Run::new(1, false, true, None);
        r.queue.push(Err(Error::Timeout {
            after: Duration::from_secs(1),
        }));
        r.queue.push(Ok(OutputEvent::Output {
            stream: OutputStream::Stdout,
            data: "late".into(),
            chunk: None,
        }));
        assert_eq!(r.queue.batches.iter().map(Vec::len).sum::<usize>(), 1);
        assert!(r.queue.sealed);
    }
}
