//! Input for running commands through the client: `Command::stdin`, `stdin_pipe`, `pty`, and
//! `Controller::write_stdin` / `close_stdin`; and the typed refusal from a service without the
//! `stdin` capability.

use cc_executor_client::{Client, Command, Error, OutputEvent, OutputStream};
use cc_executor_server::Server;

use crate::support::*;

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
    let server = start().await;
    let client = Client::new(server.url()).unwrap();
    let cmd = Command::new("while read -r l; do echo \"got:$l\"; done; echo bye; sleep 30");
    let mut run = bounded("execute", client.execute(cmd.stdin_pipe()))
        .await
        .unwrap();
    let ctl = run.controller();
    for word in ["one", "two"] {
        bounded("write", ctl.write_stdin(format!("{word}\n")))
            .await
            .unwrap();
        let want = format!("got:{word}\n");
        next_matching(
            &mut run,
            "the echo",
            |e| matches!(e, OutputEvent::Output { data, .. } if *data == want),
        )
        .await;
    }
    bounded("close", ctl.close_stdin()).await.unwrap();
    next_matching(
        &mut run,
        "the end of the loop",
        |e| matches!(e, OutputEvent::Output { data, .. } if data == "bye\n"),
    )
    .await;
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
    let server = start().await;
    let client = Client::new(server.url()).unwrap();
    let cmd = Command::new("echo ready; printf 'Name? '; read -r n; echo \"hi $n\"");
    let mut run = bounded("execute", client.execute(cmd.stdin_pipe()))
        .await
        .unwrap();
    next_matching(
        &mut run,
        "the prompt",
        |e| matches!(e, OutputEvent::Output { data, .. } if data == "Name? "),
    )
    .await;
    let ctl = run.controller();
    bounded("write", ctl.write_stdin("bob\n")).await.unwrap();
    next_matching(
        &mut run,
        "the rest of the line",
        |e| matches!(e, OutputEvent::Output { data, .. } if data == "hi bob\n"),
    )
    .await;
    let events = collect(run).await;
    assert_eq!(text(&events, OutputStream::Stdout), "");
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
