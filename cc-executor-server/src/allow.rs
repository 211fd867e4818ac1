//! The command allowlist: which program a command line runs, and whether it chains others.
//!
//! The check is a guard rail, not a sandbox. It parses just enough POSIX shell syntax to find
//! the program of a simple command (the first word after leading `NAME=value` assignments, as
//! a basename) and to refuse command lines that could run a second program: control operators
//! (`;`, `&`, `&&`, `|`, `||`), command substitution (`$(..)`, backticks), process substitution
//! (`<(..)`, `>(..)`) and newlines, when they appear outside quotes. Inside single quotes
//! everything is literal; inside double quotes `$(` and backticks stay active.

use std::collections::HashSet;
use std::fmt;

/// The set of allowed program names.
#[derive(Debug, Clone)]
pub(crate) struct Allowlist {
    names: HashSet<String>,
}

/// Why the allowlist refused a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A shell operator that could run another program.
    Operator(&'static str),
    /// A quote was not closed.
    UnbalancedQuote,
    /// No program word was found (only assignments).
    NoProgram,
    /// The program is not in the allowlist.
    NotAllowed(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Operator(op) => write!(
                f,
                "Command refused: shell operator {op:?} is not allowed with an allowlist"
            ),
            Refusal::UnbalancedQuote => write!(f, "Command refused: unbalanced quotes"),
            Refusal::NoProgram => write!(f, "Command refused: no program to run"),
            Refusal::NotAllowed(p) => write!(f, "Command not allowed: {p}"),
        }
    }
}

impl Allowlist {
    /// An allowlist of program names (entries are compared by basename).
    pub fn new(names: Vec<String>) -> Self {
        Allowlist {
            names: names
                .into_iter()
                .map(|n| basename(n.trim()).to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }

    /// Accept or refuse `command`.
    pub fn check(&self, command: &str) -> Result<(), Refusal> {
        find_operator(command)?;
        let program = program_name(command).ok_or(Refusal::NoProgram)?;
        if self.names.contains(&program) {
            Ok(())
        } else {
            Err(Refusal::NotAllowed(program))
        }
    }
}

fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

/// The first control operator outside quotes, or an unbalanced quote.
fn find_operator(command: &str) -> Result<(), Refusal> {
    let mut quote = Quote::None;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Quote::Single => {
                if c == '\'' {
                    quote = Quote::None;
                }
            }
            Quote::Double => match c {
                '"' => quote = Quote::None,
                // Escapes the next character (`\"`, `\$`, `\``, `\\`).
                '\\' => {
                    chars.next();
                }
                '`' => return Err(Refusal::Operator("`")),
                '$' if chars.peek() == Some(&'(') => return Err(Refusal::Operator("$(")),
                _ => {}
            },
            Quote::None => match c {
                '\'' => quote = Quote::Single,
                '"' => quote = Quote::Double,
                // A backslash quotes the next character; a backslash-newline (a line
                // continuation) is refused like a newline, to keep the rule simple.
                '\\' => {
                    let escaped = chars.next();
                    if escaped == Some('\n') {
                        return Err(Refusal::Operator("\\n"));
                    }
                }
                ';' => return Err(Refusal::Operator(";")),
                '&' if chars.peek() == Some(&'&') => return Err(Refusal::Operator("&&")),
                '&' => return Err(Refusal::Operator("&")),
                '|' if chars.peek() == Some(&'|') => return Err(Refusal::Operator("||")),
                '|' => return Err(Refusal::Operator("|")),
                '`' => return Err(Refusal::Operator("`")),
                '$' if chars.peek() == Some(&'(') => return Err(Refusal::Operator("$(")),
                '<' if chars.peek() == Some(&'(') => return Err(Refusal::Operator("<(")),
                '>' if chars.peek() == Some(&'(') => return Err(Refusal::Operator(">(")),
                '\n' | '\r' => return Err(Refusal::Operator("\\n")),
                _ => {}
            },
        }
    }
    if quote == Quote::None {
        Ok(())
    } else {
        Err(Refusal::UnbalancedQuote)
    }
}

/// Split into words, removing quotes (only used after [`find_operator`] accepted the line).
fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = Quote::None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match quote {
            Quote::Single if c == '\'' => quote = Quote::None,
            Quote::Double if c == '"' => quote = Quote::None,
            Quote::Double if c == '\\' => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            Quote::Single | Quote::Double => word.push(c),
            Quote::None => match c {
                ' ' | '\t' => {
                    if in_word {
                        out.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                '\'' => {
                    quote = Quote::Single;
                    in_word = true;
                }
                '"' => {
                    quote = Quote::Double;
                    in_word = true;
                }
                '\\' => {
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                    in_word = true;
                }
                _ => {
                    word.push(c);
                    in_word = true;
                }
            },
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

fn is_assignment(word: &str) -> bool {
    let Some((name, _)) = word.split_once('=') else {
        return false;
    };
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The basename of the program a simple command runs, skipping leading assignments.
fn program_name(command: &str) -> Option<String> {
    words(command)
        .into_iter()
        .find(|w| !is_assignment(w))
        .map(|w| basename(&w).to_owned())
        .filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Allowlist {
        Allowlist::new(vec!["ls".into(), "echo".into(), "/usr/bin/cat".into()])
    }

    #[test]
    fn accepts_simple_commands() {
        let a = list();
        for ok in [
            "ls",
            "ls -la /tmp",
            "/bin/ls",
            "X=1 ls",
            "X=1 Y=two ls -l",
            "echo 'a;b'",
            "echo 'a && b | c $(x) `y`'",
            "echo \"a;b|c&d\"",
            "echo a\\;b",
            "cat file",
            "  ls  ",
            "'ls' -l",
            "ls > out.txt",
        ] {
            assert_eq!(a.check(ok), Ok(()), "{ok:?} should be accepted");
        }
    }

    #[test]
    fn refuses_bypass_attempts() {
        let a = list();
        for (bad, want) in [
            ("ls; rm -rf /", Refusal::Operator(";")),
            ("ls && x", Refusal::Operator("&&")),
            ("ls || x", Refusal::Operator("||")),
            ("ls | sh", Refusal::Operator("|")),
            ("ls & x", Refusal::Operator("&")),
            ("ls $(x)", Refusal::Operator("$(")),
            ("ls `x`", Refusal::Operator("`")),
            ("ls\nx", Refusal::Operator("\\n")),
            ("ls\r\nx", Refusal::Operator("\\n")),
            ("echo \"$(rm -rf /)\"", Refusal::Operator("$(")),
            ("echo \"`rm`\"", Refusal::Operator("`")),
            ("ls <(x)", Refusal::Operator("<(")),
            ("ls >(x)", Refusal::Operator(">(")),
            ("echo 'unterminated", Refusal::UnbalancedQuote),
            ("echo \"unterminated", Refusal::UnbalancedQuote),
        ] {
            assert_eq!(a.check(bad), Err(want), "{bad:?}");
        }
    }

    #[test]
    fn refuses_programs_not_listed() {
        let a = list();
        assert_eq!(a.check("rm -rf /"), Err(Refusal::NotAllowed("rm".into())));
        assert_eq!(a.check("X=ls rm"), Err(Refusal::NotAllowed("rm".into())));
        assert_eq!(a.check("(ls)"), Err(Refusal::NotAllowed("(ls)".into())));
        assert_eq!(a.check("sh -c ls"), Err(Refusal::NotAllowed("sh".into())));
        assert_eq!(a.check("X=1"), Err(Refusal::NoProgram));
        assert_eq!(a.check(""), Err(Refusal::NoProgram));
    }

    #[test]
    fn program_names() {
        assert_eq!(
            program_name("A=1 B_2=x /usr/bin/env ls").as_deref(),
            Some("env")
        );
        assert_eq!(program_name("'my prog' x").as_deref(), Some("my prog"));
        assert_eq!(program_name("1X=2 ls").as_deref(), Some("1X=2"));
        assert!(is_assignment("_a=b"));
        assert!(!is_assignment("=b"));
    }
}
