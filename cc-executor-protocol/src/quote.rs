//! How a word is written in the command line of `execute` (a POSIX shell line).

use std::borrow::Cow;

/// Quote `s` for a POSIX shell so that it reaches the program as exactly one argument, verbatim.
///
/// Strings made only of characters no shell treats specially (`A-Z a-z 0-9 _ @ % + = : , . / -`)
/// come back unchanged; anything else is wrapped in single quotes, with each `'` written as `'\''`.
/// The empty string becomes `''`.
///
/// ```
/// use cc_executor_protocol::shell_quote;
///
/// assert_eq!(shell_quote("sonnet"), "sonnet");
/// assert_eq!(shell_quote("it's $(id)"), r#"'it'\''s $(id)'"#);
/// assert_eq!(shell_quote(""), "''");
/// ```
pub fn shell_quote(s: &str) -> Cow<'_, str> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            // Close the quote, add an escaped quote, reopen.
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    Cow::Owned(out)
}
