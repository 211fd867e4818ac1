//! What to tell a reader about a job: its status, plain sentences about how it went, and a
//! finished Claude job's result; and how a reader names a job.

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

/// The jobs a registry holds, as a reader is told about them: `JobList::from(jobs.list())`.
///
/// With the `schema` feature it serializes as `{"jobs": [...]}`.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "schema", derive(serde::Serialize, schemars::JsonSchema))]
#[non_exhaustive]
pub struct JobList {
    /// Running and recently finished jobs, oldest first (without Claude results).
    pub jobs: Vec<JobReport>,
}

impl From<Vec<JobStatus>> for JobList {
    fn from(jobs: Vec<JobStatus>) -> Self {
        let jobs = jobs.into_iter().map(JobReport::from).collect();
        JobList { jobs }
    }
}

/// A job to act on, as a tool's parameters name it (`{"id": 3}`).
#[cfg(feature = "schema")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JobRef {
    /// The job id: the integer `id` that `job_start` returned.
    pub id: u64,
}

/// The note for a finished Claude job without a `result` line.
pub(super) const CLAUDE_WITHOUT_RESULT: &str =
    "Claude ended without its final result; the job's output shows what it wrote (stderr included).";
