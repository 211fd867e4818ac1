//! The one place that spawns and signals processes.
//!
//! Every command runs as `sh -c <command>` in a new process group (the shell is the leader, so
//! its pid is the group id), with stdin on `/dev/null` and stdout/stderr piped. Every signal goes
//! to the whole group with `killpg`. Live groups are kept in a [`Registry`] so that the service
//! can kill whatever is left when it stops, even without an async runtime.

use std::collections::HashSet;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

/// A process group, addressed by its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Group(i32);

impl Group {
    /// The group id as sent on the wire.
    pub fn id(self) -> u32 {
        self.0 as u32
    }

    fn signal(self, sig: Option<Signal>) -> Result<(), Errno> {
        killpg(Pid::from_raw(self.0), sig)
    }

    /// SIGSTOP. `Err` when the group no longer exists.
    pub fn pause(self) -> Result<(), Errno> {
        self.signal(Some(Signal::SIGSTOP))
    }

    /// SIGCONT.
    pub fn resume(self) -> Result<(), Errno> {
        self.signal(Some(Signal::SIGCONT))
    }

    /// SIGTERM, then SIGCONT so that a stopped group can act on it.
    pub fn terminate(self) -> Result<(), Errno> {
        self.signal(Some(Signal::SIGTERM))?;
        let _ = self.signal(Some(Signal::SIGCONT));
        Ok(())
    }

    /// SIGKILL.
    pub fn kill(self) {
        let _ = self.signal(Some(Signal::SIGKILL));
    }

    /// Whether a live (non-zombie) process is still in the group.
    ///
    /// `killpg(0)` also counts zombies, and orphaned members stay zombies forever under an init
    /// that does not reap; so when it says "exists", `/proc` decides (when there is one).
    pub fn exists(self) -> bool {
        // EPERM would mean the id was reused by someone else's group: not ours any more.
        if self.signal(None).is_err() {
            return false;
        }
        live_member_in_proc(self.0).unwrap_or(true)
    }

    /// Poll until the group is gone or `bound` has passed; true when it is gone.
    pub async fn wait_gone(self, bound: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        let mut pause = Duration::from_millis(5);
        loop {
            if !self.exists() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// SIGTERM (and SIGCONT) the group, and SIGKILL it if it is still there after `grace`.
    pub async fn terminate_all(self, grace: Duration) {
        if self.terminate().is_err() {
            return;
        }
        if !self.wait_gone(grace).await {
            self.kill();
        }
    }
}

/// `Some(true)` if `/proc` shows a live process in group `pgid`; `None` without `/proc`.
fn live_member_in_proc(pgid: i32) -> Option<bool> {
    // The leader is the usual member; check it before scanning every process.
    if let Some(live) = stat_of(pgid as u32).map(|(state, pgrp)| pgrp == pgid && !is_dead(state)) {
        if live {
            return Some(true);
        }
    }
    let dir = std::fs::read_dir("/proc").ok()?;
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((state, pgrp)) = stat_of(pid) {
            if pgrp == pgid && !is_dead(state) {
                return Some(true);
            }
        }
    }
    Some(false)
}

fn is_dead(state: char) -> bool {
    matches!(state, 'Z' | 'X' | 'x')
}

/// State letter and process group of `pid`, from `/proc/<pid>/stat`.
fn stat_of(pid: u32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Process groups the service has started and not yet seen die.
#[derive(Debug, Clone, Default)]
pub(crate) struct Registry {
    groups: Arc<Mutex<HashSet<Group>>>,
}

impl Registry {
    fn insert(&self, g: Group) {
        self.lock().insert(g);
    }

    fn remove(&self, g: Group) {
        self.lock().remove(&g);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// SIGKILL every group still registered (synchronous: usable from `Drop`).
    pub fn kill_all(&self) {
        for g in self.lock().drain() {
            g.kill();
        }
    }
}

/// Keeps a group registered while a run owns it; kills it if dropped before [`Self::release`].
///
/// Dropped without release only when the task supervising the run is torn down (runtime
/// shutdown, panic): the group must not outlive it.
#[derive(Debug)]
pub(crate) struct GroupGuard {
    group: Group,
    registry: Registry,
    released: bool,
}

impl GroupGuard {
    /// The group is known to be gone: forget it.
    pub fn release(mut self) {
        self.released = true;
        self.registry.remove(self.group);
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if !self.released {
            self.group.kill();
            self.registry.remove(self.group);
        }
    }
}

/// A started command.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub child: Child,
    pub pid: u32,
    pub group: Group,
    pub guard: GroupGuard,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

/// What a run executes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Program {
    /// `<shell> -c <command>`: the default, without an allowlist.
    Shell { shell: PathBuf, command: String },
    /// An argv executed directly, with no shell (allowlist mode): `argv[0]` is the resolved path.
    Argv(Vec<String>),
}

/// Start `program` in `cwd`, in its own process group.
pub(crate) fn spawn(program: &Program, cwd: &Path, registry: &Registry) -> io::Result<Spawned> {
    let mut cmd = match program {
        Program::Shell { shell, command } => {
            let mut cmd = Command::new(shell);
            cmd.arg("-c").arg(command);
            cmd
        }
        Program::Argv(argv) => {
            let (first, rest) = argv
                .split_first()
                .ok_or_else(|| io::Error::other("empty argv"))?;
            let mut cmd = Command::new(first);
            cmd.args(rest);
            cmd
        }
    };
    cmd.current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let mut child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("the child exited before its pid was read"))?;
    let group = Group(pid as i32);
    registry.insert(group);
    let guard = GroupGuard {
        group,
        registry: registry.clone(),
        released: false,
    };
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        // Not reachable with piped stdio; clean up rather than panic.
        drop(guard);
        return Err(io::Error::other("the child's pipes are missing"));
    };
    Ok(Spawned {
        child,
        pid,
        group,
        guard,
        stdout,
        stderr,
    })
}

/// The exit code as the protocol reports it: the code, or minus the signal that killed it.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => -sig,
        (None, None) => -1,
    }
}

/// Raise the soft limit of open files to the hard limit (best effort).
pub(crate) fn raise_nofile_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::debug!("could not raise RLIMIT_NOFILE: {e}");
            }
        }
    }
}
