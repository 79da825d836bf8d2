//! Helpers shared by the unit tests: fixed instants and timestamps relative to them.

use std::time::{Duration, SystemTime};

/// The instant of an RFC 3339 timestamp.
pub(crate) fn at(s: &str) -> SystemTime {
    humantime::parse_rfc3339(s).expect("test timestamp")
}

/// The RFC 3339 timestamp `secs` seconds before `now`, as the API server would store it.
pub(crate) fn ago(now: SystemTime, secs: u64) -> String {
    humantime::format_rfc3339_seconds(now - Duration::from_secs(secs)).to_string()
}
