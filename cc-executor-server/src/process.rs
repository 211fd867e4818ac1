//! The one place that spawns and signals processes.
//!
//! Every command runs as `<shell> -c <command>` (or an argv, in allowlist mode) under a per-run
//! supervisor process (see [`supervisor`] for the design): a child subreaper that holds every
//! process of the run in its subtree, kills that subtree when the run ends or the service dies,
//! and reports the command's pid and exit status. Supervisors are forked by a small spawner
//! process that the service starts once. The command runs in a new process group it leads,
//! with stdin on `/dev/null` (or a pipe the service writes, see [`Stdio`]) and stdout/stderr
//! piped to the service; or, on a pseudo-terminal, as the leader of a new session whose
//! controlling terminal it is, with stdin, stdout and stderr on the terminal.
//!
//! On the wire, `pid` is the command's process (the shell) and `pgid` its group, which is the
//! same number. Signals go to the whole [`Tree`]: the group with `killpg`, and every other
//! descendant of the supervisor (processes that left the group with `setsid` or `setpgid`)
//! one by one; never to the supervisor itself. Live trees are kept in a [`Registry`] so that
//! the service can kill whatever is left when it stops, even without an async runtime.

mod supervisor;

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tokio::io::Interest;
use tokio::net::unix::pipe;
use tokio::net::UnixDatagram;

use cc_executor_protocol::PtySize;
use supervisor::{FLAG_PTY, MSG_EXITED, MSG_FAILED, MSG_LEN, MSG_STARTED, RUN_FDS};

/// Longest wait for a supervisor to start a command (runs queue while supervisors are forked).
const START_BOUND: Duration = Duration::from_secs(30);

/// `TERM` of a command on a pseudo-terminal.
const PTY_TERM: &str = "xterm-256color";

/// Variables of the service that are secrets: they never reach a command's environment.
const SECRET_ENV: [&str; 2] = ["CC_EXECUTOR_TOKEN", "CC_EXECUTOR_TOKEN_FILE"];

/// Every process of one run: the command's group, and everything else below its supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Tree {
    /// The command's process group (its leader is the command's process).
    group: i32,
    /// The supervisor: never signalled with the tree. It serves this run alone until the
    /// service closes the run's lifeline, so its descendants are this run's processes.
    supervisor: i32,
}

impl Tree {
    /// The group id as sent on the wire.
    pub fn id(self) -> u32 {
        self.group as u32
    }

    /// Send `sig` to the group and to every descendant of the supervisor outside it.
    /// `Err` when neither exists any more.
    fn signal(self, sig: Signal) -> Result<(), Errno> {
        let group = killpg(Pid::from_raw(self.group), sig);
        let mut reached = group.is_ok();
        // A process forked while the tree is walked is missed by that walk: walk again until a
        // walk finds nothing new (a stopped or dying process forks no more).
        let mut done: HashSet<i32> = HashSet::new();
        for _ in 0..4 {
            let mut new = false;
            for (pid, pgrp) in descendants(self.supervisor) {
                if pgrp != self.group && done.insert(pid) {
                    new = true;
                    reached |= kill(Pid::from_raw(pid), sig).is_ok();
                }
            }
            if !new {
                break;
            }
        }
        if reached {
            Ok(())
        } else {
            group
        }
    }

    /// SIGSTOP. `Err` when the tree no longer exists.
    pub fn pause(self) -> Result<(), Errno> {
        self.signal(Signal::SIGSTOP)
    }

    /// SIGCONT.
    pub fn resume(self) -> Result<(), Errno> {
        self.signal(Signal::SIGCONT)
    }

    /// SIGTERM, then SIGCONT so that a stopped process can act on it.
    pub fn terminate(self) -> Result<(), Errno> {
        self.signal(Signal::SIGTERM)?;
        let _ = self.signal(Signal::SIGCONT);
        Ok(())
    }

    /// SIGKILL.
    pub fn kill(self) {
        let _ = self.signal(Signal::SIGKILL);
    }
}

/// The descendants of `root` (not `root` itself) with their process groups, from `/proc`.
fn descendants(root: i32) -> Vec<(i32, i32)> {
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        let Some(children) = children_of(pid) else {
            // Without `/proc/<pid>/task/<tid>/children` (CONFIG_PROC_CHILDREN), scan /proc.
            return descendants_by_scan(root);
        };
        for child in children {
            if let Some((state, pgrp, _)) = stat_of(child as u32) {
                if !is_dead(state) {
                    found.push((child, pgrp));
                }
            }
            queue.push(child);
        }
    }
    found
}

/// Children of every thread of `pid`; `None` when the kernel does not list them.
fn children_of(pid: i32) -> Option<Vec<i32>> {
    let tasks = match std::fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(t) => t,
        Err(_) => return Some(Vec::new()), // Gone: no children.
    };
    let mut children = Vec::new();
    for task in tasks.flatten() {
        let path = task.path().join("children");
        match std::fs::read_to_string(&path) {
            Ok(list) => children.extend(
                list.split_whitespace()
                    .filter_map(|s| s.parse::<i32>().ok()),
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound && task.path().exists() => return None,
            Err(_) => {}
        }
    }
    Some(children)
}

fn descendants_by_scan(root: i32) -> Vec<(i32, i32)> {
    let mut all: Vec<(i32, i32, i32)> = Vec::new(); // (pid, ppid, pgrp)
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if let Some((state, pgrp, ppid)) = stat_of(pid as u32) {
                if !is_dead(state) {
                    all.push((pid, ppid, pgrp));
                }
            }
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(parent) = queue.pop() {
        for &(pid, ppid, pgrp) in &all {
            if ppid == parent && pid != root {
                found.push((pid, pgrp));
                queue.push(pid);
            }
        }
    }
    found
}

fn is_dead(state: char) -> bool {
    matches!(state, 'Z' | 'X' | 'x')
}

/// State letter, process group and parent of `pid`, from `/proc/<pid>/stat`.
fn stat_of(pid: u32) -> Option<(char, i32, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp, ppid))
}

/// The spawner process, and the runs the service has started and not yet seen end.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    trees: Arc<Mutex<HashSet<Tree>>>,
    spawner: Arc<Mutex<Option<Arc<Spawner>>>>,
}

impl Registry {
    /// Start the spawner (see [`supervisor`]): the service forks it while still small.
    pub fn new() -> io::Result<Self> {
        Ok(Registry {
            trees: Arc::default(),
            spawner: Arc::new(Mutex::new(Some(Arc::new(Spawner::start()?)))),
        })
    }

    fn insert(&self, t: Tree) {
        self.lock().insert(t);
    }

    fn remove(&self, t: Tree) {
        self.lock().remove(&t);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Tree>> {
        self.trees.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The spawner; a new one if `dead` is the current one (it was killed).
    fn spawner(&self, dead: Option<&Arc<Spawner>>) -> io::Result<Arc<Spawner>> {
        let mut current = self.spawner.lock().unwrap_or_else(|p| p.into_inner());
        match &*current {
            Some(s) if dead.is_none_or(|d| !Arc::ptr_eq(d, s)) => Ok(s.clone()),
            _ => {
                tracing::warn!("the process spawner is gone; starting a new one");
                let s = Arc::new(Spawner::start()?);
                *current = Some(s.clone());
                Ok(s)
            }
        }
    }

    /// SIGKILL every tree still registered (synchronous: usable from `Drop`). Their
    /// supervisors end the rest once their lifelines close.
    pub fn kill_all(&self) {
        for t in self.lock().drain() {
            t.kill();
        }
    }
}

/// The service's end of the spawner's socket; dropping it ends the spawner.
#[derive(Debug)]
struct Spawner {
    /// A `SOCK_SEQPACKET` socket: tokio's datagram type only lends it readiness.
    sock: UnixDatagram,
}

impl Spawner {
    fn start() -> io::Result<Spawner> {
        let sock = supervisor::start_spawner()?;
        set_nonblocking(sock.as_raw_fd())?;
        let sock = std::os::unix::net::UnixDatagram::from(sock);
        Ok(Spawner {
            sock: UnixDatagram::from_std(sock)?,
        })
    }

    /// Hand a run's descriptors and flags to the spawner.
    async fn send(&self, fds: &[RawFd; RUN_FDS], flags: u8) -> io::Result<()> {
        let fd = self.sock.as_raw_fd();
        self.sock
            .async_io(Interest::WRITABLE, || supervisor::send_run(fd, fds, flags))
            .await
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Keeps a tree registered while a run owns it; kills it if dropped before [`Self::release`].
///
/// Dropped without release only when the task supervising the run is torn down (runtime
/// shutdown, panic): the tree must not outlive it.
#[derive(Debug)]
pub(crate) struct TreeGuard {
    tree: Tree,
    registry: Registry,
    released: bool,
}

impl TreeGuard {
    /// The tree is known to be gone: forget it.
    pub fn release(mut self) {
        self.released = true;
        self.registry.remove(self.tree);
    }
}

impl Drop for TreeGuard {
    fn drop(&mut self) {
        if !self.released {
            // The supervisor ends the rest when the run's `Supervisor` (the lifeline) is dropped.
            self.tree.kill();
            self.registry.remove(self.tree);
        }
    }
}

/// The service's side of a run's supervisor.
///
/// Dropping it closes the lifeline: the supervisor then kills whatever is left of the tree
/// (and may go on to serve another run).
#[derive(Debug)]
pub(crate) struct Supervisor {
    /// The write end of the lifeline; the supervisor ends the tree once it is closed.
    lifeline: Option<OwnedFd>,
    /// The supervisor's reports; end of file once the tree is empty (it closes its end).
    status: pipe::Receiver,
    buf: [u8; MSG_LEN],
    filled: usize,
    /// The command's wait status, once reported.
    exit: Option<ExitStatus>,
    /// The whole tree is gone.
    gone: bool,
}

impl Supervisor {
    /// The next report, `None` at end of file (cancel-safe).
    async fn next_msg(&mut self) -> Option<(i32, i32, i32)> {
        while !self.gone {
            if self.status.readable().await.is_err() {
                self.gone = true;
                break;
            }
            match self.status.try_read(&mut self.buf[self.filled..]) {
                Ok(0) => self.gone = true,
                Ok(n) => {
                    self.filled += n;
                    if self.filled == MSG_LEN {
                        self.filled = 0;
                        return Some(supervisor::decode_msg(&self.buf));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => self.gone = true,
            }
        }
        None
    }

    /// The command's exit status once it has ended (cancel-safe).
    ///
    /// `None` if the supervisor ended without reporting it (someone killed it).
    pub async fn command_exit(&mut self) -> Option<ExitStatus> {
        while self.exit.is_none() {
            match self.next_msg().await {
                Some((MSG_EXITED, status, empty)) => {
                    self.exit = Some(ExitStatus::from_raw(status));
                    // Nothing else was left: the tree is gone.
                    self.gone |= empty == 1;
                }
                Some(_) => {}
                None => return None,
            }
        }
        self.exit
    }

    /// Ask the supervisor to SIGKILL whatever is left of the tree and exit.
    pub fn end(&mut self) {
        self.lifeline = None;
    }

    /// Whether the whole tree is gone.
    pub fn is_gone(&mut self) -> bool {
        if !self.gone {
            // A direct read: the runtime may not have seen the end of file yet.
            let mut byte = [0u8; MSG_LEN];
            // SAFETY: reading into a local buffer from a descriptor we own (non-blocking).
            let n = unsafe {
                libc::read(
                    self.status.as_raw_fd(),
                    byte.as_mut_ptr().cast(),
                    MSG_LEN - self.filled,
                )
            };
            if n == 0 {
                self.gone = true;
            } else if n > 0 {
                // A report raced with the check: keep it for `next_msg`.
                let n = n as usize;
                self.buf[self.filled..self.filled + n].copy_from_slice(&byte[..n]);
                self.filled += n;
                if self.filled == MSG_LEN {
                    self.filled = 0;
                    if let (MSG_EXITED, status, empty) = supervisor::decode_msg(&self.buf) {
                        self.exit.get_or_insert(ExitStatus::from_raw(status));
                        self.gone |= empty == 1;
                    }
                }
            }
        }
        self.gone
    }

    /// Wait up to `bound` for the whole tree to be gone; true when it is.
    pub async fn wait_gone(&mut self, bound: Duration) -> bool {
        let _ =
            tokio::time::timeout(bound, async { while self.next_msg().await.is_some() {} }).await;
        self.gone
    }

    /// SIGTERM (and SIGCONT) the tree; after `grace`, have the supervisor SIGKILL what is
    /// left. True when everything is gone within `grace` plus `bound`.
    pub async fn terminate_all(&mut self, tree: Tree, grace: Duration, bound: Duration) -> bool {
        if self.is_gone() {
            return true;
        }
        let _ = tree.terminate();
        if self.wait_gone(grace).await {
            return true;
        }
        self.end();
        self.wait_gone(bound).await
    }
}

/// A started command.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub supervisor: Supervisor,
    /// The command's process (the shell, or the program in allowlist mode).
    pub pid: u32,
    pub tree: Tree,
    pub guard: TreeGuard,
    /// stdout, or on a pseudo-terminal the terminal's master side (stdout and stderr merged).
    pub stdout: pipe::Receiver,
    /// `None` on a pseudo-terminal.
    pub stderr: Option<pipe::Receiver>,
    /// Where input for the command goes, unless its stdin is `/dev/null`.
    pub stdin: Option<StdinPipe>,
}

/// How a command's stdin, stdout and stderr are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stdio {
    /// stdin on `/dev/null`, stdout and stderr on pipes.
    Null,
    /// stdin on a pipe the service writes too.
    Pipe,
    /// stdin, stdout and stderr on a new pseudo-terminal of this size.
    Pty(PtySize),
}

/// The service's end of a command's stdin.
#[derive(Debug)]
pub(crate) struct StdinPipe {
    /// The pipe's write end, or the terminal's master side.
    pub writer: pipe::Sender,
    /// Whether it is a terminal (end of file is Ctrl-D there, not a close).
    pub pty: bool,
}

/// What a run executes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Program {
    /// `<shell> -c <command>`: the default, without an allowlist.
    Shell { shell: PathBuf, command: String },
    /// An argv executed directly, with no shell (allowlist mode): `argv[0]` is the resolved path.
    Argv(Vec<String>),
}

/// A pipe whose ends are closed on `exec`.
fn pipe_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors `pipe2` writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just opened and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A new pseudo-terminal of `size`: (master, slave), both closed on `exec`.
fn open_pty(size: PtySize) -> io::Result<(OwnedFd, OwnedFd)> {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let flags = OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC;
    let slave = rustix::fs::open(name.as_c_str(), flags, Mode::empty())?;
    let winsize = rustix::termios::Winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&slave, winsize)?;
    Ok((master, slave))
}

/// The run's spec, in a memory file the supervisor maps. `term` replaces `TERM`.
fn spec_file(program: &Program, cwd: &Path, term: Option<&str>) -> io::Result<OwnedFd> {
    let (path, argv): (PathBuf, Vec<&[u8]>) = match program {
        Program::Shell { shell, command } => (
            shell.clone(),
            vec![shell.as_os_str().as_bytes(), b"-c", command.as_bytes()],
        ),
        Program::Argv(argv) => {
            let first = argv.first().ok_or_else(|| io::Error::other("empty argv"))?;
            (
                PathBuf::from(first),
                argv.iter().map(|a| a.as_bytes()).collect(),
            )
        }
    };
    let path = on_path(&path)?;
    let mut env: Vec<OsString> = std::env::vars_os()
        .filter(|(k, _)| !SECRET_ENV.iter().any(|s| k == *s))
        .filter(|(k, _)| term.is_none() || k != "TERM")
        .map(|(mut k, v)| {
            k.push("=");
            k.push(v);
            k
        })
        .collect();
    env.extend(term.map(|t| OsString::from(format!("TERM={t}"))));
    let env: Vec<&[u8]> = env.iter().map(|e| e.as_bytes()).collect();
    let spec = supervisor::encode_spec(
        path.as_os_str().as_bytes(),
        cwd.as_os_str().as_bytes(),
        &argv,
        &env,
    )
    .ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the command contains a NUL byte",
        )
    })?;
    // SAFETY: memfd_create with a static name; the descriptor is ours.
    let fd = unsafe { libc::memfd_create(c"cc-executor-run".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just opened, owned by nothing else.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(&spec)?;
    Ok(file.into())
}

/// `path` as is when it names a directory entry (it holds a `/`), else found on `PATH`.
fn on_path(path: &Path) -> io::Result<PathBuf> {
    if path.as_os_str().as_bytes().contains(&b'/') {
        return Ok(path.to_owned());
    }
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&dirs)
        .map(|d| d.join(path))
        .find(|p| p.is_file())
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
}

/// The command's ends of its stdin, stdout and stderr, and the service's ends.
struct Ends {
    child: [OwnedFd; 3],
    stdout: pipe::Receiver,
    stderr: Option<pipe::Receiver>,
    stdin: Option<StdinPipe>,
}

impl Ends {
    fn new(stdio: Stdio) -> io::Result<Ends> {
        if let Stdio::Pty(size) = stdio {
            let (master, slave) = open_pty(size)?;
            set_nonblocking(master.as_raw_fd())?;
            let writer = pipe::Sender::from_owned_fd_unchecked(master.try_clone()?)?;
            return Ok(Ends {
                child: [slave.try_clone()?, slave.try_clone()?, slave],
                // Reading the master fails with EIO once every slave descriptor is closed: the
                // reader takes that as the end of the output.
                stdout: pipe::Receiver::from_owned_fd_unchecked(master)?,
                stderr: None,
                stdin: Some(StdinPipe { writer, pty: true }),
            });
        }
        let (stdin_r, stdin) = match stdio {
            Stdio::Pipe => {
                let (r, w) = pipe_pair()?;
                let writer = pipe::Sender::from_owned_fd(w)?;
                (r, Some(StdinPipe { writer, pty: false }))
            }
            _ => (std::fs::File::open("/dev/null")?.into(), None),
        };
        let (stdout_r, stdout_w) = pipe_pair()?;
        let (stderr_r, stderr_w) = pipe_pair()?;
        Ok(Ends {
            child: [stdin_r, stdout_w, stderr_w],
            stdout: pipe::Receiver::from_owned_fd(stdout_r)?,
            stderr: Some(pipe::Receiver::from_owned_fd(stderr_r)?),
            stdin,
        })
    }
}

/// Start `program` in `cwd` under a supervisor, in a process group of its own.
pub(crate) async fn spawn(
    program: &Program,
    cwd: &Path,
    stdio: Stdio,
    registry: &Registry,
) -> io::Result<Spawned> {
    let pty = matches!(stdio, Stdio::Pty(_));
    let spec = spec_file(program, cwd, pty.then_some(PTY_TERM))?;
    let Ends {
        child,
        stdout,
        stderr,
        stdin,
    } = Ends::new(stdio)?;
    let (lifeline_r, lifeline_w) = pipe_pair()?;
    let (status_r, status_w) = pipe_pair()?;
    let fds = [
        spec.as_raw_fd(),
        child[1].as_raw_fd(),
        child[2].as_raw_fd(),
        lifeline_r.as_raw_fd(),
        status_w.as_raw_fd(),
        child[0].as_raw_fd(),
    ];
    let flags = if pty { FLAG_PTY } else { 0 };
    let spawner = registry.spawner(None)?;
    if let Err(e) = spawner.send(&fds, flags).await {
        tracing::debug!("could not reach the spawner: {e}");
        registry.spawner(Some(&spawner))?.send(&fds, flags).await?;
    }
    // The supervisor has its copies; from here on, dropping `supervisor` (on any error) closes
    // the lifeline: it kills what it started and exits. (The service keeps no slave side of a
    // terminal: the output ends once the command's tree has closed it.)
    drop((spec, child, lifeline_r, status_w));
    let mut supervisor = Supervisor {
        lifeline: Some(lifeline_w),
        status: pipe::Receiver::from_owned_fd(status_r)?,
        buf: [0; MSG_LEN],
        filled: 0,
        exit: None,
        gone: false,
    };
    // Bounded, in case the spawner's side is stuck (stopped by someone, say). A run that starts
    // after all finds its lifeline closed and is killed at once.
    let (supervisor_pid, pid) = match tokio::time::timeout(START_BOUND, supervisor.next_msg()).await
    {
        Ok(Some((MSG_STARTED, s, c))) if s > 0 && c > 0 => (s, c),
        Ok(Some((MSG_FAILED, errno, _))) => return Err(io::Error::from_raw_os_error(errno)),
        Ok(_) => return Err(io::Error::other("the process supervisor failed")),
        Err(_) => {
            return Err(io::Error::other(
                "the process supervisor did not start the command in time",
            ))
        }
    };
    let tree = Tree {
        group: pid,
        supervisor: supervisor_pid,
    };
    registry.insert(tree);
    let guard = TreeGuard {
        tree,
        registry: registry.clone(),
        released: false,
    };
    Ok(Spawned {
        supervisor,
        pid: pid as u32,
        tree,
        guard,
        stdout,
        stderr,
        stdin,
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
