//! A run's stdin: the client's `input`, queued for a writer task that feeds it to the command.
//!
//! The queue is bounded ([`MAX_PENDING_INPUT`]): a command that does not read its stdin must
//! not make the service hold whatever a client sends. Input is only ever bytes for the command;
//! nothing here parses or runs it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use cc_executor_protocol::MAX_PENDING_INPUT;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::process::StdinPipe;

/// What a terminal takes as end of file (Ctrl-D, `VEOF` in canonical mode).
const TERMINAL_EOF: u8 = 0x04;

/// Why input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Stdin is closed; the text says why.
    Closed(&'static str),
    /// More than [`MAX_PENDING_INPUT`] bytes would wait.
    Full,
}

#[derive(Debug, Default)]
struct Queue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes queued or being written, not yet taken by the pipe.
    pending: usize,
    /// Close once the queue is written.
    eof: bool,
    /// No more input is accepted, and why.
    closed: Option<&'static str>,
}

/// A run's stdin. Dropping it (the run is over) stops the writer and closes the pipe.
#[derive(Debug)]
pub(crate) struct Input {
    queue: Arc<Mutex<Queue>>,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
    /// Stdin is a terminal.
    pty: bool,
}

impl Input {
    /// Start the writer for `pipe`.
    pub fn start(pipe: StdinPipe) -> Input {
        let queue = Arc::new(Mutex::new(Queue::default()));
        let wake = Arc::new(Notify::new());
        let pty = pipe.pty;
        let task = tokio::spawn(write(pipe, queue.clone(), wake.clone()));
        Input {
            queue,
            wake,
            task,
            pty,
        }
    }

    /// Queue `data` (then end of file, with `eof`); the bytes accepted.
    pub fn push(&self, data: Vec<u8>, eof: bool) -> Result<usize, Refusal> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(why) = q.closed {
            return Err(Refusal::Closed(why));
        }
        let n = data.len();
        if q.pending + n > MAX_PENDING_INPUT {
            return Err(Refusal::Full);
        }
        if n > 0 {
            q.pending += n;
            q.chunks.push_back(data);
        }
        if eof {
            if self.pty {
                // A terminal stays open: end of file is a character its line discipline reads.
                q.pending += 1;
                q.chunks.push_back(vec![TERMINAL_EOF]);
            }
            q.eof = true;
            q.closed = Some("stdin is closed: input ended with eof");
        }
        drop(q);
        self.wake.notify_one();
        Ok(n)
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn write(pipe: StdinPipe, queue: Arc<Mutex<Queue>>, wake: Arc<Notify>) {
    let mut writer = pipe.writer;
    loop {
        let (next, eof) = {
            let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
            (q.chunks.pop_front(), q.eof)
        };
        let Some(chunk) = next else {
            if eof {
                // Dropping the writer closes the pipe (a terminal's master stays open for its
                // reader: end of file went as a character).
                return;
            }
            wake.notified().await;
            continue;
        };
        let written = writer.write_all(&chunk).await;
        let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
        if written.is_err() {
            // EPIPE or EIO: nothing reads the command's stdin any more.
            q.closed
                .get_or_insert("stdin is closed: the command no longer reads it");
            q.chunks.clear();
            q.pending = 0;
            return;
        }
        q.pending = q.pending.saturating_sub(chunk.len());
    }
}
