//! Process inspection through `/proc`: the one place the tests parse it, to prove that no process
//! of a group survived, that a group is stopped, or how much memory a process holds.

use std::time::{Duration, Instant};

/// How often the waits below look again.
const POLL: Duration = Duration::from_millis(50);

/// What the tests read from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `D`, `T` (stopped), `t` (traced), `Z` (zombie), …
    pub state: char,
    /// The process group.
    pub pgrp: u32,
    /// Start time (clock ticks after boot): tells a process from a later one with its pid.
    pub start_time: u64,
}

impl Stat {
    /// Whether the process has exited (a zombie not yet reaped, or dead).
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }

    /// Whether the process is stopped (by SIGSTOP or a tracer).
    pub fn is_stopped(&self) -> bool {
        matches!(self.state, 'T' | 't')
    }
}

/// Parse a `stat` file: the fields after the parenthesised command name (which may itself hold
/// spaces and parentheses) are `state ppid pgrp …`, the 20th of them `starttime`.
fn parse_stat(text: &str) -> Option<Stat> {
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let pgrp = fields.get(2)?.parse().ok()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some(Stat {
        state,
        pgrp,
        start_time,
    })
}

/// `/proc/<pid>/stat`, `None` once the process is gone.
pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every pid in `/proc`.
pub fn pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// The command line of `pid`, arguments separated by spaces (`None` once it is gone).
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<_> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(String::from_utf8_lossy)
        .collect();
    Some(args.join(" "))
}

/// Live (not zombie) processes whose command line satisfies `pred`, with their stat.
pub fn live_processes_where(pred: impl Fn(&str) -> bool) -> Vec<(u32, Stat)> {
    pids()
        .into_iter()
        .filter_map(|pid| {
            let st = stat(pid).filter(|s| !s.is_dead())?;
            pred(&cmdline(pid)?).then_some((pid, st))
        })
        .collect()
}

/// Pids of live (not zombie) processes whose process group is `pgid`.
pub fn processes_in_group(pgid: u32) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|&pid| stat(pid).is_some_and(|s| s.pgrp == pgid && !s.is_dead()))
        .collect()
}

/// The states of the live processes of group `pgid`.
pub fn group_states(pgid: u32) -> Vec<char> {
    processes_in_group(pgid)
        .into_iter()
        .filter_map(|pid| stat(pid).map(|s| s.state))
        .collect()
}

/// Whether every thread of process `pid` is stopped (a SIGSTOP takes effect on each thread when
/// it next runs, so `kill` returns before threads on another CPU have stopped).
pub fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .and_then(|text| parse_stat(&text))
            .is_some_and(|s| s.is_stopped())
    })
}

/// A `kB` field (`VmRSS`, `VmHWM`, …) of `/proc/<pid>/status`, or of this process for `None`.
pub fn status_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU seconds (user and system) of `pid`, or of this process for `None`: its own, and those of
/// the children it has reaped (with theirs). `/proc` counts in `USER_HZ`, 100 a second on Linux.
pub fn cpu_secs(pid: Option<u32>) -> Option<(f64, f64)> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let fields: Vec<u64> = text[text.rfind(')')? + 1..]
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let ticks = |a: u64, b: u64| (a + b) as f64 / 100.0;
    Some((
        ticks(fields[0], fields[1]),
        ticks(*fields.get(2)?, *fields.get(3)?),
    ))
}

/// The children of `pid` (of every thread of it), from `/proc/<pid>/task/<tid>/children`.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Bytes `pid` has written so far (`wchar` of `/proc/<pid>/io`), `None` once it is gone.
pub fn bytes_written(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))?
        .trim()
        .parse()
        .ok()
}

/// Poll `check` until it gives a value or `bound` passes; `Err` holds the last `progress`
/// report, for the failure message.
async fn poll<T, P>(bound: Duration, mut check: impl FnMut() -> Result<T, P>) -> Result<T, P> {
    let start = Instant::now();
    loop {
        match check() {
            Ok(v) => return Ok(v),
            Err(p) if start.elapsed() > bound => return Err(p),
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// Wait (up to `bound`) until no live process remains in group `pgid`.
///
/// Returns the survivors if some are still there when `bound` expires.
pub async fn wait_group_gone(pgid: u32, bound: Duration) -> Result<(), Vec<u32>> {
    poll(bound, || {
        let left = processes_in_group(pgid);
        if left.is_empty() {
            Ok(())
        } else {
            Err(left)
        }
    })
    .await
}

/// Wait (up to `bound`) until group `pgid` has live processes and is stopped (`stopped`), or
/// none of them is (`!stopped`). `Err` holds the states seen last.
///
/// Stopped means every process is stopped, except that a shell which had just `vfork`ed waits for
/// its stopped child in `D` (uninterruptible) state: that counts, as it cannot run either.
pub async fn wait_group_stopped(
    pgid: u32,
    stopped: bool,
    bound: Duration,
) -> Result<(), Vec<char>> {
    let is_stopped = |s: char| matches!(s, 'T' | 't');
    poll(bound, || {
        let states = group_states(pgid);
        let done = if stopped {
            states.iter().any(|&s| is_stopped(s))
                && states.iter().all(|&s| is_stopped(s) || s == 'D')
        } else {
            !states.is_empty() && !states.iter().any(|&s| is_stopped(s))
        };
        if done {
            Ok(())
        } else {
            Err(states)
        }
    })
    .await
}

/// Wait (up to `bound`) until group `pgid` has at least `n` live processes.
pub async fn wait_group_members(pgid: u32, n: usize, bound: Duration) -> Result<(), Vec<u32>> {
    poll(bound, || {
        let members = processes_in_group(pgid);
        if members.len() >= n {
            Ok(())
        } else {
            Err(members)
        }
    })
    .await
}

/// One process, told apart from a later process that reuses its pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    /// The pid.
    pub pid: u32,
    start: u64,
}

impl Proc {
    /// The process `pid` as it is now; `None` when there is none.
    pub fn of(pid: u32) -> Option<Proc> {
        stat(pid).map(|s| Proc {
            pid,
            start: s.start_time,
        })
    }

    /// Its state letter (`R`, `S`, `T`, `Z`, ...); `None` once it is gone (or reaped and its
    /// pid reused).
    pub fn state(&self) -> Option<char> {
        stat(self.pid)
            .filter(|s| s.start_time == self.start)
            .map(|s| s.state)
    }

    /// Whether it still runs (zombies count as gone).
    pub fn alive(&self) -> bool {
        !matches!(self.state(), None | Some('Z' | 'X'))
    }
}

/// Wait (up to `bound`) until none of `procs` is alive; the survivors otherwise.
pub async fn wait_procs_gone(procs: &[Proc], bound: Duration) -> Result<(), Vec<Proc>> {
    poll(bound, || {
        let left: Vec<Proc> = procs.iter().copied().filter(Proc::alive).collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(left)
        }
    })
    .await
}

/// Wait (up to `bound`) until `p`'s state satisfies `want`; its last state otherwise.
pub async fn wait_state(
    p: Proc,
    want: impl Fn(Option<char>) -> bool,
    bound: Duration,
) -> Result<(), Option<char>> {
    poll(bound, || {
        let state = p.state();
        if want(state) {
            Ok(())
        } else {
            Err(state)
        }
    })
    .await
}

#[cfg(test)]
mod parse {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parentheses() {
        let st = parse_stat(
            "42 (a) (b c)) T 1 42 42 0 -1 4194560 97 0 0 0 0 0 0 0 20 0 1 0 123456 2375680 97",
        )
        .unwrap();
        assert_eq!(
            st,
            Stat {
                state: 'T',
                pgrp: 42,
                start_time: 123456,
            }
        );
        assert!(st.is_stopped() && !st.is_dead());
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_has_a_resident_size() {
        assert!(status_kib(None, "VmRSS").is_some_and(|kib| kib > 0));
        assert_eq!(status_kib(None, "NoSuchField"), None);
        let me = std::process::id();
        assert!(stat(me).is_some_and(|s| !s.is_dead()));
        assert!(cmdline(me).is_some_and(|c| !c.is_empty()));
    }
}
