//! `Session`: one connection, several executions one after another.

use crate::command::Command;
use crate::error::Result;
use crate::execution::{Execution, Outcome};
use crate::protocol::ConnectedParams;

/// One WebSocket connection to the service. Runs one command at a time.
#[derive(Debug)]
pub struct Session {
    #[allow(dead_code)]
    connected: ConnectedParams,
}

impl Session {
    /// What the service said in `connected` (session id, version, capabilities).
    pub fn connected(&self) -> &ConnectedParams {
        &self.connected
    }

    /// Start `cmd` on this session. While it runs, another `execute` fails with
    /// [`crate::Error::AlreadyRunning`].
    pub async fn execute(&self, cmd: impl Into<Command>) -> Result<Execution> {
        let _ = cmd.into();
        todo!()
    }

    /// Run `cmd` to the end on this session and collect its output.
    pub async fn run(&self, cmd: impl Into<Command>) -> Result<Outcome> {
        self.execute(cmd).await?.wait().await
    }

    /// Close the connection (code 1000). The service kills anything still running.
    pub async fn close(self) -> Result<()> {
        todo!()
    }
}
