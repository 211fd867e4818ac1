//! Shared helpers of the client tests: a real embedded service, bounded waits, collecting.

use std::future::Future;
use std::time::Duration;

use cc_executor_client::{Client, Command, Execution, Outcome, OutputEvent, OutputStream, Result};
use cc_executor_server::{Server, ServerBuilder, ServerHandle};
use futures_util::StreamExt;

/// Generous bound for anything that should happen soon: CI is a loaded 2-core machine.
pub const BOUND: Duration = Duration::from_secs(30);

/// Await `fut`, failing the test (instead of hanging) after [`BOUND`].
pub async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(BOUND, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no result within {BOUND:?}"),
    }
}

/// Start the service with default settings on a loopback port.
pub async fn start() -> ServerHandle {
    start_with(Server::builder()).await
}

/// Start a configured service on a loopback port.
pub async fn start_with(builder: ServerBuilder) -> ServerHandle {
    builder.bind("127.0.0.1:0").await.expect("bind the service")
}

/// Start the service with default settings, and a client of it.
pub async fn start_client() -> (ServerHandle, Client) {
    client_of(start().await)
}

/// A client of `server` (kept alive beside it).
pub fn client_of(server: ServerHandle) -> (ServerHandle, Client) {
    let client = Client::new(server.url()).expect("client");
    (server, client)
}

/// Start `command` (bounded), failing the test when it is refused.
pub async fn execute(client: &Client, command: impl Into<Command>) -> Execution {
    bounded("execute", client.execute(command))
        .await
        .expect("execute")
}

/// Run `command` to its end (bounded), failing the test on an error.
pub async fn run(client: &Client, command: impl Into<Command>) -> Outcome {
    bounded("run", client.run(command)).await.expect("run")
}

/// Read a whole execution (bounded), keeping errors as items.
pub async fn collect(mut run: Execution) -> Vec<Result<OutputEvent>> {
    bounded("reading the execution", async {
        let mut items = Vec::new();
        while let Some(item) = run.next().await {
            items.push(item);
        }
        items
    })
    .await
}

/// The concatenated text of one stream.
pub fn text(events: &[Result<OutputEvent>], which: OutputStream) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Ok(OutputEvent::Output { stream, data, .. }) if *stream == which => Some(data.as_str()),
            _ => None,
        })
        .collect()
}

/// Next event (bounded), panicking on end or error.
pub async fn next_event(run: &mut Execution) -> OutputEvent {
    bounded("the next event", run.next())
        .await
        .expect("stream ended early")
        .expect("stream error")
}

/// Read until an event matches `pred` (bounded); returns it.
pub async fn next_matching(
    run: &mut Execution,
    what: &str,
    pred: impl Fn(&OutputEvent) -> bool,
) -> OutputEvent {
    bounded(what, async {
        loop {
            match run.next().await {
                Some(Ok(ev)) if pred(&ev) => return ev,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("{what}: stream error {e}"),
                None => panic!("{what}: stream ended"),
            }
        }
    })
    .await
}

/// Read past every event (bounded) to what ends the stream: an error, or `None`.
pub async fn stream_end(run: &mut Execution, what: &str) -> Option<Result<OutputEvent>> {
    bounded(what, async {
        loop {
            match run.next().await {
                Some(Ok(_)) => {}
                other => return other,
            }
        }
    })
    .await
}

/// Start `line` through `client` and read up to its `Started` event; returns the run and its pgid.
pub async fn start_run(client: &cc_executor_client::Client, line: &str) -> (Execution, u32) {
    let mut run = bounded("execute", client.execute(line)).await.unwrap();
    let pgid = run.pgid().expect("the service reports the pgid");
    next_matching(&mut run, "started", |e| {
        matches!(e, OutputEvent::Started { .. })
    })
    .await;
    (run, pgid)
}
