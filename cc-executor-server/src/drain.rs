//! Draining: stop taking work, let the running commands finish, then shut down.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::ServerHandle;

impl ServerHandle {
    /// Stop taking work and let the running commands finish, for at most `timeout`; then shut
    /// down as [`ServerHandle::shutdown`] does (what is still running is killed, whole groups).
    ///
    /// From the start of the drain, WebSocket upgrades get 503, `/ready` answers 503 and
    /// `/health` reports `"status": "draining"`; an `execute` on a session already open is
    /// refused with -32003, as by a full service, so a client can try another. Returns whether
    /// every run had ended by itself.
    pub async fn drain(self, timeout: Duration) -> bool {
        self.drain_until(timeout, std::future::pending()).await
    }

    /// [`ServerHandle::drain`], cut short when `stop` resolves (a second signal, say): what is
    /// still running is then killed at once.
    pub async fn drain_until(self, timeout: Duration, stop: impl Future<Output = ()>) -> bool {
        self.begin_drain();
        let running = self.state.metrics.running();
        tracing::info!(
            "draining: {running} run(s) going, waiting up to {}",
            crate::run::format_secs(timeout.as_secs_f64())
        );
        let finished = tokio::select! {
            done = tokio::time::timeout(timeout, self.state.metrics.no_runs()) => done.is_ok(),
            () = stop => false,
        };
        if !finished {
            tracing::warn!(
                "drain ended with {} run(s) still going; killing them",
                self.state.metrics.running()
            );
        }
        self.shutdown().await;
        finished
    }

    /// Refuse new sessions and runs from now on (what [`ServerHandle::drain`] starts with).
    pub fn begin_drain(&self) {
        self.state.draining.store(true, Ordering::SeqCst);
    }

    /// Whether a drain has begun.
    pub fn is_draining(&self) -> bool {
        self.state.draining.load(Ordering::SeqCst)
    }

    /// Commands running now.
    pub fn running(&self) -> usize {
        self.state.metrics.running()
    }
}
