//! `ClaudeCommand` / `run_claude` against the real service, with a stand-in `claude` script that
//! records its argv and environment and prints a recorded stream-json sample.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use cc_executor_client::claude::{
    shell_quote, ClaudeCommand, ClaudeEvent, ClaudeResult, NestedEnv,
};
use cc_executor_client::{Client, Error, OutputEvent, RateLimitKind, Result};
use cc_executor_server::{Server, ServerHandle};
use futures_util::StreamExt;
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(30);
/// The runs' own bound: shorter than `WAIT`, so a hang is reported by the service first.
const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// A prompt that would run commands if it were not quoted (harmless ones: a `touch` we can detect
/// and an `rm` of a path that does not exist).
const NASTY_PROMPT: &str = "it's \"x\" $(touch pwned) `touch pwned` ; rm -rf ~/.cc-executor-no-such-dir \n second line $HOME * -- -p";

fn sample(name: &str) -> PathBuf {
    tests::fixtures_dir().join("claude").join(name)
}

/// A stand-in for `claude` in its own directory: records argv (NUL-separated) and `env`, then
/// runs `body`.
struct StandIn {
    dir: TempDir,
}

impl StandIn {
    fn new(body: &str) -> StandIn {
        let dir = tempfile::tempdir().expect("tempdir");
        let argv = dir.path().join("argv");
        let env = dir.path().join("env");
        let script = format!(
            "#!/bin/sh\nprintf '%s\\0' \"$@\" > {}\nenv > {}\n{body}\n",
            shell_quote(argv.to_str().unwrap()),
            shell_quote(env.to_str().unwrap()),
        );
        let path = dir.path().join("claude");
        std::fs::write(&path, script).expect("write script");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        StandIn { dir }
    }

    /// A stand-in that prints the sample `name`.
    fn printing(name: &str) -> StandIn {
        let path = sample(name);
        StandIn::new(&format!("cat {}", shell_quote(path.to_str().unwrap())))
    }

    fn program(&self) -> String {
        self.dir.path().join("claude").to_str().unwrap().to_owned()
    }

    /// A command for this stand-in, run in its directory.
    fn command(&self, prompt: &str) -> ClaudeCommand {
        ClaudeCommand::new(prompt)
            .program(self.program())
            .cwd(self.dir.path())
            .timeout(RUN_TIMEOUT)
    }

    fn argv(&self) -> Vec<String> {
        let raw = std::fs::read(self.dir.path().join("argv")).expect("the stand-in recorded argv");
        let text = String::from_utf8(raw).expect("utf-8 argv");
        let mut args: Vec<String> = text.split('\0').map(str::to_owned).collect();
        assert_eq!(args.pop().as_deref(), Some(""), "argv ends with a NUL");
        args
    }

    fn env(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("env")).expect("the stand-in recorded env")
    }
}

async fn start() -> (ServerHandle, Client) {
    let server = tokio::time::timeout(WAIT, Server::builder().bind("127.0.0.1:0"))
        .await
        .expect("bind in time")
        .expect("bind");
    let client = Client::new(server.url()).expect("client");
    (server, client)
}

async fn run(client: &Client, cmd: ClaudeCommand) -> Result<ClaudeResult> {
    tokio::time::timeout(WAIT, client.run_claude(cmd))
        .await
        .expect("run_claude finished in time")
}

fn epoch_secs(limit: &cc_executor_client::RateLimit) -> Option<u64> {
    limit
        .reset_at
        .map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs())
}

#[tokio::test]
async fn nasty_prompt_and_option_values_arrive_verbatim_as_single_arguments() {
    let (_server, client) = start().await;
    let stand_in = StandIn::printing("success.jsonl");
    let cmd = stand_in
        .command(NASTY_PROMPT)
        .model("it's $(touch pwned)")
        .allowed_tools(["Read", "Bash(git log:*)"])
        .max_turns(3)
        .resume("sess'ion; touch pwned")
        .append_system_prompt("line one\nline `touch pwned` two");
    let line = cmd.to_command_line();
    run(&client, cmd).await.expect("success sample");

    let argv = stand_in.argv();
    assert_eq!(
        argv,
        [
            "-p",
            "--verbose",
            "--output-format",
            "stream-json",
            "--model",
            "it's $(touch pwned)",
            "--allowedTools",
            "Read",
            "Bash(git log:*)",
            "--max-turns",
            "3",
            "--resume",
            "sess'ion; touch pwned",
            "--append-system-prompt",
            "line one\nline `touch pwned` two",
            "--",
            NASTY_PROMPT,
        ],
        "command line was {line}"
    );
    assert!(
        !stand_in.dir.path().join("pwned").exists(),
        "a command substitution ran in the run's directory"
    );
    assert!(
        !Path::new("pwned").exists(),
        "a command substitution ran in the service's directory"
    );
}

#[tokio::test]
async fn a_prompt_starting_with_a_dash_is_not_an_option() {
    let (_server, client) = start().await;
    let stand_in = StandIn::printing("success.jsonl");
    run(&client, stand_in.command("--help me -p"))
        .await
        .unwrap();
    let argv = stand_in.argv();
    assert_eq!(argv[argv.len() - 2..], ["--", "--help me -p"]);
}

#[tokio::test]
async fn nested_claude_code_variables_are_removed() {
    let (_server, client) = start().await;
    let stand_in = StandIn::printing("success.jsonl");
    let cmd = stand_in.command("hi");
    assert!(cmd
        .to_command_line()
        .starts_with("env -u CLAUDECODE -u CLAUDE_CODE_ENTRYPOINT -u CLAUDE_CODE_SSE_PORT "));
    run(&client, cmd).await.unwrap();
    let env = stand_in.env();
    for var in [
        "CLAUDECODE",
        "CLAUDE_CODE_ENTRYPOINT",
        "CLAUDE_CODE_SSE_PORT",
    ] {
        assert!(
            !env.lines().any(|l| l.starts_with(&format!("{var}="))),
            "{var} reached the child:\n{env}"
        );
    }
    assert!(
        env.lines().any(|l| l.starts_with("PATH=")),
        "env was recorded:\n{env}"
    );
}

#[tokio::test]
async fn success_sample_gives_its_result() {
    let (_server, client) = start().await;
    let stand_in = StandIn::printing("success.jsonl");
    let result = run(&client, stand_in.command("what does main.py print?"))
        .await
        .expect("a successful result");
    // Over the wire, the same result as the sample parsed in place (the parser's own tests hold
    // the rest).
    assert!(result.is_success(), "{result:?}");
    assert_eq!(result.result.as_deref(), Some("The script prints 4."));
    assert_eq!(
        result.session_id.as_deref(),
        Some("0b6c2f1e-5d2a-4b8e-9a51-3f0c8e7d1a22")
    );
    assert_eq!(result.num_turns, 2);
    assert_eq!(result.total_cost_usd, Some(0.0123));
    assert_eq!(result.usage.output_tokens, 40);
    assert_eq!(result.duration, Some(Duration::from_millis(4210)));
}

#[tokio::test]
async fn the_stream_yields_typed_events_in_order() {
    let (_server, client) = start().await;
    let stand_in = StandIn::new(&format!(
        "echo 'a warning on stderr' >&2\ncat {}",
        shell_quote(sample("success.jsonl").to_str().unwrap())
    ));
    let mut run = tokio::time::timeout(WAIT, client.execute_claude(stand_in.command("hi")))
        .await
        .expect("started in time")
        .expect("started");
    let _controller = run.controller();
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(WAIT, run.next())
        .await
        .expect("an event in time")
    {
        events.push(event.expect("no error"));
    }
    assert_eq!(
        run.session_id(),
        Some("0b6c2f1e-5d2a-4b8e-9a51-3f0c8e7d1a22")
    );
    // Claude's own lines, in order.
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            ClaudeEvent::Init(_) => Some("init"),
            ClaudeEvent::Assistant(_) => Some("assistant"),
            ClaudeEvent::User(_) => Some("user"),
            ClaudeEvent::Result(_) => Some("result"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["init", "assistant", "user", "assistant", "result"]);
    assert!(events
        .iter()
        .any(|e| matches!(e, ClaudeEvent::Stderr(l) if l == "a warning on stderr")));
    assert!(events
        .iter()
        .any(|e| matches!(e, ClaudeEvent::Service(OutputEvent::Started { .. }))));
    assert!(
        matches!(
            events.last(),
            Some(ClaudeEvent::Service(OutputEvent::Completed {
                exit_code: Some(0),
                ..
            }))
        ),
        "last event: {:?}",
        events.last()
    );
    assert!(!events
        .iter()
        .any(|e| matches!(e, ClaudeEvent::Text(_) | ClaudeEvent::Unknown(_))));
    // `wait` after reading everything judges the events already yielded.
    let result = tokio::time::timeout(WAIT, run.wait())
        .await
        .expect("wait in time")
        .expect("the success result");
    assert_eq!(result.result.as_deref(), Some("The script prints 4."));
}

#[tokio::test]
async fn wait_after_reading_part_of_the_stream_still_sees_the_rejected_event() {
    let (_server, client) = start().await;
    // The rejected rate_limit_event, then an ordinary-looking result.
    let stand_in = StandIn::new(&format!(
        "sed -n 2p {}\necho '{}'",
        shell_quote(sample("usage_limit.jsonl").to_str().unwrap()),
        r#"{"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"s"}"#
    ));
    let mut run = tokio::time::timeout(WAIT, client.execute_claude(stand_in.command("hi")))
        .await
        .expect("started in time")
        .expect("started");
    loop {
        let event = tokio::time::timeout(WAIT, run.next())
            .await
            .expect("an event in time")
            .expect("the event comes before the end")
            .expect("no error");
        if matches!(event, ClaudeEvent::RateLimit(_)) {
            break;
        }
    }
    match tokio::time::timeout(WAIT, run.wait())
        .await
        .expect("wait in time")
    {
        Err(Error::RateLimited(limit)) => {
            assert_eq!(limit.kind, RateLimitKind::UsageLimit);
            assert_eq!(epoch_secs(&limit), Some(1_900_000_000));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn usage_limit_sample_is_rate_limited_with_its_reset_time() {
    let (_server, client) = start().await;
    let stand_in = StandIn::printing("usage_limit.jsonl");
    match run(&client, stand_in.command("hi")).await {
        Err(Error::RateLimited(limit)) => {
            assert_eq!(limit.kind, RateLimitKind::UsageLimit);
            assert_eq!(epoch_secs(&limit), Some(1_900_000_000));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn api_429_sample_is_rate_limited_http429() {
    let (_server, client) = start().await;
    let stand_in = StandIn::printing("api_429.jsonl");
    match run(&client, stand_in.command("hi")).await {
        Err(Error::RateLimited(limit)) => {
            assert_eq!(limit.kind, RateLimitKind::Http429);
            assert!(limit.message.contains("429"), "{}", limit.message);
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn new_limit_wording_is_rate_limited_usage_limit() {
    let (_server, client) = start().await;
    let stand_in = StandIn::printing("hit_limit_new_wording.jsonl");
    match run(&client, stand_in.command("hi")).await {
        Err(Error::RateLimited(limit)) => {
            assert_eq!(limit.kind, RateLimitKind::UsageLimit);
            assert_eq!(limit.reset_at, None);
            assert!(
                limit.message.contains("resets 3pm (Europe/Paris)"),
                "{}",
                limit.message
            );
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn max_turns_sample_is_a_result_with_is_error() {
    let (_server, client) = start().await;
    let stand_in = StandIn::printing("max_turns.jsonl");
    let result = run(&client, stand_in.command("hi").max_turns(1))
        .await
        .expect("error_max_turns is a result, not an Err");
    assert_eq!(result.subtype, "error_max_turns");
    assert!(result.is_error);
    assert!(!result.is_success());
    assert_eq!(result.errors, ["Reached maximum number of turns (1)"]);
    assert_eq!(
        result.session_id.as_deref(),
        Some("e9f8a7b6-1111-4c2d-8e3f-0a1b2c3d4e5f")
    );
}

#[tokio::test]
async fn a_run_without_a_result_is_claude_failed_with_exit_code_and_stderr() {
    let (_server, client) = start().await;
    let stand_in = StandIn::new(
        "echo 'not json' \necho 'Error: Invalid API key' >&2\necho 'Please run /login' >&2\nexit 3",
    );
    match run(&client, stand_in.command("hi")).await {
        Err(Error::ClaudeFailed { exit_code, stderr }) => {
            assert_eq!(exit_code, Some(3));
            assert_eq!(stderr, "Error: Invalid API key\nPlease run /login");
        }
        other => panic!("expected ClaudeFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_program_is_claude_failed() {
    let (_server, client) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-claude");
    let cmd = ClaudeCommand::new("hi")
        .program(missing.to_str().unwrap())
        .timeout(RUN_TIMEOUT);
    match run(&client, cmd).await {
        Err(Error::ClaudeFailed { exit_code, stderr }) => {
            assert_eq!(
                exit_code,
                Some(127),
                "env's exit code for a missing program"
            );
            assert!(stderr.contains("no-such-claude"), "{stderr}");
        }
        other => panic!("expected ClaudeFailed, got {other:?}"),
    }
}

/// A service allowing only `claude` runs it without a shell: the prompt reaches it verbatim;
/// `env -u …` (the program is `env`) and `NAME= claude` (an assignment) are refused.
#[tokio::test]
async fn a_service_allowing_only_claude_runs_it_without_a_shell() {
    let server = tokio::time::timeout(
        WAIT,
        Server::builder()
            .allowed_commands(["claude"])
            .bind("127.0.0.1:0"),
    )
    .await
    .expect("bind in time")
    .expect("bind");
    let client = Client::new(server.url()).unwrap();
    let stand_in = StandIn::printing("success.jsonl");
    let prompt = "it's; $(touch pwned) | `touch pwned` * ~";
    let cmd = stand_in.command(prompt);

    for refused in [cmd.clone(), cmd.clone().nested_env(NestedEnv::Empty)] {
        let refused = run(&client, refused).await;
        assert!(
            matches!(refused, Err(Error::CommandNotAllowed { .. })),
            "{refused:?}"
        );
    }

    let result = run(&client, cmd.nested_env(NestedEnv::Keep))
        .await
        .expect("accepted and run");
    assert_eq!(result.num_turns, 2);
    assert_eq!(stand_in.argv().last().map(String::as_str), Some(prompt));
    assert!(!stand_in.dir.path().join("pwned").exists());
}

/// A result line longer than the service buffers (it streams it in chunks without a count) is
/// still parsed as one line, both reassembled by the connection and from raw chunks.
#[tokio::test]
async fn a_result_line_of_a_megabyte_is_one_result() {
    let (_server, client) = start().await;
    // `{"type":"result",...,"result":"zzz…"}` with a 1,000,000-character answer.
    let stand_in = StandIn::new(
        "printf '%s' '{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"'\n\
         head -c 1000000 /dev/zero | tr '\\0' z\n\
         printf '\"}\\n'",
    );
    let result = run(&client, stand_in.command("long answer"))
        .await
        .expect("a result");
    assert_eq!(result.result.map(|r| r.len()), Some(1_000_000));

    let command = cc_executor_client::Command::from(stand_in.command("long answer"));
    let raw = tokio::time::timeout(WAIT, client.execute(command.raw_chunks(true)))
        .await
        .expect("started in time")
        .expect("started");
    let events: Vec<ClaudeEvent> = tokio::time::timeout(
        WAIT,
        cc_executor_client::claude::ClaudeExecution::new(raw)
            .map(|e| e.unwrap())
            .collect(),
    )
    .await
    .expect("finished in time");
    let results: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ClaudeEvent::Result(r) => Some(r.result.as_ref().map(String::len)),
            ClaudeEvent::Unknown(_) | ClaudeEvent::Text(_) => Some(None),
            _ => None,
        })
        .collect();
    assert_eq!(
        results,
        [Some(1_000_000)],
        "one parsed result, nothing unparsed"
    );
}

#[tokio::test]
async fn the_new_options_arrive_verbatim_and_structured_output_comes_back() {
    let (_server, client) = start().await;
    let stand_in = StandIn::printing("structured_output.jsonl");
    let schema =
        serde_json::json!({"type": "object", "properties": {"answer": {"type": "integer"}}});
    let cmd = stand_in
        .command("answer as JSON")
        .max_budget_usd(1.5)
        .json_schema(schema.clone())
        .disallowed_tools(["Write"])
        .permission_mode("plan")
        .add_dirs(["a dir", "$(touch pwned)"])
        .fallback_model("it's haiku")
        .effort("low");
    let result = run(&client, cmd).await.expect("a result");
    assert_eq!(
        result.structured_output,
        Some(serde_json::json!({"answer": 4, "files": ["main.py"]}))
    );
    assert!(result.json_schema_given && result.notes().is_empty());
    let argv = stand_in.argv();
    let json = schema.to_string();
    let expected = [
        "--disallowed-tools",
        "Write",
        "--max-budget-usd",
        "1.5",
        "--json-schema",
        json.as_str(),
        "--permission-mode",
        "plan",
        "--add-dir",
        "a dir",
        "$(touch pwned)",
        "--fallback-model",
        "it's haiku",
        "--effort",
        "low",
        "--",
        "answer as JSON",
    ];
    assert_eq!(argv[4..], expected, "{argv:?}");
    assert!(!stand_in.dir.path().join("pwned").exists());

    // Refused before the run starts.
    for bad in [
        stand_in.command("x").max_budget_usd(f64::NAN),
        stand_in.command("x").json_schema(serde_json::json!(true)),
    ] {
        assert!(matches!(
            run(&client, bad).await,
            Err(Error::InvalidCommand { .. })
        ));
    }
}

#[tokio::test]
async fn a_run_without_login_fails_as_typed_data_despite_its_subtype() {
    use cc_executor_client::claude::ClaudeFailure;
    let (_server, client) = start().await;
    let stand_in = StandIn::new(&format!(
        "cat {}; exit 1",
        shell_quote(sample("not_logged_in.jsonl").to_str().unwrap())
    ));
    let result = run(&client, stand_in.command("hi"))
        .await
        .expect("a result");
    assert_eq!(result.subtype, "success");
    assert!(!result.is_success());
    assert_eq!(result.terminal_reason.as_deref(), Some("api_error"));
    match result.failure() {
        Some(ClaudeFailure::Error {
            reason,
            message,
            api_error_status: None,
        }) => {
            assert_eq!(reason, "api_error");
            assert_eq!(message, "Not logged in · Please run /login");
        }
        other => panic!("{other:?}"),
    }
    let stand_in = StandIn::printing("max_budget.jsonl");
    let result = run(&client, stand_in.command("hi"))
        .await
        .expect("a result");
    assert!(matches!(
        result.failure(),
        Some(ClaudeFailure::Budget { spent_usd: Some(spent), .. }) if spent == 0.5123
    ));
}

#[tokio::test]
async fn an_interactive_claude_takes_messages_until_its_input_ends() {
    // Answers each input line with an assistant message, keeps the lines, and writes its result
    // at end of input.
    let stand_in = StandIn::new(
        r#"n=0
while IFS= read -r line; do
  n=$((n+1))
  printf '%s\n' "$line" >> heard
  printf '{"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"turn %s"}]}}\n' "$n"
done
printf '{"type":"result","subtype":"success","is_error":false,"num_turns":%s,"result":"done after %s","session_id":"s"}\n' "$n" "$n""#,
    );
    let (server, client) = start().await;
    let cmd = stand_in.command("first").interactive();
    let mut run = client.execute_claude(cmd).await.unwrap();
    turn(&mut run, 1).await;
    run.send("second, \"quoted\"").await.unwrap();
    turn(&mut run, 2).await;
    run.finish().await.unwrap();
    let result = tokio::time::timeout(WAIT, run.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.result.as_deref(), Some("done after 2"));
    let heard = std::fs::read_to_string(stand_in.dir.path().join("heard")).unwrap();
    let texts: Vec<String> = heard
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["type"], "user");
            v["message"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(texts, ["first", "second, \"quoted\""]);
    assert!(stand_in
        .argv()
        .windows(2)
        .any(|w| w == ["--input-format", "stream-json"]));
    server.shutdown().await;
}

#[tokio::test]
async fn a_message_line_sent_before_its_end_is_parsed_whole() {
    // Writes the start of an assistant message and waits for more input: its output pauses
    // mid-line, so the service sends that start alone. The end follows the next message, the
    // result the end of input.
    let stand_in = StandIn::new(
        r#"IFS= read -r line
printf '{"type":"assistant","message":{"role":"assistant","content":[{"type":"text",'
touch half
IFS= read -r line
printf '"text":"joined"}]}}\n'
cat > /dev/null
printf '{"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"done","session_id":"s"}\n'"#,
    );
    let (server, client) = start().await;
    let cmd = stand_in.command("first").interactive();
    let mut run = client.execute_claude(cmd).await.unwrap();
    let half = stand_in.dir.path().join("half");
    tokio::time::timeout(WAIT, async {
        while !half.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the stand-in wrote the start of its message");
    run.send("second").await.unwrap();
    run.finish().await.unwrap();
    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(WAIT, run.next()).await.unwrap() {
        match event.unwrap() {
            ClaudeEvent::Assistant(m) => seen.push(m.text()),
            ClaudeEvent::Text(t) => panic!("a part of a line parsed alone: {t:?}"),
            _ => {}
        }
    }
    assert_eq!(seen, ["joined"]);
    server.shutdown().await;
}

/// Read `run` up to its next assistant message, which must say `turn {n}`.
async fn turn(run: &mut cc_executor_client::claude::ClaudeExecution, n: u32) {
    let want = format!("turn {n}");
    while let Some(event) = tokio::time::timeout(WAIT, run.next()).await.unwrap() {
        if let ClaudeEvent::Assistant(m) = event.unwrap() {
            assert_eq!(m.text(), want);
            return;
        }
    }
    panic!("ended before {want}");
}
