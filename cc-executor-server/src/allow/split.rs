//! The strict word grammar of allowlist mode, and its inverse ([`quote`]).
//!
//! A command line is split into words the way a POSIX shell would split it, but only where the
//! shell would do nothing more than split and remove quotes. Everything that would make the shell
//! expand, substitute, glob, redirect, chain or comment is refused, so the words are exactly what
//! `sh -c` would pass to the program (a property test runs `dash` on accepted lines to check it).
//!
//! - Words are separated by spaces and tabs outside quotes.
//! - `'…'`: everything inside is literal (`$`, backticks, `*`, `\`, `"` included).
//! - `"…"`: literal except that `$` and backticks are refused and a backslash may only escape
//!   `"` or `\` (`\"`, `\\`); any other backslash inside double quotes is refused.
//! - Outside quotes, `\` makes the next character literal; a backslash ending the line is refused.
//! - Refused outside quotes: `$`, backticks, `*` `?` `[` (globs), `{` `}`, `~` at the start of a
//!   word or after `=` or `:` (tilde expansion), `#` at the start of a word (a comment), `;` `&`
//!   `|` `(` `)` `<` `>` (operators and redirections). The one exception: a final `< /dev/null`
//!   (after a blank) is accepted and dropped, since every command's stdin is `/dev/null` already.
//! - Refused everywhere, even inside quotes: newline, carriage return, NUL and every other control
//!   character except tab, non-ASCII whitespace (U+00A0, U+2000–U+200A, U+3000, …) and invisible
//!   formatting characters (zero-width spaces and joiners, bidirectional controls, U+FEFF).
//! - Unbalanced quotes are refused.

use super::Refusal;

/// Split a command line into words with the strict grammar of this module.
///
/// A line of blanks gives no words. The words are exactly the argv `sh -c` would run.
#[doc(hidden)]
pub fn split_words(line: &str) -> Result<Vec<String>, Refusal> {
    let cs: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    // A word has begun, even if it is empty so far (`''`).
    let mut started = false;
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        check_char(c)?;
        let rest = &cs[i + 1..];
        match c {
            ' ' | '\t' => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
                i += 1;
            }
            '\'' => {
                started = true;
                i += 1;
                loop {
                    let Some(&q) = cs.get(i) else {
                        return Err(Refusal::UnbalancedQuote('\''));
                    };
                    i += 1;
                    if q == '\'' {
                        break;
                    }
                    check_char(q)?;
                    word.push(q);
                }
            }
            '"' => {
                started = true;
                i += 1;
                loop {
                    let Some(&q) = cs.get(i) else {
                        return Err(Refusal::UnbalancedQuote('"'));
                    };
                    i += 1;
                    match q {
                        '"' => break,
                        '\\' => match cs.get(i) {
                            Some(&e @ ('"' | '\\')) => {
                                word.push(e);
                                i += 1;
                            }
                            Some(&e) => {
                                check_char(e)?;
                                return Err(Refusal::DoubleQuoteEscape(e));
                            }
                            None => return Err(Refusal::UnbalancedQuote('"')),
                        },
                        '$' => return Err(dollar(&cs[i..])),
                        '`' => return Err(needs("`", "command substitution")),
                        _ => {
                            check_char(q)?;
                            word.push(q);
                        }
                    }
                }
            }
            '\\' => {
                let Some(&e) = rest.first() else {
                    return Err(needs("\\", "a backslash ending the line"));
                };
                check_char(e)?;
                word.push(e);
                started = true;
                i += 2;
            }
            '$' => return Err(dollar(rest)),
            '`' => return Err(needs("`", "command substitution")),
            '*' | '?' | '[' => return Err(needs(c, "pathname expansion (glob)")),
            '{' | '}' => return Err(needs(c, "brace expansion or command group")),
            // `word` holds the text so far, quoted parts included: refusing `''~` and `'a='~`
            // too is stricter than the shell, never laxer.
            '~' if word.is_empty() || word.ends_with(['=', ':']) => {
                return Err(needs("~", "tilde expansion"))
            }
            '#' if word.is_empty() => return Err(needs("#", "a comment")),
            ';' | '&' | '|' | '(' | ')' => return Err(operator(c, rest)),
            '<' if !started && is_dev_null_tail(rest) => break,
            '<' | '>' => return Err(redirection(c, rest)),
            _ => {
                word.push(c);
                started = true;
                i += 1;
            }
        }
    }
    if started {
        words.push(word);
    }
    Ok(words)
}

/// Quote `words` into a command line that [`split_words`] splits back into the same words.
///
/// Each word is written by [`cc_executor_protocol::shell_quote`]. A word holding a character refused everywhere (a control character or
/// non-ASCII whitespace) cannot be written: the line it gives is refused.
#[doc(hidden)]
pub fn quote<S: AsRef<str>>(words: &[S]) -> String {
    let mut line = String::new();
    for (n, w) in words.iter().enumerate() {
        if n > 0 {
            line.push(' ');
        }
        line.push_str(&cc_executor_protocol::shell_quote(w.as_ref()));
    }
    line
}

fn needs(construct: impl ToString, meaning: &'static str) -> Refusal {
    Refusal::NeedsShell {
        construct: construct.to_string(),
        meaning,
    }
}

/// Characters refused everywhere, quoted or not.
fn check_char(c: char) -> Result<(), Refusal> {
    let meaning = match c {
        '\t' => return Ok(()),
        '\n' => "newline",
        '\r' => "carriage return",
        '\0' => "NUL",
        c if c.is_control() => "control character",
        c if !c.is_ascii() && c.is_whitespace() => "non-ASCII whitespace",
        '\u{00AD}'
        | '\u{061C}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}' => "invisible formatting character",
        _ => return Ok(()),
    };
    Err(Refusal::Character { ch: c, meaning })
}

/// A `$`, named after what follows it (`rest`).
fn dollar(rest: &[char]) -> Refusal {
    match rest {
        ['(', '(', ..] => needs("$((", "arithmetic expansion"),
        ['(', ..] => needs("$(", "command substitution"),
        ['{', ..] => needs("${", "parameter expansion"),
        ['\'', ..] => needs("$'", "ANSI-C quoting"),
        ['"', ..] => needs("$\"", "locale translation"),
        _ => needs("$", "parameter expansion"),
    }
}

/// A control operator starting with `c`, followed by `rest`.
fn operator(c: char, rest: &[char]) -> Refusal {
    match (c, rest.first()) {
        (';', Some(';')) => needs(";;", "a case terminator"),
        (';', _) => needs(";", "a command separator"),
        ('&', Some('&')) => needs("&&", "a command list"),
        ('&', Some('>')) => needs("&>", "redirection"),
        ('&', _) => needs("&", "a background job"),
        ('|', Some('|')) => needs("||", "a command list"),
        ('|', Some('&')) => needs("|&", "a pipeline"),
        ('|', _) => needs("|", "a pipeline"),
        _ => needs(c, "a subshell"),
    }
}

/// A redirection operator starting with `c` (`<` or `>`), followed by `rest`.
fn redirection(c: char, rest: &[char]) -> Refusal {
    match (c, rest) {
        (_, ['(', ..]) => needs(format!("{c}("), "process substitution"),
        ('<', ['<', '<', ..]) => needs("<<<", "a here-string"),
        ('<', ['<', '-', ..]) => needs("<<-", "a here-document"),
        ('<', ['<', ..]) => needs("<<", "a here-document"),
        (_, [n @ ('>' | '&' | '|'), ..]) => needs(format!("{c}{n}"), "redirection"),
        _ => needs(c, "redirection"),
    }
}

/// `rest` (after a `<`) is blanks, `/dev/null`, blanks, and the end of the line.
fn is_dev_null_tail(rest: &[char]) -> bool {
    let text: String = rest.iter().collect();
    text.trim_matches([' ', '\t']) == "/dev/null"
}
