//! Process inspection through `/proc`, for tests that prove no process is left behind.

use std::time::{Duration, Instant};

/// Pids of live (not zombie) processes whose process group is `pgid`.
pub fn processes_in_group(pgid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state ppid pgrp ...
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let _ppid = fields.next();
        let pgrp = fields.next().and_then(|s| s.parse::<u32>().ok());
        if pgrp == Some(pgid) && state != "Z" && state != "X" {
            found.push(pid);
        }
    }
    found
}

/// Wait (polling /proc, up to `bound`) until no live process remains in group `pgid`.
///
/// Returns the survivors if some are still there when `bound` expires.
pub async fn wait_group_gone(pgid: u32, bound: Duration) -> Result<(), Vec<u32>> {
    let start = Instant::now();
    loop {
        let left = processes_in_group(pgid);
        if left.is_empty() {
            return Ok(());
        }
        if start.elapsed() > bound {
            return Err(left);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
