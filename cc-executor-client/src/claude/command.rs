//! Building a safe `claude -p` command line, and POSIX shell quoting.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::command::{invalid, Command};

/// Variables that make a `claude` started from inside Claude Code behave as a nested instance.
///
/// Only these are removed: other `CLAUDE_CODE_*` variables are user configuration (e.g.
/// `CLAUDE_CODE_USE_BEDROCK`) and must reach the fresh instance.
pub const NESTED_ENV_VARS: &[&str] = &[
    "CLAUDECODE",
    "CLAUDE_CODE_ENTRYPOINT",
    "CLAUDE_CODE_SSE_PORT",
];

/// How the command line keeps the variables of [`NESTED_ENV_VARS`] (and those added with
/// [`ClaudeCommand::unset_env`]) away from `claude`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NestedEnv {
    /// `env -u NAME … claude …` (the default): the variables are removed. The line's program is
    /// `env`, so a service with a command allowlist must allow `env`.
    #[default]
    Unset,
    /// `NAME= … claude …`: the variables are set to the empty string, which Claude Code treats like
    /// unset ones. A service with a command allowlist refuses assignments before the program:
    /// there, allow `env` or use [`NestedEnv::Keep`].
    Empty,
    /// Leave the environment as the service has it.
    Keep,
}

pub use crate::protocol::shell_quote;

/// A `claude -p` run: the prompt, the CLI options, and how the service should run it.
///
/// [`ClaudeCommand::to_command_line`] builds a shell command line in which every value is quoted
/// with [`shell_quote`], so any prompt (quotes, `$(…)`, backticks, newlines, `; rm -rf ~`) reaches
/// `claude` verbatim as one argument. Convert it into a [`Command`] (or pass it to
/// [`crate::Client::execute_claude`]) to run it.
///
/// The line has this shape:
///
/// ```text
/// env -u CLAUDECODE -u CLAUDE_CODE_ENTRYPOINT -u CLAUDE_CODE_SSE_PORT claude -p --verbose \
///     --output-format stream-json [options…] [extra args…] -- '<prompt>' < /dev/null
/// ```
///
/// - `env -u …` removes the variables that mark a nested Claude Code instance ([`NESTED_ENV_VARS`]),
///   so the run is a fresh instance even when the service itself was started from Claude Code.
///   Other `CLAUDE_CODE_*` variables are configuration and stay. A service with a command
///   allowlist sees `env` as the program: allow it, or use [`NestedEnv::Keep`].
/// - `--verbose` is required by `--output-format stream-json` together with `-p`.
/// - The prompt is the CLI's positional argument and comes last, after `--`: options such as
///   `--allowedTools` and `--mcp-config` take several values and would otherwise swallow it, and a
///   prompt starting with `-` would otherwise be read as an option.
/// - `< /dev/null`: `claude -p` waits for an open stdin to close.
///
/// ```
/// use std::time::Duration;
/// use cc_executor_client::claude::ClaudeCommand;
///
/// let cmd = ClaudeCommand::new("Summarise README.md; don't edit anything")
///     .model("sonnet")
///     .allowed_tools(["Read", "Grep"])
///     .max_turns(5)
///     .timeout(Duration::from_secs(600));
/// assert_eq!(
///     cmd.to_command_line(),
///     "env -u CLAUDECODE -u CLAUDE_CODE_ENTRYPOINT -u CLAUDE_CODE_SSE_PORT claude -p --verbose \
///      --output-format stream-json --model sonnet --allowedTools Read Grep --max-turns 5 \
///      -- 'Summarise README.md; don'\\''t edit anything' < /dev/null"
/// );
/// let command: cc_executor_client::Command = cmd.into();
/// assert_eq!(command.get_timeout(), Some(Duration::from_secs(600)));
/// ```
///
/// With the `schema` feature it deserializes from what a tool takes: `prompt`, `timeout_secs`,
/// `model`, `allowed_tools`, `disallowed_tools`, `mcp_config` (one), `max_turns`,
/// `max_budget_usd`, `json_schema`, `permission_mode`, `append_system_prompt`, `add_dirs`,
/// `fallback_model`, `effort`, `cwd` and `resume_session_id`; the program, the environment and
/// the other options keep their defaults; other fields are refused, and `timeout` is accepted for
/// `timeout_secs`.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "schema", derive(serde::Deserialize, schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(deny_unknown_fields))]
pub struct ClaudeCommand {
    /// The prompt for the fresh Claude instance (passed verbatim as one argument).
    prompt: String,
    #[cfg_attr(feature = "schema", serde(skip, default = "default_program"))]
    program: String,
    /// Model alias or name, e.g. `sonnet` or `opus`.
    #[cfg_attr(feature = "schema", serde(default))]
    model: Option<String>,
    /// Tools the instance may use without asking, e.g. `["Read", "Bash(git log:*)"]`.
    #[cfg_attr(
        feature = "schema",
        serde(default, deserialize_with = "crate::schema::list"),
        schemars(with = "Option<Vec<String>>")
    )]
    allowed_tools: Vec<String>,
    /// Tools the instance may not use, e.g. `["Write", "Bash(rm:*)"]`.
    #[cfg_attr(
        feature = "schema",
        serde(default, deserialize_with = "crate::schema::list"),
        schemars(with = "Option<Vec<String>>")
    )]
    disallowed_tools: Vec<String>,
    /// MCP servers for the instance: a path to an `.mcp.json` file or a JSON string.
    #[cfg_attr(
        feature = "schema",
        serde(
            default,
            rename = "mcp_config",
            deserialize_with = "crate::schema::one"
        ),
        schemars(with = "Option<String>")
    )]
    mcp_configs: Vec<String>,
    /// Most agentic turns before the instance stops.
    #[cfg_attr(feature = "schema", serde(default))]
    max_turns: Option<u32>,
    /// Most US dollars the instance may spend on API calls; it stops once past it (a positive
    /// number, e.g. `0.5`).
    #[cfg_attr(feature = "schema", serde(default))]
    max_budget_usd: Option<f64>,
    /// A JSON Schema (an object) the final answer must follow: the result then carries it as JSON
    /// in `structured_output`.
    #[cfg_attr(
        feature = "schema",
        serde(default),
        schemars(with = "Option<serde_json::Map<String, Value>>")
    )]
    json_schema: Option<Value>,
    /// Permission mode: `default`, `acceptEdits`, `plan`, `bypassPermissions`, ….
    #[cfg_attr(feature = "schema", serde(default))]
    permission_mode: Option<String>,
    /// Continue this earlier session (the `session_id` of a previous result).
    #[cfg_attr(feature = "schema", serde(default, rename = "resume_session_id"))]
    resume: Option<String>,
    /// Text appended to the instance's system prompt.
    #[cfg_attr(feature = "schema", serde(default))]
    append_system_prompt: Option<String>,
    /// More directories the instance may read and edit, besides its working directory.
    #[cfg_attr(
        feature = "schema",
        serde(default, deserialize_with = "crate::schema::list"),
        schemars(with = "Option<Vec<String>>")
    )]
    add_dirs: Vec<String>,
    /// Model to fall back to when the main one is overloaded, e.g. `sonnet`.
    #[cfg_attr(feature = "schema", serde(default))]
    fallback_model: Option<String>,
    /// Reasoning effort: `low`, `medium`, `high`, ….
    #[cfg_attr(feature = "schema", serde(default))]
    effort: Option<String>,
    #[cfg_attr(feature = "schema", serde(skip))]
    extra_args: Vec<String>,
    #[cfg_attr(feature = "schema", serde(skip, default = "nested_env_vars"))]
    unset_env: Vec<String>,
    #[cfg_attr(feature = "schema", serde(skip))]
    nested_env: NestedEnv,
    /// Seconds before the instance is killed (default: the server's default timeout).
    #[cfg_attr(
        feature = "schema",
        serde(default, rename = "timeout_secs", alias = "timeout"),
        serde(deserialize_with = "crate::schema::timeout_secs"),
        schemars(with = "Option<u64>")
    )]
    timeout: Option<Duration>,
    /// Working directory of the instance.
    #[cfg_attr(feature = "schema", serde(default))]
    cwd: Option<PathBuf>,
    /// Keep Claude's input open (stream-json input): the prompt is its first message, more can
    /// be sent while it runs, and it ends once its input is closed.
    #[cfg_attr(feature = "schema", serde(default))]
    interactive: bool,
}

fn default_program() -> String {
    "claude".to_owned()
}

fn nested_env_vars() -> Vec<String> {
    NESTED_ENV_VARS.iter().map(|s| (*s).to_owned()).collect()
}

/// Builder methods that set an optional text option: `name(value)`.
macro_rules! text_options {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, value: impl Into<String>) -> Self {
            self.$name = Some(value.into());
            self
        }
    )*};
}

/// Builder methods that add values to a list option: `name(values)`.
macro_rules! list_options {
    ($($(#[$doc:meta])* $name:ident($field:ident);)*) => {$(
        $(#[$doc])*
        pub fn $name<I, S>(mut self, values: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self.$field.extend(values.into_iter().map(Into::into));
            self
        }
    )*};
}

impl ClaudeCommand {
    /// A run of `prompt` with the default options (program `claude`, no timeout).
    pub fn new(prompt: impl Into<String>) -> Self {
        ClaudeCommand {
            prompt: prompt.into(),
            program: default_program(),
            model: None,
            allowed_tools: Vec::new(),
            disallowed_tools: Vec::new(),
            mcp_configs: Vec::new(),
            max_turns: None,
            max_budget_usd: None,
            json_schema: None,
            permission_mode: None,
            resume: None,
            append_system_prompt: None,
            add_dirs: Vec::new(),
            fallback_model: None,
            effort: None,
            extra_args: Vec::new(),
            unset_env: nested_env_vars(),
            nested_env: NestedEnv::Unset,
            timeout: None,
            cwd: None,
            interactive: false,
        }
    }

    text_options! {
        /// `--model` (an alias such as `sonnet` or a full model name).
        model;
        /// `--fallback-model`: the model to use when the main one is overloaded.
        fallback_model;
        /// `--effort` (e.g. `low`, `medium`, `high`).
        effort;
        /// `--permission-mode` (e.g. `default`, `acceptEdits`, `plan`, `bypassPermissions`).
        permission_mode;
        /// `--resume`: continue the conversation of this session id. The run may report a new session
        /// id; take the next one from [`super::ClaudeResult::session_id`].
        resume;
        /// `--append-system-prompt`.
        append_system_prompt;
    }

    list_options! {
        /// Add tools to `--allowedTools` (e.g. `"Read"`, `"Bash(git log:*)"`).
        allowed_tools(allowed_tools);
        /// Add tools to `--disallowed-tools`.
        disallowed_tools(disallowed_tools);
        /// Add directories to `--add-dir`: more directories the instance may use besides its
        /// working directory.
        add_dirs(add_dirs);
        /// More CLI arguments (see [`ClaudeCommand::arg`]).
        args(extra_args);
    }

    /// The `claude` executable: a name looked up on the service's `PATH` (default `claude`) or a path.
    pub fn program(mut self, program: impl Into<String>) -> Self {
        self.program = program.into();
        self
    }

    /// Add an MCP configuration to `--mcp-config`: a path to a JSON file on the service's machine, or
    /// the JSON text itself. May be called several times.
    pub fn mcp_config(mut self, path_or_json: impl Into<String>) -> Self {
        self.mcp_configs.push(path_or_json.into());
        self
    }

    /// `--max-turns`: stop after this many agentic turns (the result then has subtype
    /// `error_max_turns`).
    pub fn max_turns(mut self, turns: u32) -> Self {
        self.max_turns = Some(turns);
        self
    }

    /// `--max-budget-usd`: stop once the run has spent this many US dollars on API calls (the
    /// result then has subtype `error_max_budget_usd`; [`super::ClaudeFailure::Budget`]). Must be
    /// positive: [`ClaudeCommand::validate`] refuses anything else.
    pub fn max_budget_usd(mut self, dollars: f64) -> Self {
        self.max_budget_usd = Some(dollars);
        self
    }

    /// `--json-schema`: the final answer must follow this JSON Schema (an object, passed
    /// serialized); the result carries it in [`super::ClaudeResult::structured_output`].
    pub fn json_schema(mut self, schema: Value) -> Self {
        self.json_schema = Some(schema);
        self
    }

    /// Whether a JSON Schema was given for the answer ([`ClaudeCommand::json_schema`]).
    pub fn has_json_schema(&self) -> bool {
        self.json_schema.is_some()
    }

    /// One more CLI argument, placed after the options above and before `-- <prompt>`. Quoted like
    /// every other value.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Also remove this environment variable from the run (besides [`NESTED_ENV_VARS`]).
    pub fn unset_env(mut self, name: impl Into<String>) -> Self {
        self.unset_env.push(name.into());
        self
    }

    /// How to keep the nested-instance variables away (default [`NestedEnv::Unset`]).
    pub fn nested_env(mut self, mode: NestedEnv) -> Self {
        self.nested_env = mode;
        self
    }

    /// Bound the whole run (see [`Command::timeout`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Working directory of the run on the service's machine.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Bound the whole run by `timeout` unless it has a timeout already (e.g. a default).
    pub fn or_timeout(mut self, timeout: Duration) -> Self {
        self.timeout.get_or_insert(timeout);
        self
    }

    /// Run in `dir` unless a working directory is set already.
    pub fn or_cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd.get_or_insert(dir.into());
        self
    }

    /// Run Claude with its input kept open (`--input-format stream-json`): the prompt goes as
    /// the first user message, [`ClaudeExecution::send`](crate::claude::ClaudeExecution::send)
    /// sends more while it runs, and [`ClaudeExecution::finish`](crate::claude::ClaudeExecution::finish)
    /// closes its input so that it ends after its current turn. Needs a service that advertises
    /// [`capability::STDIN`](crate::protocol::capability::STDIN).
    pub fn interactive(mut self) -> Self {
        self.interactive = true;
        self
    }

    /// Whether Claude's input stays open ([`ClaudeCommand::interactive`]).
    pub fn is_interactive(&self) -> bool {
        self.interactive
    }

    /// The prompt.
    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    /// Check that the run can be started: a non-blank prompt, a positive budget, a JSON Schema
    /// that is an object, and what [`Command::validate`] checks
    /// ([`Error::InvalidCommand`](crate::Error::InvalidCommand) otherwise).
    /// [`Client::execute_claude`](crate::Client::execute_claude) calls it first.
    ///
    /// ```
    /// use cc_executor_client::claude::ClaudeCommand;
    ///
    /// let e = ClaudeCommand::new("hi").max_budget_usd(0.0).validate().unwrap_err();
    /// assert!(e.to_string().contains("max_budget_usd"), "{e}");
    /// let e = ClaudeCommand::new("hi").json_schema("x".into()).validate().unwrap_err();
    /// assert!(e.to_string().contains("json_schema"), "{e}");
    /// ```
    pub fn validate(&self) -> crate::Result<()> {
        if self.prompt.trim().is_empty() {
            return Err(invalid("the prompt is empty; give Claude a task to do"));
        }
        if let Some(budget) = self.max_budget_usd.filter(|b| !(b.is_finite() && *b > 0.0)) {
            return Err(invalid(&format!(
                "max_budget_usd must be a positive number of US dollars, not {budget}"
            )));
        }
        if self.json_schema.as_ref().is_some_and(|s| !s.is_object()) {
            return Err(invalid(
                "json_schema must be a JSON Schema object, such as {\"type\": \"object\", \"properties\": {…}}",
            ));
        }
        Command::from(self).validate()
    }

    /// The arguments given to the `claude` program, unquoted, in order (without the program itself).
    pub fn to_args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["-p", "--verbose", "--output-format", "stream-json"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let one = |args: &mut Vec<String>, flag: &str, value: Option<&String>| {
            if let Some(v) = value {
                args.extend([flag.to_owned(), v.clone()]);
            }
        };
        // These options take several values; the `--` before the prompt ends the list.
        let many = |args: &mut Vec<String>, flag: &str, values: &[String]| {
            if !values.is_empty() {
                args.push(flag.to_owned());
                args.extend(values.iter().cloned());
            }
        };
        one(&mut args, "--model", self.model.as_ref());
        many(&mut args, "--allowedTools", &self.allowed_tools);
        many(&mut args, "--disallowed-tools", &self.disallowed_tools);
        many(&mut args, "--mcp-config", &self.mcp_configs);
        let turns = self.max_turns.map(|t| t.to_string());
        one(&mut args, "--max-turns", turns.as_ref());
        let budget = self.max_budget_usd.map(|b| b.to_string());
        one(&mut args, "--max-budget-usd", budget.as_ref());
        let schema = self.json_schema.as_ref().map(Value::to_string);
        one(&mut args, "--json-schema", schema.as_ref());
        one(
            &mut args,
            "--permission-mode",
            self.permission_mode.as_ref(),
        );
        one(&mut args, "--resume", self.resume.as_ref());
        one(
            &mut args,
            "--append-system-prompt",
            self.append_system_prompt.as_ref(),
        );
        many(&mut args, "--add-dir", &self.add_dirs);
        one(&mut args, "--fallback-model", self.fallback_model.as_ref());
        one(&mut args, "--effort", self.effort.as_ref());
        args.extend(self.extra_args.iter().cloned());
        if self.interactive {
            // The prompt goes on stdin, as the first user message.
            args.extend(["--input-format".to_owned(), "stream-json".to_owned()]);
        } else {
            args.push("--".to_owned());
            args.push(self.prompt.clone());
        }
        args
    }

    /// The shell command line the service runs (with `<shell> -c`). Every value is quoted.
    pub fn to_command_line(&self) -> String {
        let mut line = String::new();
        match self.nested_env {
            NestedEnv::Unset => {
                line.push_str("env ");
                for name in &self.unset_env {
                    line.push_str("-u ");
                    line.push_str(&shell_quote(name));
                    line.push(' ');
                }
            }
            NestedEnv::Empty => {
                // Only a valid name makes an assignment; anything else would become the program.
                for name in self.unset_env.iter().filter(|n| is_env_name(n)) {
                    line.push_str(name);
                    line.push_str("= ");
                }
            }
            NestedEnv::Keep => {}
        }
        line.push_str(&shell_quote(&self.program));
        for arg in self.to_args() {
            line.push(' ');
            line.push_str(&shell_quote(&arg));
        }
        if !self.interactive {
            line.push_str(" < /dev/null");
        }
        line
    }
}

/// One stream-json input line (with its `\n`): a user message holding `text`.
pub fn user_message(text: &str) -> String {
    let message = serde_json::json!({
        "type": "user",
        "message": {"role": "user", "content": [{"type": "text", "text": text}]},
    });
    format!("{message}\n")
}

/// A name the shell accepts in a `NAME=value` assignment.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl From<ClaudeCommand> for Command {
    fn from(cmd: ClaudeCommand) -> Command {
        let mut out = Command::new(cmd.to_command_line());
        if let Some(t) = cmd.timeout {
            out = out.timeout(t);
        }
        if let Some(dir) = cmd.cwd {
            out = out.cwd(dir);
        }
        if cmd.interactive {
            out = out.stdin_pipe().stdin(user_message(&cmd.prompt));
        }
        out
    }
}

impl From<&ClaudeCommand> for Command {
    fn from(cmd: &ClaudeCommand) -> Command {
        cmd.clone().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn safe_strings_are_unchanged() {
        for s in [
            "claude",
            "-p",
            "--output-format",
            "a/b.c",
            "x=1,y:2",
            "user@host",
            "50%+",
        ] {
            assert!(matches!(shell_quote(s), Cow::Borrowed(b) if b == s), "{s}");
        }
    }

    #[test]
    fn special_strings_are_single_quoted() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("'"), r"''\'''");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(id) `id` $HOME"), "'$(id) `id` $HOME'");
        assert_eq!(shell_quote("a\nb"), "'a\nb'");
        assert_eq!(shell_quote("; rm -rf ~"), "'; rm -rf ~'");
        assert_eq!(shell_quote("back\\slash"), "'back\\slash'");
        assert_eq!(shell_quote("*?[]{}!#&|<>()"), "'*?[]{}!#&|<>()'");
        assert_eq!(shell_quote("héllo"), "'héllo'");
    }

    /// Quote, then let a real `sh` split the result: it must be the one original argument.
    #[test]
    fn quoting_round_trips_through_sh() {
        // Harmless if quoting were broken: any expansion changes the output and fails the test.
        let nasty =
            "it's \"x\" $(echo injected) `echo injected` ; echo ~ $HOME * \n second line \\ '' -n";
        let every_ascii: String = (1u8..128).map(char::from).chain("é·€".chars()).collect();
        for s in [nasty, every_ascii.as_str(), "-n", "", "'", "''"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", shell_quote(s)))
                .output()
                .expect("run sh");
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s);
        }
    }

    #[test]
    fn command_line_defaults() {
        assert_eq!(
            ClaudeCommand::new("hi").to_command_line(),
            "env -u CLAUDECODE -u CLAUDE_CODE_ENTRYPOINT -u CLAUDE_CODE_SSE_PORT claude -p --verbose \
             --output-format stream-json -- hi < /dev/null"
        );
    }

    #[test]
    fn command_line_with_every_option() {
        let cmd = ClaudeCommand::new("-rf; it's")
            .program("/opt/my claude/bin/claude")
            .model("claude-sonnet-4-5")
            .allowed_tools(["Read", "Bash(git log:*)"])
            .disallowed_tools(vec!["Write".to_string()])
            .mcp_config(r#"{"mcpServers":{}}"#)
            .max_turns(3)
            .permission_mode("acceptEdits")
            .resume("0b6c2f1e-5d2a")
            .append_system_prompt("Be brief.")
            .arg("--include-partial-messages")
            .args(["--fallback-model", "haiku"])
            .unset_env("MY_VAR");
        assert_eq!(
            cmd.to_command_line(),
            "env -u CLAUDECODE -u CLAUDE_CODE_ENTRYPOINT -u CLAUDE_CODE_SSE_PORT -u MY_VAR \
             '/opt/my claude/bin/claude' -p --verbose --output-format stream-json \
             --model claude-sonnet-4-5 --allowedTools Read 'Bash(git log:*)' --disallowed-tools Write \
             --mcp-config '{\"mcpServers\":{}}' --max-turns 3 --permission-mode acceptEdits \
             --resume 0b6c2f1e-5d2a --append-system-prompt 'Be brief.' --include-partial-messages \
             --fallback-model haiku -- '-rf; it'\\''s' < /dev/null"
        );
        let args = cmd.to_args();
        assert_eq!(
            args[args.len() - 2..],
            ["--".to_string(), "-rf; it's".to_string()]
        );
    }

    #[test]
    fn nested_env_modes() {
        let cmd = ClaudeCommand::new("hi")
            .unset_env("BAD NAME")
            .unset_env("OK_2");
        assert_eq!(
            cmd.clone().nested_env(NestedEnv::Empty).to_command_line(),
            "CLAUDECODE= CLAUDE_CODE_ENTRYPOINT= CLAUDE_CODE_SSE_PORT= OK_2= claude -p --verbose \
             --output-format stream-json -- hi < /dev/null"
        );
        assert_eq!(
            cmd.clone().nested_env(NestedEnv::Keep).to_command_line(),
            "claude -p --verbose --output-format stream-json -- hi < /dev/null"
        );
        assert!(cmd.to_command_line().starts_with(
            "env -u CLAUDECODE -u CLAUDE_CODE_ENTRYPOINT -u CLAUDE_CODE_SSE_PORT \
                          -u 'BAD NAME' -u OK_2 claude -p"
        ));
    }

    #[test]
    fn into_command_carries_timeout_and_cwd() {
        let cmd = ClaudeCommand::new("hi")
            .timeout(Duration::from_secs(7))
            .cwd("some/dir");
        let command: Command = (&cmd).into();
        assert_eq!(command.line(), cmd.to_command_line());
        assert_eq!(command.get_timeout(), Some(Duration::from_secs(7)));
        assert_eq!(command.cwd, Some(PathBuf::from("some/dir")));
        let plain: Command = ClaudeCommand::new("hi").into();
        assert_eq!(plain.get_timeout(), None);
        assert_eq!(plain.cwd, None);
    }

    #[test]
    fn interactive_sends_the_prompt_on_stdin() {
        let cmd = ClaudeCommand::new("first \"task\"").interactive();
        assert_eq!(
            cmd.to_args(),
            [
                "-p",
                "--verbose",
                "--output-format",
                "stream-json",
                "--input-format",
                "stream-json"
            ]
        );
        assert!(!cmd.to_command_line().contains("/dev/null"));
        let command: Command = cmd.into();
        assert!(command.stdin_pipe);
        let line = command.get_stdin().unwrap();
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["type"], "user");
        assert_eq!(v["message"]["role"], "user");
        assert_eq!(v["message"]["content"][0]["text"], "first \"task\"");
        assert!(ClaudeCommand::new("x")
            .to_command_line()
            .ends_with("< /dev/null"));
    }
}
