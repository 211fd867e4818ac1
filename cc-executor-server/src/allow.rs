//! The command allowlist: in allowlist mode a command line never reaches a shell.
//!
//! The line is split into words with a strict grammar ([`split_words`], described in the
//! `split` module) that refuses anything a shell would expand, substitute, glob, redirect or
//! chain. The first word is the program:
//!
//! - it may not contain `=` (an assignment before the program needs a shell) nor be a shell
//!   reserved word (`if`, `!`, `while`, …);
//! - its basename must be on the list (entries are compared by basename too, so `ls`,
//!   `/bin/ls` and `/usr/bin/ls` are all the program `ls`);
//! - a name without `/` is looked up in the absolute entries of the service's `PATH` (empty and
//!   relative entries are skipped: they would depend on the run's working directory); a path
//!   must be absolute (`./ls` and `bin/ls` are refused) and name an executable file.
//!
//! The argv, with `argv[0]` the resolved path, is then executed directly. Shell builtins never
//! run: with `echo` allowed, `echo hi` runs the `echo` found on `PATH`.
//!
//! This module is public only for fuzzing and tests; it is not a stable API.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

mod split;
#[cfg(test)]
mod tests;

#[doc(hidden)]
pub use split::{quote, split_words};

/// Why the allowlist refused a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// A construct only a shell would interpret: `construct` as written, and what it means.
    NeedsShell {
        /// The construct as written (`"$("`, `";"`, `"X=1"`).
        construct: String,
        /// What a shell would do with it.
        meaning: &'static str,
    },
    /// A character refused everywhere, even inside quotes.
    Character {
        /// The character.
        ch: char,
        /// What kind of character it is.
        meaning: &'static str,
    },
    /// A quote (`'` or `"`) that is never closed.
    UnbalancedQuote(char),
    /// A backslash inside double quotes before a character other than `"` or `\`.
    DoubleQuoteEscape(char),
    /// No program: a line of blanks, or an empty first word.
    NoProgram,
    /// The program is a relative path with a `/` (`./ls`).
    RelativePath(String),
    /// The program's name is not found in the service's `PATH`.
    NotFound(String),
    /// The program's absolute path is not an executable file.
    NotExecutable(String),
    /// The program's basename is not on the list.
    NotAllowed(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NeedsShell { construct, meaning } => write!(
                f,
                "Command refused: {construct:?} ({meaning}) needs a shell, which the allowlist does not run"
            ),
            Refusal::Character { ch, meaning } => write!(
                f,
                "Command refused: U+{:04X} ({meaning}) is not allowed in a command line with an allowlist",
                u32::from(*ch)
            ),
            Refusal::UnbalancedQuote(q) => {
                write!(f, "Command refused: unbalanced quotes: a {q} is never closed")
            }
            Refusal::DoubleQuoteEscape(c) => write!(
                f,
                "Command refused: \"\\{}\" inside double quotes: with an allowlist only \\\" and \\\\ \
                 are escapes there (use single quotes for a literal backslash)",
                c.escape_debug()
            ),
            Refusal::NoProgram => write!(f, "Command refused: no program to run"),
            Refusal::RelativePath(p) => write!(
                f,
                "Command refused: {p:?} is a relative path; give an absolute path or a name found on PATH"
            ),
            Refusal::NotFound(p) => write!(f, "Command refused: {p:?} not found on PATH"),
            Refusal::NotExecutable(p) => {
                write!(f, "Command refused: {p:?} is not an executable file")
            }
            Refusal::NotAllowed(p) => {
                write!(f, "Command refused: {p:?} is not an allowed program")
            }
        }
    }
}

impl std::error::Error for Refusal {}

/// Words a shell reads as syntax, not as a program, in a command's first position.
const RESERVED_WORDS: &[&str] = &[
    "!", "case", "do", "done", "elif", "else", "esac", "fi", "for", "function", "if", "in",
    "select", "then", "until", "while", "[[", "]]",
];

/// The set of allowed program names.
#[derive(Debug, Clone)]
pub(crate) struct Allowlist {
    names: HashSet<String>,
}

impl Allowlist {
    /// An allowlist of program names (entries are compared by basename).
    pub(crate) fn new(names: Vec<String>) -> Self {
        Allowlist {
            names: names
                .into_iter()
                .map(|n| basename(n.trim()).to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }

    /// The argv to execute for `command`, `argv[0]` resolved on the service's `PATH`, or why it
    /// is refused.
    pub(crate) fn argv(&self, command: &str) -> Result<Vec<String>, Refusal> {
        self.argv_in(command, std::env::var_os("PATH").as_deref())
    }

    /// [`Allowlist::argv`] with `path` as the `PATH` to search.
    fn argv_in(&self, command: &str, path: Option<&OsStr>) -> Result<Vec<String>, Refusal> {
        let mut words = split_words(command)?;
        let program = words.first_mut().ok_or(Refusal::NoProgram)?;
        if program.is_empty() {
            return Err(Refusal::NoProgram);
        }
        if program.contains('=') {
            return Err(Refusal::NeedsShell {
                construct: program.clone(),
                meaning: "an assignment before the program",
            });
        }
        if RESERVED_WORDS.contains(&program.as_str()) {
            return Err(Refusal::NeedsShell {
                construct: program.clone(),
                meaning: "a shell reserved word",
            });
        }
        // The name is checked before the file system is looked at.
        if !self.names.contains(basename(program)) {
            return Err(Refusal::NotAllowed(program.clone()));
        }
        *program = resolve(program, path)?;
        Ok(words)
    }
}

fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// The absolute path `program` runs, looked up in the absolute entries of `path` when it has no `/`.
fn resolve(program: &str, path: Option<&OsStr>) -> Result<String, Refusal> {
    if program.contains('/') {
        if !program.starts_with('/') {
            return Err(Refusal::RelativePath(program.to_owned()));
        }
        return if is_executable_file(Path::new(program)) {
            Ok(program.to_owned())
        } else {
            Err(Refusal::NotExecutable(program.to_owned()))
        };
    }
    std::env::split_paths(path.unwrap_or_default())
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .filter(|candidate| is_executable_file(candidate))
        .find_map(|candidate| candidate.to_str().map(str::to_owned))
        .ok_or_else(|| Refusal::NotFound(program.to_owned()))
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
