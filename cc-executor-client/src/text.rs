//! Text for people: bounding long text to its head and tail, and durations and times written out.
//!
//! A leaf module: it depends on nothing else in the crate, so errors, captures and outcomes can
//! all use it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Cut `text` to about `limit` bytes: its head and tail around an omission marker.
/// Returns the text and whether something was cut.
pub fn bound(text: &str, limit: usize) -> (String, bool) {
    let mut b = Bounded::new(limit);
    b.push(text);
    b.render(limit)
}

/// One stream of text kept within a budget: the first `cap / 2` bytes and (about) the last
/// `cap / 2` bytes, with the total seen.
#[derive(Debug)]
pub(crate) struct Bounded {
    head_cap: usize,
    tail_cap: usize,
    head: String,
    tail: String,
    total: u64,
}

impl Bounded {
    pub(crate) fn new(cap: usize) -> Self {
        Bounded {
            head_cap: cap / 2,
            tail_cap: cap - cap / 2,
            head: String::new(),
            tail: String::new(),
            total: 0,
        }
    }

    /// Bytes pushed in all.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn push(&mut self, mut data: &str) {
        self.total += data.len() as u64;
        if self.head.len() < self.head_cap {
            let room = floor_char_boundary(data, self.head_cap - self.head.len());
            self.head.push_str(&data[..room]);
            data = &data[room..];
            if data.is_empty() {
                return;
            }
            // The head is full when a character did not fit: the rest goes to the tail.
            self.head_cap = self.head.len();
        }
        self.tail.push_str(data);
        // Trim only when the tail doubled, so pushing stays amortised O(1) per byte.
        if self.tail.len() > 2 * self.tail_cap.max(1) {
            let cut = ceil_char_boundary(&self.tail, self.tail.len() - self.tail_cap);
            self.tail.drain(..cut);
        }
    }

    /// The text cut to about `budget` bytes, and whether something was left out.
    pub(crate) fn render(&self, budget: usize) -> (String, bool) {
        let kept = self.head.len() + self.tail.len();
        if self.total == kept as u64 && kept <= budget {
            return (format!("{}{}", self.head, self.tail), false);
        }
        // Everything kept is contiguous when nothing was dropped between head and tail.
        let (front, back) = if self.total == kept as u64 {
            (self.head.clone() + &self.tail, None)
        } else {
            (self.head.clone(), Some(&self.tail))
        };
        let back: &str = back.map(String::as_str).unwrap_or(&front);
        let head_len = line_cut_front(&front, budget / 2);
        let tail_start = line_cut_back(back, budget - head_len);
        let head = &front[..head_len];
        let tail = &back[tail_start..];
        let omitted = self.total - head.len() as u64 - tail.len() as u64;
        let sep = if head.is_empty() || head.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        (
            format!("{head}{sep}[… {omitted} bytes omitted …]\n{tail}"),
            true,
        )
    }
}

/// Length of a prefix of `s` of at most `max` bytes, ending after a newline when one lies in the
/// second half of that window.
fn line_cut_front(s: &str, max: usize) -> usize {
    let end = floor_char_boundary(s, max);
    match s[..end].rfind('\n') {
        Some(i) if i + 1 >= end / 2 => i + 1,
        _ => end,
    }
}

/// Start of a suffix of `s` of at most `max` bytes, starting after a newline when one lies in the
/// first half of that window.
fn line_cut_back(s: &str, max: usize) -> usize {
    let start = ceil_char_boundary(s, s.len().saturating_sub(max));
    match s[start..].find('\n') {
        Some(i) if i < (s.len() - start) / 2 => start + i + 1,
        _ => start,
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// `s` cut to its first `max` characters, with `…` when something was cut.
pub(crate) fn clip_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Seconds a person reads at a glance: `12s` for whole seconds, else `1.5s`, `30.0s`.
///
/// The one way this crate writes a duration in seconds (errors, advice, notes).
pub(crate) fn secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A wait in the largest units that matter: `5s`, `2m 5s`, `2h 1m`, `3d 2h`.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => secs(Duration::from_secs(s)),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=172_799 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `2030-03-17 17:46:40 UTC`.
pub(crate) fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_civil_dates() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        let t = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        assert_eq!(utc(t), "2030-03-17 17:46:40 UTC");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc(leap), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(secs(Duration::from_secs(12)), "12s");
        assert_eq!(secs(Duration::from_millis(1500)), "1.5s");
        assert_eq!(secs(Duration::from_nanos(30_001_234_567)), "30.0s");
        assert_eq!(human(Duration::from_secs(5)), "5s");
        assert_eq!(human(Duration::from_secs(125)), "2m 5s");
        assert_eq!(human(Duration::from_secs(7300)), "2h 1m");
        assert_eq!(human(Duration::from_secs(3 * 86_400 + 7200)), "3d 2h");
    }

    #[test]
    fn cuts_fall_on_char_boundaries() {
        let text = "é".repeat(5000);
        for limit in [0, 1, 2, 3, 7, 100, 101] {
            let (s, cut) = bound(&text, limit);
            assert!(cut);
            assert!(s.contains("bytes omitted"));
        }
        assert_eq!(bound("héllo", 6), ("héllo".to_owned(), false));
        assert_eq!(clip_chars("héllo", 2), "hé…");
        assert_eq!(clip_chars("hé", 2), "hé");
    }
}
