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

use crate::protocol::OutputStream;

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
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CapturedOutput {
    /// Stdout, whole or cut to its head and tail around an omission marker.
    pub stdout: String,
    /// Stderr, whole or cut like `stdout`.
    pub stderr: String,
    /// Bytes written to stdout in total.
    pub stdout_bytes: u64,
    /// Bytes written to stderr in total.
    pub stderr_bytes: u64,
    /// Whether something was left out of `stdout` or `stderr`.
    pub truncated: bool,
    /// The file holding the whole combined output; kept only when something was cut.
    pub file: Option<PathBuf>,
    /// Why the spill file could not be written, when that happened.
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

    /// Also write the whole combined output to `path` (its parent directories are created).
    pub fn spill_to(mut self, path: impl AsRef<Path>) -> std::io::Result<Self> {
        let path = path.as_ref();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = BufWriter::with_capacity(64 * 1024, File::create(path)?);
        self.spill = Some(Spill {
            path: path.to_owned(),
            file,
        });
        Ok(self)
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
        let (out_budget, err_budget) = share(self.limit, self.stdout.total, self.stderr.total);
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
        CapturedOutput {
            stdout,
            stderr,
            stdout_bytes: self.stdout.total,
            stderr_bytes: self.stderr.total,
            truncated,
            file,
            spill_error: self.spill_error,
        }
    }
}

/// Cut `text` to about `limit` bytes: its head and tail around an omission marker.
/// Returns the text and whether something was cut.
pub fn bound(text: &str, limit: usize) -> (String, bool) {
    let mut b = Bounded::new(limit);
    b.push(text);
    b.render(limit)
}

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

/// One stream: the first `cap / 2` bytes and (about) the last `cap / 2` bytes.
#[derive(Debug)]
struct Bounded {
    head_cap: usize,
    tail_cap: usize,
    head: String,
    tail: String,
    total: u64,
}

impl Bounded {
    fn new(cap: usize) -> Self {
        Bounded {
            head_cap: cap / 2,
            tail_cap: cap - cap / 2,
            head: String::new(),
            tail: String::new(),
            total: 0,
        }
    }

    fn push(&mut self, mut data: &str) {
        self.total += data.len() as u64;
        if self.head.len() < self.head_cap {
            let room = floor_char_boundary(data, self.head_cap - self.head.len());
            self.head.push_str(&data[..room]);
            data = &data[room..];
            if data.is_empty() {
                return;
            }
            // The head is full when a character did not fit: the rest goes to the tail.
            self.head_cap = self.head.len();
        }
        self.tail.push_str(data);
        // Trim only when the tail doubled, so pushing stays amortised O(1) per byte.
        if self.tail.len() > 2 * self.tail_cap.max(1) {
            let cut = ceil_char_boundary(&self.tail, self.tail.len() - self.tail_cap);
            self.tail.drain(..cut);
        }
    }

    /// The text cut to about `budget` bytes, and whether something was left out.
    fn render(&self, budget: usize) -> (String, bool) {
        let kept = self.head.len() + self.tail.len();
        if self.total == kept as u64 && kept <= budget {
            return (format!("{}{}", self.head, self.tail), false);
        }
        // Everything kept is contiguous when nothing was dropped between head and tail.
        let (front, back) = if self.total == kept as u64 {
            (self.head.clone() + &self.tail, None)
        } else {
            (self.head.clone(), Some(&self.tail))
        };
        let back: &str = back.map(String::as_str).unwrap_or(&front);
        let head_len = line_cut_front(&front, budget / 2);
        let tail_start = line_cut_back(back, budget - head_len);
        let head = &front[..head_len];
        let tail = &back[tail_start..];
        let omitted = self.total - head.len() as u64 - tail.len() as u64;
        let sep = if head.is_empty() || head.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        (
            format!("{head}{sep}[… {omitted} bytes omitted …]\n{tail}"),
            true,
        )
    }
}

/// Length of a prefix of `s` of at most `max` bytes, ending after a newline when one lies in the
/// second half of that window.
fn line_cut_front(s: &str, max: usize) -> usize {
    let end = floor_char_boundary(s, max);
    match s[..end].rfind('\n') {
        Some(i) if i + 1 >= end / 2 => i + 1,
        _ => end,
    }
}

/// Start of a suffix of `s` of at most `max` bytes, starting after a newline when one lies in the
/// first half of that window.
fn line_cut_back(s: &str, max: usize) -> usize {
    let start = ceil_char_boundary(s, s.len().saturating_sub(max));
    match s[start..].find('\n') {
        Some(i) if i < (s.len() - start) / 2 => start + i + 1,
        _ => start,
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn cuts_fall_on_char_boundaries() {
        let text = "é".repeat(5000);
        for limit in [0, 1, 2, 3, 7, 100, 101] {
            let (s, cut) = bound(&text, limit);
            assert!(cut);
            assert!(s.contains("bytes omitted"));
        }
        assert_eq!(bound("héllo", 6), ("héllo".to_owned(), false));
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
