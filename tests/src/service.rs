//! The `cc-executor-server` binary as a child process, for tests that need the service in a
//! process of its own: to kill or freeze it, or to give it an environment of its own without
//! touching the test process's.

use std::ffi::OsStr;
use std::process::Stdio;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::bins::bin_path;
use crate::ws::WAIT;

/// The service binary running as a child process on a free loopback port; killed on drop.
pub struct ServiceProcess {
    /// The child process.
    pub child: tokio::process::Child,
    /// Its WebSocket URL, as it printed it.
    pub url: String,
    /// Kept open so that the service never writes to a closed pipe.
    _stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl ServiceProcess {
    /// Start the service with default settings (settings from the environment removed).
    pub async fn start() -> ServiceProcess {
        Self::start_with(&[], &[]).await
    }

    /// Start the service with extra command-line arguments and environment variables.
    pub async fn start_with(args: &[&str], envs: &[(&str, &OsStr)]) -> ServiceProcess {
        let mut cmd = tokio::process::Command::new(bin_path("cc-executor-server"));
        cmd.args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("CC_EXECUTOR_TOKEN")
            .env_remove("CC_EXECUTOR_TOKEN_FILE")
            .env_remove("CC_EXECUTOR_ALLOW_ORIGINS")
            .env_remove("CC_EXECUTOR_ALLOW_HOSTS")
            .env_remove("CC_EXECUTOR_ALLOWED_COMMANDS")
            .env_remove("CC_EXECUTOR_MAX_SESSIONS")
            .env_remove("CC_EXECUTOR_SHELL")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start cc-executor-server");
        // Once listening, the service prints its WebSocket URL as one line on stdout.
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("the service binary prints its URL in time")
            .unwrap()
            .expect("a URL line");
        assert!(url.starts_with("ws://"), "{url:?}");
        ServiceProcess {
            child,
            url,
            _stdout: lines,
        }
    }

    /// The service's pid.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id().expect("running") as i32)
    }

    /// Shut the service down gracefully (SIGTERM: it kills the groups it started) and wait
    /// (bounded) until it has exited successfully.
    pub async fn shutdown(mut self) {
        kill(self.pid(), Signal::SIGTERM).expect("SIGTERM the service");
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the service exits after SIGTERM")
            .expect("wait for the service");
        assert!(status.success(), "the service exited with {status:?}");
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Some(id) = self.child.id() {
            // A frozen service must be continued to die at once.
            let _ = kill(Pid::from_raw(id as i32), Signal::SIGCONT);
            let _ = kill(Pid::from_raw(id as i32), Signal::SIGKILL);
        }
    }
}
