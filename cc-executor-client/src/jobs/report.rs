//! What to tell a reader about a job: its status, plain sentences about how it went, and a
//! finished Claude job's result.

use super::JobStatus;
use crate::claude::BoundedResult;

/// A job as a reader (a person, or a model driving a tool) is told about it: [`Jobs::report`]
/// for one job, `JobReport::from(status)` (no Claude result) for a list.
///
/// With the `schema` feature it serializes as the status's fields plus `notes` and `claude`.
///
/// [`Jobs::report`]: super::Jobs::report
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "schema", derive(serde::Serialize, schemars::JsonSchema))]
#[non_exhaustive]
pub struct JobReport {
    /// The job's status.
    #[cfg_attr(feature = "schema", serde(flatten))]
    pub status: JobStatus,
    /// Limits hit (with when they reset) and why a Claude job failed, as sentences.
    pub notes: Vec<String>,
    /// For a finished Claude job that wrote its final result: that result, its answer bounded.
    pub claude: Option<BoundedResult>,
    /// For a Claude job: the text of its latest assistant message, when it wrote one.
    pub assistant: Option<String>,
}

impl From<JobStatus> for JobReport {
    /// The status with the notes about its limits, without a Claude result.
    fn from(status: JobStatus) -> Self {
        JobReport {
            notes: status.notes(),
            status,
            claude: None,
            assistant: None,
        }
    }
}

/// The note for a finished Claude job without a `result` line.
pub(super) const CLAUDE_WITHOUT_RESULT: &str =
    "Claude ended without its final result; the job's output shows what it wrote (stderr included).";
