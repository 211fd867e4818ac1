//! `Execution`: one running command as a stream of events, with a control handle.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::{mpsc, oneshot};

use crate::command::Command;
use crate::connection::{Batch, Cmd, ConnHandle, Item, RunShared, Started};
use crate::error::{Error, Result};
use crate::event::{OutputEvent, OutputStream, RunStatus};
use crate::outcome::Tracker;
use crate::protocol::{capability, ControlType, InputParams};
use crate::wire::BatchLines;

/// A running command: a `Stream` of its [`OutputEvent`]s, ending with `None` after the terminal
/// event. Dropping it cancels the run unless [`Execution::detach`] was called.
///
/// # How the stream ends
///
/// - After [`OutputEvent::Completed`] or [`OutputEvent::Failed`].
/// - After a cancel, when the service advertises
///   [`completed_after_cancel`](crate::protocol::capability::COMPLETED_AFTER_CANCEL), with the
///   final `Completed` (status [`RunStatus::Canceled`]); otherwise (the reference Python service
///   sends nothing after `process.canceled`) [`OutputEvent::Canceled`] is the last event.
/// - With one error: [`Error::Timeout`] at the client-side deadline of
///   [`Command::timeout`](crate::Command::timeout) (the run is canceled),
///   [`Error::ConnectionClosed`], [`Error::HeartbeatTimeout`], or [`Error::Protocol`] for a
///   malformed frame.
///
/// # Backpressure
///
/// A few hundred events are buffered; past that, the connection stops reading from the service
/// until the stream is read again. Read the stream (or [`detach`](Execution::detach) and drop it).
///
/// # Lines
///
/// Each [`OutputEvent::Output`] is one line, whatever the service sends: long lines that it
/// splits into chunks are reassembled (into pieces of at most 64 MiB), and the whole lines that a
/// service with batched output sends together are split again. With
/// [`Command::raw_chunks`](crate::Command::raw_chunks), output comes as the service sends it.
/// [`Execution::wait`] and [`Execution::collect_bounded`] take batches as they come either way.
pub struct Execution {
    events: mpsc::Receiver<Batch>,
    /// The rest of the batch being read.
    ready: std::vec::IntoIter<Item>,
    /// Lines of an output event not yet yielded one by one.
    lines: Option<BatchLines>,
    /// Yield output as it comes rather than line by line.
    raw: bool,
    conn: ConnHandle,
    run: Arc<RunShared>,
    pid: u32,
    pgid: Option<u32>,
    timeout: Option<Duration>,
    detached: bool,
    done: bool,
    /// Told of every item read, whoever reads the stream (a registry keeping the run as a job).
    observer: Option<Box<dyn Observer>>,
}

/// Told of every item a run's stream yields, whoever reads it, and of its end: lets a registry
/// keep a run that a caller reads as a job.
pub(crate) trait Observer: Send + Sync {
    /// An item the stream yielded.
    fn item(&mut self, item: &Result<OutputEvent>);
    /// The stream is over; `cancel_sent` tells whether a CANCEL went out for the run.
    fn end(&mut self, cancel_sent: bool);
    /// The reader dropped the stream before its end: the run is canceled, unread.
    fn abandoned(&mut self);
}

impl std::fmt::Debug for Execution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Execution")
            .field("pid", &self.pid)
            .field("pgid", &self.pgid)
            .field("timeout", &self.timeout)
            .field("detached", &self.detached)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Pause, resume or cancel a running command from any task. Cheap to clone.
///
/// It does not keep the connection open: once the run is over, every operation fails with
/// [`Error::NoProcess`].
#[derive(Clone)]
pub struct Controller {
    conn: mpsc::WeakUnboundedSender<Cmd>,
    run: Arc<RunShared>,
    request_timeout: Duration,
    /// The service advertises [`capability::STDIN`].
    stdin: bool,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("run", &self.run.id)
            .field("finished", &*self.run.finished.borrow())
            .finish()
    }
}

/// The runs a client started that may still go on, to cancel them all at once.
pub(crate) type Runs = Arc<Mutex<Vec<Controller>>>;

/// The collected result of a run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Outcome {
    /// How it ended.
    pub status: RunStatus,
    /// Exit code (negative signal number when killed by a signal).
    pub exit_code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// Run time as the service measured it.
    pub duration: Duration,
    /// Killed at its timeout.
    pub timed_out: bool,
    /// The events seen other than output (limits, early completion, warnings, ...).
    pub events: Vec<OutputEvent>,
}

impl Outcome {
    /// Exit code 0 and status completed.
    pub fn success(&self) -> bool {
        self.status.success() && self.exit_code == Some(0)
    }
}

impl Execution {
    /// Start `cmd` (validated) on `conn`.
    pub(crate) async fn start(conn: ConnHandle, cmd: Command) -> Result<Execution> {
        if let Some(capability) = cmd.missing_capability(|c| conn.connected.has(c)) {
            return Err(Error::Unsupported { capability });
        }
        let started = (conn.execute(cmd.to_params(), cmd.raw_chunks, cmd.bound())).await?;
        let execution = Execution::new(conn, started, &cmd);
        if let Some(text) = cmd.stdin_text {
            // Not awaited: the answer comes behind the run's output, which nobody reads yet.
            // A command that ends without reading it makes the write fail, which is its business.
            let eof = !cmd.stdin_pipe;
            let params = InputParams { data: text, eof };
            drop(execution.controller().send_input(params));
        }
        Ok(execution)
    }

    fn new(conn: ConnHandle, started: Started, cmd: &Command) -> Self {
        let timeout = cmd.bound();
        let execution = Execution {
            events: started.events,
            ready: Vec::new().into_iter(),
            lines: None,
            raw: cmd.raw_chunks,
            conn,
            run: started.run,
            pid: started.result.pid,
            pgid: started.result.pgid,
            timeout,
            detached: false,
            done: false,
            observer: None,
        };
        let mut runs = execution
            .conn
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        runs.retain(|run| !run.is_finished());
        runs.push(execution.controller());
        drop(runs);
        execution
    }

    /// A handle to pause, resume or cancel this run from another task.
    pub fn controller(&self) -> Controller {
        Controller {
            conn: self.conn.tx.downgrade(),
            run: self.run.clone(),
            request_timeout: self.conn.request_timeout,
            stdin: self.conn.connected.has(capability::STDIN),
        }
    }

    /// Pid of the group leader.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Process group id, when the service reported it.
    pub fn pgid(&self) -> Option<u32> {
        self.pgid
    }

    /// Keep the run going when this `Execution` is dropped (by default a drop cancels it).
    ///
    /// A detached run that nobody reads keeps its connection open until it ends; its events are
    /// discarded.
    pub fn detach(&mut self) {
        self.detached = true;
    }

    /// Read the stream to the end and collect an [`Outcome`].
    ///
    /// Errors, checked once the run has ended:
    /// - [`Error::Timeout`] when the run timed out (at the client's deadline, or reported by the
    ///   service as `timed_out`);
    /// - [`Error::TokenLimitExceeded`] / [`Error::RateLimited`] when the service reported such a
    ///   limit during the run (the first one seen; a token limit before a rate limit);
    /// - any error the stream yields (connection lost, protocol error).
    ///
    /// A run the service could not start ([`OutputEvent::Failed`]) gives an outcome with status
    /// `RunStatus::Other("error")`; a run canceled on a service without `completed_after_cancel`
    /// gives status [`RunStatus::Canceled`] and no exit code, and so does a run that died by a
    /// signal after a cancel from this client.
    pub async fn wait(mut self) -> Result<Outcome> {
        let (mut stdout, mut stderr, mut events) = (String::new(), String::new(), Vec::new());
        let mut run = Tracker::new();
        while let Some(item) = self.next_raw().await {
            match item {
                Ok(OutputEvent::Output { stream, data, .. }) => match stream {
                    OutputStream::Stdout => stdout.push_str(&data),
                    OutputStream::Stderr => stderr.push_str(&data),
                },
                Ok(ev) => {
                    run.event(&ev);
                    events.push(ev);
                }
                Err(e) => run.error(e)?,
            }
        }
        let end = run.finish(self.cancel_sent())?;
        if end.timed_out {
            return Err(Error::Timeout {
                after: self.timeout.unwrap_or(end.duration),
            });
        }
        if let Some(limit) = run.limit_error() {
            return Err(limit);
        }
        Ok(Outcome {
            status: end.status,
            exit_code: end.exit_code,
            stdout,
            stderr,
            duration: end.duration,
            timed_out: end.timed_out,
            events,
        })
    }

    /// Tell `observer` of every item read from now on (output as it comes, in batches), and of
    /// the end.
    pub(crate) fn observe(&mut self, observer: Box<dyn Observer>) {
        self.observer = Some(observer);
    }

    /// The stream is over: tell the observer, once.
    fn end_observer(&mut self) {
        if let Some(mut observer) = self.observer.take() {
            observer.end(self.cancel_sent());
        }
    }

    /// The next event as the service sent it: output in batches as they come (see
    /// [`Command::raw_chunks`](crate::Command::raw_chunks)), for readers that do not need lines.
    pub(crate) async fn next_raw(&mut self) -> Option<Item> {
        std::future::poll_fn(|cx| self.poll_raw(cx)).await
    }

    /// Poll for [`Execution::next_raw`].
    pub(crate) fn poll_raw(&mut self, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        // Lines of a batch that the line-by-line reader left (the observer has seen them).
        if let Some(rest) = self.lines.take().and_then(BatchLines::rest) {
            return Poll::Ready(Some(Ok(rest)));
        }
        loop {
            if let Some(item) = self.ready.next() {
                if let Some(observer) = &mut self.observer {
                    observer.item(&item);
                }
                return Poll::Ready(Some(item));
            }
            if self.done {
                self.end_observer();
                return Poll::Ready(None);
            }
            match std::task::ready!(self.events.poll_recv(cx)) {
                Some(batch) => self.ready = batch.into_iter(),
                None => self.done = true,
            }
        }
    }

    /// Whether a CANCEL went out for this run.
    pub(crate) fn cancel_sent(&self) -> bool {
        self.run.cancel_sent.load(Ordering::Acquire)
    }

    /// The timeout the client holds the run to.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

impl Stream for Execution {
    type Item = Result<OutputEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.raw {
            return this.poll_raw(cx);
        }
        loop {
            if let Some(line) = this.lines.as_mut().and_then(BatchLines::next_event) {
                return Poll::Ready(Some(Ok(line)));
            }
            this.lines = None;
            match std::task::ready!(this.poll_raw(cx)) {
                Some(Ok(OutputEvent::Output {
                    stream,
                    data,
                    chunk: None,
                })) => this.lines = Some(BatchLines::new(stream, data)),
                other => return Poll::Ready(other),
            }
        }
    }
}

impl Drop for Execution {
    fn drop(&mut self) {
        let abandon = !self.detached && !self.done && !*self.run.finished.borrow();
        match self.observer.take() {
            // The run is canceled here, and its end will not be read.
            Some(mut observer) if abandon => observer.abandoned(),
            Some(mut observer) => observer.end(self.cancel_sent()),
            None => {}
        }
        if abandon {
            // Never blocks: the connection's actor sends CANCEL and closes or drains.
            let _ = self.conn.tx.send(Cmd::Abandon { run: self.run.id });
        }
    }
}

impl Controller {
    /// SIGSTOP the process group; resolves on the service's response.
    pub async fn pause(&self) -> Result<()> {
        self.control(ControlType::Pause).await
    }

    /// SIGCONT the process group; resolves on the service's response.
    pub async fn resume(&self) -> Result<()> {
        self.control(ControlType::Resume).await
    }

    /// SIGTERM (then SIGKILL) the process group; resolves on the service's response.
    pub async fn cancel(&self) -> Result<()> {
        self.control(ControlType::Cancel).await
    }

    /// Drive `run`, a future that reads this run to its end (such as [`Execution::wait`],
    /// [`Execution::collect_bounded`] or [`ClaudeExecution::wait`](crate::claude::ClaudeExecution::wait)),
    /// and cancel the run if `cancel` resolves first: the group is sent SIGTERM (then SIGKILL)
    /// and `run` gets `grace` to report the end, which it returns as usual (e.g. status
    /// [`RunStatus::Canceled`]).
    ///
    /// Fails with [`Error::CancelTimeout`] when the canceled run does not end within `grace`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use cc_executor_client::capture::OutputCapture;
    ///
    /// # async fn demo(client: cc_executor_client::Client) -> cc_executor_client::Result<()> {
    /// let run = client.execute("make test").await?;
    /// let ctl = run.controller();
    /// let collect = run.collect_bounded(OutputCapture::new(10_000), |_, _| {});
    /// let out = ctl
    ///     .until_canceled(collect, tokio::signal::ctrl_c(), Duration::from_secs(20))
    ///     .await?;
    /// println!("{}", out.status.as_str());
    /// # Ok(()) }
    /// ```
    pub async fn until_canceled<T, R, C>(&self, run: R, cancel: C, grace: Duration) -> Result<T>
    where
        R: Future<Output = Result<T>>,
        C: Future,
    {
        tokio::pin!(run);
        tokio::select! {
            result = &mut run => return result,
            _ = cancel => {}
        }
        // Go on reading the run while the cancel is sent, so its end is not held up.
        let send = async {
            match tokio::time::timeout(grace, self.cancel()).await {
                Ok(Ok(())) => tracing::debug!("run canceled"),
                Ok(Err(e)) => tracing::debug!("cancel failed: {e}"),
                Err(_) => tracing::debug!("cancel got no answer"),
            }
            std::future::pending::<()>().await
        };
        let ended = async {
            tokio::select! {
                result = &mut run => result,
                () = send => unreachable!("sending never ends"),
            }
        };
        tokio::time::timeout(grace, ended)
            .await
            .unwrap_or(Err(Error::CancelTimeout { after: grace }))
    }

    /// Write `text` to the command's stdin (started with [`Command::stdin_pipe`] or
    /// [`Command::pty`]); resolves once the service has taken it. At most 1 MiB may wait for a
    /// command that does not read it ([`Error::InputFull`]).
    ///
    /// Fails with [`Error::Unsupported`] (nothing sent) when the service does not advertise
    /// [`capability::STDIN`], [`Error::StdinClosed`] when the run has no open stdin, and
    /// [`Error::NoProcess`] once the run is over.
    pub async fn write_stdin(&self, text: impl Into<String>) -> Result<()> {
        let params = InputParams {
            data: text.into(),
            eof: false,
        };
        self.input(params).await
    }

    /// Close the command's stdin (on a terminal: send end of file, Ctrl-D), so that a command
    /// reading it to its end finishes. Errors as for [`Controller::write_stdin`].
    pub async fn close_stdin(&self) -> Result<()> {
        let params = InputParams {
            data: String::new(),
            eof: true,
        };
        self.input(params).await
    }

    async fn input(&self, params: InputParams) -> Result<()> {
        let rx = self.send_input(params)?;
        self.answer(rx, crate::protocol::method::INPUT).await
    }

    /// Send `input`; the receiver of its answer.
    fn send_input(&self, params: InputParams) -> Result<oneshot::Receiver<Result<()>>> {
        if !self.stdin {
            return Err(Error::Unsupported {
                capability: capability::STDIN,
            });
        }
        self.send(|run, reply| Cmd::Input { run, params, reply })
    }

    /// Send the request `make` builds for this run (unless it is over); the receiver of its
    /// answer.
    fn send(
        &self,
        make: impl FnOnce(u64, oneshot::Sender<Result<()>>) -> Cmd,
    ) -> Result<oneshot::Receiver<Result<()>>> {
        let no_process = || Error::NoProcess {
            message: "the run has ended".into(),
        };
        if self.is_finished() {
            return Err(no_process());
        }
        let tx = self.conn.upgrade().ok_or_else(no_process)?;
        let (reply, rx) = oneshot::channel();
        tx.send(make(self.run.id, reply))
            .map_err(|_| no_process())?;
        Ok(rx)
    }

    /// The answer to a request sent on the run's behalf, within the request timeout.
    async fn answer(&self, rx: oneshot::Receiver<Result<()>>, method: &'static str) -> Result<()> {
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(answer) => answer.map_err(|_| Error::NoProcess {
                message: "the run has ended".into(),
            })?,
            Err(_) => Err(Error::NoResponse {
                method,
                after: self.request_timeout,
            }),
        }
    }

    /// Whether the run is over (every further control fails with [`Error::NoProcess`]).
    pub fn is_finished(&self) -> bool {
        *self.run.finished.borrow()
    }

    /// Whether the run's connection is still there to take a control (it goes once the run's
    /// `Execution` is dropped, unless a session holds it).
    pub(crate) fn reachable(&self) -> bool {
        self.conn.upgrade().is_some()
    }

    /// Resolves once the run is over (see [`Controller::is_finished`]).
    pub(crate) async fn finished(&self) {
        let _ = self.run.finished.subscribe().wait_for(|done| *done).await;
    }

    async fn control(&self, kind: ControlType) -> Result<()> {
        let rx = self.send(|run, reply| Cmd::Control { run, kind, reply })?;
        self.answer(rx, crate::protocol::method::CONTROL).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shareable<T: Clone + Send + Sync + 'static>() {}
    fn sendable<T: Send + 'static>() {}

    #[test]
    fn handles_cross_tasks() {
        shareable::<Controller>();
        sendable::<Execution>();
        sendable::<Outcome>();
        shareable::<crate::Client>();
        sendable::<crate::Session>();
    }
}
