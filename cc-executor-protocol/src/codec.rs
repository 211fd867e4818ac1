//! The hand-written fast path for `process.output`, one frame per output line and so the hot path
//! of both sides: the service encodes it with [`OutputParams::encode_frame`], the client decodes
//! it in one pass (falling back to the general decoder for any other layout).

use std::borrow::Cow;

use crate::params::{OutputParams, OutputStream};

/// `process.output` exactly as services write it (compact, members in the usual order, no
/// other member), decoded in one pass with one allocation; `None` for anything else, which the
/// general path then decodes (or rejects).
///
/// This is the client's hot path. It accepts only frames that are valid JSON of that shape, and
/// gives what the general path would (the tests compare the two).
#[doc(hidden)]
pub fn decode_output_fast(text: &str) -> Option<OutputParams<'static>> {
    const PREFIX: &str = r#"{"jsonrpc":"2.0","method":"process.output","params":{"type":""#;
    let rest = text.strip_prefix(PREFIX)?;
    let (stream, rest) = match rest.strip_prefix(r#"stdout","data":""#) {
        Some(r) => (OutputStream::Stdout, r),
        None => (
            OutputStream::Stderr,
            rest.strip_prefix(r#"stderr","data":""#)?,
        ),
    };
    let (data, rest) = unescape_json_string(rest)?;
    let rest = rest.strip_prefix(r#","truncated":"#)?;
    let (truncated, rest) = match rest.strip_prefix("true") {
        Some(r) => (true, r),
        None => (false, rest.strip_prefix("false")?),
    };
    let (chunk_index, rest) = opt_u32(rest.strip_prefix(r#","chunk_index":"#)?)?;
    let (total_chunks, rest) = opt_u32(rest.strip_prefix(r#","total_chunks":"#)?)?;
    (rest == "}}").then_some(OutputParams {
        stream,
        data: Cow::Owned(data),
        truncated,
        chunk_index,
        total_chunks,
    })
}

/// The string that starts `s` (just after its opening quote), unescaped, and what follows its
/// closing quote. `None` on `\u` escapes (left to serde_json) and on anything invalid.
///
/// Eight bytes at a time while none is special, else byte by byte into a buffer as long as the
/// input (unescaping never lengthens): a batch of short lines has an escape every few bytes.
fn unescape_json_string(s: &str) -> Option<(String, &str)> {
    let bytes = s.as_bytes();
    let mut out = vec![0u8; bytes.len()];
    // Bytes written to `out`, never more than were read.
    let mut n = 0;
    let mut i = 0;
    loop {
        if let Some(word) = bytes.get(i..i + 8) {
            if !word_has_special(u64::from_le_bytes(word.try_into().ok()?)) {
                out[n..n + 8].copy_from_slice(word);
                n += 8;
                i += 8;
                continue;
            }
        }
        if i >= bytes.len() {
            return None;
        }
        // The next eight bytes (or fewer at the end) hold a special one: take them one by one.
        let end = (i + 8).min(bytes.len());
        while i < end {
            match bytes[i] {
                b'"' => {
                    out.truncate(n);
                    // Whole characters of `s` and ASCII were copied: the text is UTF-8.
                    let text = String::from_utf8(out).ok()?;
                    return Some((text, &s[i + 1..]));
                }
                b'\\' => {
                    out[n] = match *bytes.get(i + 1)? {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        _ => return None,
                    };
                    n += 1;
                    i += 2;
                }
                // A raw control character is not valid JSON.
                0..=0x1f => return None,
                b => {
                    out[n] = b;
                    n += 1;
                    i += 1;
                }
            }
        }
    }
}

impl OutputParams<'_> {
    /// Encode as a whole `process.output` frame: byte for byte what serde_json writes for
    /// `Notification::new(method::PROCESS_OUTPUT, self)`, written by hand because it is a
    /// service's hot path (one frame per output line).
    pub fn encode_frame(&self) -> String {
        let mut out = String::with_capacity(self.data.len() + 160);
        out.push_str(r#"{"jsonrpc":"2.0","method":"process.output","params":{"type":""#);
        out.push_str(self.stream.as_str());
        out.push_str(r#"","data":""#);
        escape_json_into(&mut out, &self.data);
        out.push_str(if self.truncated {
            r#"","truncated":true,"chunk_index":"#
        } else {
            r#"","truncated":false,"chunk_index":"#
        });
        push_opt_u32(&mut out, self.chunk_index);
        out.push_str(r#","total_chunks":"#);
        push_opt_u32(&mut out, self.total_chunks);
        out.push_str("}}");
        out
    }
}

fn push_opt_u32(out: &mut String, v: Option<u32>) {
    match v {
        Some(n) => {
            let _ = std::fmt::Write::write_fmt(out, format_args!("{n}"));
        }
        None => out.push_str("null"),
    }
}

/// How [`escape_json_into`] writes each byte: `0` as is, `u` as `\u00xx`, else `\` and this.
const ESCAPES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut c = 0;
    while c < 0x20 {
        table[c] = b'u';
        c += 1;
    }
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Append `s` as the inside of a JSON string, escaped as serde_json escapes it: `\"`, `\\`,
/// `\b \f \n \r \t`, other control characters as `\u00xx`; everything else verbatim.
///
/// Eight bytes at a time while none needs escaping, else byte by byte into room made up front: a
/// batch of short lines has a newline every few bytes.
fn escape_json_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut buf = std::mem::take(out).into_bytes();
    let mut n = buf.len();
    // Room for every byte escaped to two; a `\u00xx` makes room for its four more.
    buf.resize(n + 2 * bytes.len(), 0);
    let mut i = 0;
    while i < bytes.len() {
        if let Some(word) = bytes.get(i..i + 8) {
            if !word_has_special(u64::from_le_bytes(word.try_into().expect("8 bytes"))) {
                buf[n..n + 8].copy_from_slice(word);
                n += 8;
                i += 8;
                continue;
            }
        }
        // The next eight bytes (or fewer at the end) hold one to escape: take them one by one.
        let end = (i + 8).min(bytes.len());
        for &b in &bytes[i..end] {
            match ESCAPES[usize::from(b)] {
                0 => {
                    buf[n] = b;
                    n += 1;
                }
                b'u' => {
                    buf.resize(buf.len() + 4, 0);
                    let hex = [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]];
                    buf[n..n + 6].copy_from_slice(&[b'\\', b'u', b'0', b'0', hex[0], hex[1]]);
                    n += 6;
                }
                letter => {
                    buf[n] = b'\\';
                    buf[n + 1] = letter;
                    n += 2;
                }
            }
        }
        i = end;
    }
    buf.truncate(n);
    // Whole characters of `s` and ASCII escapes were appended to UTF-8: it is still UTF-8.
    *out = String::from_utf8(buf).expect("escaping keeps the text UTF-8");
}

/// Whether any byte of `w` is a control character, `"` or `\\` (exact as a yes/no answer).
#[inline]
fn word_has_special(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let quote = has_zero(w ^ (ONES * u64::from(b'"')));
    let backslash = has_zero(w ^ (ONES * u64::from(b'\\')));
    (below_space | quote | backslash) != 0
}

/// `null` or a JSON integer that fits a `u32` at the start of `s`, and the rest.
fn opt_u32(s: &str) -> Option<(Option<u32>, &str)> {
    if let Some(rest) = s.strip_prefix("null") {
        return Some((None, rest));
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    // No leading zeros in JSON; anything unusual goes to the general path.
    if digits == 0 || (digits > 1 && s.starts_with('0')) {
        return None;
    }
    let n = s[..digits].parse().ok()?;
    Some((Some(n), &s[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{method, Notification, ServerFrame, ServerNotification};

    fn output_frame(stream: &str, data_json: &str, tail: &str) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","method":"process.output","params":{{"type":"{stream}","data":{data_json},{tail}}}}}"#
        )
    }

    #[test]
    fn output_fast_path_matches_the_general_path() {
        let mut datas: Vec<String> = [
            "",
            "plain\n",
            "tab\tq\"\u{1}\u{1f}\\ / é€𝄞\r\u{8}\u{c}\u{7f}",
            "\u{2028}\u{ffff}",
        ]
        .iter()
        .map(|d| serde_json::to_string(d).unwrap())
        .collect();
        datas.push("x".repeat(1000));
        datas.push(serde_json::to_string(&"y".repeat(1000)).unwrap());
        // Escapes serde_json does not write but a service may.
        datas.extend([r#""a\/b""#, r#""\u00e9\ud834\udd1e""#, r#""\u0041""#].map(String::from));
        let tails = [
            r#""truncated":false,"chunk_index":null,"total_chunks":null"#,
            r#""truncated":true,"chunk_index":0,"total_chunks":2"#,
            r#""truncated":false,"chunk_index":4294967295,"total_chunks":10"#,
            // Unusual but valid, and invalid: both must agree with the general path.
            r#""truncated":false,"chunk_index":4294967296,"total_chunks":null"#,
            r#""truncated":false,"chunk_index":01,"total_chunks":null"#,
            r#""truncated":false,"chunk_index":1.0,"total_chunks":null"#,
            r#""truncated":false,"chunk_index":-1,"total_chunks":null"#,
            r#""truncated":false,"chunk_index":null,"total_chunks":null,"x":[1]"#,
            r#""truncated":false,"chunk_index":null"#,
            r#""truncated":null,"chunk_index":null,"total_chunks":null"#,
            r#""chunk_index":null,"total_chunks":null,"truncated":true"#,
        ];
        let mut fast_hits = 0;
        for stream in ["stdout", "stderr", "video"] {
            for data in &datas {
                for tail in tails {
                    let f = output_frame(stream, data, tail);
                    let general = ServerFrame::decode_general(&f).map_err(|e| e.to_string());
                    let got = ServerFrame::decode(&f).map_err(|e| e.to_string());
                    if let Some(fast) = decode_output_fast(&f) {
                        fast_hits += 1;
                        let fast =
                            ServerFrame::Notification(ServerNotification::ProcessOutput(fast));
                        assert_eq!(Ok(fast), general, "{f}");
                    }
                    assert_eq!(got, general, "{f}");
                }
            }
        }
        assert!(
            fast_hits >= 2 * 5 * 3,
            "the fast path is taken ({fast_hits})"
        );
        for bad in [
            output_frame("stdout", "\"a\u{1}\"", tails[0]),
            output_frame("stdout", "\"a\\x\"", tails[0]),
            output_frame("stdout", "\"a", tails[0]),
            output_frame("stdout", "\"a\"", tails[0]) + "}",
            output_frame("stdout", "\"a\"", tails[0]).replace("}}", "}"),
        ] {
            assert!(ServerFrame::decode(&bad).is_err(), "{bad}");
        }
        // Other layouts of a valid frame still decode.
        for ok in [
            r#"{"jsonrpc":"2.0","method":"process.output","params":{"type":"stdout","data":"y"},"id":null}"#,
            r#"{"method":"process.output","jsonrpc":"2.0","params":{"type":"stdout","data":"z"}}"#,
            r#"{"jsonrpc":"2.0","method":"process.output","params":{"type":"stdout","data":"w","truncated":false,"chunk_index":null,"total_chunks":null} }"#,
        ] {
            assert!(ServerFrame::decode(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn hand_encoded_output_frames_match_serde_json() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain line\n".into(),
            "\"quoted\" \\ back\\slash\n".into(),
            "héllo wörld €𝄞 \u{7f}\u{80}\u{ffff}\n".into(),
            "x".repeat(1000) + "\n",
            "\u{1}".repeat(1000),
            "y\n".repeat(1000) + "\u{1f}\"\\",
        ];
        // Every ASCII character, at every offset within a word.
        for c in 0u8..=0x7f {
            for pad in 0..9 {
                samples.push(format!(
                    "{}{}{}",
                    "a".repeat(pad),
                    c as char,
                    "b".repeat(9 - pad)
                ));
            }
        }
        let shapes = [
            (OutputStream::Stdout, false, None, None),
            (OutputStream::Stderr, true, Some(0), Some(3)),
            (OutputStream::Stdout, false, Some(2), Some(3)),
            (OutputStream::Stderr, true, Some(u32::MAX), None),
        ];
        for data in &samples {
            for (stream, truncated, chunk_index, total_chunks) in shapes {
                let p = OutputParams {
                    stream,
                    data: Cow::Borrowed(data),
                    truncated,
                    chunk_index,
                    total_chunks,
                };
                assert_eq!(
                    p.encode_frame(),
                    Notification::new(method::PROCESS_OUTPUT, &p).encode(),
                    "{data:?}"
                );
            }
        }
    }
}
