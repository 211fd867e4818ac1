//! The tools. Each turns its parameters into a client call and returns the client's own result
//! types (serialized by the client's `schema` feature).

use std::sync::Arc;

use cc_executor_client::capture::BoundedOutcome;
use cc_executor_client::claude::{BoundedResult, ClaudeCommand};
use cc_executor_client::jobs::{JobId, JobInput, JobList, JobOptions, JobRef, JobReport, Jobs};
use cc_executor_client::jobs::{NewJob, OutputPage};
use cc_executor_client::jobs::{OutputQuery, WaitProgress, WaitReport, WaitRequest, CANCEL_GRACE};
use cc_executor_client::{progress, progress::Latest, schema, Command, Error};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::{tool::ToolCallContext, wrapper::Json, wrapper::Parameters};
use rmcp::model::{CallToolRequestParams as CallParams, ProgressNotificationParam as Progress, *};
use rmcp::{service::RequestContext, task_manager::*, tool, tool_handler, tool_router};
use rmcp::{RoleServer, ServerHandler};

/// A tool error. Tools answer `Result<Json<T>, Fail>` and take `Parameters<T>`, spelled out: rmcp
/// reads the schemas from the signature.
type Fail = CallToolResult;
/// A call's context: its peer, progress token and cancellation.
pub type Ctx = RequestContext<RoleServer>;

/// The MCP server: one instance (cheap to clone) serves every call.
#[derive(Clone)]
pub struct Executor {
    /// Background jobs, and the client every run goes through ([`Jobs::client`]).
    pub jobs: Jobs,
    /// Most bytes of output (or of an answer) a tool returns.
    pub max_output: usize,
    /// The tasks answered to hosts that declared the tasks extension (each also a job).
    pub tasks: TaskManager,
}

#[tool_router]
impl Executor {
    /// Run a shell command (with the service's shell: bash by default) in its own process group
    /// and return its exit code, stdout and stderr. Long output is cut to its head and tail, and
    /// the whole output is saved to `output_file`. Sends progress with the latest output line.
    /// `stdin` gives the command text to read; `pty: true` runs it on a terminal.
    /// isError is set for a non-zero exit, a timeout, a refused command or a rate limit.
    #[tool]
    async fn execute(
        &self,
        Parameters(cmd): Parameters<Command>,
        ctx: Ctx,
    ) -> Result<Json<BoundedOutcome>, Fail> {
        let (latest, max, job) = (Latest::default(), self.max_output, ctx.extensions.get());
        let run = self.jobs.call(cmd, max, &latest, gone(&ctx), job);
        let out = self.drive(&ctx, || latest.take(), run).await?;
        reply(out.without_ansi())
    }

    /// Hand a task to a fresh Claude Code instance (`claude -p`) and return its final result,
    /// session id (to resume), turns, cost and token usage; with `json_schema`, the answer as JSON
    /// in `structured_output`. `max_budget_usd` caps what it may spend. Sends progress with the
    /// latest assistant text or tool in use. A failed run (not logged in, API error, budget
    /// reached) is an error whose first text says why; a usage or rate limit says when it resets.
    #[tool]
    async fn execute_claude(
        &self,
        Parameters(c): Parameters<ClaudeCommand>,
        ctx: Ctx,
    ) -> Result<Json<BoundedResult>, Fail> {
        let (latest, max, job) = (Latest::default(), self.max_output, ctx.extensions.get());
        let run = self.jobs.call_claude(c, max, &latest, gone(&ctx), job);
        reply(self.drive(&ctx, || latest.take(), run).await?)
    }

    /// Start a shell command (`command`) or a fresh Claude Code instance (`claude`, with `prompt`
    /// and options as for execute_claude) as a background job and return its integer `id` at
    /// once. The job keeps running after this call; its whole output goes to `output_file`.
    /// Follow it with job_status, job_output, job_wait; control it with job_pause, job_resume,
    /// job_cancel; talk to it with job_input (start it with `stdin`, `pty` or an interactive
    /// `claude`).
    #[tool]
    async fn job_start(&self, Parameters(p): Parameters<NewJob>) -> Result<Json<JobReport>, Fail> {
        // The registry saves the output under the server's output policy.
        self.report(self.jobs.start_new(p).await.map_err(err)?)
    }

    /// Send `text` to a running job: to a command's stdin (include the newline a program waits
    /// for) or as a user message to an interactive Claude job; `eof: true` then closes its input.
    #[tool]
    async fn job_input(
        &self,
        Parameters(p): Parameters<JobInput>,
    ) -> Result<Json<JobReport>, Fail> {
        self.report(self.jobs.input(p).await.map_err(err)?)
    }

    /// Status of a background job: state, exit code, output size, output file and notes; for a
    /// Claude job also its latest assistant text and, once finished, its final result (answer,
    /// session id, cost).
    #[tool]
    async fn job_status(&self, Parameters(p): Parameters<JobRef>) -> Result<Json<JobReport>, Fail> {
        self.report(JobId(p.id))
    }

    /// Read a background job's output (stdout and stderr interleaved) in pages of at most `limit`
    /// bytes: pass `next_offset` back as `offset` until `eof`. `tail: true` returns the last
    /// `limit` bytes. `grep` (a regex) returns only the matching lines, with byte offsets and
    /// `match_count` (`context: N` adds lines around them); `format: "text"` shows a Claude job's
    /// text and tool calls as readable lines. Reading never consumes output. Only the latest
    /// output (1 MiB by default) is held in memory; `dropped` bytes are in the job's output_file.
    #[tool]
    async fn job_output(
        &self,
        Parameters(p): Parameters<OutputQuery>,
    ) -> Result<Json<OutputPage>, Fail> {
        let page = self.jobs.read(&p, self.max_output);
        page.map(|p| Json(p.without_ansi())).map_err(err)
    }

    /// Wait until a background job (`id`) ends, or one of several (`ids`, `mode: "any"`) or all
    /// of them (`mode: "all"`), or `timeout_secs` pass (default 30, at most 600), then return the
    /// status of each and which have `ended`. A job still running at the timeout is not an error:
    /// call again or do other work. Sends progress naming the jobs still running.
    #[tool]
    async fn job_wait(
        &self,
        Parameters(p): Parameters<WaitRequest>,
        ctx: Ctx,
    ) -> Result<Json<WaitReport>, Fail> {
        let (ids, mut seen) = (p.job_ids().map_err(err)?, WaitProgress::default());
        let activity = || self.jobs.wait_activity(&ids, &mut seen);
        // A cancel ends the wait, not the jobs.
        let wait = self
            .jobs
            .wait_request(&p, self.max_output, ctx.ct.cancelled());
        self.drive(&ctx, activity, wait).await.map(Json)
    }

    /// Pause a background job: SIGSTOP to its whole process group.
    #[tool]
    async fn job_pause(&self, Parameters(p): Parameters<JobRef>) -> Result<Json<JobReport>, Fail> {
        self.jobs.pause(JobId(p.id)).await.map_err(err)?;
        self.report(JobId(p.id))
    }

    /// Resume a paused background job: SIGCONT to its whole process group.
    #[tool]
    async fn job_resume(&self, Parameters(p): Parameters<JobRef>) -> Result<Json<JobReport>, Fail> {
        self.jobs.resume(JobId(p.id)).await.map_err(err)?;
        self.report(JobId(p.id))
    }

    /// Cancel a background job: SIGTERM, then SIGKILL, to its whole process group. Returns once
    /// the group has exited (or after 20 s); canceling a job that has ended just returns its
    /// status.
    #[tool]
    async fn job_cancel(&self, Parameters(p): Parameters<JobRef>) -> Result<Json<JobReport>, Fail> {
        let canceled = self.jobs.cancel_and_wait(JobId(p.id), CANCEL_GRACE).await;
        self.report(canceled.map_err(err)?.id)
    }

    /// List the background jobs held: running ones and recently finished ones, oldest first.
    #[tool]
    async fn job_list(&self, _: Parameters<EmptyObject>) -> Json<JobList> {
        Json(self.jobs.list().into())
    }
}

/// What the host is told of the server.
const INSTRUCTIONS: &str =
    "Run shell commands (`execute`) or a fresh `claude -p` instance (`execute_claude`) in their \
     own process groups. Long output is cut to its head and tail and saved whole to a file; \
     canceling a call kills the whole process group. For longer work, `job_start` runs it in the \
     background: follow it with `job_status`, `job_output`, `job_wait`, stop it with `job_cancel`.";

#[tool_handler(router = standard(Self::tool_router()))]
impl ServerHandler for Executor {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder().enable_tools().enable_tasks();
        let about = Implementation::new("cc-executor", env!("CARGO_PKG_VERSION"));
        let config = ServerConfig::new(caps.build()).with_server_info(about);
        config.with_instructions(INSTRUCTIONS)
    }

    /// A host that declared the tasks extension gets a task for `execute` and `execute_claude`:
    /// the very call, run as a job labeled with the task id, its progress in the task's status
    /// message, ended by a cancel of the task.
    async fn call_tool(&self, req: CallParams, mut cx: Ctx) -> Result<CallToolResponse, ErrorData> {
        let (router, caps) = (Self::tool_router(), cx.client_capabilities());
        if !caps.is_some_and(|c| c.supports_tasks()) || !req.name.starts_with("execute") {
            return router.call(ToolCallContext::new(self, req, cx)).await;
        }
        let (this, job, options) = (self.clone(), JobOptions::default(), TaskOptions::new());
        let task = self.tasks.spawn(options.with_ttl_ms(None), move |task| {
            cx.extensions.insert(job.label(task.task_id()));
            cx.extensions.insert(task.clone());
            Box::pin(async move {
                match router.call(ToolCallContext::new(&this, req, cx)).await? {
                    CallToolResponse::Complete(done) if !task.is_cancel_requested() => Ok(done),
                    _ => Err(TaskExit::Cancelled),
                }
            })
        });
        Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
    }

    async fn get_task(&self, p: GetTaskParams, _: Ctx) -> Result<GetTaskResult, ErrorData> {
        self.tasks.get_task(&p.task_id).map(GetTaskResult::new)
    }

    async fn cancel_task(&self, p: CancelTaskParams, _: Ctx) -> Result<(), ErrorData> {
        self.tasks.cancel_task(&p.task_id)
    }
}

impl Executor {
    /// Drive a call's `work` to its end, notifying the host of progress from `next` when it
    /// asked for it: the one way execute, execute_claude and job_wait run (their work ends on
    /// the call's cancellation).
    async fn drive<T>(
        &self,
        ctx: &Ctx,
        next: impl FnMut() -> Option<String>,
        work: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Fail> {
        if let Some(task) = ctx.extensions.get::<TaskContext>() {
            let set = |message| async move { task.set_status_message(message) };
            return progress::report_while(work, next, set).await.map_err(err);
        }
        let Some(token) = ctx.meta.get_progress_token() else {
            return work.await.map_err(err);
        };
        // Progress counts the seconds the call has run: it only grows.
        let started = tokio::time::Instant::now();
        let send = |message| {
            let param = Progress::new(token.clone(), started.elapsed().as_secs_f64());
            let (peer, param) = (ctx.peer.clone(), param.with_message(message));
            async move { drop(peer.notify_progress(param).await) }
        };
        progress::report_while(work, next, send).await.map_err(err)
    }

    fn report(&self, id: JobId) -> Result<Json<JobReport>, Fail> {
        self.jobs.report(id, self.max_output).map(Json).map_err(err)
    }
}

/// The tools, their schemas held to the keywords every JSON Schema validator knows.
fn standard(mut router: ToolRouter<Executor>) -> ToolRouter<Executor> {
    for tool in router.map.values_mut().map(|route| &mut route.attr) {
        let output = tool.output_schema.iter_mut();
        output
            .chain([&mut tool.input_schema])
            .for_each(|s| schema::standard_formats(Arc::make_mut(s)));
    }
    router
}

/// Resolves when the host gives up on a call: it cancels the request, or the task it runs for
/// (the request's own token ends with its answer, a task).
async fn gone(ctx: &Ctx) {
    match ctx.extensions.get::<TaskContext>() {
        Some(task) => task.cancelled().await,
        None => ctx.ct.cancelled().await,
    }
}

/// A tool error for a client error, in plain sentences.
fn err(e: Error) -> Fail {
    text_error(e.advice())
}

/// The result, or, when it has notes (why it failed), an error: those sentences, then the
/// structured result (unless the notes are all there is to say).
fn reply<T: schema::Answer>(value: T) -> Result<Json<T>, Fail> {
    let notes: Vec<_> = value.notes().into_iter().map(ContentBlock::text).collect();
    if notes.is_empty() {
        return Ok(Json(value));
    }
    let json = (!value.notes_only()).then(|| serde_json::to_value(&value).unwrap_or_default());
    let mut result = json.map_or_else(|| Fail::error(vec![]), Fail::structured_error);
    result.content.splice(0..0, notes);
    Err(result)
}

fn text_error(text: impl Into<String>) -> Fail {
    Fail::error(vec![ContentBlock::text(text.into())])
}
