//! Calls: runs a caller waits for, as a tool call does, with the output (or answer) bounded, the
//! latest activity noted for progress, and the whole process group killed when the caller gives
//! up. A call can also be a job of the registry while it runs and after (an MCP task is such a
//! call): listed, its output paged and its group controlled like any job's, while the caller gets
//! the very result it would get without.

use std::future::Future;
use std::time::Duration;

use super::{JobKind, JobOptions, Jobs};
use crate::capture::{BoundedOutcome, OutputCapture};
use crate::claude::{BoundedResult, ClaudeCommand, ClaudeExecution};
use crate::command::Command;
use crate::error::Result;
use crate::execution::Execution;
use crate::output_dir::OutputKind;
use crate::progress::Latest;

/// How long a canceled call's run gets to report its end once its group was sent SIGTERM (then
/// SIGKILL).
pub const CANCEL_GRACE: Duration = Duration::from_secs(20);

impl Jobs {
    /// Run `cmd` to its end and return how it ended, its output bounded to about `limit` bytes
    /// ([`Execution::collect_bounded`]; a cut output is saved whole under the registry's output
    /// policy, when it has one).
    ///
    /// Each piece of output is noted in `latest`, for progress. When `stop` resolves first (the
    /// caller gave up), the run's whole process group is canceled and its end awaited for
    /// [`CANCEL_GRACE`] ([`Controller::until_canceled`](crate::Controller::until_canceled)): the
    /// outcome then says `canceled`. With `job` options, the run is also a job of this registry
    /// (e.g. labeled with what it runs for: [`JobOptions::label`]), so [`Jobs::list`] shows it,
    /// [`Jobs::output`] reads it and [`Jobs::cancel`] ends it, while the caller still gets the
    /// result.
    ///
    /// ```no_run
    /// use cc_executor_client::jobs::{JobOptions, Jobs};
    /// use cc_executor_client::{progress::Latest, Client};
    ///
    /// # async fn demo() -> cc_executor_client::Result<()> {
    /// let jobs = Jobs::new(Client::new("ws://127.0.0.1:8004/ws")?);
    /// let (stop, as_job) = (tokio::signal::ctrl_c(), JobOptions::default().label("build"));
    /// let out = jobs.call("make", 20_000, &Latest::default(), stop, Some(&as_job)).await?;
    /// println!("{}\n{}", out.output.stdout, out.notes().join("\n"));
    /// # Ok(()) }
    /// ```
    pub async fn call(
        &self,
        cmd: impl Into<Command>,
        limit: usize,
        latest: &Latest,
        stop: impl Future,
        job: Option<&JobOptions>,
    ) -> Result<BoundedOutcome> {
        let run = self.execution(cmd.into(), JobKind::Command, job).await?;
        let mut capture = OutputCapture::new(limit);
        if let Some(files) = &self.inner.config.output_files {
            capture = capture.save_to(files);
        }
        let (ctl, noted) = (run.controller(), latest.clone());
        let read = run.collect_bounded(capture, move |_, data| noted.note(data));
        ctl.until_canceled(read, stop, CANCEL_GRACE).await
    }

    /// [`Jobs::call`] for a fresh `claude -p`: its final result
    /// ([`ClaudeExecution::wait`]), the answer bounded to about `limit` bytes (a cut answer is
    /// saved whole under the registry's output policy) with the notes a reader needs
    /// ([`BoundedResult::notes`]); `latest` notes the latest assistant text or tool in use
    /// ([`ClaudeEvent::activity`](crate::claude::ClaudeEvent::activity)).
    pub async fn call_claude(
        &self,
        cmd: ClaudeCommand,
        limit: usize,
        latest: &Latest,
        stop: impl Future,
        job: Option<&JobOptions>,
    ) -> Result<BoundedResult> {
        cmd.validate()?;
        let json_schema_given = cmd.has_json_schema();
        let job = job.map(|options| JobOptions {
            json_schema_given,
            ..options.clone()
        });
        let run = self
            .execution(cmd.into(), JobKind::Claude, job.as_ref())
            .await?;
        let run = ClaudeExecution::new(run).json_schema_given(json_schema_given);
        let (ctl, noted) = (run.controller(), latest.clone());
        let wait = run.wait_with(move |event| noted.note(&event.activity().unwrap_or_default()));
        let result = ctl.until_canceled(wait, stop, CANCEL_GRACE).await?;
        let files = self.inner.config.output_files.as_ref();
        let save = |text: &str| files.map(|f| f.save(OutputKind::Answer, text)).transpose();
        Ok(result.bounded(limit, save))
    }

    /// Start `cmd`: a job with options `job` when there are some, a plain run otherwise.
    async fn execution(
        &self,
        cmd: Command,
        kind: JobKind,
        job: Option<&JobOptions>,
    ) -> Result<Execution> {
        match job {
            Some(options) => Ok(self.begin(cmd, kind, options.clone()).await?.1),
            None => self.inner.client.execute(cmd).await,
        }
    }
}
