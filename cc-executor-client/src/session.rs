//! `Session`: one connection, several executions one after another.

use std::time::Duration;

use crate::command::Command;
use crate::connection::ConnHandle;
use crate::error::Result;
use crate::execution::{Execution, Outcome};
use crate::protocol::ConnectedParams;

/// One WebSocket connection to the service. Runs one command at a time.
///
/// The connection stays open until [`Session::close`], or until the `Session` and every
/// [`Execution`] started on it are dropped (it then closes with code 1000).
#[derive(Debug)]
pub struct Session {
    connected: ConnectedParams,
    conn: ConnHandle,
    default_timeout: Option<Duration>,
}

impl Session {
    pub(crate) fn new(conn: ConnHandle, default_timeout: Option<Duration>) -> Session {
        Session {
            connected: (*conn.connected).clone(),
            conn,
            default_timeout,
        }
    }

    /// What the service said in `connected` (session id, version, capabilities).
    pub fn connected(&self) -> &ConnectedParams {
        &self.connected
    }

    /// Start `cmd` on this session. While it runs, another `execute` fails with
    /// [`crate::Error::AlreadyRunning`].
    ///
    /// That check is local: a run counts as running until its stream has handed over its last
    /// event. A run whose [`Execution`] was dropped is canceled, and the session is busy until
    /// the service reports its end.
    pub async fn execute(&self, cmd: impl Into<Command>) -> Result<Execution> {
        let cmd = (self.default_timeout.into_iter()).fold(cmd.into(), Command::or_timeout);
        cmd.validate()?;
        Execution::start(self.conn.clone(), cmd).await
    }

    /// Run `cmd` to the end on this session and collect its output.
    pub async fn run(&self, cmd: impl Into<Command>) -> Result<Outcome> {
        self.execute(cmd).await?.wait().await
    }

    /// Close the connection (code 1000). The service kills anything still running.
    ///
    /// An execution still running on this session ends with [`crate::Error::ConnectionClosed`].
    pub async fn close(self) -> Result<()> {
        self.conn.close().await;
        Ok(())
    }
}
