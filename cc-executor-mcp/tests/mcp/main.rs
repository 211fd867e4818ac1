//! The `cc-executor-mcp` program driven over stdio by rmcp's client, as an MCP host would:
//! `execute`, `execute_claude`, jobs, orchestration of sub-agents, tasks and the command line.
//!
//! One module per topic; [`support`] holds the helpers they share.

mod agents;
mod claude;
mod cli;
mod execute;
mod jobs;
mod stdin;
mod support;
mod tasks;
