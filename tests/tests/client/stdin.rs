//! Input for running commands through the client: `Command::stdin`, `stdin_pipe`, `pty`, and
//! `Controller::write_stdin` / `close_stdin`; and the typed refusal from a service without the
//! `stdin` capability.

use cc_executor_client::{Client, Command, Error, Execution, OutputEvent, OutputStream};
use cc_executor_server::{Server, ServerHandle};

use crate::support::*;

/// A service, a client of it, and its execution of `line` with stdin kept open.
async fn piped(line: &str) -> (ServerHandle, Client, Execution) {
    let server = start().await;
    let client = Client::new(server.url()).unwrap();
    let cmd = Command::new(line).stdin_pipe();
    let run = bounded("execute", client.execute(cmd)).await.unwrap();
    (server, client, run)
}

/// Read `run` up to an output event of exactly `want`.
async fn output_is(run: &mut Execution, what: &str, want: &str) {
    let is_it = |e: &OutputEvent| matches!(e, OutputEvent::Output { data, .. } if data == want);
    next_matching(run, what, is_it).await;
}

#[tokio::test]
async fn stdin_text_is_written_then_closed() {
    let server = start().await;
    let client = Client::new(server.url()).unwrap();
    let cmd = Command::new("wc -c").stdin("héllo wörld\n");
    let out = bounded("wc -c", client.run(cmd)).await.unwrap();
    assert_eq!(out.stdout.trim(), "14", "{out:?}");
    assert_eq!(out.exit_code, Some(0));
    server.shutdown().await;
}

#[tokio::test]
async fn a_pipe_takes_writes_until_closed() {
    let line = "while read -r l; do echo \"got:$l\"; done; echo bye; sleep 30";
    let (server, _client, mut run) = piped(line).await;
    let ctl = run.controller();
    for word in ["one", "two"] {
        bounded("write", ctl.write_stdin(format!("{word}\n")))
            .await
            .unwrap();
        output_is(&mut run, "the echo", &format!("got:{word}\n")).await;
    }
    bounded("close", ctl.close_stdin()).await.unwrap();
    output_is(&mut run, "the end of the loop", "bye\n").await;
    // Closed: no more input, while the command still runs.
    let again = bounded("write after close", ctl.write_stdin("x")).await;
    assert!(matches!(again, Err(Error::StdinClosed { .. })), "{again:?}");
    bounded("cancel", ctl.cancel()).await.unwrap();
    let events = collect(run).await;
    assert_eq!(text(&events, OutputStream::Stdout), "");
    server.shutdown().await;
}

#[tokio::test]
async fn a_prompt_is_an_event_before_its_line_ends() {
    let line = "echo ready; printf 'Name? '; read -r n; echo \"hi $n\"";
    let (server, _client, mut run) = piped(line).await;
    output_is(&mut run, "the prompt", "Name? ").await;
    let ctl = run.controller();
    bounded("write", ctl.write_stdin("bob\n")).await.unwrap();
    output_is(&mut run, "the rest of the line", "hi bob\n").await;
    let events = collect(run).await;
    assert!(matches!(
        events.last(),
        Some(Ok(OutputEvent::Completed {
            exit_code: Some(0),
            ..
        }))
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn a_run_without_stdin_refuses_writes() {
    let server = start().await;
    let client = Client::new(server.url()).unwrap();
    let (run, _) = start_run(&client, "sleep 30").await;
    let ctl = run.controller();
    let refused = bounded("write", ctl.write_stdin("x")).await;
    assert!(
        matches!(refused, Err(Error::StdinClosed { .. })),
        "{refused:?}"
    );
    drop(run);
    server.shutdown().await;
}

#[tokio::test]
async fn a_pty_command_sees_a_terminal_of_its_size() {
    let server = start().await;
    let client = Client::new(server.url()).unwrap();
    let cmd = Command::new("test -t 0 && stty size && echo err >&2").pty_size(100, 30);
    let out = bounded("pty run", client.run(cmd)).await.unwrap();
    assert!(out.stdout.contains("30 100"), "{out:?}");
    assert!(out.stdout.contains("err"), "stderr merged: {out:?}");
    assert_eq!(out.stderr, "");
    server.shutdown().await;
}

#[tokio::test]
async fn a_service_without_input_gives_a_typed_error_before_sending() {
    let server = start_with(Server::builder().accept_input(false)).await;
    let client = Client::new(server.url()).unwrap();
    for (cmd, capability) in [
        (Command::new("cat").stdin_pipe(), "stdin"),
        (Command::new("wc -c").stdin("abc"), "stdin"),
        (Command::new("cat").pty(), "pty"),
    ] {
        let refused = bounded("execute", client.execute(cmd)).await;
        match refused {
            Err(Error::Unsupported { capability: c }) => assert_eq!(c, capability),
            other => panic!("{other:?}"),
        }
    }
    // A run of that service: writes fail at once, without a request.
    let (run, _) = start_run(&client, "sleep 30").await;
    let refused = bounded("write", run.controller().write_stdin("x")).await;
    assert!(
        matches!(
            refused,
            Err(Error::Unsupported {
                capability: "stdin"
            })
        ),
        "{refused:?}"
    );
    drop(run);
    server.shutdown().await;
}
