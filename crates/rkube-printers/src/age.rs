//! Ages as upstream prints them: `duration.HumanDuration` (5s, 3m20s, 2d3h, 1y20d) and `translateTimestampSince`.

use std::time::{Duration, SystemTime};

/// A duration in whole seconds, written the way kubectl's AGE column shows it (upstream's
/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration`): about two significant figures.
pub fn human_duration(seconds: i64) -> String {
    // Upstream tolerates one second of clock skew as "now"; more than that is an invalid (future) time.
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return with_rest(minutes, "m", seconds % 60, "s");
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return with_rest(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return with_rest(hours / 24, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return with_rest(hours / 24 / 365, "y", (hours / 24) % 365, "d");
    }
    format!("{}y", hours / 24 / 365)
}

/// `3m` or `3m20s`: the smaller unit only when it is not zero.
fn with_rest(big: i64, big_unit: &str, small: i64, small_unit: &str) -> String {
    if small == 0 { format!("{big}{big_unit}") } else { format!("{big}{big_unit}{small}{small_unit}") }
}

/// The time elapsed from `timestamp` (RFC 3339) to `now`, as [`human_duration`]; `<unknown>` when the
/// timestamp is missing or unreadable (upstream's zero time).
pub fn translate_timestamp_since(timestamp: Option<&str>, now: SystemTime) -> String {
    match timestamp.and_then(parse_time) {
        Some(t) => human_duration(seconds_between(t, now)),
        None => "<unknown>".to_owned(),
    }
}

/// `to - from` in whole seconds, truncated toward zero as Go's `int(d.Seconds())` does.
pub(crate) fn seconds_between(from: SystemTime, to: SystemTime) -> i64 {
    match to.duration_since(from) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Parses an RFC 3339 timestamp (`2024-01-02T03:04:05Z`, with optional fraction or numeric offset).
pub(crate) fn parse_time(s: &str) -> Option<SystemTime> {
    if s.is_empty() {
        return None;
    }
    // humantime reads only UTC (`Z`) timestamps; metav1.Time is always written in UTC, but a client may send
    // an offset, so apply it by hand.
    let (base, offset_secs) = split_offset(s)?;
    let t = humantime::parse_rfc3339_weak(&base).ok()?;
    let shift = Duration::from_secs(offset_secs.unsigned_abs());
    if offset_secs >= 0 { t.checked_sub(shift) } else { t.checked_add(shift) }
}

/// Splits a trailing `+hh:mm`/`-hh:mm` offset off a timestamp, giving the UTC-marked base and the offset.
fn split_offset(s: &str) -> Option<(String, i64)> {
    if s.ends_with('Z') || s.ends_with('z') {
        return Some((s.to_owned(), 0));
    }
    let n = s.len();
    if n < 6 || !s.is_char_boundary(n - 6) {
        return Some((s.to_owned(), 0));
    }
    let (base, off) = s.split_at(n - 6);
    let b = off.as_bytes();
    if (b[0] == b'+' || b[0] == b'-') && b[3] == b':' {
        let h: i64 = off.get(1..3)?.parse().ok()?;
        let m: i64 = off.get(4..6)?.parse().ok()?;
        let sign = if b[0] == b'-' { -1 } else { 1 };
        return Some((format!("{base}Z"), sign * (h * 3600 + m * 60)));
    }
    Some((s.to_owned(), 0))
}

/// A timestamp as upstream's default table writes it: RFC 3339 in UTC, whole seconds; Go's zero time when
/// missing.
pub(crate) fn rfc3339_utc(timestamp: Option<&str>) -> String {
    match timestamp.and_then(parse_time) {
        Some(t) => humantime::format_rfc3339_seconds(t).to_string(),
        None => "0001-01-01T00:00:00Z".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_duration_matches_upstream() {
        assert_eq!(human_duration(-2), "<invalid>");
        assert_eq!(human_duration(-1), "0s");
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(120), "2m");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(179 * 60 + 59), "179m");
        assert_eq!(human_duration(3 * 3600), "3h");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400), "3d");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(20 * 86400), "20d");
        assert_eq!(human_duration(2 * 365 * 86400), "2y");
        assert_eq!(human_duration(3 * 365 * 86400 + 5 * 86400), "3y5d");
        assert_eq!(human_duration(10 * 365 * 86400), "10y");
    }

    #[test]
    fn timestamps() {
        let now = humantime::parse_rfc3339("2024-01-01T00:10:00Z").expect("time");
        assert_eq!(translate_timestamp_since(Some("2024-01-01T00:00:00Z"), now), "10m");
        assert_eq!(translate_timestamp_since(Some("2024-01-01T00:09:30.123456Z"), now), "29s");
        assert_eq!(translate_timestamp_since(Some("2024-01-01T01:00:00+01:00"), now), "10m");
        assert_eq!(translate_timestamp_since(None, now), "<unknown>");
        assert_eq!(translate_timestamp_since(Some("garbage"), now), "<unknown>");
        assert_eq!(translate_timestamp_since(Some("2024-01-01T00:20:00Z"), now), "<invalid>");
        assert_eq!(rfc3339_utc(Some("2024-01-01T01:00:00+01:00")), "2024-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(None), "0001-01-01T00:00:00Z");
    }
}
