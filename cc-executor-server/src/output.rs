//! Turning the bytes of a pipe into `process.output` pieces.
//!
//! A line keeps its `\n`; a last line without one is sent without. Invalid UTF-8 becomes U+FFFD
//! exactly as [`String::from_utf8_lossy`] would decode the whole line, however the bytes were
//! split across reads. Lines longer than [`CHUNK_CHARS`] characters are split into chunks:
//!
//! - A line of up to [`MAX_BUFFERED_CHUNKS`] chunks is buffered whole, so every chunk carries
//!   its `chunk_index` and the final `total_chunks`; `truncated` is true on all but the last.
//! - A longer line is streamed so that memory stays bounded: chunks are sent as soon as they are
//!   full, with `total_chunks: null`, and the last chunk carries the real `total_chunks` (and
//!   `truncated: false`). Detectors do not look at streamed lines.
//!
//! For a run that takes input, [`LineAssembler::show_pending`] sends the unfinished line read so
//! far (a prompt such as `>>> ` or `Password: `) as a piece without a newline; the rest of the
//! line follows as pieces of its own once it ends, while the detectors still see the whole line.
//!
//! For batched output, an assembler made with [`LineAssembler::batched`] also hands out blocks
//! of whole lines at once ([`Emit::Block`]): the lines of a read that the detectors' pre-check
//! rules out, so a flood of short lines costs a few passes over each read rather than a frame
//! each. What it hands out is, byte for byte, the concatenation of what the line-by-line path
//! would.

use std::borrow::Cow;

use cc_executor_protocol::{OutputParams, OutputStream, BATCH_BYTES};

use crate::detect;

pub(crate) use cc_executor_protocol::CHUNK_CHARS;

/// Lines up to this many chunks are buffered whole before being sent.
pub(crate) const MAX_BUFFERED_CHUNKS: usize = 8;

/// Undecoded bytes kept for an unfinished line before they are decoded.
const DECODE_AT: usize = 64 * 1024;

/// One `process.output` frame's worth of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece<'a> {
    pub data: &'a str,
    pub truncated: bool,
    pub chunk_index: Option<u32>,
    pub total_chunks: Option<u32>,
}

/// What the assembler hands out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Emit<'a> {
    /// A complete line (with its newline, if any), given before its pieces so that detector
    /// notifications can precede them. Not given for streamed lines.
    Line(&'a str),
    /// A piece to send.
    Piece(Piece<'a>),
    /// Whole lines, each with its newline, none long enough to be chunked and none a detector
    /// can match (only from [`LineAssembler::batched`]).
    Block(&'a str),
}

/// Splits a byte stream into lines and chunks. One per pipe.
#[derive(Debug, Default)]
pub(crate) struct LineAssembler {
    /// Undecoded bytes of the current line (may end in an incomplete UTF-8 sequence).
    raw: Vec<u8>,
    /// Decoded, not yet sent text of the current line.
    text: String,
    /// Characters in `text`.
    text_chars: usize,
    /// Chunks of the current line already sent (the line is being streamed when > 0).
    streamed: u32,
    /// Bytes (and characters) at the start of `text` already sent by
    /// [`LineAssembler::show_pending`]: kept so the detectors see the whole line, not sent again.
    shown: usize,
    shown_chars: usize,
    /// Hand out the whole lines of a read as blocks.
    blocks: bool,
}

impl LineAssembler {
    /// A fresh assembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh assembler that also hands out [`Emit::Block`]s.
    pub fn batched() -> Self {
        LineAssembler {
            blocks: true,
            ..Self::default()
        }
    }

    fn is_idle(&self) -> bool {
        self.raw.is_empty() && self.text.is_empty() && self.streamed == 0
    }

    /// Feed bytes read from the pipe.
    pub fn push(&mut self, bytes: &[u8], emit: &mut impl FnMut(Emit<'_>)) {
        let mut rest = bytes;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            if self.blocks && self.is_idle() {
                // Every whole line left in this read at once.
                let end = memchr::memrchr(b'\n', rest).map_or(i, |j| j) + 1;
                let (lines, tail) = rest.split_at(end);
                emit_block(lines, emit);
                rest = tail;
                break;
            }
            let (line, tail) = rest.split_at(i + 1);
            rest = tail;
            if self.is_idle() {
                // Fast path: the whole line is in this read; no copy when it is valid UTF-8.
                let text = match std::str::from_utf8(line) {
                    Ok(s) => Cow::Borrowed(s),
                    Err(_) => String::from_utf8_lossy(line),
                };
                emit_whole(&text, emit);
            } else {
                self.raw.extend_from_slice(line);
                self.decode(true);
                self.finish_line(emit);
            }
        }
        if !rest.is_empty() {
            self.raw.extend_from_slice(rest);
            if self.raw.len() >= DECODE_AT {
                self.decode(false);
                self.spill(emit);
            }
        }
    }

    /// Whether part of the current line is not sent yet (text, or bytes still to decode).
    pub fn has_unsent(&self) -> bool {
        !self.raw.is_empty() || self.text.len() > self.shown
    }

    /// Nothing more is readable for now: send the unfinished line's text not sent yet, without
    /// waiting for its end (an incomplete UTF-8 sequence stays back for the next read). A line
    /// being streamed ends here with its last chunk; what follows starts a new line.
    pub fn show_pending(&mut self, emit: &mut impl FnMut(Emit<'_>)) {
        if self.is_idle() {
            return;
        }
        self.decode(false);
        if self.streamed > 0 {
            self.finish_line(emit);
            return;
        }
        let unsent = &self.text[self.shown..];
        if !unsent.is_empty() {
            emit_pieces(unsent, self.text_chars - self.shown_chars, emit);
        }
        self.shown = self.text.len();
        self.shown_chars = self.text_chars;
    }

    /// The pipe reached EOF: send what is left (a last line without newline).
    pub fn finish(&mut self, emit: &mut impl FnMut(Emit<'_>)) {
        if !self.is_idle() {
            self.decode(true);
            self.finish_line(emit);
        }
    }

    /// Move `raw` into `text`; keep an incomplete trailing sequence unless at the line's end.
    fn decode(&mut self, at_end: bool) {
        let before = self.text.len();
        let consumed = decode_lossy_into(&mut self.text, &self.raw, at_end);
        self.text_chars += self.text[before..].chars().count();
        self.raw.drain(..consumed);
    }

    /// While buffering an unfinished line: start or continue streaming once it is too long.
    fn spill(&mut self, emit: &mut impl FnMut(Emit<'_>)) {
        if self.streamed == 0 && self.text_chars <= MAX_BUFFERED_CHUNKS * CHUNK_CHARS {
            return;
        }
        // Streamed lines are not given to the detectors: what was shown can go.
        self.text.drain(..self.shown);
        self.text_chars -= self.shown_chars;
        (self.shown, self.shown_chars) = (0, 0);
        self.stream_full_chunks(emit);
    }

    /// Send full chunks while more text follows them (the last chunk is never sent here).
    fn stream_full_chunks(&mut self, emit: &mut impl FnMut(Emit<'_>)) {
        let mut start = 0;
        while self.text_chars > CHUNK_CHARS {
            let len = byte_len_of_chars(&self.text[start..], CHUNK_CHARS);
            emit(Emit::Piece(Piece {
                data: &self.text[start..start + len],
                truncated: true,
                chunk_index: Some(self.streamed),
                total_chunks: None,
            }));
            self.streamed += 1;
            self.text_chars -= CHUNK_CHARS;
            start += len;
        }
        self.text.drain(..start);
    }

    fn finish_line(&mut self, emit: &mut impl FnMut(Emit<'_>)) {
        if self.streamed > 0 {
            self.stream_full_chunks(emit);
            emit(Emit::Piece(Piece {
                data: &self.text,
                truncated: false,
                chunk_index: Some(self.streamed),
                total_chunks: Some(self.streamed + 1),
            }));
        } else {
            emit(Emit::Line(&self.text));
            let rest = &self.text[self.shown..];
            if !rest.is_empty() {
                emit_pieces(rest, self.text_chars - self.shown_chars, emit);
            }
        }
        self.text.clear();
        self.text_chars = 0;
        self.streamed = 0;
        (self.shown, self.shown_chars) = (0, 0);
        // Do not keep a huge buffer around after one long line.
        if self.text.capacity() > 4 * DECODE_AT {
            self.text.shrink_to(DECODE_AT);
        }
        if self.raw.capacity() > 2 * DECODE_AT {
            self.raw.shrink_to(DECODE_AT);
        }
    }
}

/// Whole lines: valid UTF-8 in blocks, a line with invalid UTF-8 alone (replaced as the
/// line-by-line path replaces it).
fn emit_block(mut bytes: &[u8], emit: &mut impl FnMut(Emit<'_>)) {
    while !bytes.is_empty() {
        let bad = match std::str::from_utf8(bytes) {
            Ok(text) => return emit_valid_block(text, emit),
            Err(e) => e.valid_up_to(),
        };
        let line_start = memchr::memrchr(b'\n', &bytes[..bad]).map_or(0, |j| j + 1);
        let line_end = memchr::memchr(b'\n', &bytes[bad..]).map_or(bytes.len(), |j| bad + j + 1);
        let (valid, rest) = bytes.split_at(line_start);
        if let Ok(text) = std::str::from_utf8(valid) {
            emit_valid_block(text, emit);
        }
        emit_whole(
            &String::from_utf8_lossy(&rest[..line_end - line_start]),
            emit,
        );
        bytes = &bytes[line_end..];
    }
}

/// Whole lines of valid UTF-8: in blocks between the lines a detector may match, which go one
/// by one.
fn emit_valid_block(text: &str, emit: &mut impl FnMut(Emit<'_>)) {
    if text.len() > CHUNK_CHARS {
        // Characters never outnumber bytes: no line of a shorter block needs chunks. Longer
        // ones (never from reads of at most that size) take the line-by-line path.
        for line in text.split_inclusive('\n') {
            emit_whole(line, emit);
        }
        return;
    }
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < text.len() {
        let Some(at) = detect::first_candidate(&bytes[start..]) else {
            emit(Emit::Block(&text[start..]));
            return;
        };
        let at = start + at;
        let line_start = memchr::memrchr(b'\n', &bytes[start..at]).map_or(start, |j| start + j + 1);
        let line_end = memchr::memchr(b'\n', &bytes[at..]).map_or(text.len(), |j| at + j + 1);
        if line_start > start {
            emit(Emit::Block(&text[start..line_start]));
        }
        emit_whole(&text[line_start..line_end], emit);
        start = line_end;
    }
}

fn emit_whole(text: &str, emit: &mut impl FnMut(Emit<'_>)) {
    // Characters never outnumber bytes, so short lines skip the count.
    let chars = if text.len() <= CHUNK_CHARS {
        text.len()
    } else {
        text.chars().count()
    };
    emit(Emit::Line(text));
    emit_pieces(text, chars, emit);
}

/// `text` (of `chars` characters) as one piece, or in chunks when it is longer than one.
fn emit_pieces(text: &str, chars: usize, emit: &mut impl FnMut(Emit<'_>)) {
    if chars <= CHUNK_CHARS {
        emit(Emit::Piece(Piece {
            data: text,
            truncated: false,
            chunk_index: None,
            total_chunks: None,
        }));
        return;
    }
    let total = chars.div_ceil(CHUNK_CHARS);
    let mut start = 0;
    for index in 0..total {
        let len = byte_len_of_chars(&text[start..], CHUNK_CHARS);
        emit(Emit::Piece(Piece {
            data: &text[start..start + len],
            truncated: index + 1 < total,
            chunk_index: Some(index as u32),
            total_chunks: Some(total as u32),
        }));
        start += len;
    }
}

/// Bytes taken by the first `n` characters of `s` (all of `s` if it is shorter).
fn byte_len_of_chars(s: &str, n: usize) -> usize {
    s.char_indices().nth(n).map_or(s.len(), |(i, _)| i)
}

/// Append `bytes` decoded like [`String::from_utf8_lossy`]; return how many bytes were used.
///
/// Unless `at_end`, an incomplete sequence at the very end is left undecoded (its bytes are
/// not counted as used) so that the next read can complete it.
fn decode_lossy_into(out: &mut String, bytes: &[u8], at_end: bool) -> usize {
    let mut i = 0;
    loop {
        match std::str::from_utf8(&bytes[i..]) {
            Ok(s) => {
                out.push_str(s);
                return bytes.len();
            }
            Err(e) => {
                let valid = e.valid_up_to();
                let good = std::str::from_utf8(&bytes[i..i + valid])
                    .expect("bytes up to valid_up_to are UTF-8");
                out.push_str(good);
                match e.error_len() {
                    Some(bad) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        i += valid + bad;
                    }
                    None if at_end => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        return bytes.len();
                    }
                    None => return i + valid,
                }
            }
        }
    }
}

/// Encode one `process.output` frame (the hand-written encoder of the wire format).
pub(crate) fn encode_piece(stream: OutputStream, piece: &Piece<'_>) -> String {
    OutputParams {
        stream,
        data: Cow::Borrowed(piece.data),
        truncated: piece.truncated,
        chunk_index: piece.chunk_index,
        total_chunks: piece.total_chunks,
    }
    .encode_frame()
}

/// Whole lines of one stream waiting to go out together in one frame (batched output).
pub(crate) struct Batch {
    stream: OutputStream,
    data: String,
}

impl Batch {
    pub fn new(stream: OutputStream) -> Self {
        Batch {
            stream,
            data: String::new(),
        }
    }

    /// Add whole lines (or a last line without its newline), sending full frames to `frames`.
    pub fn add(&mut self, mut lines: &str, frames: &mut Vec<String>) {
        while !lines.is_empty() {
            let room = BATCH_BYTES.saturating_sub(self.data.len());
            if lines.len() <= room {
                self.data.push_str(lines);
                return;
            }
            // As many whole lines as fit; a line longer than a frame goes alone.
            let cut = match memchr::memrchr(b'\n', &lines.as_bytes()[..room]) {
                Some(i) => i + 1,
                None if self.data.is_empty() => {
                    memchr::memchr(b'\n', lines.as_bytes()).map_or(lines.len(), |i| i + 1)
                }
                None => 0,
            };
            self.data.push_str(&lines[..cut]);
            lines = &lines[cut..];
            self.flush(frames);
        }
    }

    /// Send what is gathered as one frame.
    pub fn flush(&mut self, frames: &mut Vec<String>) {
        if !self.data.is_empty() {
            let piece = Piece {
                data: &self.data,
                truncated: false,
                chunk_index: None,
                total_chunks: None,
            };
            frames.push(encode_piece(self.stream, &piece));
            self.data.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::detect;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Line(String),
        Piece(String, bool, Option<u32>, Option<u32>),
        Block(String),
    }

    fn run(reads: &[&[u8]]) -> Vec<Owned> {
        run_with(LineAssembler::new(), reads)
    }

    fn run_with(a: LineAssembler, reads: &[&[u8]]) -> Vec<Owned> {
        feed(a, reads, false)
    }

    /// Like [`run`], with [`LineAssembler::show_pending`] after every read, as an interactive
    /// run's reader does when the pipe has nothing more for now.
    fn run_showing(reads: &[&[u8]]) -> Vec<Owned> {
        feed(LineAssembler::new(), reads, true)
    }

    fn feed(mut a: LineAssembler, reads: &[&[u8]], show: bool) -> Vec<Owned> {
        let mut out = Vec::new();
        let mut emit = |e: Emit<'_>| {
            out.push(match e {
                Emit::Line(l) => Owned::Line(l.to_owned()),
                Emit::Piece(p) => Owned::Piece(
                    p.data.to_owned(),
                    p.truncated,
                    p.chunk_index,
                    p.total_chunks,
                ),
                Emit::Block(b) => Owned::Block(b.to_owned()),
            })
        };
        for r in reads {
            a.push(r, &mut emit);
            if show {
                a.show_pending(&mut emit);
                assert!(!a.has_unsent() || !a.raw.is_empty());
            }
        }
        a.finish(&mut emit);
        out
    }

    fn pieces(out: &[Owned]) -> Vec<(String, bool, Option<u32>, Option<u32>)> {
        out.iter()
            .filter_map(|o| match o {
                Owned::Piece(d, t, i, n) => Some((d.clone(), *t, *i, *n)),
                Owned::Line(_) | Owned::Block(_) => None,
            })
            .collect()
    }

    #[test]
    fn lines_keep_newlines_and_last_line_has_none() {
        let out = run(&[b"a\nb"]);
        assert_eq!(
            out,
            vec![
                Owned::Line("a\n".into()),
                Owned::Piece("a\n".into(), false, None, None),
                Owned::Line("b".into()),
                Owned::Piece("b".into(), false, None, None),
            ]
        );
        assert!(run(&[b""]).is_empty());
        assert_eq!(pieces(&run(&[b"x", b"y", b"\n"]))[0].0, "xy\n");
    }

    #[test]
    fn line_of_200001_chars_matches_the_reference_chunks() {
        let mut line = vec![b'x'; 200_000];
        line.push(b'\n');
        // Fed in reads of 32 KiB, as the service reads pipes.
        let reads: Vec<&[u8]> = line.chunks(32 * 1024).collect();
        let p = pieces(&run(&reads));
        let shape: Vec<_> = p.iter().map(|(d, t, i, n)| (d.len(), *t, *i, *n)).collect();
        assert_eq!(
            shape,
            vec![
                (65536, true, Some(0), Some(4)),
                (65536, true, Some(1), Some(4)),
                (65536, true, Some(2), Some(4)),
                (3393, false, Some(3), Some(4)),
            ]
        );
        assert!(p[3].0.ends_with('\n'));
    }

    #[test]
    fn chunks_count_characters_not_bytes() {
        let line: String = "é".repeat(CHUNK_CHARS + 1);
        let p = pieces(&run(&[line.as_bytes()]));
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].0.chars().count(), CHUNK_CHARS);
        assert_eq!(p[1].0, "é");
        assert_eq!(p[1].2, Some(1));
    }

    #[test]
    fn exactly_one_chunk_is_not_chunked() {
        let line = "y".repeat(CHUNK_CHARS - 1) + "\n";
        let p = pieces(&run(&[line.as_bytes()]));
        assert_eq!(p, vec![(line, false, None, None)]);
    }

    #[test]
    fn very_long_lines_are_streamed_with_bounded_memory() {
        let total_chars = (MAX_BUFFERED_CHUNKS + 5) * CHUNK_CHARS + 123;
        let mut a = LineAssembler::new();
        let mut got: Vec<(usize, bool, Option<u32>, Option<u32>)> = Vec::new();
        let mut lines = 0;
        let block = vec![b'z'; 10_000];
        let mut fed = 0;
        let mut max_buffered = 0;
        while fed < total_chars {
            let n = block.len().min(total_chars - fed);
            a.push(&block[..n], &mut |e| match e {
                Emit::Line(_) => lines += 1,
                Emit::Piece(p) => {
                    got.push((p.data.len(), p.truncated, p.chunk_index, p.total_chunks))
                }
                Emit::Block(_) => unreachable!("not batched"),
            });
            fed += n;
            max_buffered = max_buffered.max(a.text.capacity() + a.raw.capacity());
        }
        a.push(b"\n", &mut |e| match e {
            Emit::Line(_) => lines += 1,
            Emit::Piece(p) => got.push((p.data.len(), p.truncated, p.chunk_index, p.total_chunks)),
            Emit::Block(_) => unreachable!("not batched"),
        });
        assert_eq!(lines, 0, "streamed lines are not given to detectors");
        let n = got.len();
        assert_eq!(n, MAX_BUFFERED_CHUNKS + 6);
        for (i, g) in got.iter().enumerate() {
            assert_eq!(g.2, Some(i as u32));
            if i + 1 < n {
                assert_eq!((g.0, g.1, g.3), (CHUNK_CHARS, true, None));
            }
        }
        assert_eq!(got[n - 1], (124, false, Some(n as u32 - 1), Some(n as u32)));
        assert!(max_buffered < (MAX_BUFFERED_CHUNKS + 2) * CHUNK_CHARS * 2);
        assert!(a.is_idle());
    }

    #[test]
    fn invalid_utf8_matches_from_utf8_lossy_whatever_the_split() {
        let samples: Vec<Vec<u8>> = vec![
            b"\xff\xfeabc\n".to_vec(),
            "héllo wörld €𝄞\n".as_bytes().to_vec(),
            b"\xe2\x82".to_vec(),
            b"a\xe2\x82\xacb\xf0\x9d\x84\x9e\xf0\x9d\x84c\xc3\n\xc3\xa9".to_vec(),
            (0u8..=255).cycle().take(3000).collect(),
        ];
        for s in samples {
            let whole = String::from_utf8_lossy(&s).into_owned();
            for split in 1..s.len().min(40) {
                let reads: Vec<&[u8]> = s.chunks(split).collect();
                let joined: String = pieces(&run(&reads)).into_iter().map(|p| p.0).collect();
                assert_eq!(joined, whole, "split {split} of {s:?}");
            }
        }
    }

    #[test]
    fn a_shown_prompt_goes_out_at_once_and_detectors_still_see_the_whole_line() {
        let piece = |d: &str| Owned::Piece(d.into(), false, None, None);
        let out = run_showing(&[b"Name? ", b"bob\nnext\n"]);
        assert_eq!(
            out,
            vec![
                piece("Name? "),
                Owned::Line("Name? bob\n".into()),
                piece("bob\n"),
                Owned::Line("next\n".into()),
                piece("next\n"),
            ]
        );
        // A prompt shown in parts, then the pipe's end: each part once, no empty piece.
        let out = run_showing(&[b">>", b"", b"> "]);
        assert_eq!(
            out,
            vec![piece(">>"), piece("> "), Owned::Line(">>> ".into())]
        );
        // Nothing pending: nothing to show.
        assert_eq!(
            run_showing(&[b"whole\n"]),
            vec![Owned::Line("whole\n".into()), piece("whole\n")]
        );
    }

    #[test]
    fn a_shown_prompt_keeps_an_incomplete_character_back() {
        let out = run_showing(&["é? \u{20ac}".as_bytes().split_at(5).0, b"\x82\xac\n"]);
        assert_eq!(
            pieces(&out),
            vec![
                ("é? ".into(), false, None, None),
                ("€\n".into(), false, None, None)
            ]
        );
        assert!(out.contains(&Owned::Line("é? €\n".into())));
        // However the bytes are split, shown pieces join to the lossy decoding of the whole.
        let sample = b"a\xe2\x82\xacb\xf0\x9d\x84\x9e\xf0\x9d\x84c\xc3\n\xc3\xa9\xff?";
        for split in 1..sample.len() {
            let reads: Vec<&[u8]> = sample.chunks(split).collect();
            let joined: String = pieces(&run_showing(&reads))
                .into_iter()
                .map(|p| p.0)
                .collect();
            assert_eq!(joined, String::from_utf8_lossy(sample), "split {split}");
        }
    }

    #[test]
    fn shown_long_text_is_chunked_and_a_streamed_line_ends_with_its_last_chunk() {
        // Longer than a chunk, not yet streamed: chunks that say how many there are.
        let long = "p".repeat(CHUNK_CHARS + 3);
        let p = pieces(&run_showing(&[long.as_bytes(), b"\n"]));
        assert_eq!(
            p.iter()
                .map(|(d, t, i, n)| (d.len(), *t, *i, *n))
                .collect::<Vec<_>>(),
            vec![
                (CHUNK_CHARS, true, Some(0), Some(2)),
                (3, false, Some(1), Some(2)),
                (1, false, None, None),
            ]
        );
        // Being streamed: its pending text is its last chunk; what follows is a new line.
        let streamed = "s".repeat((MAX_BUFFERED_CHUNKS + 1) * CHUNK_CHARS + 7);
        let reads: Vec<&[u8]> = streamed.as_bytes().chunks(DECODE_AT).collect();
        let mut a = LineAssembler::new();
        let mut got = Vec::new();
        let mut emit = |e: Emit<'_>| {
            if let Emit::Piece(p) = e {
                got.push((p.data.len(), p.truncated, p.chunk_index, p.total_chunks));
            }
        };
        for r in reads {
            a.push(r, &mut emit);
        }
        a.show_pending(&mut emit);
        a.push(b"tail\n", &mut emit);
        let n = got.len();
        assert_eq!(n, MAX_BUFFERED_CHUNKS + 3);
        assert_eq!(
            got[n - 2],
            (7, false, Some(n as u32 - 2), Some(n as u32 - 1))
        );
        assert_eq!(got[n - 1], (5, false, None, None));
        assert!(a.is_idle());
    }

    /// Blocks and pieces of a batched assembler join to exactly the pieces of the line-by-line
    /// one, whatever the reads; detector lines and long lines still come one by one.
    #[test]
    fn batched_blocks_carry_the_same_text_and_leave_detector_lines_alone() {
        let long = "L".repeat(CHUNK_CHARS + 10);
        let mut sample: Vec<u8> = Vec::new();
        for i in 0..2000 {
            sample.extend_from_slice(format!("line {i}\n").as_bytes());
            if i % 97 == 0 {
                sample.extend_from_slice(b"\xff\xfe bad \xe2\x82\n");
            }
            if i % 501 == 0 {
                sample.extend_from_slice(b"Claude AI usage limit reached|1900000000\n");
            }
            if i == 1000 {
                sample.extend_from_slice(long.as_bytes());
                sample.push(b'\n');
            }
        }
        sample.extend_from_slice("last é".as_bytes());
        let joined = |out: &[Owned]| -> String {
            out.iter()
                .filter_map(|o| match o {
                    Owned::Piece(d, ..) | Owned::Block(d) => Some(d.as_str()),
                    Owned::Line(_) => None,
                })
                .collect()
        };
        let detected = |out: &[Owned]| -> Vec<String> {
            out.iter()
                .filter_map(|o| match o {
                    Owned::Line(l) if !detect(l).is_empty() => Some(l.clone()),
                    _ => None,
                })
                .collect()
        };
        let plain = run(&[&sample]);
        for split in [1, 7, 4096, 32 * 1024, 64 * 1024] {
            let reads: Vec<&[u8]> = sample.chunks(split).collect();
            let batched = run_with(LineAssembler::batched(), &reads);
            assert_eq!(joined(&batched), joined(&plain), "split {split}");
            assert_eq!(detected(&batched), detected(&plain), "split {split}");
            assert_eq!(detected(&plain).len(), 4);
            let chunked: Vec<_> = pieces(&batched)
                .into_iter()
                .filter(|p| p.2.is_some())
                .map(|p| (p.0.len(), p.1, p.2, p.3))
                .collect();
            assert_eq!(
                chunked,
                [
                    (CHUNK_CHARS, true, Some(0), Some(2)),
                    (11, false, Some(1), Some(2))
                ]
            );
            if split >= 4096 {
                assert!(batched
                    .iter()
                    .any(|o| matches!(o, Owned::Block(b) if b.matches('\n').count() > 50)));
            }
        }
    }

    #[test]
    fn batches_hold_whole_lines_up_to_their_size() {
        let mut batch = Batch::new(OutputStream::Stderr);
        let mut frames = Vec::new();
        let short = "ab\n".repeat(50_000);
        let long = format!("{}\n", "x".repeat(BATCH_BYTES + 5));
        batch.add("first\n", &mut frames);
        batch.add(&short, &mut frames);
        batch.add(&long, &mut frames);
        batch.add("end", &mut frames);
        batch.flush(&mut frames);
        let data: Vec<String> = frames
            .iter()
            .map(|f| {
                let p = cc_executor_protocol::codec::decode_output_fast(f).unwrap();
                assert_eq!(p.stream, OutputStream::Stderr);
                assert_eq!((p.chunk_index, p.total_chunks), (None, None));
                p.data.into_owned()
            })
            .collect();
        assert_eq!(data.concat(), format!("first\n{short}{long}end"));
        assert!(data.len() >= 4, "{}", data.len());
        for d in &data[..data.len() - 1] {
            assert!(d.ends_with('\n'));
            assert!(d.len() <= BATCH_BYTES || d == &long, "{}", d.len());
        }
        assert!(data.contains(&long), "a long line goes alone");
    }

    #[test]
    fn decode_keeps_incomplete_tail() {
        let mut s = String::new();
        assert_eq!(decode_lossy_into(&mut s, b"ab\xe2\x82", false), 2);
        assert_eq!(s, "ab");
        assert_eq!(decode_lossy_into(&mut s, b"\xe2\x82", true), 2);
        assert_eq!(s, "ab\u{fffd}");
    }

    #[test]
    fn encodes_the_reference_shape() {
        let f = encode_piece(
            OutputStream::Stdout,
            &Piece {
                data: "tab\tq\"\u{1}\n",
                truncated: false,
                chunk_index: None,
                total_chunks: None,
            },
        );
        assert_eq!(
            f,
            r#"{"jsonrpc":"2.0","method":"process.output","params":{"type":"stdout","data":"tab\tq\"\u0001\n","truncated":false,"chunk_index":null,"total_chunks":null}}"#
        );
    }
}
