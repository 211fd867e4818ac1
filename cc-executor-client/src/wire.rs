//! From wire notifications to [`OutputEvent`]s: the one place where frames become events.
//!
//! [`RunEvents`] turns the notifications of one run into the events of its stream: it maps each
//! notification, reassembles the chunks of long lines (or passes them on raw), and applies the
//! end-of-run rule: a run is over for the service at `process.completed` or `process.error`, or at
//! `process.canceled` when the service does not advertise
//! [`completed_after_cancel`](crate::protocol::capability::COMPLETED_AFTER_CANCEL) (nothing follows
//! it then). The connection feeds it; [`Lines`] also serves Claude runs that read raw chunks.
//!
//! A service with batched output ([`capability::BATCH_OUTPUT`](crate::protocol::capability::BATCH_OUTPUT))
//! sends many whole lines in one frame; they become one event, which [`BatchLines`] splits into
//! one event per line for the readers that want lines.

use std::time::Duration;

use serde_json::Value;

use crate::event::{
    epoch_to_system_time, Chunk, OutputEvent, OutputStream, RateLimit, RateLimitKind, RunStatus,
    TokenLimit,
};
use crate::protocol::ServerNotification;

/// A reassembled line is yielded in pieces beyond this many bytes.
pub(crate) const MAX_LINE_BYTES: usize = 64 << 20;

/// What one notification meant for its run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Fed {
    /// The run is over for the service: nothing more will come for it.
    pub(crate) end: bool,
    /// The service reported the group canceled (`process.canceled`).
    pub(crate) canceled: bool,
}

/// The events of one run, from its notifications.
#[derive(Debug)]
pub(crate) struct RunEvents {
    raw_chunks: bool,
    completed_after_cancel: bool,
    lines: Lines,
}

impl RunEvents {
    /// `raw_chunks`: yield the chunks of long lines as they come instead of whole lines.
    /// `completed_after_cancel`: the service sends `process.completed` after `process.canceled`.
    pub(crate) fn new(raw_chunks: bool, completed_after_cancel: bool) -> Self {
        RunEvents {
            raw_chunks,
            completed_after_cancel,
            lines: Lines::default(),
        }
    }

    /// Map one notification of the run, giving `emit` the events it yields, in order.
    ///
    /// `connected` and `ping` are the connection's business, not the run's: the connection
    /// handles them before they get here.
    pub(crate) fn feed(&mut self, n: ServerNotification, mut emit: impl FnMut(OutputEvent)) -> Fed {
        let ev = match map(n) {
            Mapped::Event(ev) => ev,
            Mapped::Chunk {
                stream,
                data,
                index,
                total,
            } => {
                if self.raw_chunks {
                    let chunk = Chunk {
                        index,
                        total: total.unwrap_or(0),
                    };
                    emit(OutputEvent::Output {
                        stream,
                        data,
                        chunk: Some(chunk),
                    });
                } else {
                    self.lines
                        .push(stream, &data, index, total, |stream, line| {
                            emit(output(stream, line))
                        });
                }
                return Fed::default();
            }
        };
        let canceled = matches!(ev, OutputEvent::Canceled);
        // Without `completed_after_cancel` nothing follows `process.canceled`.
        let end = ev.is_terminal() || (canceled && !self.completed_after_cancel);
        if end {
            self.flush(&mut emit);
        }
        emit(ev);
        Fed { end, canceled }
    }

    /// The run ends another way (an error, the client's deadline, a closed connection): give
    /// `emit` what was gathered of unfinished long lines.
    pub(crate) fn flush(&mut self, mut emit: impl FnMut(OutputEvent)) {
        self.lines.flush(|stream, line| emit(output(stream, line)));
    }
}

/// The lines of one output event (a batch of whole lines from a service with batched output, or
/// a single line), one at a time: `memchr` finds each newline, and a single line is passed on
/// without a copy.
#[derive(Debug)]
pub(crate) struct BatchLines {
    stream: OutputStream,
    data: String,
    /// Start of the first line not yet given.
    next: usize,
}

impl BatchLines {
    /// The lines of `data`, output of `stream`.
    pub(crate) fn new(stream: OutputStream, data: String) -> Self {
        BatchLines {
            stream,
            data,
            next: 0,
        }
    }

    /// The next line as an output event.
    pub(crate) fn next_event(&mut self) -> Option<OutputEvent> {
        let stream = self.stream;
        self.next().map(|line| output(stream, line))
    }

    /// What is left, as one event (for a reader that takes batches).
    pub(crate) fn rest(mut self) -> Option<OutputEvent> {
        (self.next < self.data.len()).then(|| {
            let rest = self.data.split_off(self.next);
            output(self.stream, rest)
        })
    }
}

impl Iterator for BatchLines {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let rest = self.data.get(self.next..).filter(|r| !r.is_empty())?;
        let end = memchr::memchr(b'\n', rest.as_bytes()).map_or(rest.len(), |i| i + 1);
        if self.next == 0 && end == rest.len() {
            // The only (or last untouched) line: hand over the buffer itself.
            return Some(std::mem::take(&mut self.data));
        }
        // Newlines are ASCII: `end` is a character boundary.
        let line = rest[..end].to_owned();
        self.next += end;
        Some(line)
    }
}

fn output(stream: OutputStream, data: String) -> OutputEvent {
    OutputEvent::Output {
        stream,
        data,
        chunk: None,
    }
}

/// Long lines being put back together from their chunks, one per stream.
///
/// Made with [`Lines::whole_lines`], it also puts back together a line whose start a service
/// sent before the line ended (a prompt shown to the user of a run that takes input): for
/// readers that parse each line, such as Claude's stream-json.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    partial: [String; 2],
    /// Give only lines that ended (in a newline, or with the run).
    whole_lines: bool,
    /// The partial line of that stream came without its end: what follows continues it.
    open: [bool; 2],
}

impl Lines {
    /// Lines that give only whole lines ([`Lines::push_text`]).
    pub(crate) fn whole_lines() -> Self {
        Lines {
            whole_lines: true,
            ..Lines::default()
        }
    }

    /// Add output that is not a chunk: whole lines, the last of which may lack its end (the
    /// start of a line, sent before the line ended). `done` gets each line completed, in order;
    /// an unfinished one waits for the rest of its line (or for [`Lines::flush`]).
    pub(crate) fn push_text(
        &mut self,
        stream: OutputStream,
        data: String,
        mut done: impl FnMut(OutputStream, String),
    ) {
        let i = slot(stream);
        let data = match std::mem::take(&mut self.partial[i]) {
            start if start.is_empty() => data,
            mut start => {
                start.push_str(&data);
                start
            }
        };
        for line in BatchLines::new(stream, data) {
            if line.ends_with('\n') || line.len() >= MAX_LINE_BYTES || !self.whole_lines {
                done(stream, line);
            } else {
                self.partial[i] = line;
            }
        }
        self.open[i] = !self.partial[i].is_empty();
    }

    /// Add chunk `index` of a line (`total` chunks, `None` while a service streams a line whose
    /// length it does not know yet); `done` gets each line completed, in order.
    ///
    /// A line is completed by its last chunk, by the first chunk of the next line (a service that
    /// lost the end: what was gathered is kept), or past [`MAX_LINE_BYTES`] (yielded in pieces).
    pub(crate) fn push(
        &mut self,
        stream: OutputStream,
        data: &str,
        index: u32,
        total: Option<u32>,
        mut done: impl FnMut(OutputStream, String),
    ) {
        let i = slot(stream);
        let open = std::mem::take(&mut self.open[i]);
        let slot = &mut self.partial[i];
        if index == 0 && !slot.is_empty() && !open {
            done(stream, std::mem::take(slot));
        }
        slot.push_str(data);
        // Indexes come from the wire: no arithmetic that could overflow on a bad frame.
        let last = total.is_some_and(|t| index >= t.saturating_sub(1));
        if slot.len() >= MAX_LINE_BYTES {
            done(stream, std::mem::take(slot));
        } else if last {
            if self.whole_lines && !slot.ends_with('\n') {
                // Sent before its line ended: the rest continues it.
                self.open[i] = true;
            } else {
                done(stream, std::mem::take(slot));
            }
        }
    }

    /// Give `done` every unfinished line.
    pub(crate) fn flush(&mut self, mut done: impl FnMut(OutputStream, String)) {
        self.open = [false; 2];
        for stream in [OutputStream::Stdout, OutputStream::Stderr] {
            let line = std::mem::take(&mut self.partial[slot(stream)]);
            if !line.is_empty() {
                done(stream, line);
            }
        }
    }
}

fn slot(stream: OutputStream) -> usize {
    match stream {
        OutputStream::Stdout => 0,
        OutputStream::Stderr => 1,
    }
}

/// What a notification means for a run.
enum Mapped {
    /// An event to yield.
    Event(OutputEvent),
    /// A chunk of a long line, to reassemble (or yield raw).
    Chunk {
        stream: OutputStream,
        data: String,
        index: u32,
        /// `None` while the service streams a line whose length it does not know yet.
        total: Option<u32>,
    },
}

fn map(n: ServerNotification) -> Mapped {
    use ServerNotification as N;
    Mapped::Event(match n {
        N::ProcessStarted(p) => OutputEvent::Started {
            pid: p.pid.unwrap_or(0),
            pgid: p.pgid,
        },
        N::ProcessOutput(p) => {
            let data = p.data.into_owned();
            match (p.chunk_index, p.total_chunks) {
                // A streamed line has `total_chunks: null` on every chunk but the last.
                (Some(index), total) if total.is_none_or(|t| t > 1) => {
                    return Mapped::Chunk {
                        stream: p.stream,
                        data,
                        index,
                        total,
                    }
                }
                _ => output(p.stream, data),
            }
        }
        N::ProcessPaused(_) => OutputEvent::Paused,
        N::ProcessResumed(_) => OutputEvent::Resumed,
        N::ProcessCanceled(_) => OutputEvent::Canceled,
        N::ProcessCompleted(p) => OutputEvent::Completed {
            status: RunStatus::from_wire(&p.status),
            exit_code: p.exit_code,
            duration: secs(p.execution_time),
            timed_out: p.timed_out,
            error: p.error,
        },
        N::ProcessError(p) => OutputEvent::Failed { error: p.error },
        N::TokenLimitExceeded(p) => OutputEvent::TokenLimitExceeded(TokenLimit {
            limit: p.limit,
            message: p.message,
            suggestion: p.suggestion,
            text: p.error_text,
            recoverable: p.recoverable,
        }),
        N::RateLimitExceeded(p) => OutputEvent::RateLimitExceeded(RateLimit {
            kind: RateLimitKind::from_wire(&p.error_type),
            message: p.message,
            retry_after: p.retry_after.map(Duration::from_secs),
            reset_at: p.reset_timestamp.flatten().and_then(epoch_to_system_time),
            text: p.error_text,
            recoverable: p.recoverable,
        }),
        N::EarlyCompletion(p) => OutputEvent::EarlyCompletion {
            marker: p.marker,
            elapsed: secs(p.elapsed_time),
            line: p.output_line,
        },
        N::HookWarning(params) => OutputEvent::Warning {
            message: params
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            params,
        },
        N::Unknown { method, params } => OutputEvent::Other { method, params },
        // `connected`, `ping`, or a method a newer protocol crate types but this mapping does not
        // know yet.
        other => OutputEvent::Other {
            method: other.method().to_owned(),
            params: Value::Null,
        },
    })
}

/// Wire seconds to a `Duration`; zero for negative or absurd values.
fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{
        CompletedParams, OutputParams, ProcessStatusParams, ServerNotification as N,
    };

    fn chunk(stream: OutputStream, data: &str, index: u32, total: Option<u32>) -> N {
        N::ProcessOutput(OutputParams {
            stream,
            data: data.to_owned().into(),
            truncated: total.is_none_or(|t| index.saturating_add(1) < t),
            chunk_index: Some(index),
            total_chunks: total,
        })
    }

    fn feed_all(events: &mut RunEvents, ns: Vec<N>) -> Vec<OutputEvent> {
        let mut out = Vec::new();
        for n in ns {
            events.feed(n, |ev| out.push(ev));
        }
        out
    }

    fn line(stream: OutputStream, data: &str) -> OutputEvent {
        output(stream, data.to_owned())
    }

    fn raw(stream: OutputStream, data: &str, index: u32, total: u32) -> OutputEvent {
        OutputEvent::Output {
            stream,
            data: data.to_owned(),
            chunk: Some(Chunk { index, total }),
        }
    }

    use OutputStream::{Stderr, Stdout};

    #[test]
    fn chunks_are_reassembled_per_stream_or_passed_on_raw() {
        let chunks = || {
            vec![
                chunk(Stdout, "aa", 0, Some(3)),
                chunk(Stderr, "e1", 0, Some(2)),
                chunk(Stdout, "bb", 1, Some(3)),
                chunk(Stderr, "e2\n", 1, Some(2)),
                chunk(Stdout, "c\n", 2, Some(3)),
            ]
        };
        let out = feed_all(&mut RunEvents::new(false, true), chunks());
        assert_eq!(out, [line(Stderr, "e1e2\n"), line(Stdout, "aabbc\n")]);
        let out = feed_all(&mut RunEvents::new(true, true), chunks());
        assert_eq!(
            out,
            [
                raw(Stdout, "aa", 0, 3),
                raw(Stderr, "e1", 0, 2),
                raw(Stdout, "bb", 1, 3),
                raw(Stderr, "e2\n", 1, 2),
                raw(Stdout, "c\n", 2, 3),
            ]
        );
    }

    #[test]
    fn an_interrupted_line_and_a_terminal_flush_what_was_gathered() {
        let mut r = RunEvents::new(false, true);
        let completed = N::ProcessCompleted(CompletedParams {
            status: "completed".into(),
            pid: None,
            pgid: None,
            exit_code: Some(0),
            error: None,
            execution_time: 0.5,
            early_completion_detected: false,
            early_completion_time: None,
            time_saved: 0.0,
            completion_marker: None,
            timed_out: false,
        });
        let mut out = Vec::new();
        // A new line starts before the old one ended: the old part is kept, not lost.
        for n in [
            chunk(Stdout, "first", 0, Some(3)),
            chunk(Stdout, "second", 0, Some(2)),
        ] {
            assert_eq!(r.feed(n, |ev| out.push(ev)), Fed::default());
        }
        let fed = r.feed(completed, |ev| out.push(ev));
        assert!(fed.end && !fed.canceled);
        assert_eq!(out[..2], [line(Stdout, "first"), line(Stdout, "second")]);
        assert!(matches!(
            &out[2],
            OutputEvent::Completed { status: RunStatus::Completed, exit_code: Some(0), duration, .. }
                if *duration == Duration::from_millis(500)
        ));
    }

    #[test]
    fn a_streamed_line_ends_at_the_chunk_that_carries_the_count() {
        let mut r = RunEvents::new(false, true);
        let out = feed_all(
            &mut r,
            vec![chunk(Stdout, "a", 0, None), chunk(Stdout, "b", 1, None)],
        );
        assert!(out.is_empty());
        let out = feed_all(&mut r, vec![chunk(Stdout, "c\n", 2, Some(3))]);
        assert_eq!(out, [line(Stdout, "abc\n")]);
        let mut r = RunEvents::new(true, true);
        let out = feed_all(
            &mut r,
            vec![
                chunk(Stdout, "a", 0, None),
                chunk(Stdout, "b\n", 1, Some(2)),
            ],
        );
        assert_eq!(out, [raw(Stdout, "a", 0, 0), raw(Stdout, "b\n", 1, 2)]);
    }

    #[test]
    fn absurd_chunk_positions_do_not_panic() {
        let mut r = RunEvents::new(false, true);
        let mut out = feed_all(
            &mut r,
            vec![
                chunk(Stdout, "x", u32::MAX, Some(2)),
                chunk(Stdout, "y", u32::MAX, Some(0)),
                chunk(Stdout, "z", u32::MAX, None),
            ],
        );
        r.flush(|ev| out.push(ev));
        let text: String = out
            .into_iter()
            .map(|ev| match ev {
                OutputEvent::Output { data, .. } => data,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(text, "xyz");
    }

    #[test]
    fn batches_split_into_their_lines_byte_for_byte() {
        let split =
            |data: &str| -> Vec<String> { BatchLines::new(Stdout, data.to_owned()).collect() };
        assert_eq!(split("a\nbb\n\nc"), ["a\n", "bb\n", "\n", "c"]);
        assert_eq!(split("only\n"), ["only\n"]);
        assert_eq!(split("no newline"), ["no newline"]);
        assert!(split("").is_empty());
        let mut lines = BatchLines::new(Stderr, "é\n\u{fffd}x\ny\n".to_owned());
        assert_eq!(lines.next_event(), Some(line(Stderr, "é\n")));
        assert_eq!(lines.rest(), Some(line(Stderr, "\u{fffd}x\ny\n")));
        let mut lines = BatchLines::new(Stdout, "a\n".to_owned());
        assert!(lines.next().is_some());
        assert_eq!(lines.rest(), None);
    }

    #[test]
    fn a_prompt_without_its_newline_is_an_event_at_once() {
        let prompt = || {
            N::ProcessOutput(OutputParams {
                stream: Stdout,
                data: ">>> ".into(),
                truncated: false,
                chunk_index: None,
                total_chunks: None,
            })
        };
        for raw_chunks in [false, true] {
            let out = feed_all(&mut RunEvents::new(raw_chunks, true), vec![prompt()]);
            assert_eq!(out, [line(Stdout, ">>> ")]);
        }
        let mut lines = BatchLines::new(Stdout, "banner\n>>> ".to_owned());
        assert_eq!(lines.next_event(), Some(line(Stdout, "banner\n")));
        assert_eq!(lines.next_event(), Some(line(Stdout, ">>> ")));
    }

    #[test]
    fn whole_lines_join_a_line_sent_before_its_end() {
        /// Text, or a chunk: its data, index and total.
        type Piece<'a> = (&'a str, Option<(u32, Option<u32>)>);
        let run = |pieces: Vec<Piece<'_>>| {
            let mut lines = Lines::whole_lines();
            let mut out = Vec::new();
            for (data, chunk) in pieces {
                let done = |s, l| out.push((s, l));
                match chunk {
                    None => lines.push_text(Stdout, data.to_owned(), done),
                    Some((index, total)) => lines.push(Stdout, data, index, total, done),
                }
            }
            lines.flush(|s, l| out.push((s, l)));
            out.into_iter().map(|(_, l)| l).collect::<Vec<_>>()
        };
        assert_eq!(
            run(vec![("a\n{\"x\":", None), ("1}\nb\n", None)]),
            ["a\n", "{\"x\":1}\n", "b\n"]
        );
        // The rest of the line in chunks, or a streamed line ended early, then text.
        assert_eq!(
            run(vec![
                ("{", None),
                ("a", Some((0, Some(2)))),
                ("b\n", Some((1, Some(2))))
            ]),
            ["{ab\n"]
        );
        assert_eq!(
            run(vec![
                ("a", Some((0, None))),
                ("b", Some((1, Some(2)))),
                ("c\n", None)
            ]),
            ["abc\n"]
        );
        // What never ended comes with the end of the run.
        assert_eq!(run(vec![("x\nPassword: ", None)]), ["x\n", "Password: "]);
        // Lines that do not wait for the rest (the events of a run) give chunked lines as ever.
        let mut lines = Lines::default();
        let mut out = Vec::new();
        lines.push(Stdout, "a", 0, Some(1), |_, l| out.push(l));
        assert_eq!(out, ["a"]);
    }

    #[test]
    fn canceled_ends_the_run_only_without_a_completed_to_follow() {
        let canceled = || {
            N::ProcessCanceled(ProcessStatusParams {
                status: "canceled".into(),
                pid: Some(1),
                pgid: Some(1),
                exit_code: None,
                error: None,
            })
        };
        for (completed_after_cancel, end) in [(true, false), (false, true)] {
            let mut r = RunEvents::new(false, completed_after_cancel);
            let mut out = Vec::new();
            let fed = r.feed(canceled(), |ev| out.push(ev));
            assert_eq!(
                fed,
                Fed {
                    end,
                    canceled: true
                }
            );
            assert_eq!(out, [OutputEvent::Canceled]);
        }
    }
}
