//! The spawner and the per-run supervisors: the processes between the service and its commands.
//!
//! # Why, and why this way
//!
//! A process group does not contain a command: anything that calls `setsid` or `setpgid`, or
//! double-forks into a new session, leaves it, and when the service dies (SIGKILL included)
//! nobody kills the group. So every run gets a **supervisor** process above the command:
//!
//! - it is a *child subreaper* (`PR_SET_CHILD_SUBREAPER`): whatever the command starts, however
//!   it detaches, is reparented to it when its parent dies, so its subtree holds every process
//!   of the run, and `/proc/<pid>/task/*/children` finds them all;
//! - it holds the read end of a *lifeline* pipe whose write end only the service holds. The
//!   kernel closes that end when the service ends, however it ends (SIGKILL, a crash, the MCP
//!   server that embeds the service killed by its host), and the service closes it when the run
//!   ends. Either way the supervisor SIGKILLs its whole subtree and reaps it. This needs
//!   no `PR_SET_PDEATHSIG`, whose signal follows the *thread* that forked (a tokio thread may
//!   retire long before the service ends) and needs a `getppid` re-check against its race;
//! - it reports on a *status* pipe: its pid and the command's once the command has been
//!   executed (or why it could not be), then the command's wait status. The service learns
//!   that the command ended while background or escaped processes still run (it gives them a
//!   drain window, as it always did) and, from a flag on that report or the pipe's end of
//!   file, that the whole tree is gone.
//! - It serves one run at a time: until the service closes the run's lifeline, its
//!   descendants are that run's processes, which is how the service finds the escaped ones.
//!
//! Supervisors are not forked from the service: a `fork` copies the page tables of the whole
//! service (large with many sessions) while stalling its threads, and leaves copy-on-write
//! faults behind for as long as the child lives. Measured with a supervisor forked from the
//! service for each run, 1,000 concurrent runs stalled the service until most of their
//! connections timed out. Instead a small **spawner** is forked once, when the service starts
//! (double-forked, so it is nobody's zombie). It keeps a couple of supervisors forked and
//! waiting on a `SOCK_SEQPACKET` socket; for each run the service sends the run's descriptors
//! on it, one waiting supervisor takes them and starts the command the way `posix_spawn` does,
//! and the spawner forks a replacement if too few are left waiting. A supervisor whose run is
//! over goes back to waiting while few others do, so a steady stream of runs costs no `fork`
//! but the command's own. Re-executing the service binary in a supervisor mode would avoid
//! the forks too, but the service is also embedded in other programs (the MCP server, tests),
//! which could not be re-executed that way.
//!
//! The spawner and the supervisors are forks of a multithreaded program and never `exec`: they
//! run only async-signal-safe code (raw system calls on stack or `mmap`ed buffers, no
//! allocation, no locks, no panics).
//!
//! The command runs in a process group of its own (its pid is the group id), so that the
//! service's PAUSE (SIGSTOP to the group) never stops its supervisor. On a pseudo-terminal
//! ([`FLAG_PTY`]) it leads a session of its own instead (`setsid`, which also makes that group),
//! with the terminal as its controlling terminal: the service's descriptors for stdin, stdout
//! and stderr are then all the terminal's slave side.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use libc::{c_int, pid_t};

/// Descriptors the service sends with each run, in this order.
pub(super) const RUN_FDS: usize = 6;
/// Index of the run's spec (a memfd: see [`encode_spec`]).
pub(super) const FD_SPEC: usize = 0;
/// Index of the write end of the command's stdout pipe.
pub(super) const FD_STDOUT: usize = 1;
/// Index of the write end of the command's stderr pipe.
pub(super) const FD_STDERR: usize = 2;
/// Index of the read end of the lifeline.
pub(super) const FD_LIFELINE: usize = 3;
/// Index of the write end of the status pipe.
pub(super) const FD_STATUS: usize = 4;
/// Index of the command's stdin: `/dev/null`, the read end of a pipe, or a terminal.
pub(super) const FD_STDIN: usize = 5;

/// Run flag (the byte sent with the descriptors): stdin, stdout and stderr are a terminal that
/// becomes the command's controlling terminal.
pub(super) const FLAG_PTY: u8 = 1;

/// Status message: the command runs; `a` is the supervisor's pid, `b` the command's.
pub(super) const MSG_STARTED: i32 = 1;
/// Status message: the command could not be started; `a` is the errno.
pub(super) const MSG_FAILED: i32 = 2;
/// Status message: the command exited; `a` is its wait status, `b` is 1 when nothing else of
/// the tree was left.
pub(super) const MSG_EXITED: i32 = 3;
/// Bytes of a status message: kind, a, b, reserved (native-endian `i32`s). Shorter than
/// `PIPE_BUF`, so each is written and read whole.
pub(super) const MSG_LEN: usize = 16;

/// How often the supervisor polls while it kills its subtree (a SIGCHLD wakes it earlier).
const KILL_POLL_MS: c_int = 20;

/// The run's spec: program path, working directory, argv and environment, each NUL-terminated,
/// with the two counts in decimal. `None` if a string holds a NUL byte (it could not be
/// passed to `execve`).
pub(super) fn encode_spec<'a>(
    path: &'a [u8],
    cwd: &'a [u8],
    argv: &[&'a [u8]],
    env: &[&'a [u8]],
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut field = |s: &[u8]| {
        if s.contains(&0) {
            return false;
        }
        out.extend_from_slice(s);
        out.push(0);
        true
    };
    let ok = field(path)
        && field(cwd)
        && field(argv.len().to_string().as_bytes())
        && argv.iter().all(|a| field(a))
        && field(env.len().to_string().as_bytes())
        && env.iter().all(|e| field(e));
    ok.then_some(out)
}

/// Start the spawner; the returned socket is the service's end.
pub(super) fn start_spawner() -> io::Result<OwnedFd> {
    let mut pair = [0; 2];
    // SAFETY: `pair` has room for the two descriptors.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just opened and belong to nothing else.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    let theirs_fd = std::os::fd::AsRawFd::as_raw_fd(&theirs);
    // SAFETY: the children run only async-signal-safe code (`fork`, `_exit`, the spawner).
    let middle = unsafe { libc::fork() };
    match middle {
        -1 => return Err(io::Error::last_os_error()),
        0 => unsafe {
            // Fork again and leave: the spawner is reparented, so no one needs to reap it.
            match libc::fork() {
                0 => spawner_main(theirs_fd),
                -1 => libc::_exit(1),
                _ => libc::_exit(0),
            }
        },
        _ => {}
    }
    drop(theirs);
    let mut st: c_int = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(middle, &mut st, 0) };
        if r == middle {
            break;
        }
        if r < 0 && errno() != libc::EINTR {
            return Err(io::Error::last_os_error());
        }
    }
    if !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) {
        return Err(io::Error::other("could not fork the process spawner"));
    }
    Ok(ours)
}

/// Send a run's descriptors and flags to the spawner (non-blocking).
pub(super) fn send_run(sock: RawFd, fds: &[RawFd; RUN_FDS], flags: u8) -> io::Result<()> {
    let payload = [flags; 1];
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: 1,
    };
    let mut control = [0u64; 8];
    let fd_bytes = std::mem::size_of_val(fds) as u32;
    // SAFETY: plain arithmetic on the constant size.
    let space = unsafe { libc::CMSG_SPACE(fd_bytes) } as usize;
    // SAFETY: zeroed is a valid msghdr; every pointer set below outlives the call.
    unsafe {
        let mut msg: libc::msghdr = MaybeUninit::zeroed().assume_init();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(fd_bytes) as _;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr().cast::<u8>(),
            libc::CMSG_DATA(cmsg),
            fd_bytes as usize,
        );
        if libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Decode a status message.
pub(super) fn decode_msg(buf: &[u8; MSG_LEN]) -> (i32, i32, i32) {
    let word = |i: usize| i32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    (word(0), word(4), word(8))
}

// ---------------------------------------------------------------------------------------------
// Everything below runs in the spawner or a supervisor: async-signal-safe code only.

/// Supervisors the spawner keeps waiting for a run, so that no `fork` lies on a run's way: the
/// service's message wakes one of them directly.
const IDLE: usize = 2;
/// Most supervisors waiting at once: one that ends its run goes back to waiting (no fork, no
/// exit per run) while fewer wait, and exits otherwise.
const MAX_IDLE: usize = 4;

/// The waiting supervisors, in memory shared by the spawner and them: each slot holds a
/// waiting supervisor's pid, -1 while the spawner forks one into it, or 0 when free.
struct Pool {
    slots: [AtomicI32; MAX_IDLE],
}

impl Pool {
    fn waiting(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.load(Ordering::SeqCst) != 0)
            .count()
    }

    /// Take a free slot for `pid`; its index.
    fn claim(&self, pid: pid_t) -> Option<usize> {
        self.slots.iter().position(|s| {
            s.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        })
    }

    /// Free the slot of `pid`, if it has one.
    fn release(&self, pid: pid_t) {
        for s in &self.slots {
            let _ = s.compare_exchange(pid, 0, Ordering::SeqCst, Ordering::SeqCst);
        }
    }
}

/// What a waiting supervisor keeps between runs.
#[derive(Clone, Copy)]
struct Waiting<'a> {
    sock: RawFd,
    /// A supervisor that takes a run writes a byte here, so that the spawner tops up the pool.
    taken: RawFd,
    /// The spawner's signalfd (it reads the signals of whichever process reads it).
    signals: RawFd,
    pool: &'a Pool,
}

/// The spawner's life: keep [`IDLE`] supervisors waiting on the service's socket; never
/// returns.
unsafe fn spawner_main(sock: RawFd) -> ! {
    close_all_but(&[sock]);
    // Descriptors 0-2 on /dev/null, so that received descriptors are never 0-2.
    for _ in 0..3 {
        libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
    }
    // Out of the service's process group: a terminal's Ctrl-C is for the service to handle.
    libc::setpgid(0, 0);
    reset_signals();
    let watched = watched_signals();
    libc::sigprocmask(libc::SIG_BLOCK, &watched, std::ptr::null_mut());
    let signals = libc::signalfd(-1, &watched, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
    let mut taken = [-1; 2];
    if libc::pipe2(taken.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) != 0 {
        libc::_exit(1);
    }
    let shared = libc::mmap(
        std::ptr::null_mut(),
        std::mem::size_of::<Pool>(),
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED | libc::MAP_ANONYMOUS,
        -1,
        0,
    );
    if shared == libc::MAP_FAILED {
        libc::_exit(1);
    }
    // SAFETY: zero-filled memory is a valid `Pool` (all slots free); it lives until we exit.
    let pool = &*shared.cast::<Pool>();
    let waiting = Waiting {
        sock,
        taken: taken[1],
        signals,
        pool,
    };
    loop {
        let mut short = false;
        for _ in pool.waiting()..IDLE {
            let Some(slot) = pool.claim(-1) else { break };
            match libc::fork() {
                0 => {
                    libc::close(taken[0]);
                    wait_for_runs(waiting, slot)
                }
                -1 => {
                    let _ = pool.slots[slot].compare_exchange(
                        -1,
                        0,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                    short = true;
                }
                pid => {
                    // Unless the new supervisor has already taken a run and freed the slot.
                    let _ = pool.slots[slot].compare_exchange(
                        -1,
                        pid,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                }
            }
        }
        let mut polled = [
            // Only to see the service go (POLLHUP): the waiting supervisors read the runs.
            libc::pollfd {
                fd: sock,
                events: 0,
                revents: 0,
            },
            libc::pollfd {
                fd: taken[0],
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: signals,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Retry a failed fork later; without a signalfd (never seen), poll for exits.
        let timeout = if short || signals < 0 { 100 } else { -1 };
        if libc::poll(polled.as_mut_ptr(), 3, timeout) < 0 {
            continue;
        }
        if polled[0].revents != 0 || drain_signals(signals) {
            // The service is gone (or we are told to go): the supervisors carry on alone.
            libc::_exit(0);
        }
        let mut bytes = [0u8; 64];
        while libc::read(taken[0], bytes.as_mut_ptr().cast(), bytes.len()) > 0 {}
        // Reap supervisors that have exited; one that was waiting must be replaced.
        loop {
            let pid = libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG | libc::__WALL);
            if pid <= 0 {
                break;
            }
            pool.release(pid);
        }
    }
}

/// A supervisor's life: wait for a run, supervise it, and wait again while the pool has room.
///
/// `slot` is this supervisor's slot in the pool: it holds our pid, or still -1 right after the
/// spawner forked us.
unsafe fn wait_for_runs(w: Waiting<'_>, mut slot: usize) -> ! {
    let me = libc::getpid();
    loop {
        let mut fds: [RawFd; RUN_FDS] = [-1; RUN_FDS];
        let mut flags = 0u8;
        loop {
            let mut polled = [
                libc::pollfd {
                    fd: w.sock,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: w.signals,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            if libc::poll(polled.as_mut_ptr(), 2, -1) < 0 {
                continue;
            }
            if drain_signals(w.signals) {
                libc::_exit(0);
            }
            if polled[0].revents == 0 {
                continue;
            }
            match receive_run(w.sock, &mut fds, &mut flags) {
                Received::Run => break,
                // Another waiting supervisor took it.
                Received::Nothing => continue,
                Received::End => libc::_exit(0),
            }
        }
        // No longer waiting: free the slot, and have the spawner top the pool up.
        if let Some(s) = w.pool.slots.get(slot) {
            if s.compare_exchange(me, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                let _ = s.compare_exchange(-1, 0, Ordering::SeqCst, Ordering::SeqCst);
            }
        }
        write_all(w.taken, &[1]);
        supervise(&fds, flags, w.signals);
        // Wait for another run if the pool has room (no fork for the next run), else go.
        match w.pool.claim(me) {
            Some(s) => slot = s,
            None => libc::_exit(0),
        }
    }
}

enum Received {
    Run,
    Nothing,
    End,
}

/// Receive one run's descriptors and flags.
unsafe fn receive_run(sock: RawFd, fds: &mut [RawFd; RUN_FDS], flags: &mut u8) -> Received {
    let mut payload = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 16];
    let mut msg: libc::msghdr = MaybeUninit::zeroed().assume_init();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT);
    if n == 0 {
        return Received::End;
    }
    if n < 0 {
        let e = errno();
        return if e == libc::EINTR || e == libc::EAGAIN {
            Received::Nothing
        } else {
            Received::End
        };
    }
    let mut got = 0;
    let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
    while !cmsg.is_null() {
        if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
            let data = libc::CMSG_DATA(cmsg);
            let len = ((*cmsg).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            let count = len / std::mem::size_of::<RawFd>();
            for i in 0..count {
                let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                if got < RUN_FDS {
                    fds[got] = fd;
                    got += 1;
                } else {
                    libc::close(fd);
                }
            }
        }
        cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
    }
    if got == RUN_FDS && msg.msg_flags & libc::MSG_CTRUNC == 0 {
        *flags = payload[0];
        Received::Run
    } else {
        for fd in fds.iter().take(got) {
            libc::close(*fd);
        }
        Received::Nothing
    }
}

/// Stack of the command's process between `clone` and `execve`.
const EXEC_STACK: usize = 128 * 1024;

/// What the command's process needs before `execve`; shared with the supervisor (`CLONE_VM`).
struct Launch<'a> {
    spec: &'a Spec,
    stdin: RawFd,
    /// Start a session on the terminal `stdin` (see [`FLAG_PTY`]).
    pty: bool,
    stdout: RawFd,
    stderr: RawFd,
    /// Set by the command's process when it cannot `execve`.
    errno: c_int,
}

/// Supervise one run: start the command, watch over its subtree until it is empty, and
/// close the run's descriptors (the status pipe's end of file tells the service).
unsafe fn supervise(fds: &[RawFd; RUN_FDS], flags: u8, signals: RawFd) {
    let status = fds[FD_STATUS];
    let done = |failure: Option<c_int>| {
        if let Some(e) = failure {
            report(status, MSG_FAILED, e, 0);
        }
        for fd in fds {
            libc::close(*fd);
        }
    };
    let Some(spec) = Spec::read(fds[FD_SPEC]) else {
        return done(Some(libc::EINVAL));
    };
    if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 {
        spec.unmap();
        return done(Some(errno()));
    }
    // Like `posix_spawn`: the command's process shares our memory and runs on a stack of its
    // own until it calls `execve`, and we are suspended until then (no page tables copied, and
    // its result is known at once).
    let stack = libc::mmap(
        std::ptr::null_mut(),
        EXEC_STACK,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
        -1,
        0,
    );
    if stack == libc::MAP_FAILED {
        spec.unmap();
        return done(Some(errno()));
    }
    let mut launch = Launch {
        spec: &spec,
        stdin: fds[FD_STDIN],
        pty: flags & FLAG_PTY != 0,
        stdout: fds[FD_STDOUT],
        stderr: fds[FD_STDERR],
        errno: 0,
    };
    let command = libc::clone(
        run_command,
        stack.cast::<u8>().add(EXEC_STACK).cast(),
        libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
        (&mut launch as *mut Launch<'_>).cast(),
    );
    let clone_errno = errno();
    libc::munmap(stack, EXEC_STACK);
    // SAFETY: the command's process has exec'd or exited: nothing else writes `launch`.
    let failed = std::ptr::read_volatile(&launch.errno);
    spec.unmap();
    for i in [FD_SPEC, FD_STDOUT, FD_STDERR, FD_STDIN] {
        libc::close(fds[i]);
    }
    if command < 0 {
        report(status, MSG_FAILED, clone_errno, 0);
    } else if failed != 0 {
        report(status, MSG_FAILED, failed, 0);
    } else {
        report(status, MSG_STARTED, libc::getpid(), command);
    }
    if command > 0 {
        watch(command, fds[FD_LIFELINE], status, signals);
    }
    // The tree is empty: end of file on the status pipe says so.
    libc::close(status);
    // Serve no other run before the service is done with this one (it closes the lifeline):
    // until then it may still signal this run's tree, which is found through our pid.
    let mut polled = [
        libc::pollfd {
            fd: fds[FD_LIFELINE],
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: signals,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        if libc::poll(polled.as_mut_ptr(), 2, -1) < 0 {
            continue;
        }
        if drain_signals(signals) {
            libc::_exit(0);
        }
        if polled[0].revents != 0 {
            break;
        }
    }
    libc::close(fds[FD_LIFELINE]);
}

/// In the command's process (sharing the supervisor's memory): set it up and `execve`.
extern "C" fn run_command(arg: *mut libc::c_void) -> c_int {
    // SAFETY: `arg` is the supervisor's `Launch`, alive while it is suspended in `clone`. Only
    // system calls are made here, as in `posix_spawn`'s child.
    unsafe {
        let launch = &mut *arg.cast::<Launch<'_>>();
        let mut empty = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(empty.as_mut_ptr());
        libc::sigprocmask(libc::SIG_SETMASK, empty.as_ptr(), std::ptr::null_mut());
        // The supervisor ignores SIGPIPE; programs expect the default. (The handler table is
        // our own copy: no CLONE_SIGHAND.)
        set_disposition(libc::SIGPIPE, libc::SIG_DFL);
        let own_group = if launch.pty {
            // A new session (and group) whose controlling terminal is the pty.
            libc::setsid() >= 0 && libc::ioctl(launch.stdin, libc::TIOCSCTTY, 0) == 0
        } else {
            libc::setpgid(0, 0) == 0
        };
        let ok = own_group
            && libc::dup2(launch.stdin, 0) >= 0
            && libc::dup2(launch.stdout, 1) >= 0
            && libc::dup2(launch.stderr, 2) >= 0
            && libc::chdir(launch.spec.cwd) == 0;
        if ok {
            libc::execve(launch.spec.path, launch.spec.argv, launch.spec.envp);
        }
        std::ptr::write_volatile(&mut launch.errno, errno().max(1));
        libc::_exit(127)
    }
}

/// The supervisor's watch: reap, report the command's end, and kill the subtree when told to;
/// returns once the subtree is empty.
unsafe fn watch(command: pid_t, lifeline: RawFd, status: RawFd, signals: RawFd) {
    let mut command_alive = true;
    let mut ending = false;
    loop {
        // Reap whatever has exited: the command, or orphans reparented to us.
        let mut exited = None;
        let empty = loop {
            let mut st: c_int = 0;
            let pid = libc::waitpid(-1, &mut st, libc::WNOHANG | libc::__WALL);
            if pid > 0 {
                if pid == command {
                    command_alive = false;
                    exited = Some(st);
                }
                continue;
            }
            if pid == 0 {
                break false;
            }
            if errno() != libc::EINTR {
                break true; // ECHILD: the subtree is empty.
            }
        };
        if let Some(st) = exited {
            // Whether anything is left is said at once: the common case needs no other report.
            report(status, MSG_EXITED, st, i32::from(empty));
        }
        if empty {
            return;
        }
        if ending {
            // The command's group first (while its leader lives, the id cannot be reused),
            // then every child: their own children are reparented to us as they die and get
            // killed in a later round.
            if command_alive {
                libc::kill(-command, libc::SIGKILL);
            }
            kill_children(libc::SIGKILL);
        }
        let mut polled = [
            libc::pollfd {
                fd: signals,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if ending { -1 } else { lifeline },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Without a signalfd (never seen) a SIGCHLD cannot wake us: poll instead.
        let timeout = if ending || signals < 0 {
            KILL_POLL_MS
        } else {
            -1
        };
        if libc::poll(polled.as_mut_ptr(), 2, timeout) < 0 {
            continue;
        }
        if polled[1].revents != 0 {
            ending = true;
        }
        if drain_signals(signals) {
            ending = true;
        }
    }
}

/// The spec, mapped into memory, with the pointer arrays `execve` takes.
struct Spec {
    path: *const libc::c_char,
    cwd: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    map: (*mut libc::c_void, usize),
    table: (*mut libc::c_void, usize),
}

impl Spec {
    /// Map and parse the spec in memfd `fd`; `None` if it is malformed.
    unsafe fn read(fd: RawFd) -> Option<Spec> {
        let mut st = MaybeUninit::<libc::stat>::zeroed().assume_init();
        if libc::fstat(fd, &mut st) != 0 || st.st_size <= 0 {
            return None;
        }
        let len = usize::try_from(st.st_size).ok()?;
        let map = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            fd,
            0,
        );
        if map == libc::MAP_FAILED {
            return None;
        }
        let spec = Self::parse(map, len);
        if spec.is_none() {
            libc::munmap(map, len);
        }
        spec
    }

    /// Release the mappings (a supervisor serves many runs).
    unsafe fn unmap(&self) {
        libc::munmap(self.table.0, self.table.1);
        libc::munmap(self.map.0, self.map.1);
    }

    unsafe fn parse(map: *mut libc::c_void, len: usize) -> Option<Spec> {
        let bytes = std::slice::from_raw_parts(map.cast::<u8>(), len);
        if bytes.last() != Some(&0) {
            return None;
        }
        let mut fields = Fields { bytes, at: 0 };
        let path = fields.next()?;
        let cwd = fields.next()?;
        let count = fields.next()?;
        let argc = usize::try_from(parse_number(fields.bytes_of(count)?)?).ok()?;
        let argv_at = fields.at;
        for _ in 0..argc {
            fields.next()?;
        }
        let count = fields.next()?;
        let envc = usize::try_from(parse_number(fields.bytes_of(count)?)?).ok()?;
        let env_at = fields.at;
        for _ in 0..envc {
            fields.next()?;
        }
        // Every field exists (walked above). Two NULL-terminated pointer arrays.
        let slots = argc.checked_add(envc)?.checked_add(2)?;
        let table_len = slots.checked_mul(std::mem::size_of::<usize>())?;
        let table_map = libc::mmap(
            std::ptr::null_mut(),
            table_len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if table_map == libc::MAP_FAILED {
            return None;
        }
        let table = table_map.cast::<*const libc::c_char>();
        let mut fields = Fields { bytes, at: argv_at };
        for i in 0..argc {
            *table.add(i) = fields.next().unwrap_or(std::ptr::null());
        }
        *table.add(argc) = std::ptr::null();
        let envp = table.add(argc + 1);
        let mut fields = Fields { bytes, at: env_at };
        for i in 0..envc {
            *envp.add(i) = fields.next().unwrap_or(std::ptr::null());
        }
        *envp.add(envc) = std::ptr::null();
        Some(Spec {
            path,
            cwd,
            argv: table,
            envp,
            map: (map, len),
            table: (table_map, table_len),
        })
    }
}

/// NUL-terminated fields of a byte buffer that ends with a NUL.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Fields<'_> {
    /// The next field, as a C string pointer into the buffer.
    fn next(&mut self) -> Option<*const libc::c_char> {
        let rest = self.bytes.get(self.at..)?;
        let len = rest.iter().position(|&c| c == 0)?;
        let ptr = rest.as_ptr().cast();
        self.at += len + 1;
        Some(ptr)
    }

    /// The bytes of a field returned by [`Self::next`] (without its NUL).
    fn bytes_of(&self, ptr: *const libc::c_char) -> Option<&[u8]> {
        let start = (ptr as usize).checked_sub(self.bytes.as_ptr() as usize)?;
        let rest = self.bytes.get(start..)?;
        let len = rest.iter().position(|&c| c == 0)?;
        rest.get(..len)
    }
}

/// The signals the spawner and supervisors read from a signalfd: SIGCHLD, and those that ask
/// them to end.
fn watched_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set.
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        let mut set = set.assume_init();
        for sig in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Default dispositions (the service's handlers make no sense here), SIGPIPE ignored (a
/// status write after the service is gone must fail, not kill).
unsafe fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            set_disposition(sig, libc::SIG_DFL);
        }
    }
    set_disposition(libc::SIGPIPE, libc::SIG_IGN);
}

unsafe fn set_disposition(sig: c_int, handler: libc::sighandler_t) {
    let mut action = MaybeUninit::<libc::sigaction>::zeroed().assume_init();
    action.sa_sigaction = handler;
    libc::sigaction(sig, &action, std::ptr::null_mut());
}

/// Read every pending signal; true if one of them asks us to end.
unsafe fn drain_signals(fd: RawFd) -> bool {
    if fd < 0 {
        return false;
    }
    let mut end = false;
    loop {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        let n = libc::read(fd, info.as_mut_ptr().cast(), size);
        if n != size as isize {
            return end;
        }
        if info.assume_init().ssi_signo != libc::SIGCHLD as u32 {
            end = true;
        }
    }
}

unsafe fn report(fd: RawFd, kind: i32, a: i32, b: i32) {
    let mut msg = [0u8; MSG_LEN];
    for (i, word) in [kind, a, b, 0].into_iter().enumerate() {
        if let Some(slot) = msg.get_mut(i * 4..i * 4 + 4) {
            slot.copy_from_slice(&word.to_ne_bytes());
        }
    }
    write_all(fd, &msg);
}

fn errno() -> c_int {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

unsafe fn write_all(fd: RawFd, bytes: &[u8]) {
    let mut done = 0;
    while let Some(rest) = bytes.get(done..).filter(|r| !r.is_empty()) {
        let n = libc::write(fd, rest.as_ptr().cast(), rest.len());
        if n > 0 {
            done += n as usize;
        } else if n < 0 && errno() == libc::EINTR {
            continue;
        } else {
            return;
        }
    }
}

/// Close every descriptor except those in `keep` (at most four).
unsafe fn close_all_but(keep: &[RawFd]) {
    let mut kept = [c_int::MAX; 4];
    for (slot, fd) in kept.iter_mut().zip(keep) {
        *slot = *fd;
    }
    kept.sort_unstable();
    let mut unsupported = false;
    let mut close_range = |first: c_int, last: c_int| {
        if 0 <= first
            && first <= last
            && libc::syscall(libc::SYS_close_range, first as u32, last as u32, 0u32) != 0
        {
            unsupported = true;
        }
    };
    let mut first: c_int = 0;
    for k in kept {
        if k < 0 || k == c_int::MAX {
            continue;
        }
        close_range(first, k - 1);
        first = k.saturating_add(1);
    }
    close_range(first, c_int::MAX);
    if !unsupported {
        return;
    }
    // Kernels before 5.9: close what /proc/self/fd lists, until nothing is left.
    loop {
        let mut closed = false;
        let Some(dir) = open_dir(c"/proc/self/fd") else {
            return;
        };
        for_each_number(dir, |fd| {
            let fd = fd as c_int;
            if fd != dir && !keep.contains(&fd) {
                libc::close(fd);
                closed = true;
            }
        });
        libc::close(dir);
        if !closed {
            return;
        }
    }
}

/// Send `sig` to every child of this process.
unsafe fn kill_children(sig: c_int) {
    let me = libc::getpid();
    let mut path = StackPath::new();
    path.push(b"/proc/");
    path.push_num(me as u64);
    path.push(b"/task/");
    path.push_num(me as u64);
    path.push(b"/children");
    let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
    if fd < 0 {
        // A kernel without CONFIG_PROC_CHILDREN: find them by their parent in /proc.
        kill_children_by_scan(me, sig);
        return;
    }
    // "pid pid pid " read in pieces; a number may straddle two reads.
    let mut buf = [0u8; 512];
    let mut current: u64 = 0;
    let mut in_number = false;
    loop {
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        if n <= 0 {
            break;
        }
        for &c in buf.iter().take(n as usize) {
            if c.is_ascii_digit() {
                current = current
                    .saturating_mul(10)
                    .saturating_add(u64::from(c - b'0'));
                in_number = true;
            } else if in_number {
                signal_pid(current, sig);
                current = 0;
                in_number = false;
            }
        }
    }
    if in_number {
        signal_pid(current, sig);
    }
    libc::close(fd);
}

unsafe fn signal_pid(pid: u64, sig: c_int) {
    if pid > 0 && pid <= pid_t::MAX as u64 {
        libc::kill(pid as pid_t, sig);
    }
}

unsafe fn kill_children_by_scan(me: pid_t, sig: c_int) {
    let Some(dir) = open_dir(c"/proc") else {
        return;
    };
    for_each_number(dir, |pid| {
        if parent_of(pid) == Some(me as u64) {
            signal_pid(pid, sig);
        }
    });
    libc::close(dir);
}

/// The parent pid of `pid`, from `/proc/<pid>/stat`.
unsafe fn parent_of(pid: u64) -> Option<u64> {
    let mut path = StackPath::new();
    path.push(b"/proc/");
    path.push_num(pid);
    path.push(b"/stat");
    let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return None;
    }
    let mut buf = [0u8; 1024];
    let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
    libc::close(fd);
    let text = buf.get(..usize::try_from(n).ok()?)?;
    // "pid (comm) state ppid ...": the name may hold anything; parse after the last ')'.
    let close = text.iter().rposition(|&c| c == b')')?;
    let mut fields = text
        .get(close + 1..)?
        .split(|&c| c == b' ')
        .filter(|f| !f.is_empty());
    let _state = fields.next()?;
    parse_number(fields.next()?)
}

fn parse_number(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    Some(n)
}

/// Open a directory for [`for_each_number`] (async-signal-safe: a plain `open`).
unsafe fn open_dir(path: &std::ffi::CStr) -> Option<RawFd> {
    let dir = libc::open(
        path.as_ptr(),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
    );
    (dir >= 0).then_some(dir)
}

/// Call `f` with every entry of directory `dir` whose name is a number.
unsafe fn for_each_number(dir: RawFd, mut f: impl FnMut(u64)) {
    // linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, NUL-terminated name.
    let mut buf = [0u64; 512];
    loop {
        let n = libc::syscall(
            libc::SYS_getdents64,
            dir,
            buf.as_mut_ptr(),
            std::mem::size_of_val(&buf),
        );
        if n <= 0 {
            return;
        }
        let bytes = std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize);
        let mut at = 0;
        while let Some(header) = bytes.get(at..at + 19) {
            let reclen = usize::from(u16::from_ne_bytes([header[16], header[17]]));
            if reclen == 0 {
                return;
            }
            if let Some(name) = bytes.get(at + 19..at + reclen) {
                let len = name.iter().position(|&c| c == 0).unwrap_or(name.len());
                if let Some(num) = name.get(..len).and_then(parse_number) {
                    f(num);
                }
            }
            at += reclen;
        }
    }
}

/// A NUL-terminated path built on the stack.
struct StackPath {
    buf: [u8; 64],
    len: usize,
}

impl StackPath {
    fn new() -> Self {
        StackPath {
            buf: [0; 64],
            len: 0,
        }
    }

    fn push(&mut self, s: &[u8]) {
        for &c in s {
            // Keep the last byte for the NUL; the paths built here are far shorter.
            if self.len + 1 < self.buf.len() {
                self.buf[self.len] = c;
                self.len += 1;
            }
        }
    }

    fn push_num(&mut self, n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = n;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }

    fn as_ptr(&self) -> *const libc::c_char {
        self.buf.as_ptr().cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_paths() {
        let mut p = StackPath::new();
        p.push(b"/proc/");
        p.push_num(0);
        p.push(b"/task/");
        p.push_num(4_194_304);
        let s = unsafe { std::ffi::CStr::from_ptr(p.as_ptr()) };
        assert_eq!(s.to_str().unwrap(), "/proc/0/task/4194304");
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"123"), Some(123));
        assert_eq!(parse_number(b""), None);
        assert_eq!(parse_number(b"self"), None);
        assert_eq!(parse_number(b"99999999999999999999"), None);
    }

    #[test]
    fn parent_from_proc() {
        let me = std::process::id() as u64;
        let parent = std::os::unix::process::parent_id() as u64;
        assert_eq!(unsafe { parent_of(me) }, Some(parent));
        let mut seen_me = false;
        let dir = unsafe {
            libc::open(
                c"/proc".as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        assert!(dir >= 0);
        unsafe { for_each_number(dir, |pid| seen_me |= pid == me) };
        unsafe { libc::close(dir) };
        assert!(seen_me);
    }

    #[test]
    fn specs_round_trip() {
        let spec = encode_spec(
            b"/bin/sh",
            b"/tmp",
            &[b"sh", b"-c", b"echo hi"],
            &[b"A=1", b"B="],
        )
        .unwrap();
        assert_eq!(
            spec,
            b"/bin/sh\0/tmp\x003\0sh\0-c\0echo hi\x002\0A=1\0B=\0".to_vec()
        );
        assert!(encode_spec(b"/bin/sh", b"/", &[b"a\0b"], &[]).is_none());
        let fd = unsafe { libc::memfd_create(c"spec".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        unsafe { write_all(fd, &spec) };
        let parsed = unsafe { Spec::read(fd) }.unwrap();
        let text = |p: *const libc::c_char| unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes();
        assert_eq!(text(parsed.path), b"/bin/sh");
        assert_eq!(text(parsed.cwd), b"/tmp");
        let list = |mut p: *const *const libc::c_char| {
            let mut out = Vec::new();
            unsafe {
                while !(*p).is_null() {
                    out.push(text(*p).to_vec());
                    p = p.add(1);
                }
            }
            out
        };
        assert_eq!(
            list(parsed.argv),
            [b"sh".to_vec(), b"-c".to_vec(), b"echo hi".to_vec()]
        );
        assert_eq!(list(parsed.envp), [b"A=1".to_vec(), b"B=".to_vec()]);
        // Malformed specs are refused, not trusted.
        for bad in [
            &b"/bin/sh\0/\x009\0sh\0"[..],
            b"/bin/sh\0/\x001\0sh",
            b"x\0",
        ] {
            let fd = unsafe { libc::memfd_create(c"spec".as_ptr(), libc::MFD_CLOEXEC) };
            unsafe { write_all(fd, bad) };
            assert!(unsafe { Spec::read(fd) }.is_none(), "{bad:?}");
            unsafe { libc::close(fd) };
        }
    }
}
