//! Commands that exercise how output is framed, for the tests that compare framings.

use std::path::PathBuf;

/// Interleaved stdout and stderr, bursts of short lines, a line chunked as long lines are
/// (200,001 characters), a line longer than a batched frame's 64 KiB but not chunked (40,000 `é`,
/// 80,000 bytes), invalid UTF-8 on both streams, a line on stdout that the rate-limit detector
/// matches, and last lines without `\n`. Exits 0; runs in any POSIX shell.
pub const MIXED: &str = r#"
for i in $(seq 1 2000); do echo "out $i"; echo "err $i" >&2; done
seq 1 50000
head -c 200000 /dev/zero | tr '\0' x; echo
for i in $(seq 1 40000); do printf '\303\251'; done; echo
printf 'bad \377\376 utf8\n' >&2
printf 'half \342\202\n'
echo 'Claude AI usage limit reached|1900000000'
seq 1 3000 >&2
printf 'last line'
printf 'err last' >&2
"#;

/// A command that trickles: it prints `tick 1`, `tick 2`, `tick 3`, each only once the one
/// before has been let through with [`Trickle::release`], then `done`.
#[derive(Debug)]
pub struct Trickle {
    dir: tempfile::TempDir,
    released: usize,
}

impl Trickle {
    /// Fresh gates: a named pipe per line, in a private temporary folder (one per line, so that
    /// a gate still held open by the test cannot let the next line through).
    pub fn new() -> Trickle {
        let dir = tempfile::tempdir().expect("a temporary folder");
        for i in 1..=3 {
            let made = std::process::Command::new("mkfifo")
                .arg(dir.path().join(format!("gate{i}")))
                .status();
            assert!(made.expect("mkfifo runs").success(), "mkfifo");
        }
        Trickle { dir, released: 0 }
    }

    /// The command line.
    pub fn command(&self) -> String {
        format!(
            "for i in 1 2 3; do echo \"tick $i\"; read -r _ < '{}'/gate$i; done; echo done",
            self.dir.path().display()
        )
    }

    /// Let the command go on past its latest line (it is waiting to read that line's gate).
    pub async fn release(&mut self) {
        self.released += 1;
        let gate: PathBuf = self.dir.path().join(format!("gate{}", self.released));
        tokio::task::spawn_blocking(move || std::fs::write(gate, "go\n"))
            .await
            .expect("the writer task")
            .expect("write to the gate");
    }
}

impl Default for Trickle {
    fn default() -> Self {
        Trickle::new()
    }
}
