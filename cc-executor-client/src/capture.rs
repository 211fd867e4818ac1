//! Bounded capture of a run's output.
//!
//! Readers with a size limit (an MCP host, a log line, a chat message) cannot take a command's
//! whole output. [`OutputCapture`] keeps the head and the tail of stdout and stderr, replaces the
//! middle with a plain `[… N bytes omitted …]` marker, and can write the whole combined output, in
//! arrival order, to a file so nothing is lost.
//!
//! ```
//! use cc_executor_client::capture::OutputCapture;
//! use cc_executor_client::OutputStream;
//!
//! let mut capture = OutputCapture::new(100);
//! for i in 0..1000 {
//!     capture.push(OutputStream::Stdout, &format!("line {i}\n"));
//! }
//! let out = capture.finish();
//! assert!(out.truncated);
//! assert!(out.stdout.starts_with("line 0\n"));
//! assert!(out.stdout.ends_with("line 999\n"));
//! assert!(out.stdout.contains("bytes omitted"));
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Result;
use crate::event::{OutputEvent, RunStatus};
use crate::execution::Execution;
use crate::outcome::Tracker;
use crate::protocol::OutputStream;
use crate::text::{secs, Bounded};

/// Collects a run's stdout and stderr within a byte budget, optionally spilling everything to a file.
#[derive(Debug)]
pub struct OutputCapture {
    limit: usize,
    stdout: Bounded,
    stderr: Bounded,
    spill: Option<Spill>,
    spill_error: Option<String>,
}

#[derive(Debug)]
struct Spill {
    path: PathBuf,
    file: BufWriter<File>,
}

/// What [`OutputCapture::finish`] returns.
///
/// With the `schema` feature it serializes as a tool reports it: `stdout`, `stderr`, `truncated`
/// and `output_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(serde::Serialize, schemars::JsonSchema))]
#[non_exhaustive]
pub struct CapturedOutput {
    /// Stdout; when long, its head and tail around a `[… N bytes omitted …]` marker.
    pub stdout: String,
    /// Stderr, bounded like stdout.
    pub stderr: String,
    /// Bytes written to stdout in total.
    #[cfg_attr(feature = "schema", serde(skip))]
    pub stdout_bytes: u64,
    /// Bytes written to stderr in total.
    #[cfg_attr(feature = "schema", serde(skip))]
    pub stderr_bytes: u64,
    /// Whether stdout or stderr was cut.
    pub truncated: bool,
    /// File holding the whole combined output, present only when stdout or stderr was cut.
    #[cfg_attr(feature = "schema", serde(rename = "output_file"))]
    pub file: Option<PathBuf>,
    /// Why the whole output of a cut result was not saved to a file, as a sentence, when it was
    /// not.
    pub output_error: Option<String>,
    /// Why the spill file could not be written, when that happened.
    #[cfg_attr(feature = "schema", serde(skip))]
    pub spill_error: Option<String>,
}

impl OutputCapture {
    /// A capture that returns at most about `limit` bytes of stdout and stderr together (plus the
    /// omission markers). Cuts fall on character boundaries, so `limit` also bounds characters.
    pub fn new(limit: usize) -> Self {
        // Each stream keeps up to `limit` bytes, so either may take the whole budget when the
        // other is small; `finish` shares the budget out.
        OutputCapture {
            limit,
            stdout: Bounded::new(limit),
            stderr: Bounded::new(limit),
            spill: None,
            spill_error: None,
        }
    }

    /// Also write the whole combined output to `path`, a private file (mode `0600`, never through a
    /// symbolic link; missing parent folders are created `0700`).
    pub fn spill_to(self, path: impl AsRef<Path>) -> std::io::Result<Self> {
        let path = path.as_ref();
        let file = crate::output_dir::open_private(path)?;
        Ok(self.spill_into(path.to_owned(), file))
    }

    /// Also write the whole combined output to `file`, open at `path` (e.g. an
    /// [`OutputFile`](crate::output_dir::OutputFile) from
    /// [`OutputFiles::create`](crate::output_dir::OutputFiles::create)).
    pub fn spill_into(mut self, path: PathBuf, file: File) -> Self {
        self.spill = Some(Spill {
            path,
            file: BufWriter::with_capacity(64 * 1024, file),
        });
        self
    }

    /// Also write the whole combined output to a new private file of `files`
    /// ([`OutputKind::Output`](crate::output_dir::OutputKind::Output)). When the policy refuses
    /// its folder, the capture goes on without a file and says why
    /// ([`CapturedOutput::output_error`]).
    pub fn save_to(mut self, files: &crate::output_dir::OutputFiles) -> Self {
        match files.create(crate::output_dir::OutputKind::Output) {
            Ok(out) => self.spill_into(out.path, out.file),
            Err(e) => {
                self.spill_error = Some(e.to_string());
                self
            }
        }
    }

    /// Add output of `stream`.
    pub fn push(&mut self, stream: OutputStream, data: &str) {
        match stream {
            OutputStream::Stderr => self.stderr.push(data),
            _ => self.stdout.push(data),
        }
        if let Some(spill) = &mut self.spill {
            if let Err(e) = spill.file.write_all(data.as_bytes()) {
                // A full disk must not fail the run: stop spilling and report it.
                self.spill_error = Some(format!("writing {}: {e}", spill.path.display()));
                let path = self.spill.take().map(|s| s.path);
                if let Some(path) = path {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }

    /// Render the bounded text. The spill file is kept only when something was cut (otherwise the
    /// returned text is the whole output and the file is removed).
    pub fn finish(mut self) -> CapturedOutput {
        let (out_budget, err_budget) = share(self.limit, self.stdout.total(), self.stderr.total());
        let (stdout, cut_out) = self.stdout.render(out_budget);
        let (stderr, cut_err) = self.stderr.render(err_budget);
        let truncated = cut_out || cut_err;
        let mut file = None;
        if let Some(mut spill) = self.spill.take() {
            match spill.file.flush() {
                Ok(()) if truncated => file = Some(spill.path),
                Ok(()) => {
                    let _ = std::fs::remove_file(&spill.path);
                }
                Err(e) => {
                    self.spill_error = Some(format!("writing {}: {e}", spill.path.display()));
                    let _ = std::fs::remove_file(&spill.path);
                }
            }
        }
        let output_error = match (truncated, &file, &self.spill_error) {
            (true, None, Some(why)) => Some(crate::output_dir::unsaved(why)),
            _ => None,
        };
        CapturedOutput {
            stdout,
            stderr,
            stdout_bytes: self.stdout.total(),
            stderr_bytes: self.stderr.total(),
            truncated,
            file,
            output_error,
            spill_error: self.spill_error,
        }
    }
}

pub use crate::text::bound;

/// Share `limit` between two streams of `a` and `b` bytes: a small stream keeps all of its text,
/// the rest goes to the other one.
fn share(limit: usize, a: u64, b: u64) -> (usize, usize) {
    let half = limit / 2;
    let (a, b) = (to_usize(a), to_usize(b));
    if a.saturating_add(b) <= limit {
        (a, b)
    } else if b <= half {
        (limit - b, b)
    } else if a <= half {
        (a, limit - a)
    } else {
        (half, limit - half)
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// How a run read with [`Execution::collect_bounded`] ended, with its output bounded.
///
/// With the `schema` feature it serializes as a tool reports it: `exit_code`, `status` (its wire
/// name), `timed_out`, `duration_secs` and the fields of the output.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "schema", derive(serde::Serialize, schemars::JsonSchema))]
#[non_exhaustive]
pub struct BoundedOutcome {
    /// How the run ended: `completed`, `failed` or `canceled` (`failed` at a timeout; `error`
    /// when the service could not run it).
    #[cfg_attr(
        feature = "schema",
        serde(serialize_with = "crate::schema::status"),
        schemars(with = "String")
    )]
    pub status: RunStatus,
    /// Exit code; a negative signal number when killed by a signal; null when unknown.
    pub exit_code: Option<i32>,
    /// Run time in seconds (the timeout, when the client's deadline ended it).
    #[cfg_attr(
        feature = "schema",
        serde(rename = "duration_secs", serialize_with = "crate::schema::secs"),
        schemars(with = "f64")
    )]
    pub duration: Duration,
    /// Whether the run was killed at its timeout.
    pub timed_out: bool,
    /// The timeout the run was held to, when it had one.
    #[cfg_attr(feature = "schema", serde(skip))]
    pub timeout: Option<Duration>,
    /// The bounded output (and the file holding it whole, when it was cut).
    #[cfg_attr(feature = "schema", serde(flatten))]
    pub output: CapturedOutput,
    /// The non-output events seen (limits, early completion, the terminal event).
    #[cfg_attr(feature = "schema", serde(skip))]
    pub events: Vec<OutputEvent>,
    /// Why the service could not run the command at all ([`OutputEvent::Failed`]).
    #[cfg_attr(feature = "schema", serde(skip))]
    pub not_run: Option<String>,
}

impl BoundedOutcome {
    /// The outcome with stdout and stderr free of terminal escape sequences
    /// ([`crate::strip_ansi`]), for a reader; the output file keeps the raw bytes.
    pub fn without_ansi(mut self) -> Self {
        for text in [&mut self.output.stdout, &mut self.output.stderr] {
            if let std::borrow::Cow::Owned(plain) = crate::strip_ansi(text) {
                *text = plain;
            }
        }
        self
    }

    /// Whether the run completed with exit code 0.
    pub fn success(&self) -> bool {
        self.not_run.is_none() && self.status.success() && self.exit_code == Some(0)
    }

    /// Plain sentences for a reader about what went wrong: why the service could not run the
    /// command; or limits hit (with when they reset), the timeout, otherwise how it failed.
    /// Empty for a clean success; e.g. `["The command failed with exit code 2."]`.
    pub fn notes(&self) -> Vec<String> {
        if let Some(why) = &self.not_run {
            return vec![format!("The service could not run the command: {why}")];
        }
        let mut notes: Vec<String> = self
            .events
            .iter()
            .filter_map(|e| e.limit_advice())
            .collect();
        if self.timed_out {
            notes.push(format!(
                "The command timed out after {}; its process group was killed.",
                secs(self.timeout.unwrap_or(self.duration))
            ));
        }
        if !self.success() && notes.is_empty() {
            notes.push(match (&self.status, self.exit_code) {
                (RunStatus::Canceled, _) => "The command was canceled.".to_owned(),
                (_, Some(code)) => format!("The command failed with exit code {code}."),
                (_, None) => format!("The command ended as {}.", self.status.as_str()),
            });
        }
        notes
    }

    /// An outcome with no events and a zero duration (for tests).
    #[cfg(test)]
    pub(crate) fn new(status: RunStatus, exit_code: Option<i32>, output: CapturedOutput) -> Self {
        BoundedOutcome {
            status,
            exit_code,
            duration: Duration::ZERO,
            timed_out: false,
            timeout: None,
            output,
            events: Vec::new(),
            not_run: None,
        }
    }
}

impl Execution {
    /// Read the run to its end into `capture`, calling `on_output` with every piece of output as
    /// it arrives (e.g. to show the latest line as progress): a line, or the whole lines that a
    /// service with batched output sends together.
    ///
    /// Unlike [`Execution::wait`], the output is bounded, and a timeout, a limit or a command the
    /// service could not run are reported in the [`BoundedOutcome`] (see
    /// [`BoundedOutcome::notes`]) rather than as errors. A cancel through the
    /// [`Controller`](crate::Controller) ends it with status [`RunStatus::Canceled`]. Errors are
    /// those of the stream (connection lost, protocol error), and [`Error::ConnectionClosed`](crate::Error::ConnectionClosed)
    /// when the stream ends before the run does.
    ///
    /// ```no_run
    /// use cc_executor_client::capture::OutputCapture;
    /// use cc_executor_client::Command;
    ///
    /// # async fn demo(client: cc_executor_client::Client) -> cc_executor_client::Result<()> {
    /// let run = client.execute(Command::new("make test")).await?;
    /// let out = run
    ///     .collect_bounded(OutputCapture::new(20_000), |_, data| eprint!("{data}"))
    ///     .await?;
    /// println!("{}\n{}", out.output.stdout, out.notes().join("\n"));
    /// # Ok(()) }
    /// ```
    pub async fn collect_bounded(
        mut self,
        mut capture: OutputCapture,
        mut on_output: impl FnMut(OutputStream, &str),
    ) -> Result<BoundedOutcome> {
        let mut run = Tracker::new();
        let mut events = Vec::new();
        while let Some(item) = self.next_raw().await {
            match item {
                Ok(OutputEvent::Output { stream, data, .. }) => {
                    on_output(stream, &data);
                    capture.push(stream, &data);
                }
                Ok(ev) => {
                    run.event(&ev);
                    events.push(ev);
                }
                Err(e) => run.error(e)?,
            }
        }
        let end = run.finish(self.cancel_sent())?;
        Ok(BoundedOutcome {
            status: end.status,
            exit_code: end.exit_code,
            duration: end.duration,
            timed_out: end.timed_out,
            timeout: self.timeout(),
            output: capture.finish(),
            events,
            not_run: end.not_run,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command's bounded output, its lines as they come, its exit code and the sentences about
    /// it, from a real service; then a run killed at its timeout.
    #[tokio::test]
    async fn collect_bounded_reads_a_real_run() {
        use crate::{Client, Command};
        let service = cc_executor_server::Server::builder()
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let client = Client::new(service.url()).unwrap();
        let wait = std::time::Duration::from_secs(30);

        let run = client
            .execute("for i in $(seq 1 500); do echo line $i; done; echo err >&2; exit 3")
            .await
            .unwrap();
        let mut seen = 0;
        let collect = run.collect_bounded(OutputCapture::new(200), |_, data| {
            seen += data.matches('\n').count()
        });
        let out = tokio::time::timeout(wait, collect).await.unwrap().unwrap();
        assert_eq!(seen, 501);
        assert_eq!(
            (out.status.clone(), out.exit_code),
            (RunStatus::Failed, Some(3))
        );
        assert!(out.output.truncated);
        assert!(
            out.output.stdout.starts_with("line 1\n"),
            "{}",
            out.output.stdout
        );
        assert!(
            out.output.stdout.ends_with("line 500\n"),
            "{}",
            out.output.stdout
        );
        assert_eq!(out.output.stderr, "err\n");
        assert!(!out.success());
        assert_eq!(out.notes(), ["The command failed with exit code 3."]);

        let cmd = Command::new("sleep 30").timeout(std::time::Duration::from_secs(1));
        let run = client.execute(cmd).await.unwrap();
        let collect = run.collect_bounded(OutputCapture::new(200), |_, _| {});
        let out = tokio::time::timeout(wait, collect).await.unwrap().unwrap();
        assert!(out.timed_out);
        assert!(!out.success());
        assert_eq!(
            out.notes(),
            ["The command timed out after 1s; its process group was killed."]
        );
        tokio::time::timeout(wait, service.shutdown())
            .await
            .unwrap();
    }

    #[test]
    fn notes_of_a_run_the_service_could_not_run_say_only_why() {
        let mut out = BoundedOutcome::new(RunStatus::Failed, None, OutputCapture::new(1).finish());
        out.timed_out = true;
        out.not_run = Some("no shell".into());
        assert_eq!(
            out.notes(),
            ["The service could not run the command: no shell"]
        );
        let ok = BoundedOutcome::new(
            RunStatus::Completed,
            Some(0),
            OutputCapture::new(1).finish(),
        );
        assert!(ok.success() && ok.notes().is_empty());
        let failed =
            BoundedOutcome::new(RunStatus::Failed, Some(2), OutputCapture::new(1).finish());
        assert_eq!(failed.notes(), ["The command failed with exit code 2."]);
    }

    #[test]
    fn short_output_is_kept_whole() {
        let mut c = OutputCapture::new(100);
        c.push(OutputStream::Stdout, "hi\n");
        c.push(OutputStream::Stderr, "oops\n");
        let out = c.finish();
        assert_eq!(out.stdout, "hi\n");
        assert_eq!(out.stderr, "oops\n");
        assert!(!out.truncated);
        assert_eq!((out.stdout_bytes, out.stderr_bytes), (3, 5));
    }

    #[test]
    fn long_output_keeps_head_and_tail_within_budget() {
        let mut c = OutputCapture::new(1000);
        let mut total = 0;
        for i in 0..100_000 {
            let line = format!("{i}\n");
            total += line.len();
            c.push(OutputStream::Stdout, &line);
        }
        let out = c.finish();
        assert!(out.truncated);
        assert!(out.stdout.len() <= 1100, "{}", out.stdout.len());
        assert!(out.stdout.starts_with("0\n1\n"));
        assert!(out.stdout.ends_with("99999\n"));
        let marker = out.stdout.lines().find(|l| l.contains("omitted")).unwrap();
        let n: usize = marker
            .trim_start_matches("[… ")
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(n + out.stdout.len() - marker.len() - 1, total);
    }

    #[test]
    fn small_stream_keeps_its_text_when_the_other_is_cut() {
        let mut c = OutputCapture::new(200);
        c.push(OutputStream::Stderr, "error: boom\n");
        c.push(OutputStream::Stdout, &"x".repeat(10_000));
        let out = c.finish();
        assert_eq!(out.stderr, "error: boom\n");
        assert!(out.truncated);
        assert!(out.stdout.len() < 250);
    }

    #[test]
    fn spill_file_holds_everything_only_when_cut() {
        let dir = tempfile_dir();
        let path = dir.join("out.log");
        let mut c = OutputCapture::new(50).spill_to(&path).unwrap();
        let mut all = String::new();
        for i in 0..1000 {
            let line = format!("{i}\n");
            all.push_str(&line);
            c.push(
                if i % 2 == 0 {
                    OutputStream::Stdout
                } else {
                    OutputStream::Stderr
                },
                &line,
            );
        }
        let out = c.finish();
        assert_eq!(out.file.as_deref(), Some(path.as_path()));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), all);

        let small = dir.join("small.log");
        let mut c = OutputCapture::new(50).spill_to(&small).unwrap();
        c.push(OutputStream::Stdout, "hi\n");
        let out = c.finish();
        assert_eq!(out.file, None);
        assert!(!small.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cc-executor-capture-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
