//! The actor: the one task that owns a connection's WebSocket.
//!
//! It reads every frame, answers `ping`, sends WebSocket pings and watches for silence, matches
//! responses to requests by id, and feeds the current run's events into a bounded channel. While
//! the consumer of that channel is behind, the actor stops reading the socket, so a slow reader
//! slows the service down instead of growing memory.
//!
//! Throughput: the actor takes every frame already buffered from the socket in one go (up to a
//! burst limit) and hands events over in batches, so a stream of small lines costs one wake-up
//! of the consumer per batch rather than per line.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};

use super::pending::{Pending, Requests};
use super::run_queue::{Run, SendError, BATCH_ITEMS};
use super::{Batch, Cmd, End, Started};
use crate::error::Error;
use crate::protocol::{
    capability, ConnectedParams, ControlType, ExecuteResult, Id, OutputMode, Request, Response,
    ServerFrame, ServerNotification,
};
use crate::transport::Ws;

/// Frames read from the socket in one go, at most.
const BURST_FRAMES: usize = BATCH_ITEMS;
/// Bytes of frames read from the socket in one go, at most (a burst ends after the frame that
/// passes it).
const BURST_BYTES: usize = 1 << 20;
/// Extra time given to a service that enforces `timeout` itself before the client cancels.
const SERVICE_TIMEOUT_GRACE: Duration = Duration::from_secs(2);
/// How long a close handshake may take before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

pub(super) struct Actor {
    ws: Option<Ws>,
    cmds: mpsc::UnboundedReceiver<Cmd>,
    cmds_open: bool,
    heartbeat: Duration,
    last_seen: Instant,
    ping: tokio::time::Interval,
    next_run: u64,
    requests: Requests,
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
    /// Runs ask for batched output.
    batched: bool,
}

impl Actor {
    /// The actor of an open connection: `one_run` as for [`super::spawn`]; `ended` receives why
    /// the socket ended.
    pub(super) fn new(
        ws: Ws,
        cmds: mpsc::UnboundedReceiver<Cmd>,
        connected: &ConnectedParams,
        heartbeat: Duration,
        one_run: bool,
        ended: Arc<Mutex<Option<End>>>,
    ) -> Actor {
        let mut ping = tokio::time::interval((heartbeat / 3).max(Duration::from_millis(10)));
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Actor {
            ws: Some(ws),
            cmds,
            cmds_open: true,
            heartbeat,
            last_seen: Instant::now(),
            ping,
            next_run: 1,
            requests: Requests::new(),
            run: None,
            one_run,
            completed_after_cancel: connected.has(capability::COMPLETED_AFTER_CANCEL),
            service_timeout: connected.has(capability::RUN_TIMEOUT),
            closing: None,
            close_waiters: Vec::new(),
            end: None,
            ended,
            silence: Box::pin(tokio::time::sleep(heartbeat)),
            burst: Vec::new(),
            batched: false,
        }
    }

    /// Ask for batched output in every `execute` (the service offers it).
    pub(super) fn batched(mut self, batched: bool) -> Actor {
        self.batched = batched;
        self
    }
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
    Deliver(std::result::Result<mpsc::OwnedPermit<Batch>, SendError>),
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
    pub(super) async fn run(mut self) {
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
                run.queue.hand_over();
            }
            self.finish_run_if_over().await;
        }
        for w in self.close_waiters.drain(..) {
            let _ = w.send(());
        }
    }

    async fn next_action(&mut self) -> Action {
        let deliver = self.run.as_ref().and_then(|r| r.queue.next_room());
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

    fn deliver(&mut self, permit: std::result::Result<mpsc::OwnedPermit<Batch>, SendError>) {
        let Some(run) = self.run.as_mut() else { return };
        match permit {
            Ok(permit) => {
                run.queue.deliver(permit);
                // Time spent waiting for the consumer is not the service's silence.
                self.last_seen = Instant::now();
            }
            Err(_) => run.queue.receiver_gone(),
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
        let req = method_req(self.requests.add(pending));
        self.send(Message::text(req.encode())).await;
        // On a send failure `socket_gone` has answered the pending request already.
        self.ws.is_some()
    }

    async fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Execute {
                mut params,
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
                let id = self.next_run;
                self.next_run += 1;
                let grace = if self.service_timeout {
                    SERVICE_TIMEOUT_GRACE
                } else {
                    Duration::ZERO
                };
                // A deadline past what the clock can represent is none.
                let deadline = timeout.and_then(|t| {
                    let at = Instant::now().checked_add(t)?.checked_add(grace)?;
                    Some((at, t))
                });
                if self.batched {
                    params.output = Some(OutputMode::Batched);
                }
                let run = Run::new(id, raw_chunks, self.completed_after_cancel, deadline);
                self.run = Some(run);
                self.request(
                    |id| Request::execute(&params, id),
                    Pending::Execute { reply },
                )
                .await;
            }
            Cmd::Input { run, params, reply } => {
                if let Some(reply) = self.live_or_answer(run, reply) {
                    self.request(|id| Request::input(&params, id), Pending::Control { reply })
                        .await;
                }
            }
            Cmd::Control { run, kind, reply } => {
                let Some(reply) = self.live_or_answer(run, reply) else {
                    return;
                };
                if kind == ControlType::Cancel {
                    if let Some(r) = &self.run {
                        r.mark_cancel_sent();
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
                    r.end_with(Error::ConnectionClosed {
                        code: Some(1000),
                        reason: "the session was closed".into(),
                    });
                }
                self.start_close().await;
            }
        }
    }

    /// `reply` back when run `run` is the current one and still running at the service;
    /// otherwise it is answered with [`Error::NoProcess`] here.
    fn live_or_answer(
        &self,
        run: u64,
        reply: oneshot::Sender<crate::Result<()>>,
    ) -> Option<oneshot::Sender<crate::Result<()>>> {
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
            return None;
        }
        Some(reply)
    }

    /// Nobody will read the run any more: cancel it and drop its events.
    async fn abandon(&mut self) {
        let Some(run) = self.run.as_mut() else { return };
        run.abandoned = true;
        run.queue.receiver_gone();
        run.queue.sealed = true;
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
        let Some(run) = self.run.as_ref() else { return };
        if run.cancel_sent() || run.service_done {
            return;
        }
        run.mark_cancel_sent();
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
        run.end_with(Error::Timeout { after });
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
            // Sent once, before any run (the transport reads it); a repeat means nothing.
            ServerFrame::Notification(ServerNotification::Connected(_)) => {}
            ServerFrame::Notification(n) => self.on_notification(n),
        }
    }

    async fn on_response(&mut self, resp: Response, text: &str) {
        let Some(pending) = self.requests.take(resp.id.as_ref()) else {
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
                        run.shared.finished.send_replace(true);
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
                let rx = run.queue.rx.take();
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
        match self.run.as_mut().filter(|r| !r.service_done) {
            Some(run) => run.on_notification(n),
            None => tracing::trace!(method = n.method(), "notification outside a run"),
        }
    }

    /// A malformed frame: it ends the current run's stream with a protocol error.
    ///
    /// Its id cannot be known, so requests still waiting fail with it too rather than hang.
    async fn protocol_error(&mut self, message: &str, frame: &str) {
        tracing::debug!(message, frame, "malformed frame from the service");
        if self.requests.fail_all(|| Error::protocol(message, frame)) {
            // An `execute` was waiting: its caller has the error, nobody reads the run.
            return self.abandon().await;
        }
        let Some(run) = self.run.as_mut() else { return };
        run.end_with(Error::protocol(message, frame));
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
            run.end_with(err);
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
        self.requests.fail_all(|| end.error());
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
            run.shared.finished.send_replace(true);
        }
        if self.one_run || !self.cmds_open {
            self.start_close().await;
        }
    }
}
