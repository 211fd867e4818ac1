//! One WebSocket connection: the frame loop, the heartbeat, and request dispatch.
//!
//! Heartbeat: a `ping` notification goes out every interval. Any frame from the client (a
//! `pong`, a request, or a WebSocket-level ping/pong) counts as a sign of life: a client busy
//! sending requests is evidently there. With no sign of life for two intervals the session is
//! closed with code 1008 "heartbeat timeout", after its process group has been killed.
//!
//! However the session ends (client close, vanished client, heartbeat, service shutdown), its
//! process group is killed (SIGTERM, SIGKILL after the grace) before the session is gone.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{Message, WebSocket};
use cc_executor_protocol::{
    capability, code, method, status, ConnectedParams, ControlParams, ControlResult, ControlType,
    ErrorObject, ExecuteParams, ExecuteResult, Id, InputParams, InputResult, Notification,
    OutputMode, PingParams, ProcessStatusParams, PtySize, Request, Response, JSONRPC_VERSION,
    MAX_PENDING_INPUT, PROTOCOL_VERSION,
};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, Semaphore, TryAcquireError};

use crate::http::{SessionGuard, State};
use crate::input::Refusal;
use crate::metrics::Outcome;
use crate::process;
use crate::run::{self, RunContext, RunHandle};
use crate::writer::{self, CtrlItem, OutItem, CTRL_BYTES, FRAME_OVERHEAD, OUT_CAPACITY};

/// How long a closing session waits for its queue and its writer.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How long a closing session waits for the client's answer to its close frame (a client that
/// reads answers at once; one that does not is not worth holding the shutdown for).
const CLOSE_REPLY_WAIT: Duration = Duration::from_millis(500);
/// Longest error message sent back; messages can quote client input (a method name, a path),
/// which must not make every queued reply as big as the largest request.
const MAX_ERROR_MESSAGE: usize = 1024;
/// The answer to `execute` while the service drains.
const DRAINING: &str = "The service is draining: it starts no new runs";
/// Longest string `id` accepted (bytes): replies echo the id, so its size bounds theirs.
const MAX_ID_BYTES: usize = 256;
/// The answer to a request whose `id` cannot be echoed.
const INVALID_ID: &str = "Invalid request: id must be an integer or a string of at most 256 bytes";
/// Close reason of a session whose client stopped reading while its reply queue was full.
const NOT_READING: &str = "reply queue full: the client is not reading its replies";

/// Capabilities advertised in `connected`.
const CAPABILITIES: [&str; 9] = [
    capability::EXECUTE,
    capability::CONTROL,
    capability::STREAM,
    capability::COMPLETED_AFTER_CANCEL,
    capability::RUN_TIMEOUT,
    capability::CWD,
    capability::STDIN,
    capability::PTY,
    capability::BATCH_OUTPUT,
];

/// Why the frame loop ended.
enum End {
    /// The client closed or vanished.
    ClientGone,
    /// We close, with this code and reason.
    Close(u16, &'static str),
}

/// An error answering a request whose id cannot be echoed: JSON-RPC gives it `"id": null`.
#[derive(Serialize)]
struct NullIdError {
    jsonrpc: &'static str,
    error: ErrorObject,
    id: (),
}

/// Result of `hook_status`: this service runs no hooks.
#[derive(Serialize)]
struct HookStatus {
    enabled: bool,
    config_path: Option<String>,
    hooks_configured: Vec<String>,
    timeout: u64,
    parallel: bool,
}

struct Session {
    id: Arc<str>,
    state: Arc<State>,
    ctrl: mpsc::UnboundedSender<CtrlItem>,
    /// Bytes `ctrl` may still take (see [`CTRL_BYTES`]).
    budget: Arc<Semaphore>,
    out: mpsc::Sender<OutItem>,
    /// A frame found no room in the queue for two heartbeat intervals (the client reads
    /// nothing), or the service is stopping while the queue is full: the session must end.
    stalled: AtomicBool,
}

/// Serve one accepted WebSocket until it ends.
pub(crate) async fn serve(socket: WebSocket, state: Arc<State>, guard: SessionGuard) {
    let _guard = guard;
    let (sink, mut stream) = socket.split();
    let (ctrl_tx, ctrl_rx) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = mpsc::channel(OUT_CAPACITY);
    let mut writer = tokio::spawn(writer::run(sink, ctrl_rx, out_rx));
    let session = Session {
        id: uuid::Uuid::new_v4().to_string().into(),
        state: state.clone(),
        ctrl: ctrl_tx,
        budget: Arc::new(Semaphore::new(CTRL_BYTES)),
        out: out_tx,
        stalled: AtomicBool::new(false),
    };
    tracing::debug!(session = %session.id, "session opened");
    session
        .notify(
            method::CONNECTED,
            ConnectedParams {
                session_id: session.id.to_string(),
                version: PROTOCOL_VERSION.to_owned(),
                capabilities: CAPABILITIES
                    .iter()
                    .filter(|c| {
                        state.config.accept_input
                            || ![capability::STDIN, capability::PTY].contains(c)
                    })
                    .map(|c| (*c).to_owned())
                    .collect(),
                shell: state.config.reported_shell(),
            },
        )
        .await;

    let every = state.config.heartbeat_interval;
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_seen = Instant::now();
    let mut shutdown = state.shutdown.subscribe();
    let mut run: Option<RunHandle> = None;

    let end = loop {
        tokio::select! {
            msg = stream.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) {
                        Ok(t) => t.into(),
                        Err(_) => {
                            last_seen = Instant::now();
                            session.reply_error(None, code::INTERNAL_ERROR, "Binary frames must hold UTF-8 JSON").await;
                            continue;
                        }
                    },
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        last_seen = Instant::now();
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break End::ClientGone,
                };
                last_seen = Instant::now();
                session.handle(&mut run, text.as_str()).await;
                if session.stalled() {
                    break End::Close(1008, NOT_READING);
                }
            }
            _ = heartbeat.tick() => {
                if last_seen.elapsed() >= every * 2 {
                    break End::Close(1008, "heartbeat timeout");
                }
                let timestamp = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                session.notify(method::PING, PingParams { timestamp }).await;
                if session.stalled() {
                    break End::Close(1008, NOT_READING);
                }
            }
            _ = run_finished(&mut run) => run = None,
            _ = stopping(&mut shutdown) => break End::Close(1001, "server shutting down"),
        }
    };

    // Kill the run first, so that a client that sees the close can rely on the group being gone.
    if let Some(r) = run.take() {
        r.abort(state.config.kill_grace + Duration::from_secs(3))
            .await;
    }
    // The close goes after the frames already queued. A client that stopped reading gets two
    // heartbeat intervals (unless the service stops) to read them and answer the close; any
    // other client is not waited for beyond `CLOSE_REPLY_WAIT` and `CLOSE_WAIT`.
    let (reply_wait, drain) = match end {
        End::Close(_, NOT_READING) => {
            let bound = state.config.heartbeat_interval * 2;
            (bound, bound)
        }
        _ => (CLOSE_REPLY_WAIT, CLOSE_WAIT),
    };
    let mut shutdown = state.shutdown.subscribe();
    match end {
        End::ClientGone => {
            let _ = session.ctrl.send(CtrlItem::End);
        }
        End::Close(code, reason) => {
            tracing::debug!(session = %session.id, code, reason, "closing session");
            let _ = session.ctrl.send(CtrlItem::Close(code, reason.to_owned()));
            // Let the client answer our close before the connection is dropped: dropping it
            // with the client's frames unread resets it, and the client could lose the last
            // frames we sent, the close among them.
            let answered = async {
                while let Some(Ok(m)) = stream.next().await {
                    if matches!(m, Message::Close(_)) {
                        break;
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::timeout(reply_wait, answered) => {}
                _ = stopping(&mut shutdown), if reply_wait > CLOSE_REPLY_WAIT => {}
            }
        }
    }
    drop(session);
    tokio::select! {
        done = tokio::time::timeout(drain, &mut writer) => if done.is_err() {
            writer.abort();
        },
        _ = stopping(&mut shutdown), if drain > CLOSE_WAIT => {
            if tokio::time::timeout(CLOSE_WAIT, &mut writer).await.is_err() {
                writer.abort();
            }
        }
    }
    tracing::debug!("session closed");
}

/// Resolves once the service is shutting down.
async fn stopping(rx: &mut tokio::sync::watch::Receiver<bool>) {
    // `.is_ok()` drops the borrowed value at once: it is not `Send`. An error (the service
    // state is gone) also means shutting down.
    let _ = rx.wait_for(|stop| *stop).await.is_ok();
}

/// Resolves when the current run's supervisor has finished (pending forever without a run).
async fn run_finished(run: &mut Option<RunHandle>) {
    match run {
        Some(r) => {
            let _ = (&mut r.task).await;
        }
        None => std::future::pending().await,
    }
}

impl Session {
    /// Queue a frame for the writer, once the queue has room for its bytes.
    ///
    /// A full queue means the client is not reading (the writer waits on the socket). Waiting
    /// on it without a bound would stall the frame loop, and with it the heartbeat and the
    /// shutdown signal, for as long as the client keeps the connection open: give up after two
    /// heartbeat intervals, or at once when the service stops, and mark the session stalled
    /// (it is then closed with 1008).
    async fn send(&self, frame: String) {
        if self.stalled() {
            return;
        }
        // A frame larger than the whole budget takes all of it (it waits for an empty queue).
        let cost = (frame.len() + FRAME_OVERHEAD).min(CTRL_BYTES) as u32;
        let permit = match self.budget.clone().try_acquire_many_owned(cost) {
            Ok(p) => p,
            Err(TryAcquireError::Closed) => return,
            Err(TryAcquireError::NoPermits) => {
                let mut shutdown = self.state.shutdown.subscribe();
                let bound = self.state.config.heartbeat_interval * 2;
                tokio::select! {
                    p = self.budget.clone().acquire_many_owned(cost) => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    _ = tokio::time::sleep(bound) => {
                        tracing::debug!(session = %self.id, "client not reading; ending the session");
                        self.stalled.store(true, Ordering::Relaxed);
                        return;
                    }
                    _ = stopping(&mut shutdown) => {
                        self.stalled.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            }
        };
        // Fails only when the writer is gone, i.e. the connection is closing anyway.
        let _ = self.ctrl.send(CtrlItem::Frame(frame, permit));
    }

    fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }

    async fn notify<P: Serialize>(&self, m: &str, params: P) {
        self.send(Notification::new(m, params).encode()).await;
    }

    async fn reply<T: Serialize>(&self, id: Option<&Id>, result: T) {
        // `serde_json` keeps the members in the struct's order (`preserve_order`).
        match serde_json::to_value(result) {
            Ok(v) => self.send(Response::ok(id.cloned(), v).encode()).await,
            Err(e) => tracing::error!("could not encode a result: {e}"),
        }
    }

    async fn reply_error(&self, id: Option<Id>, code: i64, message: impl Into<String>) {
        let message = clip(message.into(), MAX_ERROR_MESSAGE);
        self.send(Response::error(id, code, message).encode()).await;
    }

    /// One text frame from the client.
    async fn handle(&self, run: &mut Option<RunHandle>, text: &str) {
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                return self
                    .reply_error(None, code::INTERNAL_ERROR, e.to_string())
                    .await
            }
        };
        let Ok(id) = checked_id(value.get("id")) else {
            let frame = NullIdError {
                jsonrpc: JSONRPC_VERSION,
                error: ErrorObject {
                    code: code::INVALID_REQUEST,
                    message: INVALID_ID.to_owned(),
                    data: Value::Null,
                },
                id: (),
            };
            return match serde_json::to_string(&frame) {
                Ok(f) => self.send(f).await,
                Err(e) => tracing::error!("could not encode an error: {e}"),
            };
        };
        let req: Request = match serde_json::from_value(value) {
            Ok(r) => r,
            Err(e) => {
                let msg = format!("Invalid request: {e}");
                return self.reply_error(id, code::INTERNAL_ERROR, msg).await;
            }
        };
        match req.method.as_str() {
            method::EXECUTE => {
                let task = |run: &Option<RunHandle>| run.as_ref().map(|r| r.task.id());
                let before = task(run);
                if self.state.draining() {
                    // Like a full service: the client may try another one.
                    self.reply_error(req.id, code::SESSION_LIMIT, DRAINING)
                        .await;
                } else {
                    self.execute(run, req.id, req.params).await;
                }
                if task(run).is_none() || task(run) == before {
                    self.state.metrics.run_ended(Outcome::Refused, None);
                }
            }
            method::CONTROL => self.control(run, req.id, req.params).await,
            method::INPUT => self.input(run, req.id, req.params).await,
            method::HOOK_STATUS => {
                let hooks = HookStatus {
                    enabled: false,
                    config_path: None,
                    hooks_configured: Vec::new(),
                    timeout: 60,
                    parallel: false,
                };
                self.reply(req.id.as_ref(), hooks).await
            }
            method::PONG => {}
            other => {
                let msg = format!("Unknown method: {other}");
                self.reply_error(req.id, code::METHOD_NOT_FOUND, msg).await
            }
        }
    }

    async fn execute(&self, run: &mut Option<RunHandle>, id: Option<Id>, params: Option<Value>) {
        let p: ExecuteParams = match serde_json::from_value(params.unwrap_or(Value::Null)) {
            Ok(p) => p,
            Err(e) => {
                let msg = format!("Invalid params for execute: {e}");
                return self.reply_error(id, code::INTERNAL_ERROR, msg).await;
            }
        };
        if let Some(t) = p.timeout {
            if !(t.is_finite() && t > 0.0 && Duration::try_from_secs_f64(t).is_ok()) {
                let msg =
                    "Invalid params for execute: timeout must be a positive number of seconds";
                return self.reply_error(id, code::INTERNAL_ERROR, msg).await;
            }
        }
        let stdio = match (p.pty, p.pty_size, p.stdin) {
            (false, _, None) => process::Stdio::Null,
            (false, _, Some(_)) => process::Stdio::Pipe,
            (true, None, _) => process::Stdio::Pty(PtySize::DEFAULT),
            (true, Some(size), _) if size.cols > 0 && size.rows > 0 => process::Stdio::Pty(size),
            (true, Some(_), _) => {
                let msg = "Invalid params for execute: pty_size needs at least 1 column and 1 row";
                return self.reply_error(id, code::INTERNAL_ERROR, msg).await;
            }
        };
        if stdio != process::Stdio::Null && !self.state.config.accept_input {
            let msg =
                "This service does not accept input for commands: run it without stdin or pty";
            return self.reply_error(id, code::INTERNAL_ERROR, msg).await;
        }
        if run.as_ref().is_some_and(RunHandle::reported) {
            // Its `process.completed` is out; the task is only finishing: let it end alone.
            *run = None;
        }
        if run.is_some() {
            return self
                .reply_error(id, code::ALREADY_RUNNING, "A process is already running")
                .await;
        }
        if p.command.trim().is_empty() {
            return self
                .reply_error(id, code::COMMAND_NOT_ALLOWED, "Command cannot be empty")
                .await;
        }
        let config = &self.state.config;
        // With an allowlist the line is split and run as an argv, never by a shell.
        let argv = match config.allowlist.as_ref().map(|a| a.argv(&p.command)) {
            Some(Err(refusal)) => {
                return self
                    .reply_error(id, code::COMMAND_NOT_ALLOWED, refusal.to_string())
                    .await;
            }
            Some(Ok(argv)) => Some(argv),
            None => None,
        };
        let base = config
            .working_dir
            .clone()
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        let cwd = match &p.cwd {
            Some(dir) => base.join(dir),
            None => base,
        };
        if !cwd.is_dir() {
            let msg = format!("Working directory not found: {}", cwd.display());
            return self.reply_error(id, code::INTERNAL_ERROR, msg).await;
        }
        let program = match argv {
            Some(argv) => process::Program::Argv(argv),
            None => process::Program::Shell {
                shell: config.shell.clone(),
                command: p.command.clone(),
            },
        };
        let spawned = match process::spawn(&program, &cwd, stdio, &self.state.registry).await {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("Failed to start command: {e}");
                return self.reply_error(id, code::INTERNAL_ERROR, msg).await;
            }
        };
        // Counted before `started` goes out: a drain that begins after it waits for this run.
        let running = self.state.metrics.run_started();
        let (pid, pgid) = (spawned.pid, spawned.tree.id());
        tracing::debug!(session = %self.id, pid, command = %p.command, "started");
        // Result and `process.started` go out before the readers start producing output.
        let result = ExecuteResult {
            status: status::STARTED.to_owned(),
            pid,
            pgid: Some(pgid),
        };
        self.reply(id.as_ref(), result).await;
        self.notify(
            method::PROCESS_STARTED,
            status_params(status::STARTED, pid, pgid),
        )
        .await;
        let ctx = RunContext {
            session_id: self.id.clone(),
            out: self.out.clone(),
            kill_grace: config.kill_grace,
            metrics: self.state.metrics.clone(),
            batched: p.output == Some(OutputMode::Batched),
        };
        *run = Some(run::start(spawned, p.timeout, ctx, running));
    }

    /// `input`: text for the running command's stdin. It is only ever data for the command:
    /// never parsed, never run, whatever the allowlist.
    async fn input(&self, run: &mut Option<RunHandle>, id: Option<Id>, params: Option<Value>) {
        let decoded = serde_json::from_value::<InputParams>(params.unwrap_or(Value::Null));
        let p = match decoded.map_err(|e| format!("Invalid params for input: {e}")) {
            Ok(p) => p,
            Err(msg) => return self.reply_error(id, code::INTERNAL_ERROR, msg).await,
        };
        let Some(r) = run.as_ref().filter(|r| !r.reported()) else {
            return self
                .reply_error(id, code::NO_PROCESS, "No process is running")
                .await;
        };
        let Some(stdin) = &r.stdin else {
            let msg = "This run has no stdin: start it with \"stdin\": \"pipe\" or \"pty\": true";
            return self.reply_error(id, code::STDIN_CLOSED, msg).await;
        };
        match stdin.push(p.data.into_bytes(), p.eof) {
            Ok(bytes) => {
                let result = InputResult {
                    status: "ok".to_owned(),
                    bytes: bytes as u64,
                };
                self.reply(id.as_ref(), result).await
            }
            Err(Refusal::Closed(why)) => self.reply_error(id, code::STDIN_CLOSED, why).await,
            Err(Refusal::Full) => {
                let msg = format!(
                    "Input refused: more than {MAX_PENDING_INPUT} bytes would wait for a command \
                     that is not reading its stdin"
                );
                self.reply_error(id, code::INPUT_FULL, msg).await
            }
        }
    }

    async fn control(&self, run: &mut Option<RunHandle>, id: Option<Id>, params: Option<Value>) {
        let p: ControlParams = match serde_json::from_value(params.unwrap_or(Value::Null)) {
            Ok(p) => p,
            Err(e) => {
                let msg = format!("Invalid params for control: {e}");
                return self.reply_error(id, code::INTERNAL_ERROR, msg).await;
            }
        };
        let Some(r) = run.as_mut() else {
            return self
                .reply_error(id, code::NO_PROCESS, "No process is running")
                .await;
        };
        // Held until the answer is queued: see `RunHandle::control_lock`.
        let lock = r.control_lock();
        let over = lock.lock().await;
        if *over {
            return self
                .reply_error(id, code::NO_PROCESS, "No process is running")
                .await;
        }
        let (pid, pgid) = (r.pid, r.tree.id());
        let (st, notification) = match p.kind {
            ControlType::Pause | ControlType::Resume if r.canceling => {
                return self
                    .reply_error(id, code::NO_PROCESS, "The process is being canceled")
                    .await;
            }
            ControlType::Pause => (
                r.tree.pause().map(|_| status::PAUSED),
                method::PROCESS_PAUSED,
            ),
            ControlType::Resume => (
                r.tree.resume().map(|_| status::RESUMED),
                method::PROCESS_RESUMED,
            ),
            ControlType::Cancel if r.canceling => (Ok(status::CANCELED), method::PROCESS_CANCELED),
            ControlType::Cancel => {
                // Record the cancel before the signal, so the run reports `canceled` however
                // fast the group dies.
                r.cancel();
                let st = r.tree.terminate().map(|_| status::CANCELED);
                if st.is_err() {
                    r.uncancel();
                }
                (st, method::PROCESS_CANCELED)
            }
        };
        let Ok(st) = st else {
            // The group is gone: the run is about to report its completion.
            return self
                .reply_error(id, code::NO_PROCESS, "No process is running")
                .await;
        };
        tracing::debug!(session = %self.id, pid, status = st, "control");
        self.reply(
            id.as_ref(),
            ControlResult {
                status: st.to_owned(),
            },
        )
        .await;
        self.notify(notification, status_params(st, pid, pgid))
            .await;
    }
}

/// The request's id, if it is one the service echoes: an integer, or a string of at most
/// [`MAX_ID_BYTES`]. Absent and `null` are no id (a notification).
fn checked_id(id: Option<&Value>) -> Result<Option<Id>, ()> {
    match id {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_ID_BYTES => Ok(Some(Id::Str(s.clone()))),
        Some(Value::Number(n)) => n.as_i64().map(|n| Some(Id::Number(n))).ok_or(()),
        Some(_) => Err(()),
    }
}

/// `message` cut to at most `max` bytes (at a character boundary), marked with `...` when cut.
fn clip(mut message: String, max: usize) -> String {
    if message.len() > max {
        let mut end = max;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    message
}

fn status_params(st: &str, pid: u32, pgid: u32) -> ProcessStatusParams {
    ProcessStatusParams {
        status: st.to_owned(),
        pid: Some(pid),
        pgid: Some(pgid),
        exit_code: None,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cc_executor_protocol::ServerFrame;

    #[test]
    fn result_frames_keep_key_order_and_decode_as_responses() {
        let r = ExecuteResult {
            status: "started".into(),
            pid: 7,
            pgid: Some(7),
        };
        let id = Id::Number(1);
        let result = serde_json::to_value(&r).unwrap();
        let text = Response::ok(Some(id.clone()), result.clone()).encode();
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","result":{"status":"started","pid":7,"pgid":7},"id":1}"#
        );
        match ServerFrame::decode(&text).unwrap() {
            ServerFrame::Response(resp) => assert_eq!(resp, Response::ok(Some(id), result)),
            other => panic!("{other:?}"),
        }
        let paused = serde_json::to_value(ControlResult {
            status: "paused".into(),
        })
        .unwrap();
        let no_id = Response::ok(None, paused).encode();
        assert_eq!(no_id, r#"{"jsonrpc":"2.0","result":{"status":"paused"}}"#);
    }
}
