//! The delay before a Job re-creates pods after failures (upstream's `backoffRecord`): 10 s after the last
//! failure, doubling per failure since the last success, capped at 10 minutes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use super::pods::finished_time;

/// Upstream's `DefaultJobPodFailureBackOff`.
pub(crate) const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// Upstream's `MaxJobPodFailureBackOff`.
pub(crate) const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(600);

/// Failures since the last success, and when the last of them happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Record {
    failures: u32,
    last_failure: Option<Timestamp>,
}

impl Record {
    /// This record after newly finished pods (not counted before).
    pub(crate) fn with_finished(self, succeeded: &[&Pod], failed: &[&Pod]) -> Record {
        let mut failed_times: Vec<Timestamp> = failed.iter().map(|p| finished_time(p)).collect();
        failed_times.sort_unstable();
        let last_success = succeeded.iter().map(|p| finished_time(p)).max();
        match last_success {
            None => match failed_times.last() {
                None => self,
                Some(last) => Record {
                    failures: self.failures + u32::try_from(failed_times.len()).unwrap_or(u32::MAX),
                    last_failure: Some(*last),
                },
            },
            Some(success) => {
                let after: Vec<&Timestamp> = failed_times.iter().filter(|t| **t > success).collect();
                Record {
                    failures: u32::try_from(after.len()).unwrap_or(u32::MAX),
                    last_failure: after.last().map(|t| **t),
                }
            }
        }
    }

    /// How long pod creation still waits at `now`.
    pub(crate) fn remaining(&self, now: Timestamp) -> Duration {
        let Some(last) = self.last_failure else { return Duration::ZERO };
        if self.failures == 0 {
            return Duration::ZERO;
        }
        let mut delay = POD_FAILURE_BACKOFF;
        for _ in 1..self.failures {
            delay *= 2;
            if delay >= MAX_POD_FAILURE_BACKOFF {
                delay = MAX_POD_FAILURE_BACKOFF;
                break;
            }
        }
        let elapsed = Duration::try_from(now.duration_since(last)).unwrap_or(Duration::ZERO);
        delay.saturating_sub(elapsed)
    }
}

/// Records per Job key, kept in memory as upstream does.
#[derive(Debug, Default)]
pub(crate) struct Store {
    records: Mutex<HashMap<String, Record>>,
}

impl Store {
    /// The stored record of `key` (empty when none).
    pub(crate) fn get(&self, key: &str) -> Record {
        self.records.lock().unwrap_or_else(|p| p.into_inner()).get(key).copied().unwrap_or_default()
    }

    /// Stores `key`'s record (after the status that counted its pods was written).
    pub(crate) fn set(&self, key: &str, r: Record) {
        self.records.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), r);
    }

    /// Forgets `key` (finished or deleted Job).
    pub(crate) fn remove(&self, key: &str) {
        self.records.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn finished_at(s: i64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                creation_timestamp: Some(Time(Timestamp::from_second(s).expect("ts"))),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).expect("ts")
    }

    #[test]
    fn delay_doubles_per_failure_and_caps() {
        let (f1, f2) = (finished_at(100), finished_at(105));
        let r = Record::default().with_finished(&[], &[&f1]);
        assert_eq!(r.remaining(at(100)), Duration::from_secs(10));
        assert_eq!(r.remaining(at(104)), Duration::from_secs(6));
        assert_eq!(r.remaining(at(111)), Duration::ZERO);
        let r = r.with_finished(&[], &[&f2]);
        assert_eq!(r.remaining(at(105)), Duration::from_secs(20));
        let many = Record { failures: 12, last_failure: Some(at(0)) };
        assert_eq!(many.remaining(at(0)), MAX_POD_FAILURE_BACKOFF);
    }

    #[test]
    fn a_success_resets_to_the_failures_after_it() {
        let r = Record { failures: 5, last_failure: Some(at(50)) };
        let (ok, late) = (finished_at(100), finished_at(120));
        let early = finished_at(90);
        let r2 = r.with_finished(&[&ok], &[&early, &late]);
        assert_eq!(r2, Record { failures: 1, last_failure: Some(at(120)) });
        assert_eq!(r.with_finished(&[&ok], &[]).remaining(at(100)), Duration::ZERO);
        assert_eq!(r.with_finished(&[], &[]), r);
    }
}
