//! The split agrees with a real shell: for every generated line the allowlist accepts, `dash -c`
//! on the same line, with a `PATH` of logging stubs, runs exactly the one allowed program with
//! exactly the argv the allowlist would execute.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use super::super::Allowlist;

/// Programs the generated lines may run.
const ALLOWED: &[&str] = &["ls", "cat", "grep", "ok-prog"];
/// Programs an escape from the grammar would likely run: stubs too, so that it shows in the log.
const DECOYS: &[&str] = &[
    "sh", "dash", "bash", "id", "env", "rm", "touch", "X", "x", "a", "b", "c", "IFS", "-c", "if",
];
/// Stands for the directory of the stubs in generated lines (absolute program paths).
const DIR: &str = "@DIR@";

/// Words the shell takes as they are.
const PLAIN: &[&str] = &[
    "a", "b", "x", "-l", "--x=y", "HEAD~1", "a:b", "x=y", "é", "ł", "ą", "Á", "日本", "a]b", "%",
    "+", "@", "!", "^", "id", "sh", "-c", "a#b", ".", "/", "ls", "=", ":", ",", "-", "]",
];
/// Fragments that need a shell, or that try to confuse the split.
const ATTACKS: &[&str] = &[
    "$",
    "$X",
    "$1",
    "$$",
    "$@",
    "$*",
    "$HOME",
    "a$X",
    "${IFS}",
    "$(id)",
    "$((1))",
    "`id`",
    ";",
    ";id",
    "|",
    "|id",
    "&&",
    "||",
    "&",
    "*",
    "?",
    "[a]",
    "a*",
    "~",
    "~/x",
    "~root",
    "{a,b}",
    "{",
    "}",
    ">x",
    "<x",
    "2>&1",
    "X=1",
    "\n",
    "\r",
    "\0",
    "\u{a0}",
    "\u{2003}",
    "\u{3000}",
    "\u{200b}",
    "#",
    "#x",
    "(",
    ")",
    "< /dev/null",
    "'",
    "\"",
    "\\",
    "\\\n",
    "a=~",
    "x:~",
    "\"${X:-\"'\"}\"",
    "${IFS}-c${IFS}id",
    "$'\\x41'",
    "\\'",
    "\"\\$\"",
    "\"\\a\"",
    "\"\\n\"",
    "\"$X\"",
    "\"`id`\"",
    "<<x",
    "2</dev/null",
    "2< /dev/null",
    "\u{7}",
    "\t",
    "\\\t",
    "!",
    "if",
    "then",
];
/// Program words: allowed names written in various ways.
const ALLOWED_SPELLINGS: &[&str] = &[
    "ls",
    "cat",
    "grep",
    "ok-prog",
    "'ls'",
    "\"cat\"",
    "l\\s",
    "gr''ep",
    "ok\"-\"prog",
    "@DIR@/ls",
    "'@DIR@/cat'",
    "@DIR@/../bin/ls",
];
/// Program words that must be refused.
const OTHER_PROGRAMS: &[&str] = &["sh", "id", "X=1", "if", "!", "./ls", "env", "''"];
/// Pieces of double-quoted words.
const IN_DOUBLE: &[&str] = &[
    "a", " ", "\\\"", "\\\\", "'", "*", ";", "~", "{", "#", "$", "`", "\\$", "é", "ł", "x y",
    "\\n", "<", "|", "&", "\t",
];

/// A fragment the shell takes literally (some of its double-quoted words are refused).
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(PLAIN).prop_map(String::from),
        2 => "[ -&(-~éł日\\t]{0,8}".prop_map(|s| format!("'{s}'")),
        2 => prop::collection::vec(prop::sample::select(IN_DOUBLE), 0..4)
            .prop_map(|p| format!("\"{}\"", p.concat())),
        1 => "[ -~éł]".prop_map(|c| format!("\\{c}")),
    ]
}

/// A command line: a program and literal fragments, and half of the time one attack fragment
/// somewhere (before the program too), with blanks between or glued to a neighbour.
fn line() -> impl Strategy<Value = String> {
    let program = prop_oneof![
        6 => prop::sample::select(ALLOWED_SPELLINGS).prop_map(String::from),
        1 => prop::sample::select(OTHER_PROGRAMS).prop_map(String::from),
        1 => fragment(),
    ];
    let sep = || prop::sample::select(&[" ", " ", "  ", "\t", ""][..]);
    let lead = prop::sample::select(&["", "", " ", "\t"][..]);
    let tail = prop::sample::select(
        &[
            "",
            "",
            "",
            " ",
            " < /dev/null",
            "</dev/null",
            " </dev/null\t",
        ][..],
    );
    let attack = prop::option::of((
        any::<prop::sample::Index>(),
        sep(),
        prop::sample::select(ATTACKS),
    ));
    (
        lead,
        program,
        prop::collection::vec((sep(), fragment()), 0..5),
        attack,
        tail,
    )
        .prop_map(|(lead, program, rest, attack, tail)| {
            let mut parts: Vec<(&str, String)> = vec![(lead, program)];
            parts.extend(rest);
            if let Some((at, sep, attack)) = attack {
                parts.insert(at.index(parts.len() + 1), (sep, attack.to_owned()));
            }
            let mut s: String = parts
                .into_iter()
                .map(|(sep, p)| format!("{sep}{p}"))
                .collect();
            s.push_str(tail);
            s
        })
}

/// The shell to compare with: `dash`, else the system's `sh`.
fn shell() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("dash"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/bin/sh"))
}

struct Stage {
    _root: tempfile::TempDir,
    bin: PathBuf,
    log: PathBuf,
    cwd: PathBuf,
}

impl Stage {
    fn new() -> Stage {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = |name: &str| {
            let d = root.path().join(name);
            std::fs::create_dir(&d).unwrap();
            d
        };
        let (bin, log, cwd) = (dir("bin"), dir("log"), dir("cwd"));
        // One file per run, named by pid: the argv, NUL-terminated, `$0` first.
        let stub = "#!/bin/sh\nprintf '%s\\0' \"$0\" \"$@\" > \"$STUB_LOG/$$\"\n";
        for name in ALLOWED.iter().chain(DECOYS) {
            let path = bin.join(name);
            std::fs::write(&path, stub).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // Files a glob would match, were one to slip through.
        for name in ["ls", "a", "b", "x", "ab", "id"] {
            std::fs::write(cwd.join(name), "").unwrap();
        }
        Stage {
            _root: root,
            bin,
            log,
            cwd,
        }
    }

    /// Run `line` with `shell -c` and return the argv of every stub it ran.
    fn run(&self, shell: &Path, line: &str) -> Vec<Vec<String>> {
        for entry in std::fs::read_dir(&self.log).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        let mut child = Command::new(shell)
            .arg("-c")
            .arg(line)
            .current_dir(&self.cwd)
            .env_clear()
            .env("PATH", &self.bin)
            .env("HOME", "/nonexistent-home")
            .env("STUB_LOG", &self.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // A liveness bound only: an accepted line runs one stub, which exits at once.
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{shell:?} -c {line:?} did not exit");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        std::fs::read_dir(&self.log)
            .unwrap()
            .map(|entry| {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                let text = String::from_utf8(bytes).expect("UTF-8 argv");
                let mut argv: Vec<String> = text.split('\0').map(str::to_owned).collect();
                assert_eq!(argv.pop().as_deref(), Some(""), "NUL-terminated");
                argv
            })
            .collect()
    }
}

/// A stage, the shell and the allowlist of [`ALLOWED`].
struct Check {
    stage: Stage,
    shell: PathBuf,
    list: Allowlist,
}

impl Check {
    fn new() -> Check {
        Check {
            stage: Stage::new(),
            shell: shell(),
            list: Allowlist::new(ALLOWED.iter().map(|s| s.to_string()).collect()),
        }
    }

    /// Whether the allowlist accepts `line`; if it does, the shell must run exactly its argv.
    fn line(&self, line: &str) -> Result<bool, String> {
        let line = line.replace(DIR, self.stage.bin.to_str().unwrap());
        let Ok(argv) = self.list.argv_in(&line, Some(self.stage.bin.as_os_str())) else {
            return Ok(false);
        };
        let ran = self.stage.run(&self.shell, &line);
        if ran != [argv.clone()] {
            let shell = &self.shell;
            return Err(format!(
                "{line:?}: the allowlist runs {argv:?}, {shell:?} ran {ran:?}"
            ));
        }
        Ok(true)
    }
}

#[test]
fn dash_runs_exactly_the_argv_the_allowlist_accepts() {
    let check = Check::new();
    let config = Config {
        cases: 500,
        failure_persistence: None,
        ..Config::default()
    };
    // A fixed seed: the same lines on every run, so the counts below cannot flake.
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let (accepted, refused) = (Cell::new(0usize), Cell::new(0usize));
    let result = runner.run(&line(), |line| {
        let count = if check.line(&line).map_err(TestCaseError::fail)? {
            &accepted
        } else {
            &refused
        };
        count.set(count.get() + 1);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // Both sides were exercised (figures for the fixed seed; a change of generator may move them).
    let (accepted, refused) = (accepted.get(), refused.get());
    assert!(accepted >= 100, "only {accepted} lines accepted");
    assert!(refused >= 150, "only {refused} lines refused");
}

/// Every attack fragment, in every position of a few accepted lines.
#[test]
fn dash_agrees_on_every_attack_fragment() {
    let check = Check::new();
    let contexts = [
        "ls {}",
        "ls x{}",
        "ls {}x",
        "ls x{}y",
        "{} ls",
        "{}ls",
        "ls \\{}",
        "ls '{}'",
        "ls \"{}\"",
        "ls {} a",
        "ls a={}",
        "ls a:{}",
    ];
    let mut accepted = 0;
    for attack in ATTACKS {
        for context in contexts {
            let line = context.replace("{}", attack);
            accepted += usize::from(check.line(&line).unwrap_or_else(|e| panic!("{e}")));
        }
    }
    assert!(accepted >= 50, "only {accepted} lines accepted");
}
