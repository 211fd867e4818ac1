//! Plain sentences for the host: limits with their reset time, durations, UTC times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cc_executor_client::{RateLimit, TokenLimit};

pub fn rate_limit_text(r: &RateLimit) -> String {
    let mut text = format!("Rate limited: {}.", r.message.trim_end_matches('.'));
    match (r.reset_at, r.retry_after) {
        (Some(at), _) => {
            let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
            text += &format!(
                " It resets at {} (in {}); retry after that.",
                utc(at),
                human(wait)
            );
        }
        (None, Some(after)) => text += &format!(" Retry in {}.", human(after)),
        (None, None) => text += " The reset time is not known; wait before retrying.",
    }
    text
}

pub fn token_limit_text(t: &TokenLimit) -> String {
    let mut text = format!("Token limit exceeded: {t}.");
    if let Some(s) = &t.suggestion {
        text += &format!(" {s}");
    }
    text
}

/// `2030-03-17 17:46:40 UTC`.
fn utc(t: SystemTime) -> String {
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

pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=172_799 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
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
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(5)), "5s");
        assert_eq!(human(Duration::from_secs(125)), "2m 5s");
        assert_eq!(human(Duration::from_secs(7300)), "2h 1m");
        assert_eq!(human(Duration::from_secs(3 * 86_400 + 7200)), "3d 2h");
    }
}
