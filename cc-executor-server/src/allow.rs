//! The command allowlist: which program a command line runs, and whether it chains others.
//!
//! The check is a guard rail, not a sandbox. It parses just enough POSIX shell syntax to find
//! the program of a simple command (the first word after leading `NAME=value` assignments and
//! redirections, as a basename) and to refuse command lines that could run a second program:
//! control operators (`;`, `&`, `&&`, `|`, `||`), command substitution (`$(..)`, backticks),
//! process substitution (`<(..)`, `>(..)`) and newlines, when they appear outside quotes.
//! Inside single quotes everything is literal; inside double quotes `$(` and backticks stay
//! active.
//!
//! Assignments in front of the program are allowed, except to `PATH` and to the variables that
//! make the dynamic loader or a shell load other code (`LD_*`, `DYLD_*`, `GCONV_PATH`,
//! `BASH_ENV`, `ENV`).

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
    /// An assignment in front of the program to a variable that could run other code.
    Assignment(String),
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
            Refusal::Assignment(name) => write!(
                f,
                "Command refused: setting {name} in front of the program is not allowed with an allowlist"
            ),
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
        let program = program(command)?;
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

/// A word of a command line, quotes removed.
#[derive(Debug)]
struct Word {
    text: String,
    /// A `NAME=value` assignment (the name and its `=` unquoted, as the shell requires).
    assignment: bool,
}

/// A word being read.
#[derive(Debug, Default)]
struct WordBuilder {
    text: String,
    /// Something (even an empty quote) was read.
    started: bool,
    /// Quotes or a backslash appeared in it.
    quoted: bool,
    /// Decided by what came first: an unquoted `=` (maybe an assignment) or quoting (not one).
    assignment: Option<bool>,
}

impl WordBuilder {
    fn push(&mut self, c: char) {
        self.text.push(c);
        self.started = true;
    }

    fn quoting(&mut self) {
        self.started = true;
        self.quoted = true;
        self.assignment.get_or_insert(false);
    }

    fn equals(&mut self) {
        self.push('=');
        self.assignment.get_or_insert(true);
    }

    /// An unquoted file descriptor number (or nothing), which belongs to a redirection after it.
    fn is_fd_number(&self) -> bool {
        !self.quoted && self.text.bytes().all(|b| b.is_ascii_digit())
    }

    /// End the word; it is dropped when it is the target of a redirection.
    fn finish(&mut self, out: &mut Vec<Word>, redirect_target: &mut bool) {
        let w = std::mem::take(self);
        if !w.started || std::mem::take(redirect_target) {
            return;
        }
        let assignment = w.assignment == Some(true) && is_assignment(&w.text);
        out.push(Word {
            text: w.text,
            assignment,
        });
    }
}

/// Split into words, removing quotes and redirections (only used after [`find_operator`]
/// accepted the line, so no control operator is left).
///
/// A redirection is no word of the command: `>/x/ls rm` runs `rm`. Its operator ends the word
/// before it (unless that is an unquoted fd number, which belongs to the redirection), and the
/// word after it, its target, is dropped.
fn words(command: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut word = WordBuilder::default();
    let mut redirect_target = false;
    let mut quote = Quote::None;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Quote::Single if c == '\'' => quote = Quote::None,
            Quote::Double if c == '"' => quote = Quote::None,
            // Inside double quotes a backslash escapes only these; before others it stays.
            Quote::Double if c == '\\' => match chars.peek() {
                Some(&n @ ('$' | '`' | '"' | '\\' | '\n')) => {
                    chars.next();
                    word.push(n);
                }
                _ => word.push('\\'),
            },
            Quote::Single | Quote::Double => word.push(c),
            Quote::None => match c {
                ' ' | '\t' => word.finish(&mut out, &mut redirect_target),
                '\'' => {
                    quote = Quote::Single;
                    word.quoting();
                }
                '"' => {
                    quote = Quote::Double;
                    word.quoting();
                }
                '\\' => {
                    word.quoting();
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                }
                '<' | '>' => {
                    if word.is_fd_number() {
                        word = WordBuilder::default();
                    } else {
                        word.finish(&mut out, &mut redirect_target);
                    }
                    while matches!(chars.peek(), Some('<' | '>')) {
                        chars.next();
                    }
                    redirect_target = true;
                }
                '=' => word.equals(),
                _ => word.push(c),
            },
        }
    }
    word.finish(&mut out, &mut redirect_target);
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

/// Variables that may not be set in front of the program: they change which file runs
/// (`PATH`) or make the loader or a shell run other code inside an allowed program.
fn is_risky_variable(name: &str) -> bool {
    name == "PATH"
        || name.starts_with("LD_")
        || name.starts_with("DYLD_")
        || matches!(name, "GCONV_PATH" | "BASH_ENV" | "ENV")
}

/// The program a simple command runs (its basename), after its leading assignments.
fn program(command: &str) -> Result<String, Refusal> {
    for w in words(command) {
        if !w.assignment {
            let name = basename(&w.text);
            return if name.is_empty() {
                Err(Refusal::NoProgram)
            } else {
                Ok(name.to_owned())
            };
        }
        let name = w.text.split_once('=').map_or("", |(n, _)| n);
        if is_risky_variable(name) {
            return Err(Refusal::Assignment(name.to_owned()));
        }
    }
    Err(Refusal::NoProgram)
}

/// The basename of the program a simple command runs, skipping leading assignments.
#[cfg(test)]
fn program_name(command: &str) -> Option<String> {
    words(command)
        .into_iter()
        .find(|w| !w.assignment)
        .map(|w| basename(&w.text).to_owned())
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
            ">out.txt ls",
            "ls>out.txt",
            "2>/dev/null ls",
            "ls 2> err.txt -l",
            "X=1 CLAUDECODE= ls",
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

    /// A redirection in front of the program is not the program, whatever its target is named.
    #[test]
    fn redirections_are_not_the_program() {
        let a = list();
        for (bad, prog) in [
            (">/x/ls rm -rf /", "rm"),
            ("2>/x/ls rm", "rm"),
            ("> ./echo rm", "rm"),
            ("</dev/ls rm", "rm"),
            (">>/a/ls 2>/b/echo rm", "rm"),
            ("X=1 >/a/ls rm", "rm"),
        ] {
            assert_eq!(
                a.check(bad),
                Err(Refusal::NotAllowed(prog.into())),
                "{bad:?}"
            );
        }
        // A quoted number is a word, not the fd of the redirection after it.
        assert_eq!(
            a.check("'2'>/a/ls ls"),
            Err(Refusal::NotAllowed("2".into()))
        );
    }

    #[test]
    fn assignments_are_what_the_shell_takes_for_them() {
        let a = list();
        // Quoted, `X=1` is the program, not an assignment.
        for bad in ["'X=1' ls", "\"X\"=1 ls", "X\\=1 ls"] {
            assert!(
                matches!(a.check(bad), Err(Refusal::NotAllowed(_))),
                "{bad:?}"
            );
        }
        // Inside double quotes a backslash before an ordinary character stays.
        assert_eq!(a.check("\"l\\s\""), Err(Refusal::NotAllowed("l\\s".into())));
        assert_eq!(
            a.check("\"\\l\\s\""),
            Err(Refusal::NotAllowed("\\l\\s".into()))
        );
        // Variables that load other code into an allowed program.
        for (bad, name) in [
            ("LD_PRELOAD=/x/y.so ls", "LD_PRELOAD"),
            ("X=1 LD_LIBRARY_PATH=/x ls", "LD_LIBRARY_PATH"),
            ("PATH=/x/evil ls", "PATH"),
            ("GCONV_PATH=. echo", "GCONV_PATH"),
            ("BASH_ENV=/x/rc echo", "BASH_ENV"),
        ] {
            assert_eq!(
                a.check(bad),
                Err(Refusal::Assignment(name.into())),
                "{bad:?}"
            );
        }
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
