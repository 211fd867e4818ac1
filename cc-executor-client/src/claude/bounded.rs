//! A Claude run's result for readers with a size limit.

use std::path::PathBuf;

use super::stream::ClaudeResult;
use crate::output_dir::unsaved;
use crate::text::bound;

/// A [`ClaudeResult`] with its answer cut to about a size: the head and tail of the text around
/// an omission marker, and where the whole answer is when it was cut.
///
/// With the `schema` feature it serializes as the result's fields plus `output_file` and
/// `output_error`.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "schema", derive(serde::Serialize, schemars::JsonSchema))]
#[non_exhaustive]
pub struct BoundedResult {
    /// The result, its answer possibly cut.
    #[cfg_attr(feature = "schema", serde(flatten))]
    pub result: ClaudeResult,
    /// Whether the answer was cut.
    #[cfg_attr(feature = "schema", serde(skip))]
    pub cut: bool,
    /// File holding the whole answer, present only when `result` was cut.
    pub output_file: Option<PathBuf>,
    /// Why a cut answer was not saved to a file, when it was not.
    pub output_error: Option<String>,
    /// What a reader must be told besides the result, as sentences: [`ClaudeResult::notes`] of
    /// the whole result (why it failed, a missing `structured_output`); empty for a success.
    #[cfg_attr(feature = "schema", serde(skip))]
    pub notes: Vec<String>,
}

impl ClaudeResult {
    /// This result with its answer cut to about `limit` bytes
    /// ([`capture::bound`](crate::capture::bound)); `whole` is called with the whole answer when
    /// it was cut, and gives the file that holds it, if any, or why it could not be saved.
    ///
    /// ```
    /// use cc_executor_client::claude::{parse_line, ClaudeEvent};
    ///
    /// let line = format!(r#"{{"type":"result","subtype":"success","result":"{}"}}"#, "x".repeat(500));
    /// let ClaudeEvent::Result(r) = parse_line(&line) else { unreachable!() };
    /// let out = r.bounded(100, |_| Err("no room"));
    /// assert!(out.cut && out.result.result.unwrap().contains("bytes omitted"));
    /// assert!(out.output_error.unwrap().contains("no room"));
    /// ```
    pub fn bounded<E: std::fmt::Display>(
        mut self,
        limit: usize,
        whole: impl FnOnce(&str) -> Result<Option<PathBuf>, E>,
    ) -> BoundedResult {
        let (mut cut, mut output_file, mut output_error) = (false, None, None);
        let notes = self.notes();
        if let Some(text) = &mut self.result {
            let (short, was_cut) = bound(text, limit);
            if was_cut {
                match whole(text) {
                    Ok(file) => output_file = file,
                    Err(why) => output_error = Some(unsaved(why)),
                }
                *text = short;
                cut = true;
            }
        }
        BoundedResult {
            result: self,
            cut,
            output_file,
            output_error,
            notes,
        }
    }
}
