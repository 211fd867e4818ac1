use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;

use super::*;

mod dash;

fn words(line: &str) -> Vec<String> {
    split_words(line).unwrap_or_else(|r| panic!("{line:?} refused: {r}"))
}

fn refusal(line: &str) -> Refusal {
    match split_words(line) {
        Ok(w) => panic!("{line:?} accepted as {w:?}"),
        Err(r) => r,
    }
}

fn construct(line: &str) -> String {
    match refusal(line) {
        Refusal::NeedsShell { construct, .. } => construct,
        other => panic!("{line:?}: {other:?}"),
    }
}

#[test]
fn splits_plain_and_quoted_words() {
    for (line, want) in [
        ("ls", &["ls"][..]),
        ("  ls  -la\t/tmp  ", &["ls", "-la", "/tmp"]),
        ("echo 'a b' \"c d\"", &["echo", "a b", "c d"]),
        ("echo 'it''s'", &["echo", "its"]),
        ("echo it\\'s", &["echo", "it's"]),
        ("echo '' \"\"", &["echo", "", ""]),
        ("echo a''b\"\"c", &["echo", "abc"]),
        ("echo \"c\\\"d\" \"e\\\\f\"", &["echo", "c\"d", "e\\f"]),
        // Single quotes keep everything literal.
        (
            "echo '$HOME `id` *.rs ~ {a,b} ; | && > # \\ \"'",
            &["echo", "$HOME `id` *.rs ~ {a,b} ; | && > # \\ \""],
        ),
        // Double quotes keep operators, globs and single quotes literal.
        (
            "echo \"a;b|c&d *? ~ {} # ' <>\"",
            &["echo", "a;b|c&d *? ~ {} # ' <>"],
        ),
        // A backslash outside quotes makes the next character literal.
        (
            "echo a\\;b \\$x \\* \\~ \\# \\ ",
            &["echo", "a;b", "$x", "*", "~", "#", " "],
        ),
        ("echo \\\\", &["echo", "\\"]),
        // Characters that are ordinary to the shell.
        (
            "git log HEAD~3 --format=%h,%s a]b x=y a:b +1 @x ^x !x é 日本",
            &[
                "git",
                "log",
                "HEAD~3",
                "--format=%h,%s",
                "a]b",
                "x=y",
                "a:b",
                "+1",
                "@x",
                "^x",
                "!x",
                "é",
                "日本",
            ],
        ),
        ("a#b", &["a#b"]),
        ("echo\ta\t\tb", &["echo", "a", "b"]),
    ] {
        assert_eq!(words(line), want, "{line:?}");
    }
    assert!(words("").is_empty());
    assert!(words(" \t ").is_empty());
}

#[test]
fn a_final_dev_null_stdin_is_dropped() {
    assert_eq!(words("claude -p hi < /dev/null"), ["claude", "-p", "hi"]);
    assert_eq!(words("ls </dev/null"), ["ls"]);
    assert_eq!(words("ls '' </dev/null \t"), ["ls", ""]);
    assert!(words("< /dev/null").is_empty());
    // Anywhere else, or glued to a word (where a number would be a descriptor), it is refused.
    for line in [
        "ls</dev/null",
        "ls 0</dev/null",
        "ls < /dev/null x",
        "< /dev/null ls",
        "ls < /dev/nul",
        "ls < /dev/null < /dev/null",
        "ls > /dev/null",
        "ls <'/dev/null'",
    ] {
        assert!(
            matches!(refusal(line), Refusal::NeedsShell { .. }),
            "{line:?}"
        );
    }
}

#[test]
fn refuses_expansions_and_substitutions() {
    for (line, want) in [
        ("echo $HOME", "$"),
        ("echo $1", "$"),
        ("echo a$", "$"),
        ("echo ${X}", "${"),
        ("echo $(id)", "$("),
        ("echo $((1+1))", "$(("),
        ("echo $'a'", "$'"),
        ("echo $\"a\"", "$\""),
        ("echo \"$HOME\"", "$"),
        ("echo \"x$(id)\"", "$("),
        ("echo `id`", "`"),
        ("echo \"`id`\"", "`"),
        ("ls *.rs", "*"),
        ("ls a?", "?"),
        ("ls [ab]", "["),
        ("echo {a,b}", "{"),
        ("echo }", "}"),
        ("{ ls; }", "{"),
        ("ls ~", "~"),
        ("ls ~/x", "~"),
        ("ls ~root", "~"),
        ("ls --dir=~/x", "~"),
        ("ls a:~/x", "~"),
        ("ls ''~", "~"),
        ("ls #comment", "#"),
        ("ls ''#x", "#"),
        ("echo \\", "\\"),
    ] {
        assert_eq!(construct(line), want, "{line:?}");
    }
}

#[test]
fn refuses_operators_and_redirections() {
    for (line, want) in [
        ("ls; id", ";"),
        ("ls;id", ";"),
        ("ls ;; id", ";;"),
        ("ls && id", "&&"),
        ("ls || id", "||"),
        ("ls | sh", "|"),
        ("ls |& sh", "|&"),
        ("ls &", "&"),
        ("ls &> x", "&>"),
        ("(ls)", "("),
        ("ls )", ")"),
        ("ls > x", ">"),
        ("ls >> x", ">>"),
        ("ls >| x", ">|"),
        ("ls 2>&1", ">&"),
        ("ls <&0", "<&"),
        ("ls <> x", "<>"),
        ("ls < x", "<"),
        ("ls <<EOF", "<<"),
        ("ls <<-EOF", "<<-"),
        ("ls <<< x", "<<<"),
        ("ls <(id)", "<("),
        ("ls >(id)", ">("),
        (">x ls", ">"),
    ] {
        assert_eq!(construct(line), want, "{line:?}");
    }
}

#[test]
fn refuses_control_and_invisible_characters_even_quoted() {
    for (c, meaning) in [
        ('\n', "newline"),
        ('\r', "carriage return"),
        ('\0', "NUL"),
        ('\u{7}', "control character"),
        ('\u{1b}', "control character"),
        ('\u{7f}', "control character"),
        ('\u{85}', "control character"),
        ('\u{0b}', "control character"),
        ('\u{0c}', "control character"),
        ('\u{a0}', "non-ASCII whitespace"),
        ('\u{2000}', "non-ASCII whitespace"),
        ('\u{2003}', "non-ASCII whitespace"),
        ('\u{200a}', "non-ASCII whitespace"),
        ('\u{2028}', "non-ASCII whitespace"),
        ('\u{3000}', "non-ASCII whitespace"),
        ('\u{200b}', "invisible formatting character"),
        ('\u{202e}', "invisible formatting character"),
        ('\u{feff}', "invisible formatting character"),
    ] {
        for line in [
            format!("ls{c}id"),
            format!("ls '{c}'"),
            format!("ls \"{c}\""),
            format!("ls \\{c}"),
            format!("ls \"\\{c}\""),
        ] {
            assert_eq!(
                refusal(&line),
                Refusal::Character { ch: c, meaning },
                "{line:?}"
            );
        }
    }
    // A tab is a blank outside quotes and literal inside them.
    assert_eq!(words("echo '\t'"), ["echo", "\t"]);
}

#[test]
fn refuses_unbalanced_quotes_and_other_double_quote_escapes() {
    for (line, q) in [
        ("echo 'a", '\''),
        ("echo \"a", '"'),
        ("echo \"a\\\"", '"'),
        ("echo \"a\\", '"'),
        ("echo 'a'\"", '"'),
    ] {
        assert_eq!(refusal(line), Refusal::UnbalancedQuote(q), "{line:?}");
    }
    for (line, c) in [
        ("echo \"\\$HOME\"", '$'),
        ("echo \"\\`\"", '`'),
        ("echo \"a\\.b\"", '.'),
        ("echo \"\\n\"", 'n'),
    ] {
        assert_eq!(refusal(line), Refusal::DoubleQuoteEscape(c), "{line:?}");
    }
}

/// The two bypasses of the lexer this module replaces.
#[test]
fn refuses_the_known_bypasses() {
    assert_eq!(construct("sh${IFS}-c${IFS}id${IFS}/ls"), "${");
    assert_eq!(construct("echo \"${X:-\"'\"}\";id;echo \\'"), "${");
    let list = Allowlist::new(vec!["ls".into(), "echo".into(), "cat".into()]);
    for line in [
        "sh${IFS}-c${IFS}id${IFS}/ls",
        "echo \"${X:-\"'\"}\";id;echo \\'",
    ] {
        assert!(
            matches!(list.argv(line), Err(Refusal::NeedsShell { .. })),
            "{line:?}"
        );
    }
}

#[test]
fn messages_name_the_construct_and_why() {
    assert_eq!(
        refusal("echo $HOME").to_string(),
        "Command refused: \"$\" (parameter expansion) needs a shell, which the allowlist does not run"
    );
    assert_eq!(
        refusal("ls; id").to_string(),
        "Command refused: \";\" (a command separator) needs a shell, which the allowlist does not run"
    );
    assert_eq!(
        refusal("ls\u{a0}-la").to_string(),
        "Command refused: U+00A0 (non-ASCII whitespace) is not allowed in a command line with an allowlist"
    );
    assert_eq!(
        refusal("echo 'a").to_string(),
        "Command refused: unbalanced quotes: a ' is never closed"
    );
    assert!(refusal("echo \"a\\.b\"")
        .to_string()
        .contains("\"\\.\" inside double quotes"));
}

/// A directory of executables named `names`, for a PATH of its own.
fn bin_dir(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in names {
        let path = dir.path().join(name);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

#[test]
fn resolves_the_program_on_path() {
    let bin = bin_dir(&["ls", "cat"]);
    let other = bin_dir(&["ls"]);
    std::fs::write(other.path().join("cat"), "not executable").unwrap();
    let path = std::env::join_paths([other.path(), bin.path()]).unwrap();
    let list = Allowlist::new(vec!["ls".into(), "/usr/bin/cat".into(), "grep".into()]);
    let at = |p: &tempfile::TempDir, name: &str| p.path().join(name).to_str().unwrap().to_owned();

    // The first executable file wins; a non-executable one is skipped.
    assert_eq!(
        list.argv_in("ls -l 'a b'", Some(&path)),
        Ok(vec![at(&other, "ls"), "-l".into(), "a b".into()])
    );
    assert_eq!(
        list.argv_in("cat x", Some(&path)),
        Ok(vec![at(&bin, "cat"), "x".into()])
    );
    // A quoted program name is still the program.
    assert_eq!(
        list.argv_in("'c'at", Some(&path)),
        Ok(vec![at(&bin, "cat")])
    );
    // An absolute path is run as given, if its basename is allowed.
    let abs = at(&bin, "cat");
    assert_eq!(list.argv_in(&abs, Some(&path)), Ok(vec![abs.clone()]));
    assert_eq!(
        list.argv_in("grep x", Some(&path)),
        Err(Refusal::NotFound("grep".into()))
    );
    assert_eq!(
        list.argv_in("ls", None),
        Err(Refusal::NotFound("ls".into()))
    );
    // Relative and empty PATH entries are not searched.
    let relative = OsStr::new(":.:bin");
    assert_eq!(
        list.argv_in("ls", Some(relative)),
        Err(Refusal::NotFound("ls".into()))
    );
    assert_eq!(
        list.argv_in("./ls", Some(&path)),
        Err(Refusal::RelativePath("./ls".into()))
    );
    assert_eq!(
        list.argv_in("bin/ls", Some(&path)),
        Err(Refusal::RelativePath("bin/ls".into()))
    );
    let not_exec = at(&other, "cat");
    assert_eq!(
        list.argv_in(&not_exec, Some(&path)),
        Err(Refusal::NotExecutable(not_exec.clone()))
    );
    assert_eq!(
        list.argv_in("/nonexistent/ls", Some(&path)),
        Err(Refusal::NotExecutable("/nonexistent/ls".into()))
    );
    assert!(Refusal::NotFound("grep".into())
        .to_string()
        .contains("\"grep\" not found on PATH"));
}

#[test]
fn refuses_programs_not_listed_and_shell_only_first_words() {
    let bin = bin_dir(&["ls", "rm", "sh", "if", "X=1"]);
    let path = bin.path().as_os_str();
    let list = Allowlist::new(vec!["ls".into(), "if".into(), "X=1".into()]);
    assert_eq!(
        list.argv_in("rm -rf /", Some(path)),
        Err(Refusal::NotAllowed("rm".into()))
    );
    assert_eq!(
        list.argv_in("sh -c ls", Some(path)),
        Err(Refusal::NotAllowed("sh".into()))
    );
    assert_eq!(
        list.argv_in("/bin/", Some(path)),
        Err(Refusal::NotAllowed("/bin/".into()))
    );
    for line in ["X=1 ls", "X= ls", "'X=1'", "if ls", "! ls", "while"] {
        assert!(
            matches!(
                list.argv_in(line, Some(path)),
                Err(Refusal::NeedsShell { .. })
            ),
            "{line:?}"
        );
    }
    assert!(list
        .argv_in("X=1 ls", Some(path))
        .unwrap_err()
        .to_string()
        .contains("an assignment before the program"));
    for line in ["", "  ", "'' ls", "< /dev/null"] {
        assert_eq!(
            list.argv_in(line, Some(path)),
            Err(Refusal::NoProgram),
            "{line:?}"
        );
    }
    // Shell syntax is refused before the name is even looked at.
    assert!(matches!(
        list.argv_in("rm; ls", Some(path)),
        Err(Refusal::NeedsShell { .. })
    ));
}

#[test]
fn quote_round_trips() {
    for argv in [
        &["ls"][..],
        &[
            "echo", "", "a b", "it's", "'", "''", "\\", "\"", "$HOME", "`id`", "*",
        ],
        &[
            "x",
            "~",
            "#",
            "a=~",
            "{a,b}",
            ";",
            "|",
            "&&",
            "<",
            "> x",
            "é 日本",
            "\t",
        ],
        &["-", "--x=y", "a:b", "HEAD~1", "!", "\\'\""],
    ] {
        let line = quote(argv);
        assert_eq!(words(&line), argv, "{line:?}");
    }
    assert_eq!(quote(&["ls", "-la", "a b"]), "ls -la 'a b'");
    assert_eq!(quote(&["it's"]), "'it'\\''s'");
    assert_eq!(quote::<&str>(&[]), "");
}

mod props {
    use proptest::prelude::*;

    use super::super::{quote, split_words};

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Splitting never panics, whatever the line.
        #[test]
        fn split_never_panics(line in any::<String>()) {
            let _ = split_words(&line);
        }

        /// Words without refused characters quote into a line that splits back to them.
        #[test]
        fn quoted_words_split_back(
            argv in proptest::collection::vec("[^\\p{Cc}\\p{Zs}\\p{Zl}\\p{Zp}\\p{Cf}]*", 0..6)
        ) {
            let line = quote(&argv);
            prop_assert_eq!(split_words(&line), Ok(argv), "{:?}", line);
        }

        /// Accepted lines re-quote into lines that split to the same words.
        #[test]
        fn accepted_lines_requote(line in "[ -~éß日\\t]{0,40}") {
            if let Ok(argv) = split_words(&line) {
                prop_assert_eq!(split_words(&quote(&argv)), Ok(argv));
            }
        }
    }
}
