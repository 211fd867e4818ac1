//! A job's output: the latest bytes held in memory, read in pages, and the whole output in an
//! optional file.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The latest output of a job, at most `limit` bytes; older bytes are dropped and counted.
#[derive(Debug)]
pub(super) struct Window {
    bytes: VecDeque<u8>,
    limit: usize,
    /// Bytes pushed in all.
    pub(super) total: u64,
    /// Bytes dropped from the front.
    pub(super) dropped: u64,
    /// Receives every byte, when the job has an output file.
    file: Option<File>,
}

/// Up to `limit` bytes of the window from an offset, cut on character boundaries.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Page {
    /// Where `data` starts (later than asked when that part was dropped).
    pub(super) offset: u64,
    /// Where the next page starts.
    pub(super) next_offset: u64,
    pub(super) data: String,
}

impl Window {
    pub(super) fn new(limit: usize, file: Option<File>) -> Self {
        Window {
            bytes: VecDeque::new(),
            limit,
            total: 0,
            dropped: 0,
            file,
        }
    }

    /// Add output. A failing output file is given up (the error is returned once): the job goes
    /// on with its output in memory.
    pub(super) fn push(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let written = match &mut self.file {
            Some(file) => file.write_all(bytes),
            None => Ok(()),
        };
        if written.is_err() {
            self.file = None;
        }
        self.total += bytes.len() as u64;
        self.bytes.extend(bytes);
        if self.bytes.len() > self.limit {
            let excess = self.bytes.len() - self.limit;
            self.bytes.drain(..excess);
            self.dropped += excess as u64;
        }
        written
    }

    /// Stop writing the output file (it is about to be released).
    pub(super) fn close_file(&mut self) {
        self.file = None;
    }

    /// The job ended: write out what the file still buffers.
    pub(super) fn flush(&mut self) {
        if let Some(file) = &mut self.file {
            let _ = file.flush();
        }
    }

    /// Up to `limit` bytes from `offset` (clamped to what is held). Pages never split a
    /// character, so they concatenate back to the exact output.
    pub(super) fn page(&self, offset: u64, limit: usize) -> Page {
        let start = offset.clamp(self.dropped, self.total);
        let from = (start - self.dropped) as usize;
        // Read a few bytes past the limit so the cut can land on a character boundary.
        let to = from
            .saturating_add(limit)
            .saturating_add(3)
            .min(self.bytes.len());
        let bytes: Vec<u8> = self.bytes.range(from..to).copied().collect();
        let is_cont = |b: u8| (b & 0xC0) == 0x80;
        // Skip a partial character at the start, cut before a partial one at the end (taking at
        // least one whole character).
        let lead = bytes.iter().take_while(|b| is_cont(**b)).count();
        let body = &bytes[lead..];
        let mut valid = limit.min(body.len());
        while valid > 0 && valid < body.len() && is_cont(body[valid]) {
            valid -= 1;
        }
        if valid == 0 && !body.is_empty() && limit > 0 {
            valid = 1;
            while valid < body.len() && is_cont(body[valid]) {
                valid += 1;
            }
        }
        Page {
            offset: start + lead as u64,
            next_offset: start + (lead + valid) as u64,
            data: String::from_utf8_lossy(&body[..valid]).into_owned(),
        }
    }
}

/// The end of the file at `path`: at most its last 16 MiB, whole lines only (for a `result`
/// line, which ends a Claude run's output, in a file of any size).
pub(super) fn read_tail(path: &Path) -> std::io::Result<String> {
    const MAX: u64 = 16 << 20;
    let mut file = File::open(path)?;
    let start = file.metadata()?.len().saturating_sub(MAX);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(MAX).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(match (start, text.find('\n')) {
        (0, _) | (_, None) => text.into_owned(),
        (_, Some(i)) => text[i + 1..].to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_tail_keeps_whole_lines_of_a_long_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        assert_eq!(
            read_tail(&path).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::NotFound)
        );
        std::fs::write(&path, "a\nb\n").unwrap();
        assert_eq!(read_tail(&path).unwrap(), "a\nb\n");
        let long = "x".repeat(10) + "\n" + &"y\n".repeat(9 << 20);
        std::fs::write(&path, &long).unwrap();
        let tail = read_tail(&path).unwrap();
        assert!(tail.len() < 16 << 20 && tail.starts_with("y\n") && tail.ends_with("y\n"));
    }

    #[test]
    fn window_drops_oldest_and_counts() {
        let mut w = Window::new(12, None);
        for i in 0..10 {
            w.push(format!("line{i}\n").as_bytes()).unwrap();
        }
        assert_eq!(w.total, 60);
        assert_eq!(w.dropped, 48);
        let p = w.page(0, 100);
        assert_eq!(p.offset, 48);
        assert_eq!(p.data, "line8\nline9\n");
        assert_eq!(p.next_offset, 60);
    }

    #[test]
    fn pages_split_on_char_boundaries_and_concatenate() {
        let mut w = Window::new(1 << 20, None);
        let text = "héllo wörld ✓ done\n";
        w.push(text.as_bytes()).unwrap();
        let mut out = String::new();
        let mut off = 0;
        while off < w.total {
            let p = w.page(off, 3);
            out.push_str(&p.data);
            assert!(p.next_offset > off, "no progress at {off}");
            off = p.next_offset;
        }
        assert_eq!(out, text);
    }
}
