//! Upstream's `flowcontrol.Backoff` as the kubelet uses it for container restarts (CrashLoopBackOff: 10 s
//! doubling to 5 min) and image pulls: per-key delays, forgotten once a key was quiet for twice the maximum
//! (so a container that ran 10 minutes starts again from 10 s). Wall-clock times are passed in.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// Restart back-off start (upstream's `backOffPeriod`).
pub(crate) const INITIAL: Duration = Duration::from_secs(10);
/// Restart back-off cap (upstream's `MaxContainerBackOff`).
pub(crate) const MAX: Duration = Duration::from_secs(300);

struct Entry {
    backoff: Duration,
    last_update: Timestamp,
}

/// Delays per key.
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

fn since(later: Timestamp, earlier: Timestamp) -> Duration {
    let nanos = later.as_nanosecond() - earlier.as_nanosecond();
    if nanos <= 0 { Duration::ZERO } else { Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)) }
}

impl Backoff {
    /// Delays start at `initial` and double up to `max`.
    pub(crate) fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { initial, max, entries: HashMap::new() }
    }

    /// Whether `event` happened more than twice the maximum after the key's last update (the key is stable).
    fn expired(&self, event: Timestamp, last_update: Timestamp) -> bool {
        since(event, last_update) > self.max * 2
    }

    /// The key's current delay (zero when it has none).
    pub(crate) fn get(&self, key: &str) -> Duration {
        self.entries.get(key).map(|e| e.backoff).unwrap_or(Duration::ZERO)
    }

    /// Records one more failure: a fresh or expired key starts at the initial delay, else the delay doubles.
    pub(crate) fn next(&mut self, key: &str, event: Timestamp, now: Timestamp) {
        let backoff = match self.entries.get(key) {
            Some(e) if !self.expired(event, e.last_update) => (e.backoff * 2).min(self.max),
            _ => self.initial,
        };
        self.entries.insert(key.to_owned(), Entry { backoff, last_update: now });
    }

    /// Whether the key is still backing off from something that happened at `event` (a container's exit).
    pub(crate) fn in_backoff_since(&self, key: &str, event: Timestamp, now: Timestamp) -> bool {
        match self.entries.get(key) {
            Some(e) if !self.expired(event, e.last_update) => since(now, event) < e.backoff,
            _ => false,
        }
    }

    /// Whether the key is still backing off from its last update (an image pull failure).
    pub(crate) fn in_backoff_since_update(&self, key: &str, now: Timestamp) -> bool {
        match self.entries.get(key) {
            Some(e) if !self.expired(now, e.last_update) => since(now, e.last_update) < e.backoff,
            _ => false,
        }
    }

    /// When the key's back-off from `event` ends (None when it is not backing off).
    pub(crate) fn remaining_since(&self, key: &str, event: Timestamp, now: Timestamp) -> Option<Duration> {
        if !self.in_backoff_since(key, event, now) {
            return None;
        }
        self.entries.get(key).map(|e| e.backoff.saturating_sub(since(now, event)))
    }

    /// Forgets keys that are stable (as upstream's `GC`), so the map does not grow with dead pods.
    pub(crate) fn gc(&mut self, now: Timestamp) {
        let max = self.max;
        self.entries.retain(|_, e| since(now, e.last_update) <= max * 2);
    }

    /// Forgets every key starting with `prefix` (a pod's keys, when the pod is gone).
    pub(crate) fn forget_prefix(&mut self, prefix: &str) {
        self.entries.retain(|k, _| !k.starts_with(prefix));
    }
}

/// A duration as Go prints it (`10s`, `1m20s`, `5m0s`), for upstream's back-off messages.
pub(crate) fn go_duration(d: Duration) -> String {
    let total = d.as_secs();
    let frac = d.subsec_millis();
    let secs = if frac == 0 {
        format!("{}s", total % 60)
    } else {
        let s = format!("{}.{:03}", total % 60, frac);
        format!("{}s", s.trim_end_matches('0'))
    };
    match (total / 3600, (total / 60) % 60) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

/// A duration truncated to milliseconds as Go prints it (`523ms`, `1.234s`), for the `Pulled` event.
pub(crate) fn go_duration_ms(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".to_owned()
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        go_duration(Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn crash_loop_delays_double_to_the_cap() {
        let mut b = Backoff::new(INITIAL, MAX);
        let key = "p_ns_uid_c";
        // First exit: not backing off; the restart records 10 s.
        assert!(!b.in_backoff_since(key, t(0), t(0)));
        b.next(key, t(0), t(0));
        assert_eq!(b.get(key), Duration::from_secs(10));
        // It exits again right away: backing off until 10 s after that exit.
        assert!(b.in_backoff_since(key, t(1), t(5)));
        assert_eq!(b.remaining_since(key, t(1), t(5)), Some(Duration::from_secs(6)));
        assert!(!b.in_backoff_since(key, t(1), t(11)));
        let mut got = vec![];
        for i in 0..7 {
            b.next(key, t(12 + i), t(12 + i));
            got.push(go_duration(b.get(key)));
        }
        assert_eq!(got, ["20s", "40s", "1m20s", "2m40s", "5m0s", "5m0s", "5m0s"]);
    }

    #[test]
    fn a_container_that_ran_ten_minutes_starts_over() {
        let mut b = Backoff::new(INITIAL, MAX);
        let key = "k";
        b.next(key, t(0), t(0));
        b.next(key, t(10), t(10));
        assert_eq!(b.get(key), Duration::from_secs(20));
        // Exit 601 s after the last restart: the entry is stable, so no back-off and a fresh 10 s.
        assert!(!b.in_backoff_since(key, t(611), t(611)));
        b.next(key, t(611), t(611));
        assert_eq!(b.get(key), Duration::from_secs(10));
    }

    #[test]
    fn image_backoff_counts_from_the_last_failure() {
        let mut b = Backoff::new(INITIAL, MAX);
        b.next("img", t(0), t(0));
        assert!(b.in_backoff_since_update("img", t(9)));
        assert!(!b.in_backoff_since_update("img", t(10)));
        b.gc(t(1000));
        assert_eq!(b.get("img"), Duration::ZERO);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(3725)), "1h2m5s");
        assert_eq!(go_duration_ms(Duration::from_micros(523_400)), "523ms");
        assert_eq!(go_duration_ms(Duration::from_micros(1_234_500)), "1.234s");
    }
}
