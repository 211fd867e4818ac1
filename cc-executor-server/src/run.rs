//! One execution: the pipe readers and the supervisor that decides how the run ends.
//!
//! The supervisor task waits for the command (the shell) to exit, for the run's deadline, or
//! for a cancel/abort from the session. Once the command has exited it waits for both pipes to
//! reach EOF, so no output follows `process.completed`; if a background process keeps a pipe
//! open, it gives the pipes a short drain window and then ends the run's process tree. Any
//! process of the tree still alive at the end (in the group or escaped from it) is killed too,
//! and the run ends only once the tree's supervisor process reports it empty: a run never
//! leaves processes behind.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cc_executor_protocol::{
    method, status, CompletedParams, EarlyCompletionParams, Notification, OutputStream,
    RateLimitParams, TokenLimitParams,
};
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot, watch, Mutex as AsyncMutex};
use tokio::task::JoinHandle;

use crate::detect::{detect, Detections};
use crate::input::Input;
use crate::metrics::{Metrics, Outcome, RunningGuard};
use crate::output::{encode_piece, Batch, Emit, LineAssembler};
use crate::process::{exit_code, Spawned, Supervisor, Tree};
use crate::writer::{OutItem, BATCH_BYTES as OUT_BATCH_BYTES};

/// How long the pipes may stay open after the command exited before the tree is ended.
const DRAIN_WINDOW: Duration = Duration::from_millis(250);
/// How long the supervisor may take to kill what is left of the tree and exit.
const GONE_BOUND: Duration = Duration::from_secs(5);
/// Bytes read from a pipe at a time.
const READ_BUF: usize = 32 * 1024;
/// Bytes read from a pipe at a time with batched output: a pipe's whole default capacity, so
/// that one read takes what the command has written so far and one frame carries it.
const BATCHED_READ_BUF: usize = cc_executor_protocol::BATCH_BYTES;

/// What the session asks of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// The session sent SIGTERM on CANCEL; SIGKILL follows after the grace.
    Canceled,
    /// The session is ending: kill the tree, send nothing more.
    Aborted,
}

/// Settings a run needs from its session.
#[derive(Debug, Clone)]
pub(crate) struct RunContext {
    pub session_id: Arc<str>,
    pub out: mpsc::Sender<OutItem>,
    pub kill_grace: Duration,
    pub metrics: Arc<Metrics>,
    /// Whole lines of one stream go together in one `process.output` frame.
    pub batched: bool,
}

/// The session's handle on a run.
#[derive(Debug)]
pub(crate) struct RunHandle {
    pub pid: u32,
    pub tree: Tree,
    /// The command's stdin, when the client may write to it (a pipe or a terminal).
    pub stdin: Option<Input>,
    /// CANCEL was requested.
    pub canceling: bool,
    phase: watch::Sender<Phase>,
    /// Set once `process.completed` is about to go into the sink.
    reported: Arc<AtomicBool>,
    /// Held by a control request while it signals the tree and queues its answer. The
    /// supervisor takes it to end the run and sets it to true: an answer in progress is queued
    /// before `process.completed`, and a later request finds the run over.
    control: Arc<AsyncMutex<bool>>,
    /// Ends once `process.completed` is in the sink (or the run was aborted).
    pub task: JoinHandle<()>,
}

impl RunHandle {
    /// Record a CANCEL; the caller sends SIGTERM to the tree right after.
    pub fn cancel(&mut self) {
        self.canceling = true;
        let _ = self.phase.send(Phase::Canceled);
    }

    /// Take back a CANCEL whose signal found no process (the run ended on its own).
    pub fn uncancel(&mut self) {
        self.canceling = false;
        let _ = self.phase.send(Phase::Running);
    }

    /// The lock that control requests hold (see the field); `true` inside once the run is over.
    pub fn control_lock(&self) -> Arc<AsyncMutex<bool>> {
        self.control.clone()
    }

    /// Whether `process.completed` has gone to the client: the run is over for it, even if
    /// the task has not noticed yet (a client may send its next `execute` at once).
    pub fn reported(&self) -> bool {
        self.reported.load(Ordering::Acquire)
    }

    /// Kill the tree and wait (up to `bound`) until it is gone; no frame is sent.
    pub async fn abort(mut self, bound: Duration) {
        let _ = self.phase.send(Phase::Aborted);
        if tokio::time::timeout(bound, &mut self.task).await.is_err() {
            // Dropping the task drops its supervisor handle (the supervisor then kills the
            // tree) and its tree guard, which SIGKILLs the tree.
            self.task.abort();
            let _ = self.task.await;
        }
    }
}

/// State shared by the readers and the supervisor of one run.
#[derive(Debug)]
struct Shared {
    session_id: Arc<str>,
    metrics: Arc<Metrics>,
    start: Instant,
    /// First completion phrase seen: (seconds from start, marker).
    early: Mutex<Option<(f64, &'static str)>>,
}

/// What a reader is doing, so a pipe held open by an escaped process can be told apart from a
/// reader waiting on a slow client.
#[derive(Debug, Default)]
struct Activity {
    in_read: AtomicBool,
    reads: AtomicU64,
}

struct Reader {
    task: JoinHandle<()>,
    activity: Arc<Activity>,
}

/// Start the readers and the supervisor of a spawned command.
///
/// `timeout` is in seconds, already checked to be positive and finite.
/// `running` counts the run as going (for the drain) until its task ends.
pub(crate) fn start(
    spawned: Spawned,
    timeout: Option<f64>,
    ctx: RunContext,
    running: RunningGuard,
) -> RunHandle {
    let Spawned {
        supervisor,
        pid,
        tree,
        guard,
        stdout,
        stderr,
        stdin,
    } = spawned;
    let shared = Arc::new(Shared {
        session_id: ctx.session_id.clone(),
        metrics: ctx.metrics.clone(),
        start: Instant::now(),
        early: Mutex::new(None),
    });
    // A run that takes input shows a prompt before its line ends (a pipe or a terminal).
    let interactive = stdin.is_some();
    let reader = |pipe, stream| spawn_reader(pipe, stream, interactive, shared.clone(), &ctx);
    let mut readers = vec![reader(stdout, OutputStream::Stdout)];
    // A terminal merges stderr into stdout.
    readers.extend(stderr.map(|stderr| reader(stderr, OutputStream::Stderr)));
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let reported = Arc::new(AtomicBool::new(false));
    let control = Arc::new(AsyncMutex::new(false));
    let sup = RunTask {
        pid,
        tree,
        timeout,
        ctx,
        shared,
        reported: reported.clone(),
        control: control.clone(),
    };
    let task = tokio::spawn(async move {
        let (guard, _running) = (guard, running);
        if sup.run(supervisor, readers, phase_rx).await {
            guard.release();
        }
        // Otherwise the guard's drop kills whatever is left.
    });
    RunHandle {
        pid,
        tree,
        stdin: stdin.map(Input::start),
        canceling: false,
        phase: phase_tx,
        reported,
        control,
        task,
    }
}

fn spawn_reader(
    pipe: pipe::Receiver,
    stream: OutputStream,
    interactive: bool,
    shared: Arc<Shared>,
    ctx: &RunContext,
) -> Reader {
    let activity = Arc::new(Activity::default());
    let out = ctx.out.clone();
    let batch = ctx.batched.then(|| Batch::new(stream));
    let task = tokio::spawn(read_pipe(
        pipe,
        stream,
        interactive,
        shared,
        out,
        batch,
        activity.clone(),
    ));
    Reader { task, activity }
}

/// Read a pipe to its end, sending its lines (one frame each, or in `batch`es) and what the
/// detectors find in them, in order.
///
/// `interactive` (the run takes input): when a read leaves part of a line unsent and the pipe
/// has nothing more right now (a read without waiting finds it empty), that part is sent
/// without waiting for the line's end: the command may be waiting at a prompt for its user.
async fn read_pipe(
    mut pipe: pipe::Receiver,
    stream: OutputStream,
    interactive: bool,
    shared: Arc<Shared>,
    out: mpsc::Sender<OutItem>,
    mut batch: Option<Batch>,
    activity: Arc<Activity>,
) {
    // Filled without being zeroed first (`read_buf`), and touched only as far as output comes.
    let (mut buf, mut lines) = match batch {
        Some(_) => (
            Vec::with_capacity(BATCHED_READ_BUF),
            LineAssembler::batched(),
        ),
        None => (Vec::with_capacity(READ_BUF), LineAssembler::new()),
    };
    let mut frames: Vec<String> = Vec::new();
    // Look whether more is readable now before showing an unfinished line (interactive only).
    let mut probe = false;
    loop {
        buf.clear();
        // `None`: nothing is readable right now.
        let n = if std::mem::take(&mut probe) {
            match pipe.try_read_buf(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
                read => Some(read),
            }
        } else {
            activity.in_read.store(true, Ordering::Relaxed);
            let n = pipe.read_buf(&mut buf).await;
            activity.in_read.store(false, Ordering::Relaxed);
            Some(n)
        };
        activity.reads.fetch_add(1, Ordering::Relaxed);
        let mut emit = |e: Emit<'_>| match (e, batch.as_mut()) {
            (Emit::Line(line), batch) => {
                let found = detect(line);
                if !found.is_empty() {
                    shared.metrics.detections(&found);
                    // The notification goes after the lines before this one, as without batches.
                    if let Some(b) = batch {
                        b.flush(&mut frames);
                    }
                    encode_detections(&shared, line, found, &mut frames);
                }
            }
            (Emit::Block(text), Some(b)) => b.add(text, &mut frames),
            (Emit::Piece(p), Some(b)) if p.chunk_index.is_none() => b.add(p.data, &mut frames),
            (Emit::Piece(p), batch) => {
                if let Some(b) = batch {
                    b.flush(&mut frames);
                }
                frames.push(encode_piece(stream, &p));
            }
            (Emit::Block(_), None) => unreachable!("only batched assemblers give blocks"),
        };
        let eof = match n {
            None => {
                lines.show_pending(&mut emit);
                false
            }
            Some(Ok(0) | Err(_)) => {
                lines.finish(&mut emit);
                true
            }
            Some(Ok(n)) => {
                shared.metrics.output(stream.as_str(), n);
                lines.push(&buf[..n], &mut emit);
                probe = interactive && lines.has_unsent();
                false
            }
        };
        // The pipe had no more for this read: what is gathered goes now, adding no latency.
        if let Some(b) = batch.as_mut() {
            b.flush(&mut frames);
        }
        if send_batches(&out, &mut frames).await.is_err() || eof {
            return;
        }
    }
}

/// Send `frames` in batches of about [`OUT_BATCH_BYTES`]; `Err` when the session is gone.
async fn send_batches(out: &mpsc::Sender<OutItem>, frames: &mut Vec<String>) -> Result<(), ()> {
    while !frames.is_empty() {
        let mut bytes = 0;
        let mut n = 0;
        for f in frames.iter() {
            n += 1;
            bytes += f.len();
            if bytes >= OUT_BATCH_BYTES {
                break;
            }
        }
        let batch: Vec<String> = if n == frames.len() {
            std::mem::take(frames)
        } else {
            frames.drain(..n).collect()
        };
        out.send(OutItem::Frames(batch)).await.map_err(|_| ())?;
    }
    Ok(())
}

fn encode_detections(shared: &Shared, line: &str, found: Detections, frames: &mut Vec<String>) {
    let text = line.trim_end_matches(['\n', '\r']);
    if let Some(hit) = found.rate_limit {
        frames.push(
            Notification::new(
                method::RATE_LIMIT_EXCEEDED,
                RateLimitParams {
                    session_id: shared.session_id.to_string(),
                    error_type: hit.error_type.to_owned(),
                    message: hit.message.to_owned(),
                    reset_timestamp: hit.reset_timestamp,
                    error_text: text.to_owned(),
                    recoverable: hit.recoverable,
                    retry_after: hit.retry_after,
                },
            )
            .encode(),
        );
    }
    if let Some(hit) = found.token_limit {
        frames.push(
            Notification::new(
                method::TOKEN_LIMIT_EXCEEDED,
                TokenLimitParams {
                    session_id: shared.session_id.to_string(),
                    error_type: "token_limit".to_owned(),
                    limit: hit.limit,
                    message: hit.message,
                    suggestion: Some(hit.suggestion.to_owned()),
                    error_text: text.to_owned(),
                    recoverable: hit.recoverable,
                },
            )
            .encode(),
        );
    }
    if let Some(marker) = found.completion {
        let elapsed = shared.start.elapsed().as_secs_f64();
        {
            let mut early = shared.early.lock().unwrap_or_else(|p| p.into_inner());
            early.get_or_insert((elapsed, marker));
        }
        frames.push(
            Notification::new(
                method::EARLY_COMPLETION,
                EarlyCompletionParams {
                    session_id: shared.session_id.to_string(),
                    marker: marker.to_owned(),
                    elapsed_time: elapsed,
                    output_line: text.to_owned(),
                },
            )
            .encode(),
        );
    }
}

/// The task that drives one run to its end.
struct RunTask {
    pid: u32,
    tree: Tree,
    timeout: Option<f64>,
    ctx: RunContext,
    shared: Arc<Shared>,
    reported: Arc<AtomicBool>,
    control: Arc<AsyncMutex<bool>>,
}

impl RunTask {
    /// Drive the run to its end; true when the group is known to be gone.
    async fn run(
        self,
        mut sup: Supervisor,
        mut readers: Vec<Reader>,
        mut phase: watch::Receiver<Phase>,
    ) -> bool {
        let grace = self.ctx.kill_grace;
        let deadline = self
            .timeout
            .and_then(|t| Duration::try_from_secs_f64(t).ok())
            .and_then(|t| tokio::time::Instant::now().checked_add(t));
        let mut timed_out = false;
        let mut canceled = false;
        let mut aborted = false;
        let mut kill_at: Option<tokio::time::Instant> = None;

        // 1. Until the command exits.
        let status = loop {
            tokio::select! {
                st = sup.command_exit() => break st,
                _ = sleep_until(deadline), if !timed_out && !canceled && !aborted => {
                    timed_out = true;
                    let _ = self.tree.terminate();
                    kill_at = Some(tokio::time::Instant::now() + grace);
                }
                changed = phase.changed(), if !aborted => {
                    let now = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Aborted };
                    match now {
                        Phase::Running => {}
                        Phase::Canceled => {
                            canceled = !timed_out;
                            kill_at.get_or_insert(tokio::time::Instant::now() + grace);
                        }
                        Phase::Aborted => {
                            aborted = true;
                            let _ = self.tree.terminate();
                            kill_at.get_or_insert(tokio::time::Instant::now() + grace);
                        }
                    }
                }
                _ = sleep_until(kill_at), if kill_at.is_some() => {
                    self.tree.kill();
                    // The supervisor kills the rest, even what forked after the walk above.
                    sup.end();
                    kill_at = None;
                }
            }
        };
        let execution_time = self.shared.start.elapsed().as_secs_f64();

        // 2. Until both pipes are drained.
        if aborted {
            for r in &readers {
                r.task.abort();
            }
        } else if tokio::time::timeout(DRAIN_WINDOW, join_readers(&mut readers))
            .await
            .is_err()
        {
            // Something in the tree still holds a pipe: it goes with the run.
            sup.terminate_all(self.tree, grace, GONE_BOUND).await;
            self.finish_readers(&mut sup, &mut readers).await;
        }

        // 3. Nothing of the tree may outlive the run: the supervisor reports it gone only once
        // its subtree is empty.
        let gone = sup.terminate_all(self.tree, grace, GONE_BOUND).await;
        let took = Some(self.shared.start.elapsed());
        if aborted {
            self.ctx.metrics.run_ended(Outcome::Canceled, took);
            return gone;
        }

        // End the run for control requests. One in progress has queued its answer once the lock
        // is ours (so it goes out before `process.completed`); later ones find the run over. A
        // CANCEL counts if its signal reached the tree, however fast the tree then died, even
        // after the command's exit (a background process was still draining the pipes).
        let final_phase = {
            let mut over = self.control.lock().await;
            *over = true;
            *phase.borrow()
        };
        let canceled = !timed_out && final_phase == Phase::Canceled;

        let early = *self.shared.early.lock().unwrap_or_else(|p| p.into_inner());
        let code = status.map(exit_code);
        let (status_text, outcome) = if canceled {
            (status::CANCELED, Outcome::Canceled)
        } else if code == Some(0) && !timed_out {
            (status::COMPLETED, Outcome::Completed)
        } else if timed_out {
            (status::FAILED, Outcome::TimedOut)
        } else {
            (status::FAILED, Outcome::Failed)
        };
        self.ctx.metrics.run_ended(outcome, took);
        let params = CompletedParams {
            status: status_text.to_owned(),
            pid: Some(self.pid),
            pgid: Some(self.tree.id()),
            exit_code: code,
            error: match (timed_out, self.timeout) {
                (true, Some(t)) => Some(format!("timed out after {}", format_secs(t))),
                _ => None,
            },
            execution_time,
            early_completion_detected: early.is_some(),
            early_completion_time: early.map(|(t, _)| t),
            time_saved: early.map_or(0.0, |(t, _)| (execution_time - t).max(0.0)),
            completion_marker: early.map(|(_, m)| m.to_owned()),
            timed_out,
        };
        let frame = Notification::new(method::PROCESS_COMPLETED, params).encode();
        let (delivered_tx, delivered_rx) = oneshot::channel();
        if self
            .ctx
            .out
            .send(OutItem::Completed(
                frame,
                self.reported.clone(),
                delivered_tx,
            ))
            .await
            .is_ok()
        {
            let _ = delivered_rx.await;
        }
        gone
    }

    /// After the tree was killed: wait for the readers, but not for a pipe that something
    /// outside the tree keeps open (a descriptor passed to an unrelated process).
    async fn finish_readers(&self, sup: &mut Supervisor, readers: &mut Vec<Reader>) {
        let mut idle_checks = 0;
        let mut last_reads: Vec<u64> = Vec::new();
        loop {
            if tokio::time::timeout(Duration::from_millis(200), join_readers(readers))
                .await
                .is_ok()
            {
                return;
            }
            let reads: Vec<u64> = readers
                .iter()
                .map(|r| r.activity.reads.load(Ordering::Relaxed))
                .collect();
            let waiting_on_pipe = readers
                .iter()
                .all(|r| r.activity.in_read.load(Ordering::Relaxed));
            if waiting_on_pipe && reads == last_reads && sup.is_gone() {
                idle_checks += 1;
            } else {
                idle_checks = 0;
            }
            last_reads = reads;
            if idle_checks >= 5 {
                tracing::debug!(
                    pgid = self.tree.id(),
                    "a pipe outlives the run's processes; closing it"
                );
                for r in readers.drain(..) {
                    r.task.abort();
                }
                return;
            }
        }
    }
}

/// Wait for every reader; cancel-safe (finished readers are removed as they end).
async fn join_readers(readers: &mut Vec<Reader>) {
    while let Some(r) = readers.last_mut() {
        let _ = (&mut r.task).await;
        readers.pop();
    }
}

async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// `1s`, `0.5s`, `90s`: whole seconds without a trailing `.0`.
pub(crate) fn format_secs(s: f64) -> String {
    if s.fract() == 0.0 && s < 1e15 {
        format!("{}s", s as u64)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_format() {
        assert_eq!(format_secs(1.0), "1s");
        assert_eq!(format_secs(1.5), "1.5s");
        assert_eq!(format_secs(0.25), "0.25s");
        assert_eq!(format_secs(90.0), "90s");
    }
}
