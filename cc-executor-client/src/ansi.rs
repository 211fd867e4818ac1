//! Terminal escape sequences out of text meant for a reader (a model reads a tool's result, not
//! a screen): colours, cursor moves, titles. Parsed with `vte`, the terminal parser.

use std::borrow::Cow;

/// `text` without ANSI escape sequences or control characters other than newline and tab; a
/// carriage return ends the line (`\r\n` becomes `\n`). Unchanged (borrowed) when it holds
/// none.
///
/// ```
/// use cc_executor_client::strip_ansi;
///
/// assert_eq!(strip_ansi("\x1b[1;31merror\x1b[0m: 42\r\n"), "error: 42\n");
/// assert_eq!(strip_ansi("a\tb\n"), "a\tb\n");
/// assert_eq!(strip_ansi("10%\r20%\r\r\n"), "10%\n20%\n");
/// ```
pub fn strip_ansi(text: &str) -> Cow<'_, str> {
    let plain = |c: char| !c.is_control() || c == '\n' || c == '\t';
    if text.chars().all(plain) {
        return Cow::Borrowed(text);
    }
    let mut out = Plain {
        text: String::with_capacity(text.len()),
        carriage_return: false,
    };
    vte::Parser::new().advance(&mut out, text.as_bytes());
    out.settle(None);
    Cow::Owned(out.text)
}

struct Plain {
    text: String,
    /// A `\r` was met: a line break unless a `\n` follows.
    carriage_return: bool,
}

impl Plain {
    fn settle(&mut self, next: Option<u8>) {
        if std::mem::take(&mut self.carriage_return) && next != Some(b'\n') {
            self.text.push('\n');
        }
    }
}

impl vte::Perform for Plain {
    fn print(&mut self, c: char) {
        self.settle(None);
        self.text.push(c);
    }

    fn execute(&mut self, byte: u8) {
        if byte == b'\r' {
            // `\r\r\n` too (a terminal's output of a program's own `\r\n`): one line break.
            self.carriage_return = true;
            return;
        }
        self.settle(Some(byte));
        if byte == b'\n' || byte == b'\t' {
            self.text.push(byte as char);
        }
    }
}
