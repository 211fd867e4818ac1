//! Commands that exercise how output is framed, for the tests that compare framings.

use std::path::{Path, PathBuf};

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
    _dir: tempfile::TempDir,
    fifo: PathBuf,
}

impl Trickle {
    /// A fresh gate (a named pipe in a private temporary folder).
    pub fn new() -> Trickle {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let fifo = dir.path().join("gate");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.expect("mkfifo runs").success(), "mkfifo");
        Trickle { _dir: dir, fifo }
    }

    /// The command line.
    pub fn command(&self) -> String {
        format!(
            "for i in 1 2 3; do echo \"tick $i\"; read -r _ < '{}'; done; echo done",
            self.fifo.display()
        )
    }

    /// Let the command print its next line (it is waiting to read the gate).
    pub async fn release(&self) {
        let fifo: PathBuf = Path::to_owned(&self.fifo);
        tokio::task::spawn_blocking(move || std::fs::write(fifo, "go\n"))
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
