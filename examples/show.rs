//! Events and values written as plain text for the examples' output.

use cc_executor_client::OutputEvent;

/// `0`, `-15`, or `unknown` when there is none.
pub fn number(n: Option<impl ToString>) -> String {
    n.map_or_else(|| "unknown".to_owned(), |n| n.to_string())
}

/// One line about an event other than output, e.g. `completed: exit code 0 after 3.06ms`.
pub fn event(ev: &OutputEvent) -> String {
    match ev {
        OutputEvent::Started { pid, pgid, .. } => {
            format!("started pid {pid} pgid {}", number(*pgid))
        }
        OutputEvent::Completed {
            status,
            exit_code,
            duration,
            ..
        } => format!(
            "{}: exit code {} after {duration:.2?}",
            status.as_str(),
            number(*exit_code)
        ),
        OutputEvent::Failed { error, .. } => {
            format!("not run: {}", error.as_deref().unwrap_or("no reason given"))
        }
        OutputEvent::Paused => "paused".to_owned(),
        OutputEvent::Resumed => "resumed".to_owned(),
        OutputEvent::Canceled => "canceled".to_owned(),
        other => other.limit_advice().unwrap_or_else(|| format!("{other:?}")),
    }
}
