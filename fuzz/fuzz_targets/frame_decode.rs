//! The frame decoder, differentially: the hand-written `process.output` fast path and the general
//! (serde) decoder agree on every input (same value, or the fast path declines), `decode` never
//! panics, and whatever decodes as `process.output` encodes back to a frame both paths read as
//! the same value.
//!
//! An input that starts with `{` is frame text as it is (the seeds are real frames); any other
//! input builds a mostly valid `process.output` frame, so that the fast path is taken often and
//! its edges (escapes, numbers, the closing braces) are where the mutations land.
#![no_main]

use std::fmt::Write;

use arbitrary::{Arbitrary, Unstructured};
use cc_executor_protocol::codec::decode_output_fast;
use cc_executor_protocol::{method, Notification, OutputParams, ServerFrame, ServerNotification};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.first() == Some(&b'{') {
        check(&String::from_utf8_lossy(data));
    } else if let Ok(frame) = Frame::arbitrary_take_rest(Unstructured::new(data)) {
        check(&frame.text());
    }
});

/// A `process.output` frame laid out as services write it, each part of which may be replaced.
#[derive(Arbitrary, Debug)]
struct Frame<'a> {
    prefix: Part<'a, Prefix>,
    stream: Part<'a, Stream>,
    data: Vec<Piece<'a>>,
    truncated: Part<'a, bool>,
    chunk_index: Num<'a>,
    total_chunks: Num<'a>,
    end: Part<'a, End>,
}

/// The usual text of a part, or anything else.
#[derive(Arbitrary, Debug)]
enum Part<'a, T> {
    Usual(T),
    Other(&'a str),
}

#[derive(Arbitrary, Debug)]
struct Prefix;

#[derive(Arbitrary, Debug)]
enum Stream {
    Stdout,
    Stderr,
}

#[derive(Arbitrary, Debug)]
struct End;

/// A piece of the `data` string as it appears between the quotes.
#[derive(Arbitrary, Debug)]
enum Piece<'a> {
    /// Text escaped as serde_json escapes it.
    Text(&'a str),
    /// Text as it is (may end the string early or hold raw control characters).
    Verbatim(&'a str),
    /// A backslash and one character, mostly a valid escape.
    Escape(u8),
    /// `\uXXXX`, in lower or upper case hex (lone surrogates included).
    Unicode(u16, bool),
}

/// A chunk field: `null`, a number (fitting a `u32` or not) or anything else.
#[derive(Arbitrary, Debug)]
enum Num<'a> {
    Null,
    U32(u32),
    U64(u64),
    Negative(i64),
    Float(f64),
    LeadingZeros(u8, u32),
    Other(&'a str),
}

impl Frame<'_> {
    fn text(&self) -> String {
        let mut t = String::new();
        match self.prefix {
            Part::Usual(Prefix) => {
                t.push_str(r#"{"jsonrpc":"2.0","method":"process.output","params":{"type":""#)
            }
            Part::Other(s) => t.push_str(s),
        }
        match self.stream {
            Part::Usual(Stream::Stdout) => t.push_str("stdout"),
            Part::Usual(Stream::Stderr) => t.push_str("stderr"),
            Part::Other(s) => t.push_str(s),
        }
        t.push_str(r#"","data":""#);
        for piece in &self.data {
            match *piece {
                Piece::Text(s) => {
                    let quoted = serde_json::to_string(s).expect("a string serialises");
                    t.push_str(&quoted[1..quoted.len() - 1]);
                }
                Piece::Verbatim(s) => t.push_str(s),
                Piece::Escape(b) => {
                    const VALID: &[u8] = br#""\/bfnrtu"#;
                    t.push('\\');
                    t.push(match VALID.get(usize::from(b)) {
                        Some(&v) => char::from(v),
                        None => char::from(b & 0x7f),
                    });
                }
                Piece::Unicode(u, upper) => {
                    let _ = if upper {
                        write!(t, "\\u{u:04X}")
                    } else {
                        write!(t, "\\u{u:04x}")
                    };
                }
            }
        }
        t.push_str(r#"","truncated":"#);
        match self.truncated {
            Part::Usual(b) => t.push_str(if b { "true" } else { "false" }),
            Part::Other(s) => t.push_str(s),
        }
        t.push_str(r#","chunk_index":"#);
        self.chunk_index.write(&mut t);
        t.push_str(r#","total_chunks":"#);
        self.total_chunks.write(&mut t);
        match self.end {
            Part::Usual(End) => t.push_str("}}"),
            Part::Other(s) => t.push_str(s),
        }
        t
    }
}

impl Num<'_> {
    fn write(&self, t: &mut String) {
        let _ = match *self {
            Num::Null => write!(t, "null"),
            Num::U32(n) => write!(t, "{n}"),
            Num::U64(n) => write!(t, "{n}"),
            Num::Negative(n) => write!(t, "{}", -(n.unsigned_abs() as i128)),
            Num::Float(f) => write!(t, "{f:?}"),
            Num::LeadingZeros(zeros, n) => write!(t, "{}{n}", "0".repeat(usize::from(zeros % 4))),
            Num::Other(s) => write!(t, "{s}"),
        };
    }
}

fn check(text: &str) {
    let general = ServerFrame::decode_general(text);
    let decoded = ServerFrame::decode(text);
    match (&decoded, &general) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "decode and decode_general differ on {text:?}"),
        (Err(_), Err(_)) => {}
        _ => panic!("decode {decoded:?} but decode_general {general:?} on {text:?}"),
    }
    if let Some(fast) = decode_output_fast(text) {
        match &general {
            Ok(ServerFrame::Notification(ServerNotification::ProcessOutput(p))) => {
                assert_eq!(&fast, p, "fast and general paths differ on {text:?}")
            }
            other => panic!("fast path gave {fast:?}, general {other:?} on {text:?}"),
        }
    }
    if let Ok(ServerFrame::Notification(ServerNotification::ProcessOutput(p))) = &general {
        round_trip(p);
    }
}

/// `encode_frame` writes what serde_json writes, and both paths read it back as `p`.
fn round_trip(p: &OutputParams<'_>) {
    let text = p.encode_frame();
    assert_eq!(
        text,
        Notification::new(method::PROCESS_OUTPUT, p).encode(),
        "encode_frame differs from serde_json for {p:?}"
    );
    match ServerFrame::decode_general(&text) {
        Ok(ServerFrame::Notification(ServerNotification::ProcessOutput(q))) => {
            assert_eq!(&q, p, "{text:?} decodes to another value")
        }
        other => panic!("{text:?} decodes to {other:?}"),
    }
    // The fast path declines only `\u` escapes, which the encoder writes for control characters
    // other than \b \f \n \r \t.
    let needs_u = p
        .data
        .bytes()
        .any(|b| b < 0x20 && !b"\x08\x0c\n\r\t".contains(&b));
    match decode_output_fast(&text) {
        Some(q) => assert_eq!(&q, p, "{text:?} decodes fast to another value"),
        None => assert!(needs_u, "the fast path declines the encoder's {text:?}"),
    }
}
