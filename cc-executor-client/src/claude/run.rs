//! `ClaudeExecution`: a running `claude -p` as a stream of parsed events, and its final result.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt};

use super::command::ClaudeCommand;
use super::stream::{parse_line, ClaudeEvent, ClaudeResult};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::event::{OutputEvent, OutputStream, RateLimit};
use crate::execution::{Controller, Execution};
use crate::outcome::Tracker;
use crate::wire::Lines;

/// How many trailing stderr lines [`Error::ClaudeFailed`] carries.
const STDERR_TAIL_LINES: usize = 20;

impl Client {
    /// Start a fresh `claude -p` instance and stream its parsed events.
    ///
    /// ```no_run
    /// use cc_executor_client::claude::{ClaudeCommand, ClaudeEvent};
    /// use futures_util::StreamExt;
    ///
    /// # async fn demo(client: cc_executor_client::Client) -> cc_executor_client::Result<()> {
    /// let mut run = client.execute_claude(ClaudeCommand::new("List the files here")).await?;
    /// while let Some(event) = run.next().await {
    ///     match event? {
    ///         ClaudeEvent::Assistant(msg) => println!("{}", msg.text()),
    ///         ClaudeEvent::Result(result) => println!("done: {:?}", result.result),
    ///         _ => {}
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn execute_claude(&self, cmd: ClaudeCommand) -> Result<ClaudeExecution> {
        cmd.validate()?;
        let json_schema_given = cmd.has_json_schema();
        let run = ClaudeExecution::new(self.execute(cmd).await?);
        Ok(run.json_schema_given(json_schema_given))
    }

    /// Run a fresh `claude -p` instance to the end: [`Client::execute_claude`] then
    /// [`ClaudeExecution::wait`].
    ///
    /// ```no_run
    /// use cc_executor_client::claude::ClaudeCommand;
    /// use cc_executor_client::Error;
    ///
    /// # async fn demo(client: cc_executor_client::Client) -> cc_executor_client::Result<()> {
    /// match client.run_claude(ClaudeCommand::new("What is 2 + 2?").max_turns(1)).await {
    ///     Ok(result) => println!("{:?} (session {:?})", result.result, result.session_id),
    ///     Err(Error::RateLimited(limit)) => println!("try again later: {limit}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn run_claude(&self, cmd: ClaudeCommand) -> Result<ClaudeResult> {
        self.execute_claude(cmd).await?.wait().await
    }
}

/// A running `claude -p`: a `Stream` of [`ClaudeEvent`]s built from the underlying [`Execution`].
///
/// Stdout lines are parsed with [`parse_line`] (blank lines are skipped), stderr lines become
/// [`ClaudeEvent::Stderr`], and the service's other events (start, completion, limit detectors, …)
/// come as [`ClaudeEvent::Service`]. Dropping it cancels the run, like [`Execution`].
///
/// Read events with `next()` as long as you like, then call [`ClaudeExecution::wait`]: it reads
/// the rest and judges the run on every event, including those already yielded.
#[derive(Debug)]
pub struct ClaudeExecution {
    inner: Execution,
    /// Lines put back together from the raw chunks of the execution, and from a line's start
    /// sent before its end (an interactive run shows what it has when its output pauses).
    lines: Lines,
    /// Lines completed and not yet turned into events.
    ready: VecDeque<(OutputStream, String)>,
    state: WaitState,
    ended: bool,
}

impl From<Execution> for ClaudeExecution {
    fn from(inner: Execution) -> Self {
        ClaudeExecution::new(inner)
    }
}

impl ClaudeExecution {
    /// Send `text` as a user message to a Claude started with [`ClaudeCommand::interactive`];
    /// resolves once the service has taken it. Errors as for
    /// [`Controller::write_stdin`](crate::Controller::write_stdin).
    pub async fn send(&self, text: &str) -> Result<()> {
        let line = super::command::user_message(text);
        self.inner.controller().write_stdin(line).await
    }

    /// Close Claude's input: it ends after its current turn (an interactive run never ends
    /// before). Read on to its result with [`ClaudeExecution::wait`].
    pub async fn finish(&self) -> Result<()> {
        self.inner.controller().close_stdin().await
    }

    /// Wrap an execution of a [`ClaudeCommand`] (e.g. one started on a [`crate::Session`]).
    pub fn new(inner: Execution) -> Self {
        ClaudeExecution {
            inner,
            lines: Lines::whole_lines(),
            ready: VecDeque::new(),
            state: WaitState::default(),
            ended: false,
        }
    }

    /// Note whether the run was given a JSON Schema (its result's notes say when no
    /// `structured_output` came: [`ClaudeResult::notes`]).
    pub(crate) fn json_schema_given(mut self, given: bool) -> Self {
        self.state.json_schema_given = given;
        self
    }

    /// A handle to pause, resume or cancel the run from another task.
    pub fn controller(&self) -> Controller {
        self.inner.controller()
    }

    /// Pid of the group leader (the shell that runs `claude`).
    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    /// Process group id, when the service reported it.
    pub fn pgid(&self) -> Option<u32> {
        self.inner.pgid()
    }

    /// Keep the run going when this value is dropped (by default a drop cancels it).
    pub fn detach(&mut self) {
        self.inner.detach();
    }

    /// The latest session id seen so far (from `init`, then from the `result`).
    pub fn session_id(&self) -> Option<&str> {
        self.state.session_id.as_deref()
    }

    /// The underlying execution.
    pub fn execution(&self) -> &Execution {
        &self.inner
    }

    /// Give back the underlying execution (its already-consumed events are gone).
    pub fn into_inner(self) -> Execution {
        self.inner
    }

    /// Read the rest of the run and return its [`ClaudeResult`].
    ///
    /// - A usage limit, API 429 or rejected `rate_limit_event` is [`Error::RateLimited`], even
    ///   when the CLI's `result` claims success (it does for usage limits).
    /// - A run that ended without a `result` line is [`Error::ClaudeFailed`] with the exit code
    ///   and the last stderr lines (or [`Error::RateLimited`] when the service saw a limit).
    /// - Any other `result` is returned, including failures such as `error_max_turns` or a
    ///   missing login: check [`ClaudeResult::failure`].
    /// - Transport errors and the run's timeout are returned as they come.
    pub async fn wait(self) -> Result<ClaudeResult> {
        self.wait_with(|_| {}).await
    }

    /// [`ClaudeExecution::wait`], calling `on_event` with every event read on the way (e.g. to
    /// show progress with [`ClaudeEvent::activity`]).
    ///
    /// ```no_run
    /// use cc_executor_client::claude::ClaudeCommand;
    ///
    /// # async fn demo(client: cc_executor_client::Client) -> cc_executor_client::Result<()> {
    /// let run = client.execute_claude(ClaudeCommand::new("Fix the failing test")).await?;
    /// let result = run
    ///     .wait_with(|event| {
    ///         if let Some(line) = event.activity() {
    ///             eprintln!("{line}");
    ///         }
    ///     })
    ///     .await?;
    /// println!("{:?}", result.result);
    /// # Ok(()) }
    /// ```
    pub async fn wait_with(
        mut self,
        mut on_event: impl FnMut(&ClaudeEvent),
    ) -> Result<ClaudeResult> {
        while let Some(event) = self.next().await {
            on_event(&event?);
        }
        let cancel_sent = self.inner.cancel_sent();
        std::mem::take(&mut self.state).finish(cancel_sent, self.inner.timeout())
    }
}

/// The final [`ClaudeResult`] in the recorded output of a `claude -p --output-format stream-json`
/// run, such as a background job's output (stdout and stderr interleaved): the last `result` line,
/// its session id taken from the `init` line when it has none.
///
/// `None` when there is no `result` line (the run has not ended, or failed before writing one).
/// Unlike [`ClaudeExecution::wait`] this does not judge the run: check
/// [`ClaudeResult::rate_limit`] and [`ClaudeResult::is_success`].
///
/// ```
/// use cc_executor_client::claude::result_from_output;
///
/// let output = concat!(
///     r#"{"type":"system","subtype":"init","session_id":"abc"}"#, "\n",
///     "a stderr line\n",
///     r#"{"type":"result","subtype":"success","is_error":false,"result":"4"}"#, "\n",
/// );
/// let result = result_from_output(output).unwrap();
/// assert_eq!(result.result.as_deref(), Some("4"));
/// assert_eq!(result.session_id.as_deref(), Some("abc"));
/// assert!(result_from_output("still running\n").is_none());
/// ```
pub fn result_from_output(output: &str) -> Option<ClaudeResult> {
    // From the end: the result is the last line but one at most; `contains` skips most parsing.
    let mut lines = output.lines().rev();
    let mut result = lines
        .by_ref()
        .filter(|line| line.contains("result"))
        .find_map(|line| match parse_line(line) {
            ClaudeEvent::Result(r) => Some(r),
            _ => None,
        })?;
    if result.session_id.is_none() {
        result.session_id =
            lines
                .filter(|line| line.contains("init"))
                .find_map(|line| match parse_line(line) {
                    ClaudeEvent::Init(init) if !init.session_id.is_empty() => Some(init.session_id),
                    _ => None,
                });
    }
    Some(result)
}

/// Turn one line of output into an event; `None` for a blank line.
fn line_event(stream: OutputStream, line: &str) -> Option<ClaudeEvent> {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.trim().is_empty() {
        return None;
    }
    Some(match stream {
        OutputStream::Stderr => ClaudeEvent::Stderr(line.to_owned()),
        _ => parse_line(line),
    })
}

impl Stream for ClaudeExecution {
    type Item = Result<ClaudeEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            while let Some((stream, line)) = this.ready.pop_front() {
                if let Some(event) = line_event(stream, &line) {
                    this.state.observe(&event);
                    return Poll::Ready(Some(Ok(event)));
                }
            }
            if this.ended {
                return Poll::Ready(None);
            }
            let ready = &mut this.ready;
            // Output as it comes (batches of lines, chunks of long lines), split into lines here.
            match std::task::ready!(this.inner.poll_raw(cx)) {
                None => {
                    // What was gathered of a line the run never finished.
                    this.lines
                        .flush(|stream, line| ready.push_back((stream, line)));
                    this.ended = true;
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(OutputEvent::Output {
                    stream,
                    data,
                    chunk: None,
                })) => this
                    .lines
                    .push_text(stream, data, |stream, line| ready.push_back((stream, line))),
                Some(Ok(OutputEvent::Output {
                    stream,
                    data,
                    chunk: Some(chunk),
                })) => {
                    // `total` is 0 until the last chunk of a line the service streams.
                    let total = (chunk.total != 0).then_some(chunk.total);
                    this.lines
                        .push(stream, &data, chunk.index, total, |stream, line| {
                            ready.push_back((stream, line))
                        });
                }
                Some(Ok(other)) => {
                    let event = ClaudeEvent::Service(other);
                    this.state.observe(&event);
                    return Poll::Ready(Some(Ok(event)));
                }
            }
        }
    }
}

/// What a [`ClaudeExecution`] remembers of its events, to judge the run at the end.
#[derive(Debug, Default)]
struct WaitState {
    session_id: Option<String>,
    result: Option<ClaudeResult>,
    /// From a rejected `rate_limit_event` or a flagged assistant message.
    claude_limit: Option<RateLimit>,
    /// From the service's own detectors.
    service_limit: Option<RateLimit>,
    /// The latest reset time any `rate_limit_event` gave (Unix seconds), for a limit reported
    /// without one (an API 429).
    reset_hint: Option<f64>,
    /// The run was given a JSON Schema for its answer.
    json_schema_given: bool,
    /// How the run ended, from the service's events.
    run: Tracker,
    stderr: VecDeque<String>,
}

impl WaitState {
    fn observe(&mut self, event: &ClaudeEvent) {
        match event {
            ClaudeEvent::Init(init) if !init.session_id.is_empty() => {
                self.session_id = Some(init.session_id.clone());
            }
            // Each resumed run may report a new session id: keep the latest result.
            ClaudeEvent::Result(r) => {
                if r.session_id.is_some() {
                    self.session_id.clone_from(&r.session_id);
                }
                self.result = Some(r.clone());
            }
            ClaudeEvent::RateLimit(info) => {
                self.reset_hint = info.resets_at.or(self.reset_hint);
                if let Some(limit) = info.rate_limit() {
                    self.claude_limit = Some(limit);
                }
            }
            ClaudeEvent::Assistant(msg) => {
                if let Some(limit) = msg.rate_limit() {
                    self.claude_limit = Some(merge(limit, self.claude_limit.as_ref()));
                }
            }
            ClaudeEvent::Stderr(line) => {
                if self.stderr.len() == STDERR_TAIL_LINES {
                    self.stderr.pop_front();
                }
                self.stderr.push_back(line.clone());
            }
            ClaudeEvent::Service(ev) => {
                if let OutputEvent::RateLimitExceeded(limit) = ev {
                    self.service_limit.get_or_insert_with(|| limit.clone());
                }
                self.run.event(ev);
            }
            _ => {}
        }
    }

    /// Judge the run: `cancel_sent` and `timeout` as the execution knew them.
    fn finish(self, cancel_sent: bool, timeout: Option<Duration>) -> Result<ClaudeResult> {
        let result_limit = self.result.as_ref().and_then(ClaudeResult::rate_limit);
        if let Some(limit) = result_limit {
            let limit = merge(limit, self.claude_limit.as_ref());
            return Err(Error::RateLimited(
                match (limit.reset_at, self.reset_hint) {
                    (None, Some(secs)) => limit.with_reset_epoch(secs),
                    _ => limit,
                },
            ));
        }
        if let Some(limit) = self.claude_limit {
            return Err(Error::RateLimited(limit));
        }
        match self.result {
            Some(mut result) => {
                result.json_schema_given = self.json_schema_given;
                if result.session_id.is_none() {
                    result.session_id = self.session_id;
                }
                Ok(result)
            }
            None => match self.service_limit {
                Some(limit) => Err(Error::RateLimited(limit)),
                None => {
                    let end = self.run.finish(cancel_sent).ok();
                    if let Some(end) = end.as_ref().filter(|e| e.timed_out) {
                        return Err(Error::Timeout {
                            after: timeout.unwrap_or(end.duration),
                        });
                    }
                    Err(Error::ClaudeFailed {
                        exit_code: end.and_then(|e| e.exit_code),
                        stderr: Vec::from(self.stderr).join("\n"),
                    })
                }
            },
        }
    }
}

/// Fill a limit's missing reset time from an earlier report of the same kind.
fn merge(mut limit: RateLimit, earlier: Option<&RateLimit>) -> RateLimit {
    if let Some(earlier) = earlier {
        if limit.reset_at.is_none() && limit.kind == earlier.kind {
            limit.reset_at = earlier.reset_at;
        }
        if limit.retry_after.is_none() && limit.kind == earlier.kind {
            limit.retry_after = earlier.retry_after;
        }
    }
    limit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RateLimitKind;
    use std::time::UNIX_EPOCH;

    fn wait_over(lines: &str, stderr: &[&str], exit_code: Option<i32>) -> Result<ClaudeResult> {
        let mut state = WaitState::default();
        state.observe(&parse_line(
            r#"{"type":"system","subtype":"init","session_id":"from-init"}"#,
        ));
        for line in lines.lines() {
            state.observe(&parse_line(line));
        }
        for line in stderr {
            state.observe(&ClaudeEvent::Stderr((*line).to_owned()));
        }
        state.observe(&ClaudeEvent::Service(OutputEvent::Completed {
            status: crate::RunStatus::Failed,
            exit_code,
            duration: Duration::from_secs(1),
            timed_out: false,
            error: None,
        }));
        state.finish(false, None)
    }

    #[test]
    fn success_and_max_turns_are_results() {
        let r = wait_over(
            include_str!("../../../tests/fixtures/claude/success.jsonl"),
            &[],
            Some(0),
        )
        .unwrap();
        assert_eq!(r.result.as_deref(), Some("The script prints 4."));
        let r = wait_over(
            include_str!("../../../tests/fixtures/claude/max_turns.jsonl"),
            &[],
            Some(1),
        )
        .unwrap();
        assert_eq!(r.subtype, "error_max_turns");
        assert!(r.is_error);
    }

    #[test]
    fn limits_are_errors() {
        let cases = [
            (
                include_str!("../../../tests/fixtures/claude/usage_limit.jsonl"),
                RateLimitKind::UsageLimit,
                Some(1_900_000_000),
            ),
            (
                include_str!("../../../tests/fixtures/claude/api_429.jsonl"),
                RateLimitKind::Http429,
                None,
            ),
            (
                include_str!("../../../tests/fixtures/claude/hit_limit_new_wording.jsonl"),
                RateLimitKind::UsageLimit,
                None,
            ),
        ];
        for (sample, kind, reset) in cases {
            match wait_over(sample, &[], Some(0)) {
                Err(Error::RateLimited(l)) => {
                    assert_eq!(l.kind, kind);
                    assert_eq!(
                        l.reset_at,
                        reset.map(|s| UNIX_EPOCH + Duration::from_secs(s))
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn rejected_event_alone_is_a_limit_and_its_reset_fills_a_wording_without_one() {
        let event = r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1900000000,"rateLimitType":"five_hour"}}"#;
        let result = r#"{"type":"result","subtype":"success","is_error":true,"result":"You've hit your limit · resets 3pm"}"#;
        match wait_over(&format!("{event}\n{result}"), &[], Some(0)) {
            Err(Error::RateLimited(l)) => {
                assert_eq!(l.message, "You've hit your limit · resets 3pm");
                assert_eq!(
                    l.reset_at,
                    Some(UNIX_EPOCH + Duration::from_secs(1_900_000_000))
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            wait_over(event, &[], Some(1)),
            Err(Error::RateLimited(l)) if l.kind == RateLimitKind::UsageLimit
        ));
        // An allowed event with rejected overage metadata is not a limit.
        let allowed = r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed","overageStatus":"rejected"}}"#;
        let ok = r#"{"type":"result","subtype":"success","is_error":false,"result":"4"}"#;
        let r = wait_over(&format!("{allowed}\n{ok}"), &[], Some(0)).unwrap();
        assert_eq!(r.session_id.as_deref(), Some("from-init"));
    }

    #[test]
    fn an_api_429_takes_its_reset_time_from_the_stream() {
        let warning = r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed_warning","resetsAt":1900000000,"rateLimitType":"five_hour"}}"#;
        let sample = include_str!("../../../tests/fixtures/claude/api_429.jsonl");
        match wait_over(&format!("{warning}\n{sample}"), &[], Some(1)) {
            Err(Error::RateLimited(l)) => {
                assert_eq!(l.kind, RateLimitKind::Http429);
                assert_eq!(
                    l.reset_at,
                    Some(UNIX_EPOCH + Duration::from_secs(1_900_000_000))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn result_from_recorded_output() {
        let sample = include_str!("../../../tests/fixtures/claude/success.jsonl");
        let with_stderr = format!("warming up\n{sample}some stderr\n");
        let r = result_from_output(&with_stderr).unwrap();
        assert_eq!(r.result.as_deref(), Some("The script prints 4."));
        assert_eq!(
            r.session_id.as_deref(),
            Some("0b6c2f1e-5d2a-4b8e-9a51-3f0c8e7d1a22")
        );
        let turns = include_str!("../../../tests/fixtures/claude/max_turns.jsonl");
        assert_eq!(
            result_from_output(turns).unwrap().subtype,
            "error_max_turns"
        );
        // Cut before its result: nothing to report yet.
        let head: String = sample.lines().take(2).map(|l| format!("{l}\n")).collect();
        assert!(result_from_output(&head).is_none());
        assert!(result_from_output("").is_none());
    }

    #[test]
    fn no_result_is_claude_failed_with_stderr_tail() {
        let stderr: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
        let stderr: Vec<&str> = stderr.iter().map(String::as_str).collect();
        match wait_over("not json\n", &stderr, Some(1)) {
            Err(Error::ClaudeFailed { exit_code, stderr }) => {
                assert_eq!(exit_code, Some(1));
                assert!(stderr.starts_with("line 10\n"), "{stderr}");
                assert!(stderr.ends_with("line 29"), "{stderr}");
            }
            other => panic!("{other:?}"),
        }
    }
}
