//! Reading a job's output in other ways than by pages of raw bytes: the lines matching a regular
//! expression (with their byte offsets), and a Claude job's stream-json as readable lines.
//! Nothing here consumes output: every read sees what the job's window holds.

use regex::Regex;

use super::{JobId, JobKind, Jobs, OutputPage};
use crate::error::{Error, Result};
use crate::text::bound;

/// How a job's output is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "schema", derive(serde::Deserialize, schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum OutputFormat {
    /// As the job wrote it (for a Claude job, its stream-json).
    #[default]
    Raw,
    /// For a Claude job, its text, tool calls and result as readable lines
    /// ([`ClaudeEvent::readable`](crate::claude::ClaudeEvent::readable)); other jobs' output
    /// as it is.
    Text,
}

/// One line of a job's output found by a grep ([`Jobs::grep`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(serde::Serialize, schemars::JsonSchema))]
#[non_exhaustive]
pub struct OutputLine {
    /// Byte offset of the line in the job's output (with `format: "text"`, of the stream-json
    /// line it was read from).
    pub offset: u64,
    /// The line, without its line break.
    pub line: String,
    /// Whether the line matches (`false` for a line of context around a match).
    #[cfg_attr(feature = "schema", serde(rename = "match"))]
    pub matched: bool,
}

/// A read of a job's output: a page from an offset, the tail, or the lines matching a regular
/// expression, raw or as readable text. With the `schema` feature it is what the `job_output`
/// tool takes.
///
/// ```
/// use cc_executor_client::jobs::{JobId, OutputQuery};
///
/// let query = OutputQuery::new(JobId(3)).grep("^error").context(2);
/// assert_eq!(query.grep.as_deref(), Some("^error"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(serde::Deserialize, schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct OutputQuery {
    /// The job id: the integer `id` that `job_start` returned.
    pub id: u64,
    /// Byte offset to read from (default 0): pass the previous page's `next_offset`.
    pub offset: Option<u64>,
    /// Most bytes of UTF-8 text to return (default and most: the server's output bound, 20,000
    /// unless configured otherwise).
    pub limit: Option<usize>,
    /// Return the last `limit` bytes instead of reading from `offset`.
    pub tail: Option<bool>,
    /// A regular expression (Rust `regex` syntax, e.g. `(?i)error|warning`): return in `lines`
    /// only the lines that match, each with its byte offset, and in `match_count` how many
    /// lines matched in all the output searched (from `offset`).
    pub grep: Option<String>,
    /// With `grep`: also return this many lines before and after each match.
    pub context: Option<usize>,
    /// `raw` (default) or, for a Claude job, `text`: Claude's text, tool calls and result as
    /// readable lines instead of stream-json.
    pub format: Option<OutputFormat>,
}

impl OutputQuery {
    /// Read job `id` from its start, raw.
    pub fn new(id: JobId) -> Self {
        OutputQuery {
            id: id.0,
            ..Default::default()
        }
    }

    /// Read from byte `offset`.
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// At most `bytes` bytes of text.
    pub fn limit(mut self, bytes: usize) -> Self {
        self.limit = Some(bytes);
        self
    }

    /// The last `limit` bytes.
    pub fn tail(mut self) -> Self {
        self.tail = Some(true);
        self
    }

    /// Only the lines matching the regular expression `pattern`.
    pub fn grep(mut self, pattern: impl Into<String>) -> Self {
        self.grep = Some(pattern.into());
        self
    }

    /// With a grep, `lines` of context around each match.
    pub fn context(mut self, lines: usize) -> Self {
        self.context = Some(lines);
        self
    }

    /// Show the output as `format` says.
    pub fn format(mut self, format: OutputFormat) -> Self {
        self.format = Some(format);
        self
    }
}

/// A line of the output as read: where its raw line starts and ends, and its text.
struct Entry {
    offset: u64,
    end: u64,
    text: String,
}

impl Jobs {
    /// Read job `id`'s output as `query` says, at most `max_limit` bytes of text whatever its
    /// `limit`: a page ([`Jobs::page`]) when raw without a grep; otherwise the output held is
    /// split into lines (only whole lines while the job runs), turned into readable text for a
    /// Claude job with [`OutputFormat::Text`], and, with a grep, kept only where they match or
    /// are context. `next_offset` is where the next read should start.
    ///
    /// A grep's result is in [`OutputPage::lines`] and [`OutputPage::match_count`] (`data` is
    /// then empty). A pattern that is not a regular expression, or a `context` without a grep, is
    /// [`Error::InvalidRequest`].
    pub fn read(&self, query: &OutputQuery, max_limit: usize) -> Result<OutputPage> {
        let id = JobId(query.id);
        let limit = query.limit.unwrap_or(usize::MAX).min(max_limit).max(1);
        let tail = query.tail == Some(true);
        let text = query.format == Some(OutputFormat::Text);
        let pattern = match &query.grep {
            Some(p) => Some(Regex::new(p).map_err(|e| Error::InvalidRequest {
                reason: format!("`grep` is not a valid regular expression ({e}); fix the pattern"),
            })?),
            None => None,
        };
        if query.context.is_some() && pattern.is_none() {
            return Err(Error::InvalidRequest {
                reason: "`context` is the lines shown around each match; give `grep` too".into(),
            });
        }
        if pattern.is_none() && !text {
            return self.page(id, (!tail).then(|| query.offset.unwrap_or(0)), limit);
        }
        let job = self.job(id)?;
        let claude = text && job.status().kind == JobKind::Claude;
        let start = if tail { 0 } else { query.offset.unwrap_or(0) };
        let mut page = job.page(Some(start), usize::MAX);
        let entries = entries(&page, claude);
        let searched_to = entries.last().map_or(page.offset, |e| e.end);
        page.eof = page.eof && searched_to >= page.total;
        page.data.clear();
        match pattern {
            Some(re) => grep(
                &mut page,
                &entries,
                &re,
                query.context.unwrap_or(0),
                limit,
                tail,
            ),
            None => render(&mut page, &entries, limit, tail),
        }
        if page.next_offset < searched_to {
            page.eof = false;
        }
        Ok(page)
    }

    /// The lines of job `id`'s output held in memory that match `pattern`, with `context`
    /// lines around each ([`Jobs::read`] with a grep, no size limit).
    pub fn grep(&self, id: JobId, pattern: &str, context: usize) -> Result<OutputPage> {
        let query = OutputQuery::new(id).grep(pattern).context(context);
        self.read(&query, usize::MAX)
    }
}

/// The lines of `page` with their offsets: whole lines only unless the job has ended; for a
/// Claude job, each stream-json line as its readable lines.
fn entries(page: &OutputPage, claude: bool) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut at = page.offset;
    for raw in page.data.split_inclusive('\n') {
        let (offset, end) = (at, at + raw.len() as u64);
        at = end;
        if !raw.ends_with('\n') && !page.eof {
            break;
        }
        let line = raw.trim_end_matches(['\n', '\r']);
        if !claude {
            out.push(Entry {
                offset,
                end,
                text: line.to_owned(),
            });
            continue;
        }
        let Some(readable) = crate::claude::parse_line(line).readable() else {
            continue;
        };
        out.extend(readable.lines().map(|text| Entry {
            offset,
            end,
            text: text.to_owned(),
        }));
    }
    out
}

/// Keep the lines that match `re` and `context` lines around them, at most `limit` bytes of
/// them (the last ones for a tail), with the count of all matches.
fn grep(
    page: &mut OutputPage,
    entries: &[Entry],
    re: &Regex,
    around: usize,
    limit: usize,
    tail: bool,
) {
    let matched: Vec<bool> = entries.iter().map(|e| re.is_match(&e.text)).collect();
    let mut keep = vec![false; entries.len()];
    for (i, _) in matched.iter().enumerate().filter(|(_, m)| **m) {
        let to = (i + around).min(entries.len() - 1);
        keep[i.saturating_sub(around)..=to].fill(true);
    }
    let kept: Vec<usize> = (0..entries.len()).filter(|i| keep[*i]).collect();
    let chosen = within(&kept, entries, limit, tail);
    page.match_count = Some(matched.iter().filter(|m| **m).count() as u64);
    let lines = chosen.iter().map(|i| super::OutputLine {
        offset: entries[*i].offset,
        line: bound(&entries[*i].text, limit).0,
        matched: matched[*i],
    });
    page.lines = Some(lines.collect());
    set_range(page, entries, &chosen, kept.len() > chosen.len(), tail);
}

/// The readable lines as `data`, at most `limit` bytes of them (the last ones for a tail).
fn render(page: &mut OutputPage, entries: &[Entry], limit: usize, tail: bool) {
    let all: Vec<usize> = (0..entries.len()).collect();
    let chosen = within(&all, entries, limit, tail);
    for i in &chosen {
        page.data.push_str(&bound(&entries[*i].text, limit).0);
        page.data.push('\n');
    }
    set_range(page, entries, &chosen, chosen.len() < all.len(), tail);
}

/// The first of `items` (the last ones for a tail) whose lines fit in `limit` bytes; at least
/// one, so that a read always moves on (a longer line is cut).
fn within(items: &[usize], entries: &[Entry], limit: usize, tail: bool) -> Vec<usize> {
    let mut used = 0;
    let mut fits = |i: &&usize| {
        used += entries[**i].text.len() + 1;
        used <= limit || used == entries[**i].text.len() + 1
    };
    let mut chosen: Vec<usize> = match tail {
        false => items.iter().take_while(&mut fits).copied().collect(),
        true => items.iter().rev().take_while(&mut fits).copied().collect(),
    };
    if tail {
        chosen.reverse();
    } else {
        whole_lines(&mut chosen, items, entries);
    }
    chosen
}

/// Keep the readable lines of a stream-json line together, so that the next read, from the end
/// of the last one returned, neither repeats nor skips any: a line cut short is left for the
/// next read, or, when it is the first of this one, returned whole.
fn whole_lines(chosen: &mut Vec<usize>, items: &[usize], entries: &[Entry]) {
    let (Some(&first), Some(&last)) = (chosen.first(), chosen.last()) else {
        return;
    };
    let raw = entries[last].offset;
    let rest = items[chosen.len()..]
        .iter()
        .take_while(|i| entries[**i].offset == raw);
    let rest: Vec<usize> = rest.copied().collect();
    if rest.is_empty() {
        return;
    }
    match entries[first].offset == raw {
        true => chosen.extend(rest),
        false => chosen.retain(|i| entries[*i].offset != raw),
    }
}

/// Set where the returned lines start (for a tail) and where the next read starts: after the
/// last line returned when some were left out, else at the end of what was searched.
fn set_range(page: &mut OutputPage, entries: &[Entry], chosen: &[usize], cut: bool, tail: bool) {
    let searched_to = entries.last().map_or(page.offset, |e| e.end);
    if let (true, Some(first)) = (tail, chosen.first()) {
        page.offset = entries[*first].offset;
    }
    page.next_offset = match (cut && !tail, chosen.last()) {
        (true, Some(last)) => entries[*last].end,
        _ => searched_to,
    };
}
