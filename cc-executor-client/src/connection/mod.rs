//! A connection to the service: the handle callers hold, and the actor task that owns the socket.
//!
//! - [`actor`]: the task that reads and writes the WebSocket.
//! - [`run_queue`]: the current run and its events on their way to the consumer.
//! - [`pending`]: requests waiting for their answer.

mod actor;
mod pending;
mod run_queue;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, Result};
use crate::event::OutputEvent;
use crate::execution::Runs;
use crate::protocol::{
    capability, ConnectedParams, ControlType, ExecuteParams, ExecuteResult, InputParams,
};
use crate::transport::Ws;

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
    /// `input` to the run's stdin.
    Input {
        run: u64,
        params: InputParams,
        reply: oneshot::Sender<Result<()>>,
    },
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
    pub(crate) finished: watch::Sender<bool>,
    /// Set once a CANCEL went out for the run (from a `Controller`, the client's deadline or a
    /// drop), or the service reported it canceled: a run that then dies by a signal was canceled.
    pub(crate) cancel_sent: AtomicBool,
}

/// A handle to a connection's actor. The connection lives while a handle (or a run) does.
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle {
    pub(crate) tx: mpsc::UnboundedSender<Cmd>,
    pub(crate) connected: Arc<ConnectedParams>,
    /// Bound on the wait for an answer to `execute` or `control`.
    pub(crate) request_timeout: Duration,
    /// The runs of the client this connection belongs to (see `Client::cancel_all`).
    pub(crate) runs: Runs,
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
            Cmd::Input { run, params, .. } => f
                .debug_struct("Input")
                .field("run", run)
                .field("bytes", &params.data.len())
                .field("eof", &params.eof)
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
            End::Closed { code, reason } => Error::closed(*code, reason.clone()),
            End::Heartbeat { idle } => Error::HeartbeatTimeout { idle: *idle },
        }
    }
}

/// Start the actor for an open connection.
///
/// `one_run`: the connection exists for a single run (`Client::execute`) and closes when it ends;
/// `batch_output`: ask for batched output if the service offers it.
pub(crate) fn spawn(
    ws: Ws,
    connected: ConnectedParams,
    heartbeat: Duration,
    request_timeout: Duration,
    one_run: bool,
    runs: Runs,
    batch_output: bool,
) -> ConnHandle {
    let (tx, cmds) = mpsc::unbounded_channel();
    let ended = Arc::new(Mutex::new(None));
    let batched = batch_output && connected.has(capability::BATCH_OUTPUT);
    let actor =
        actor::Actor::new(ws, cmds, &connected, heartbeat, one_run, ended.clone()).batched(batched);
    tokio::spawn(actor.run());
    ConnHandle {
        tx,
        connected: Arc::new(connected),
        request_timeout,
        runs,
        ended,
    }
}
