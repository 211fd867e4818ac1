//! The per-connection actor: the one task that owns a WebSocket.
//!
//! It reads every frame, answers `ping`, sends WebSocket pings and watches for silence, matches
//! responses to requests by id, and feeds the current run's events into a bounded channel. While
//! the consumer of that channel is behind, the actor stops reading the socket, so a slow reader
//! slows the service down instead of growing memory.
//!
//! Throughput: the actor takes every frame already buffered from the socket in one go (up to a
//! burst limit) and hands events over in batches, so a stream of small lines costs one wake-up
//! of the consumer per batch rather than per line.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::error::{Error, Result};
use crate::event::{map_notification, Chunk, Mapped, OutputEvent, OutputStream};
use crate::protocol::{
    capability, ConnectedParams, ControlType, ExecuteParams, ExecuteResult, Id, Request, Response,
    ServerFrame, ServerNotification,
};
use crate::transport::Ws;

/// Events handed to the consumer at a time, at most.
const BATCH_ITEMS: usize = 64;
/// Batches buffered per run before the actor stops reading the socket (with [`BATCH_ITEMS`],
/// at most 256 events).
const EVENT_BATCHES: usize = 4;
/// Frames read from the socket in one go, at most.
const BURST_FRAMES: usize = BATCH_ITEMS;
/// Bytes of frames read from the socket in one go, at most (a burst ends after the frame that
/// passes it).
const BURST_BYTES: usize = 1 << 20;
/// A reassembled line is yielded in pieces beyond this many bytes.
pub(crate) const MAX_LINE_BYTES: usize = 64 << 20;
/// Extra time given to a service that enforces `timeout` itself before the client cancels.
const SERVICE_TIMEOUT_GRACE: Duration = Duration::from_secs(2);
/// How long a close handshake may take before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// One item of an execution's stream.
pub(crate) type Item = Result<OutputEvent>;
/// Items handed over together, in order.
pub(crate) type Batch = Vec<Item>;

/// What a caller asks the actor to do.
pub(crate) enum Cmd {
    Execute {
        params: ExecuteParams,
        raw_chunks: bool,
        timeout: Option<Duration>,
        reply: oneshot::Sender<Result<Started>>,
    },
    Control {
        run: u64,
        kind: ControlType,
        reply: oneshot::Sender<Result<()>>,
    },
    /// The `Execution` was dropped without being detached: cancel the run.
    Abandon {
        run: u64,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

/// A started run, handed to the new `Execution`.
pub(crate) struct Started {
    pub(crate) run: Arc<RunShared>,
    pub(crate) events: mpsc::Receiver<Batch>,
    pub(crate) result: ExecuteResult,
}

/// State of a run that its handles can see.
#[derive(Debug)]
pub(crate) struct RunShared {
    pub(crate) id: u64,
    /// Set once the run is over for the service and every event has been handed over.
    pub(crate) finished: AtomicBool,
}

/// A handle to a connection's actor. The connection lives while a handle (or a run) does.
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle {
    pub(crate) tx: mpsc::UnboundedSender<Cmd>,
    pub(crate) connected: Arc<ConnectedParams>,
    /// Bound on the wait for an answer to `execute` or `control`.
    pub(crate) request_timeout: Duration,
    ended: Arc<Mutex<Option<End>>>,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cmd::Execute { params, .. } => {
                f.debug_struct("Execute").field("params", params).finish()
            }
            Cmd::Control { run, kind, .. } => f
                .debug_struct("Control")
                .field("run", run)
                .field("kind", kind)
                .finish(),
            Cmd::Abandon { run } => f.debug_struct("Abandon").field("run", run).finish(),
            Cmd::Close { .. } => f.write_str("Close"),
        }
    }
}

impl ConnHandle {
    /// The error to report once the actor is gone.
    pub(crate) fn closed_error(&self) -> Error {
        match self.ended.lock().ok().and_then(|e| e.clone()) {
            Some(end) => end.error(),
            None => Error::ConnectionClosed {
                code: None,
                reason: "the connection is closed".into(),
            },
        }
    }

    /// Start a run on this connection.
    pub(crate) async fn execute(
        &self,
        params: ExecuteParams,
        raw_chunks: bool,
        timeout: Option<Duration>,
    ) -> Result<Started> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Execute {
                params,
                raw_chunks,
                timeout,
                reply,
            })
            .map_err(|_| self.closed_error())?;
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(answer) => answer.map_err(|_| self.closed_error())?,
            Err(_) => {
                // A run the service starts after all goes with the connection.
                let (reply, _) = oneshot::channel();
                let _ = self.tx.send(Cmd::Close { reply });
                Err(Error::NoResponse {
                    method: crate::protocol::method::EXECUTE,
                    after: self.request_timeout,
                })
            }
        }
    }

    /// Close the connection (code 1000) and wait for the close handshake (bounded).
    pub(crate) async fn close(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Cmd::Close { reply }).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Why the socket ended.
#[derive(Debug, Clone)]
enum End {
    Closed { code: Option<u16>, reason: String },
    Heartbeat { idle: Duration },
}

impl End {
    fn error(&self) -> Error {
        match self {
            End::Closed { code, reason } => Error::ConnectionClosed {
                code: *code,
                reason: reason.clone(),
            },
            End::Heartbeat { idle } => Error::HeartbeatTimeout { idle: *idle },
        }
    }
}

/// Start the actor for an open connection.
///
/// `one_run`: the connection exists for a single run (`Client::execute`) and closes when it ends.
pub(crate) fn spawn(
    ws: Ws,
    connected: ConnectedParams,
    heartbeat: Duration,
    request_timeout: Duration,
    one_run: bool,
) -> ConnHandle {
    let (tx, cmds) = mpsc::unbounded_channel();
    let ended = Arc::new(Mutex::new(None));
    let mut ping = tokio::time::interval((heartbeat / 3).max(Duration::from_millis(10)));
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let actor = Actor {
        ws: Some(ws),
        cmds,
        cmds_open: true,
        heartbeat,
        last_seen: Instant::now(),
        ping,
        next_id: 1,
        next_run: 1,
        pending: HashMap::new(),
        run: None,
        one_run,
        completed_after_cancel: connected.has(capability::COMPLETED_AFTER_CANCEL),
        service_timeout: connected.has(capability::RUN_TIMEOUT),
        closing: None,
        close_waiters: Vec::new(),
        end: None,
        ended: ended.clone(),
        silence: Box::pin(tokio::time::sleep(heartbeat)),
        burst: Vec::new(),
    };
    tokio::spawn(actor.run());
    ConnHandle {
        tx,
        connected: Arc::new(connected),
        request_timeout,
        ended,
    }
}

enum Pending {
    Execute {
        reply: oneshot::Sender<Result<Started>>,
    },
    Control {
        reply: oneshot::Sender<Result<()>>,
    },
    /// A CANCEL the actor sent on its own (timeout, drop); its answer does not matter.
    Internal,
}

struct Run {
    shared: Arc<RunShared>,
    tx: mpsc::Sender<Batch>,
    /// Held until the `execute` response hands it to the caller.
    rx: Option<mpsc::Receiver<Batch>>,
    /// Items not yet accepted by the channel, in batches (only the last one still grows); the
    /// socket is not read while this is non-empty.
    queue: VecDeque<Batch>,
    /// The last item for the consumer has been queued (terminal event or error).
    sealed: bool,
    /// Nobody reads any more: drop events until the service ends the run.
    discard: bool,
    /// The `Execution` was dropped without being detached.
    abandoned: bool,
    /// The service has ended the run (or the connection is gone).
    service_done: bool,
    raw_chunks: bool,
    partial: [String; 2],
    deadline: Option<(Instant, Duration)>,
    cancel_sent: bool,
}

impl Run {
    fn push(&mut self, item: Item) {
        if !self.sealed && !self.discard {
            let last = match &item {
                Ok(ev) => ev.is_terminal(),
                Err(_) => true,
            };
            match self.queue.back_mut() {
                Some(batch) if batch.len() < BATCH_ITEMS => batch.push(item),
                _ => {
                    let mut batch = Vec::with_capacity(BATCH_ITEMS);
                    batch.push(item);
                    self.queue.push_back(batch);
                }
            }
            self.sealed = last;
        }
    }

    fn push_output(&mut self, stream: OutputStream, data: String) {
        self.push(Ok(OutputEvent::Output {
            stream,
            data,
            chunk: None,
        }));
    }

    /// A piece of a long line: yield it raw, or add it to the line being reassembled.
    ///
    /// `total` is `None` on the chunks of a line the service streams before knowing its length.
    fn push_chunk(&mut self, stream: OutputStream, data: String, index: u32, total: Option<u32>) {
        if self.raw_chunks {
            let total = total.unwrap_or(0);
            self.push(Ok(OutputEvent::Output {
                stream,
                data,
                chunk: Some(Chunk { index, total }),
            }));
            return;
        }
        let slot = stream_slot(stream);
        if index == 0 && !self.partial[slot].is_empty() {
            // A new line began before the last one was complete: keep what we have.
            let prev = std::mem::take(&mut self.partial[slot]);
            self.push_output(stream, prev);
        }
        self.partial[slot].push_str(&data);
        // Indexes come from the wire: no arithmetic that could overflow on a bad frame.
        let last = total.is_some_and(|t| index >= t.saturating_sub(1));
        if self.partial[slot].len() >= MAX_LINE_BYTES || last {
            let line = std::mem::take(&mut self.partial[slot]);
            self.push_output(stream, line);
        }
    }

    fn flush_partial(&mut self) {
        for stream in [OutputStream::Stdout, OutputStream::Stderr] {
            let line = std::mem::take(&mut self.partial[stream_slot(stream)]);
            if !line.is_empty() {
                self.push_output(stream, line);
            }
        }
    }

    /// Hand queued items to the consumer while its channel has room (never waits).
    fn hand_over(&mut self) {
        while !self.discard && !self.queue.is_empty() {
            let closed = match self.tx.try_reserve() {
                Ok(permit) => {
                    if let Some(batch) = self.queue.pop_front() {
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
    fn receiver_gone(&mut self) {
        self.discard = true;
        self.queue.clear();
    }

    /// Whether the actor still has work for this run.
    fn over(&self) -> bool {
        self.service_done && (self.discard || self.queue.is_empty())
    }
}

fn stream_slot(stream: OutputStream) -> usize {
    match stream {
        OutputStream::Stdout => 0,
        OutputStream::Stderr => 1,
    }
}

struct Actor {
    ws: Option<Ws>,
    cmds: mpsc::UnboundedReceiver<Cmd>,
    cmds_open: bool,
    heartbeat: Duration,
    last_seen: Instant,
    ping: tokio::time::Interval,
    next_id: i64,
    next_run: u64,
    pending: HashMap<i64, Pending>,
    run: Option<Run>,
    one_run: bool,
    completed_after_cancel: bool,
    service_timeout: bool,
    /// Set once a close frame was sent: the socket is dropped at this instant at the latest.
    closing: Option<Instant>,
    close_waiters: Vec<oneshot::Sender<()>>,
    end: Option<End>,
    ended: Arc<Mutex<Option<End>>>,
    /// Fires at `last_seen + heartbeat` at the earliest; reset lazily (not on every frame).
    silence: Pin<Box<tokio::time::Sleep>>,
    /// Frames of the current burst (kept to reuse its allocation).
    burst: Vec<Message>,
}

/// Frames read in one go, and how the stream ended if it did right after them.
struct Burst {
    frames: Vec<Message>,
    end: Option<Option<tungstenite::Error>>,
}

/// Read every frame the socket has ready (bounded by [`BURST_FRAMES`] and [`BURST_BYTES`]);
/// waits only when there is none.
async fn read_burst(ws: &mut Ws, mut frames: Vec<Message>) -> Burst {
    let mut bytes = 0;
    std::future::poll_fn(move |cx| loop {
        match ws.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(msg))) => {
                bytes += msg.len();
                frames.push(msg);
                if frames.len() >= BURST_FRAMES || bytes >= BURST_BYTES {
                    return Poll::Ready(Burst {
                        frames: std::mem::take(&mut frames),
                        end: None,
                    });
                }
            }
            Poll::Ready(end) => {
                return Poll::Ready(Burst {
                    frames: std::mem::take(&mut frames),
                    end: Some(end.and_then(|r| r.err())),
                })
            }
            Poll::Pending if frames.is_empty() => return Poll::Pending,
            Poll::Pending => {
                return Poll::Ready(Burst {
                    frames: std::mem::take(&mut frames),
                    end: None,
                })
            }
        }
    })
    .await
}

enum Action {
    Deliver(std::result::Result<mpsc::OwnedPermit<Batch>, mpsc::error::SendError<()>>),
    Frames(Burst),
    Cmd(Option<Cmd>),
    Ping,
    /// The silence timer fired: check `last_seen`.
    Silence,
    Deadline,
    CloseDeadline,
}

/// Sleep until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Await `fut` if there is one, else never resolve.
async fn maybe<F: Future>(fut: Option<F>) -> F::Output {
    match fut {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

impl Actor {
    async fn run(mut self) {
        loop {
            if self.ws.is_none() && self.run.is_none() {
                break;
            }
            let action = self.next_action().await;
            match action {
                Action::Deliver(permit) => self.deliver(permit),
                Action::Frames(burst) => self.on_burst(burst).await,
                Action::Cmd(Some(cmd)) => self.on_cmd(cmd).await,
                Action::Cmd(None) => {
                    self.cmds_open = false;
                    // Nobody can start a run any more; a detached run keeps the connection.
                    if self.run.as_ref().is_none_or(|r| r.abandoned) {
                        self.start_close().await;
                    }
                }
                Action::Ping => {
                    self.send(Message::Ping(Default::default())).await;
                }
                Action::Silence => {
                    // No deadline at all when it is too far to be represented.
                    let Some(silent_at) = self.last_seen.checked_add(self.heartbeat) else {
                        self.silence
                            .as_mut()
                            .reset(Instant::now() + Duration::from_secs(86_400));
                        continue;
                    };
                    if Instant::now() >= silent_at {
                        let idle = self.last_seen.elapsed();
                        tracing::debug!(
                            ?idle,
                            "no frame from the service; dropping the connection"
                        );
                        self.socket_gone(End::Heartbeat { idle });
                    } else {
                        self.silence.as_mut().reset(silent_at);
                    }
                }
                Action::Deadline => self.on_deadline().await,
                Action::CloseDeadline => {
                    self.socket_gone(End::Closed {
                        code: Some(1000),
                        reason: "closed by the client".into(),
                    });
                }
            }
            if let Some(run) = self.run.as_mut() {
                run.hand_over();
            }
            self.finish_run_if_over().await;
        }
        for w in self.close_waiters.drain(..) {
            let _ = w.send(());
        }
    }

    async fn next_action(&mut self) -> Action {
        let deliver = self
            .run
            .as_ref()
            .filter(|r| !r.discard && !r.queue.is_empty())
            .map(|r| r.tx.clone().reserve_owned());
        // Backpressure: do not read while the consumer has not taken what we have.
        let read = self.ws.is_some() && deliver.is_none();
        let watch_silence = read && self.closing.is_none();
        let run_deadline = self.run.as_ref().and_then(|r| r.deadline).map(|d| d.0);
        let closing = self.closing;
        let ping = self.ws.is_some() && self.closing.is_none();
        let cmds_open = self.cmds_open;
        let Actor {
            ws,
            cmds,
            ping: ticker,
            silence,
            burst,
            ..
        } = self;
        let frames = ws
            .as_mut()
            .filter(|_| read)
            .map(|ws| read_burst(ws, std::mem::take(burst)));
        // Commands and deadlines first: a flood of output must not starve a cancel.
        tokio::select! {
            biased;
            c = cmds.recv(), if cmds_open => Action::Cmd(c),
            _ = sleep_until(run_deadline) => Action::Deadline,
            _ = sleep_until(closing) => Action::CloseDeadline,
            p = maybe(deliver) => Action::Deliver(p),
            f = maybe(frames) => Action::Frames(f),
            _ = ticker.tick(), if ping => Action::Ping,
            _ = silence.as_mut(), if watch_silence => Action::Silence,
        }
    }

    fn deliver(
        &mut self,
        permit: std::result::Result<mpsc::OwnedPermit<Batch>, mpsc::error::SendError<()>>,
    ) {
        let Some(run) = self.run.as_mut() else { return };
        match permit {
            Ok(permit) => {
                if let Some(batch) = run.queue.pop_front() {
                    permit.send(batch);
                }
                // Time spent waiting for the consumer is not the service's silence.
                self.last_seen = Instant::now();
            }
            Err(_) => run.receiver_gone(),
        }
    }

    /// Send a frame; a failure means the socket is gone.
    async fn send(&mut self, msg: Message) {
        let Some(ws) = self.ws.as_mut() else { return };
        let res = tokio::time::timeout(self.heartbeat, ws.send(msg)).await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "sending to the service failed");
                self.socket_gone(End::Closed {
                    code: None,
                    reason: e.to_string(),
                });
            }
            Err(_) => self.socket_gone(End::Heartbeat {
                idle: self.last_seen.elapsed(),
            }),
        }
    }

    async fn request(&mut self, method_req: impl FnOnce(Id) -> Request, pending: Pending) -> bool {
        let id = self.next_id;
        self.next_id += 1;
        let req = method_req(Id::Number(id));
        self.pending.insert(id, pending);
        self.send(Message::text(req.encode())).await;
        // On a send failure `socket_gone` has answered the pending request already.
        self.ws.is_some()
    }

    async fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Execute {
                params,
                raw_chunks,
                timeout,
                reply,
            } => {
                if self.ws.is_none() || self.closing.is_some() {
                    let _ = reply.send(Err(self.end_error()));
                    return;
                }
                if self.run.is_some() {
                    let _ = reply.send(Err(Error::AlreadyRunning));
                    return;
                }
                let (tx, rx) = mpsc::channel(EVENT_BATCHES);
                let id = self.next_run;
                self.next_run += 1;
                let grace = if self.service_timeout {
                    SERVICE_TIMEOUT_GRACE
                } else {
                    Duration::ZERO
                };
                self.run = Some(Run {
                    shared: Arc::new(RunShared {
                        id,
                        finished: AtomicBool::new(false),
                    }),
                    tx,
                    rx: Some(rx),
                    queue: VecDeque::new(),
                    sealed: false,
                    discard: false,
                    abandoned: false,
                    service_done: false,
                    raw_chunks,
                    partial: Default::default(),
                    // A deadline past what the clock can represent is none.
                    deadline: timeout.and_then(|t| {
                        let at = Instant::now().checked_add(t)?.checked_add(grace)?;
                        Some((at, t))
                    }),
                    cancel_sent: false,
                });
                self.request(
                    |id| Request::execute(&params, id),
                    Pending::Execute { reply },
                )
                .await;
            }
            Cmd::Control { run, kind, reply } => {
                let live = self.ws.is_some()
                    && self.closing.is_none()
                    && self
                        .run
                        .as_ref()
                        .is_some_and(|r| r.shared.id == run && !r.service_done);
                if !live {
                    let _ = reply.send(Err(Error::NoProcess {
                        message: "the run has ended".into(),
                    }));
                    return;
                }
                if kind == ControlType::Cancel {
                    if let Some(r) = self.run.as_mut() {
                        r.cancel_sent = true;
                    }
                }
                self.request(|id| Request::control(kind, id), Pending::Control { reply })
                    .await;
            }
            Cmd::Abandon { run } => {
                if self.run.as_ref().is_some_and(|r| r.shared.id == run) {
                    self.abandon().await;
                }
            }
            Cmd::Close { reply } => {
                self.close_waiters.push(reply);
                if let Some(r) = self.run.as_mut() {
                    r.push(Err(Error::ConnectionClosed {
                        code: Some(1000),
                        reason: "the session was closed".into(),
                    }));
                }
                self.start_close().await;
            }
        }
    }

    /// Nobody will read the run any more: cancel it and drop its events.
    async fn abandon(&mut self) {
        let Some(run) = self.run.as_mut() else { return };
        run.abandoned = true;
        run.discard = true;
        run.sealed = true;
        run.queue.clear();
        if !run.service_done {
            self.cancel_run().await;
            // A connection made for this run alone can go now; the service kills the group on
            // disconnect too.
            if self.one_run || !self.cmds_open {
                self.start_close().await;
            }
        }
    }

    /// Send CANCEL for the current run unless one was sent.
    async fn cancel_run(&mut self) {
        let Some(run) = self.run.as_mut() else { return };
        if run.cancel_sent || run.service_done {
            return;
        }
        run.cancel_sent = true;
        self.request(
            |id| Request::control(ControlType::Cancel, id),
            Pending::Internal,
        )
        .await;
    }

    async fn on_deadline(&mut self) {
        let Some(run) = self.run.as_mut() else { return };
        let Some((_, after)) = run.deadline.take() else {
            return;
        };
        run.flush_partial();
        run.push(Err(Error::Timeout { after }));
        run.sealed = true;
        if !run.service_done {
            self.cancel_run().await;
            if self.one_run {
                self.start_close().await;
            }
        }
    }

    async fn on_burst(&mut self, burst: Burst) {
        self.last_seen = Instant::now();
        let Burst { mut frames, end } = burst;
        for msg in frames.drain(..) {
            if self.ws.is_none() {
                // The socket failed while answering an earlier frame: the rest is moot.
                break;
            }
            self.on_message(msg).await;
        }
        self.burst = frames;
        match end {
            None => {}
            Some(Some(e)) => {
                tracing::debug!(error = %e, "the connection failed");
                let code = self.end_code();
                self.socket_gone(End::Closed {
                    code,
                    reason: e.to_string(),
                });
            }
            Some(None) => {
                let code = self.end_code();
                self.socket_gone(End::Closed {
                    code,
                    reason: String::new(),
                });
            }
        }
    }

    async fn on_message(&mut self, msg: Message) {
        match msg {
            Message::Text(text) => self.on_text(text.as_str()).await,
            Message::Binary(data) => {
                let frame = format!("<{} bytes of binary data>", data.len());
                self.protocol_error("unexpected binary frame", &frame).await;
            }
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (Some(u16::from(f.code)), f.reason.to_string()))
                    .unwrap_or((None, String::new()));
                let end = End::Closed { code, reason };
                self.fail_run(end.error());
                self.end.get_or_insert(end);
                // tungstenite answers the close; read on until the stream ends.
                self.closing.get_or_insert(Instant::now() + CLOSE_GRACE);
            }
            // Pings are answered by tungstenite; pongs only prove liveness.
            _ => {}
        }
    }

    fn end_code(&self) -> Option<u16> {
        match &self.end {
            Some(End::Closed { code, .. }) => *code,
            _ => None,
        }
    }

    async fn on_text(&mut self, text: &str) {
        let frame = match ServerFrame::decode(text) {
            Ok(f) => f,
            Err(e) => return self.protocol_error(&e.to_string(), text).await,
        };
        match frame {
            ServerFrame::Response(resp) => self.on_response(resp, text).await,
            ServerFrame::Notification(ServerNotification::Ping(_)) => {
                self.send(Message::text(Request::pong().encode())).await;
            }
            ServerFrame::Notification(n) => self.on_notification(n),
        }
    }

    async fn on_response(&mut self, resp: Response, text: &str) {
        let pending = match &resp.id {
            Some(Id::Number(n)) => self.pending.remove(n),
            _ => None,
        };
        let Some(pending) = pending else {
            tracing::debug!(frame = text, "response to no pending request");
            return;
        };
        match pending {
            Pending::Internal => {}
            Pending::Control { reply } => {
                let res = match resp.error {
                    Some(err) => Err(Error::from_rpc(err, true)),
                    None => Ok(()),
                };
                let _ = reply.send(res);
            }
            Pending::Execute { reply } => {
                if let Some(err) = resp.error {
                    // The run never started.
                    if let Some(run) = self.run.take() {
                        run.shared.finished.store(true, Ordering::Release);
                    }
                    let _ = reply.send(Err(Error::from_rpc(err, false)));
                    if self.one_run {
                        self.start_close().await;
                    }
                    return;
                }
                let parsed = resp
                    .result
                    .map(serde_json::from_value::<ExecuteResult>)
                    .transpose();
                let Some(run) = self.run.as_mut() else { return };
                let rx = run.rx.take();
                match (parsed, rx) {
                    (Ok(Some(result)), Some(events)) => {
                        let started = Started {
                            run: run.shared.clone(),
                            events,
                            result,
                        };
                        if reply.send(Ok(started)).is_err() {
                            // The caller stopped waiting: nobody will ever read this run.
                            self.abandon().await;
                        }
                    }
                    (parsed, _) => {
                        let msg = match parsed {
                            Err(e) => format!("bad `execute` result: {e}"),
                            _ => "`execute` response without a result".to_owned(),
                        };
                        let _ = reply.send(Err(Error::protocol(msg, text)));
                        self.abandon().await;
                    }
                }
            }
        }
    }

    fn on_notification(&mut self, n: ServerNotification) {
        let completed_after_cancel = self.completed_after_cancel;
        let Some(run) = self.run.as_mut().filter(|r| !r.service_done) else {
            tracing::trace!(method = n.method(), "notification outside a run");
            return;
        };
        match map_notification(n) {
            Mapped::Session => {}
            Mapped::Chunk {
                stream,
                data,
                index,
                total,
            } => run.push_chunk(stream, data, index, total),
            Mapped::Event(ev) => {
                // Without `completed_after_cancel` nothing follows `process.canceled`.
                let end = ev.is_terminal()
                    || (matches!(ev, OutputEvent::Canceled) && !completed_after_cancel);
                if end {
                    run.flush_partial();
                }
                let canceled = matches!(ev, OutputEvent::Canceled);
                run.push(Ok(ev));
                if end {
                    run.service_done = true;
                    run.sealed = true;
                    run.deadline = None;
                }
                if canceled {
                    run.cancel_sent = true;
                }
            }
        }
    }

    /// A malformed frame: it ends the current run's stream with a protocol error.
    ///
    /// Its id cannot be known, so requests still waiting fail with it too rather than hang.
    async fn protocol_error(&mut self, message: &str, frame: &str) {
        tracing::debug!(message, frame, "malformed frame from the service");
        let mut execute_failed = false;
        for (_, p) in self.pending.drain() {
            match p {
                Pending::Execute { reply } => {
                    execute_failed = true;
                    let _ = reply.send(Err(Error::protocol(message, frame)));
                }
                Pending::Control { reply } => {
                    let _ = reply.send(Err(Error::protocol(message, frame)));
                }
                Pending::Internal => {}
            }
        }
        if execute_failed {
            return self.abandon().await;
        }
        let Some(run) = self.run.as_mut() else { return };
        run.flush_partial();
        run.push(Err(Error::protocol(message, frame)));
        run.sealed = true;
        if !run.service_done {
            self.cancel_run().await;
            if self.one_run {
                self.start_close().await;
            }
        }
    }

    /// End the current run's stream with `err` (the socket is closing or gone).
    fn fail_run(&mut self, err: Error) {
        if let Some(run) = self.run.as_mut() {
            run.flush_partial();
            run.push(Err(err));
            run.sealed = true;
            run.service_done = true;
            run.deadline = None;
        }
    }

    fn end_error(&self) -> Error {
        self.end
            .as_ref()
            .map(End::error)
            .unwrap_or(Error::ConnectionClosed {
                code: Some(1000),
                reason: "the connection is closing".into(),
            })
    }

    /// The socket is gone: fail the run and every pending request.
    fn socket_gone(&mut self, end: End) {
        let end = self.end.get_or_insert(end).clone();
        if let Ok(mut e) = self.ended.lock() {
            e.get_or_insert(end.clone());
        }
        self.ws = None;
        self.closing = None;
        self.fail_run(end.error());
        for (_, p) in self.pending.drain() {
            match p {
                Pending::Execute { reply } => {
                    let _ = reply.send(Err(end.error()));
                }
                Pending::Control { reply } => {
                    let _ = reply.send(Err(end.error()));
                }
                Pending::Internal => {}
            }
        }
    }

    /// Send close 1000 and give the service a moment to answer.
    async fn start_close(&mut self) {
        if self.ws.is_none() || self.closing.is_some() {
            return;
        }
        self.end.get_or_insert(End::Closed {
            code: Some(1000),
            reason: "closed by the client".into(),
        });
        self.closing = Some(Instant::now() + CLOSE_GRACE);
        self.send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
    }

    async fn finish_run_if_over(&mut self) {
        if !self.run.as_ref().is_some_and(Run::over) {
            return;
        }
        if let Some(run) = self.run.take() {
            run.shared.finished.store(true, Ordering::Release);
        }
        if self.one_run || !self.cmds_open {
            self.start_close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(raw_chunks: bool) -> Run {
        let (tx, rx) = mpsc::channel(1);
        Run {
            shared: Arc::new(RunShared {
                id: 1,
                finished: AtomicBool::new(false),
            }),
            tx,
            rx: Some(rx),
            queue: VecDeque::new(),
            sealed: false,
            discard: false,
            abandoned: false,
            service_done: false,
            raw_chunks,
            partial: Default::default(),
            deadline: None,
            cancel_sent: false,
        }
    }

    fn outputs(run: &Run) -> Vec<(OutputStream, String, Option<Chunk>)> {
        run.queue
            .iter()
            .flatten()
            .map(|i| match i {
                Ok(OutputEvent::Output {
                    stream,
                    data,
                    chunk,
                }) => (*stream, data.clone(), *chunk),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn chunk(index: u32, total: u32) -> Chunk {
        Chunk { index, total }
    }

    #[test]
    fn chunks_are_reassembled_per_stream() {
        let mut r = run(false);
        r.push_chunk(OutputStream::Stdout, "aa".into(), 0, Some(3));
        r.push_chunk(OutputStream::Stderr, "e1".into(), 0, Some(2));
        r.push_chunk(OutputStream::Stdout, "bb".into(), 1, Some(3));
        r.push_chunk(OutputStream::Stderr, "e2\n".into(), 1, Some(2));
        r.push_chunk(OutputStream::Stdout, "c\n".into(), 2, Some(3));
        assert_eq!(
            outputs(&r),
            [
                (OutputStream::Stderr, "e1e2\n".to_owned(), None),
                (OutputStream::Stdout, "aabbc\n".to_owned(), None),
            ]
        );
    }

    #[test]
    fn raw_chunks_pass_through() {
        let mut r = run(true);
        r.push_chunk(OutputStream::Stdout, "aa".into(), 0, Some(2));
        r.push_chunk(OutputStream::Stdout, "b\n".into(), 1, Some(2));
        assert_eq!(
            outputs(&r),
            [
                (OutputStream::Stdout, "aa".to_owned(), Some(chunk(0, 2))),
                (OutputStream::Stdout, "b\n".to_owned(), Some(chunk(1, 2))),
            ]
        );
    }

    #[test]
    fn an_interrupted_line_and_a_terminal_flush_what_was_gathered() {
        let mut r = run(false);
        r.push_chunk(OutputStream::Stdout, "first".into(), 0, Some(3));
        // A new line starts before the old one ended: the old part is kept, not lost.
        r.push_chunk(OutputStream::Stdout, "second".into(), 0, Some(2));
        r.flush_partial();
        assert_eq!(
            outputs(&r),
            [
                (OutputStream::Stdout, "first".to_owned(), None),
                (OutputStream::Stdout, "second".to_owned(), None),
            ]
        );
    }

    #[test]
    fn a_streamed_line_ends_at_the_chunk_that_carries_the_count() {
        let mut r = run(false);
        r.push_chunk(OutputStream::Stdout, "a".into(), 0, None);
        r.push_chunk(OutputStream::Stdout, "b".into(), 1, None);
        assert!(outputs(&r).is_empty());
        r.push_chunk(OutputStream::Stdout, "c\n".into(), 2, Some(3));
        assert_eq!(
            outputs(&r),
            [(OutputStream::Stdout, "abc\n".to_owned(), None)]
        );
        let mut raw = run(true);
        raw.push_chunk(OutputStream::Stdout, "a".into(), 0, None);
        raw.push_chunk(OutputStream::Stdout, "b\n".into(), 1, Some(2));
        assert_eq!(
            outputs(&raw),
            [
                (OutputStream::Stdout, "a".to_owned(), Some(chunk(0, 0))),
                (OutputStream::Stdout, "b\n".to_owned(), Some(chunk(1, 2))),
            ]
        );
    }

    #[test]
    fn absurd_chunk_positions_do_not_panic() {
        let mut r = run(false);
        r.push_chunk(OutputStream::Stdout, "x".into(), u32::MAX, Some(2));
        r.push_chunk(OutputStream::Stdout, "y".into(), u32::MAX, Some(0));
        r.push_chunk(OutputStream::Stdout, "z".into(), u32::MAX, None);
        r.flush_partial();
        let text: String = outputs(&r).into_iter().map(|o| o.1).collect();
        assert_eq!(text, "xyz");
    }

    #[test]
    fn nothing_is_queued_after_the_terminal_item() {
        let mut r = run(false);
        r.push(Err(Error::Timeout {
            after: Duration::from_secs(1),
        }));
        r.push_output(OutputStream::Stdout, "late".into());
        assert_eq!(r.queue.iter().map(Vec::len).sum::<usize>(), 1);
        assert!(r.sealed);
    }
}
