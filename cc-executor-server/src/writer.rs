//! The one task per session that owns the WebSocket sink.
//!
//! Two bounded queues feed it. `ctrl` carries what the session loop sends (responses, status
//! notifications, pings, close), bounded in bytes: each frame holds permits of the session's
//! budget ([`CTRL_BYTES`]) until it is in the sink. `out` carries what a run produces (output, detector
//! notifications, `process.completed`). `ctrl` is served first, so replies to a client stay
//! prompt while output is streaming; `out` keeps output, detector notifications and
//! `process.completed` in their order. Frames are fed without flushing, and the sink is flushed
//! only when neither queue has anything ready, so a burst of lines costs few writes.
//!
//! When the client reads slowly the sink's buffer fills, this task waits on it, the small
//! `out` queue fills, and the pipe readers stop reading: the child then blocks on its pipe and
//! memory stays bounded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

/// Bytes of frames the `ctrl` queue holds at most (each frame counted with
/// [`FRAME_OVERHEAD`]): what a client that sends requests and reads nothing can make the service
/// hold for it.
pub(crate) const CTRL_BYTES: usize = 1024 * 1024;
/// Bytes a queued frame is counted for on top of its text, so that many tiny frames count too.
pub(crate) const FRAME_OVERHEAD: usize = 64;
/// Capacity of the `out` queue (batches of at most about [`BATCH_BYTES`]).
pub(crate) const OUT_CAPACITY: usize = 8;
/// Readers cut their frames into batches of about this many bytes.
pub(crate) const BATCH_BYTES: usize = 64 * 1024;

/// From the session loop.
#[derive(Debug)]
pub(crate) enum CtrlItem {
    /// One encoded frame, and its share of the queue's byte budget.
    Frame(String, OwnedSemaphorePermit),
    /// Send a close frame and stop.
    Close(u16, String),
    /// Finish the close handshake the client started (or just stop) and return.
    End,
}

/// From a run.
#[derive(Debug)]
pub(crate) enum OutItem {
    /// Encoded frames, in order.
    Frames(Vec<String>),
    /// The run's `process.completed`. The flag is set just before the frame goes into the sink
    /// (so a client that saw it finds the run over); the sender is told once it is in the sink,
    /// ahead of anything sent later.
    Completed(String, Arc<AtomicBool>, oneshot::Sender<()>),
}

enum Next {
    Ctrl(Option<CtrlItem>),
    Out(OutItem),
}

/// Run until the session ends or the connection fails.
pub(crate) async fn run(
    mut sink: SplitSink<WebSocket, Message>,
    mut ctrl: mpsc::UnboundedReceiver<CtrlItem>,
    mut out: mpsc::Receiver<OutItem>,
) {
    let mut dirty = false;
    loop {
        let next = if let Ok(c) = ctrl.try_recv() {
            Next::Ctrl(Some(c))
        } else if let Ok(o) = out.try_recv() {
            Next::Out(o)
        } else if dirty {
            if sink.flush().await.is_err() {
                return;
            }
            dirty = false;
            continue;
        } else {
            tokio::select! {
                biased;
                c = ctrl.recv() => Next::Ctrl(c),
                Some(o) = out.recv() => Next::Out(o),
            }
        };
        let fed = match next {
            Next::Ctrl(Some(CtrlItem::Frame(f, budget))) => {
                let r = sink.feed(Message::Text(f.into())).await;
                drop(budget);
                r
            }
            Next::Ctrl(Some(CtrlItem::Close(code, reason))) => {
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ = sink.send(Message::Close(Some(frame))).await;
                return;
            }
            Next::Ctrl(Some(CtrlItem::End) | None) => {
                // Sends our close frame if none was exchanged yet, and flushes the reply to a
                // client's close.
                let _ = sink.close().await;
                return;
            }
            Next::Out(OutItem::Frames(frames)) => feed_all(&mut sink, frames).await,
            Next::Out(OutItem::Completed(f, reported, delivered)) => {
                reported.store(true, Ordering::Release);
                let r = sink.feed(Message::Text(f.into())).await;
                let _ = delivered.send(());
                r
            }
        };
        if fed.is_err() {
            return;
        }
        dirty = true;
    }
}

async fn feed_all(
    sink: &mut SplitSink<WebSocket, Message>,
    frames: Vec<String>,
) -> Result<(), axum::Error> {
    for f in frames {
        sink.feed(Message::Text(f.into())).await?;
    }
    Ok(())
}
