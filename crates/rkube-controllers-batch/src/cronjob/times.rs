//! Which scheduled time a CronJob is due for, and when to look again (upstream's `mostRecentScheduleTime`,
//! `nextScheduleTime` and `nextScheduleTimeDuration`), as pure functions of the CronJob's times and `now`.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use rkube_validation::cron::Schedule;

/// How many start times were missed since the last one (upstream warns past 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missed {
    /// None.
    None,
    /// Some, up to 100.
    Few,
    /// More than 100: `TooManyMissedTimes`.
    Many,
}

/// What `most_recent` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recent {
    /// The last schedule time, or the creation time (moved up to `now - startingDeadlineSeconds`).
    pub(crate) earliest: Timestamp,
    /// The latest activation in `(earliest, now]`, if any.
    pub(crate) most_recent: Option<Timestamp>,
    /// How many activations were missed.
    pub(crate) missed: Missed,
}

/// The times of a CronJob that scheduling reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CronTimes {
    /// `metadata.creationTimestamp`.
    pub(crate) created: Timestamp,
    /// `status.lastScheduleTime`.
    pub(crate) last_schedule: Option<Timestamp>,
    /// `spec.startingDeadlineSeconds`.
    pub(crate) starting_deadline: Option<i64>,
}

/// Upstream's error for schedules that never fire (e.g. `59 23 31 2 *`).
pub(crate) const NEVER: &str = "time difference between two schedules is less than 1 second";

/// Upstream's `mostRecentScheduleTime`.
pub(crate) fn most_recent(
    c: &CronTimes,
    now: Timestamp,
    sched: &Schedule,
    with_deadline: bool,
) -> Result<Recent, String> {
    let mut earliest = c.last_schedule.unwrap_or(c.created);
    if with_deadline && let Some(d) = c.starting_deadline {
        let deadline = now - SignedDuration::from_secs(d);
        if deadline > earliest {
            earliest = deadline;
        }
    }
    let none = Recent { earliest, most_recent: None, missed: Missed::None };
    let (Some(t1), Some(t2)) = (sched.next(earliest), sched.next(earliest).and_then(|t| sched.next(t))) else {
        return Err(NEVER.into());
    };
    if now < t1 {
        return Ok(none);
    }
    if now < t2 {
        return Ok(Recent { most_recent: Some(t1), ..none });
    }
    let between = (t2.duration_since(t1).as_millis() + 500).div_euclid(1000) as i64;
    if between < 1 {
        return Err(NEVER.into());
    }
    let elapsed = now.duration_since(t1).as_secs();
    let missed_count = elapsed / between + 1;
    // Start one interval early and let the schedule find the real times, for irregular schedules.
    let mut t = t1 + SignedDuration::from_secs((missed_count - 2) * between);
    let mut most_recent = None;
    while let Some(n) = sched.next(t).filter(|n| *n <= now) {
        most_recent = Some(n);
        t = n;
    }
    let missed = if missed_count > 100 { Missed::Many } else { Missed::Few };
    Ok(Recent { earliest, most_recent, missed })
}

/// Upstream's `nextScheduleTimeDuration`: how long until the next activation after the most recent one
/// (from `now` when some were missed), plus 100 ms for clock skew.
pub(crate) fn requeue_after(c: &CronTimes, now: Timestamp, sched: &Schedule) -> Duration {
    let from = match most_recent(c, now, sched, false) {
        Err(_) => now,
        Ok(Recent { most_recent: Some(t), .. }) => t,
        Ok(Recent { missed: Missed::None, earliest, .. }) => earliest,
        Ok(_) => now,
    };
    let Some(next) = sched.next(from) else {
        // Never fires again: look once a day in case the clock jumps (upstream computes a zero time here).
        return Duration::from_secs(24 * 3600);
    };
    let wait = next.duration_since(now) + SignedDuration::from_millis(100);
    Duration::try_from(wait).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::TimeZone;
    use rkube_validation::cron::parse_standard;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn every_minute() -> Schedule {
        parse_standard("*/1 * * * *", &TimeZone::UTC).expect("parses")
    }

    fn times(created: &str, last: Option<&str>, deadline: Option<i64>) -> CronTimes {
        CronTimes { created: ts(created), last_schedule: last.map(ts), starting_deadline: deadline }
    }

    #[test]
    fn nothing_due_before_the_first_activation() {
        let c = times("2024-01-01T10:00:10Z", None, None);
        let r = most_recent(&c, ts("2024-01-01T10:00:50Z"), &every_minute(), true).expect("ok");
        assert_eq!(r.most_recent, None);
        assert_eq!(r.missed, Missed::None);
        assert_eq!(requeue_after(&c, ts("2024-01-01T10:00:50Z"), &every_minute()), Duration::from_millis(10_100));
    }

    #[test]
    fn one_due_then_requeue_at_the_next() {
        let c = times("2024-01-01T10:00:10Z", None, None);
        let r = most_recent(&c, ts("2024-01-01T10:01:00.05Z"), &every_minute(), true).expect("ok");
        assert_eq!(r.most_recent, Some(ts("2024-01-01T10:01:00Z")));
        let c = times("2024-01-01T10:00:10Z", Some("2024-01-01T10:01:00Z"), None);
        assert_eq!(requeue_after(&c, ts("2024-01-01T10:01:00.5Z"), &every_minute()), Duration::from_millis(59_600));
    }

    #[test]
    fn missed_starts_give_the_latest_and_count() {
        let c = times("2024-01-01T10:00:10Z", None, None);
        let r = most_recent(&c, ts("2024-01-01T10:30:20Z"), &every_minute(), true).expect("ok");
        assert_eq!(r.most_recent, Some(ts("2024-01-01T10:30:00Z")));
        assert_eq!(r.missed, Missed::Few);
        let r = most_recent(&c, ts("2024-01-01T13:00:20Z"), &every_minute(), true).expect("ok");
        assert_eq!(r.most_recent, Some(ts("2024-01-01T13:00:00Z")));
        assert_eq!(r.missed, Missed::Many);
        // An irregular schedule still lands on a real activation.
        let s = parse_standard("30 6-16/4 * * 1-5", &TimeZone::UTC).expect("parses");
        let c = times("2024-01-01T00:00:00Z", None, None);
        let r = most_recent(&c, ts("2024-01-03T12:00:00Z"), &s, true).expect("ok");
        assert_eq!(r.most_recent, Some(ts("2024-01-03T10:30:00Z")));
    }

    #[test]
    fn starting_deadline_bounds_how_far_back_to_look() {
        // Created hours ago with a 200 s deadline: only activations in the last 200 s count.
        let c = times("2024-01-01T10:00:10Z", None, Some(200));
        let r = most_recent(&c, ts("2024-01-01T13:00:20Z"), &every_minute(), true).expect("ok");
        assert_eq!(r.most_recent, Some(ts("2024-01-01T13:00:00Z")));
        assert_eq!(r.missed, Missed::Few);
        assert_eq!(r.earliest, ts("2024-01-01T12:57:00Z"));
    }

    #[test]
    fn impossible_schedules_are_errors() {
        let s = parse_standard("59 23 31 2 *", &TimeZone::UTC).expect("parses");
        let c = times("2024-01-01T00:00:00Z", None, None);
        assert_eq!(most_recent(&c, ts("2024-05-01T00:00:00Z"), &s, true).err().as_deref(), Some(NEVER));
    }
}
