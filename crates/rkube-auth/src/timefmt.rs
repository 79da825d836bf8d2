//! Timestamps as the API writes them (`metav1.Time`: RFC 3339, whole seconds, UTC) and JWT NumericDates.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `2006-01-02T15:04:05Z`: whole seconds in UTC, as `metav1.Time` marshals.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = unix_seconds(t);
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        // Only a year beyond 9999 fails to format; the API has no better spelling for it either.
        .unwrap_or_default()
}

/// Parses RFC 3339 (any offset, optional fraction) as Go's `time.Parse(time.RFC3339, ...)` accepts.
pub(crate) fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let d = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some(SystemTime::from(d))
}

/// Seconds since the Unix epoch, negative before it (a JWT NumericDate).
pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The instant `secs` seconds after the Unix epoch.
#[cfg(test)]
pub(crate) fn from_unix_seconds(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + std::time::Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - std::time::Duration::from_secs(secs.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = from_unix_seconds(1_514_764_800);
        assert_eq!(rfc3339(t), "2018-01-01T00:00:00Z");
        assert_eq!(rfc3339(t + std::time::Duration::from_millis(999)), "2018-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339("2018-01-01T00:00:00Z"), Some(t));
        assert_eq!(parse_rfc3339("2018-01-01T02:00:00+02:00"), Some(t));
        assert_eq!(parse_rfc3339("2018-01-01"), None);
        assert_eq!(unix_seconds(t), 1_514_764_800);
    }
}
