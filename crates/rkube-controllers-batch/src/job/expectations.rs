//! What the Job controller waits to see in its pod cache before acting again (upstream's
//! `ControllerExpectations` and `uidTrackingExpectations`): pod creations and deletions it issued, and
//! pods whose tracking finalizer it removed. Without them a sync right after a create would not yet see
//! the new pod and create another.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upstream's `ExpectationsTimeout`: expectations older than this are considered met.
const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
struct Pending {
    adds: i64,
    dels: i64,
    at: Instant,
}

/// Pending creations/deletions and finalizer removals per Job key.
#[derive(Debug, Default)]
pub(crate) struct Expectations {
    counts: Mutex<HashMap<String, Pending>>,
    finalizers: Mutex<HashMap<String, HashSet<String>>>,
}

impl Expectations {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finalizers(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<String>>> {
        self.finalizers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether every creation and deletion issued for `key` has been observed (or they expired).
    pub(crate) fn satisfied(&self, key: &str) -> bool {
        match self.counts().get(key) {
            None => true,
            Some(p) => (p.adds <= 0 && p.dels <= 0) || p.at.elapsed() > TIMEOUT,
        }
    }

    /// `n` pod creations are about to be issued.
    pub(crate) fn expect_creations(&self, key: &str, n: usize) {
        let adds = i64::try_from(n).unwrap_or(i64::MAX);
        self.counts().insert(key.to_owned(), Pending { adds, dels: 0, at: Instant::now() });
    }

    /// `n` pod deletions are about to be issued.
    pub(crate) fn expect_deletions(&self, key: &str, n: usize) {
        let dels = i64::try_from(n).unwrap_or(i64::MAX);
        self.counts().insert(key.to_owned(), Pending { adds: 0, dels, at: Instant::now() });
    }

    /// A creation was seen (or failed, so will never be seen).
    pub(crate) fn creation_observed(&self, key: &str) {
        if let Some(p) = self.counts().get_mut(key) {
            p.adds -= 1;
        }
    }

    /// A deletion was seen (or failed).
    pub(crate) fn deletion_observed(&self, key: &str) {
        if let Some(p) = self.counts().get_mut(key) {
            p.dels -= 1;
        }
    }

    /// The tracking finalizer of these pods is being removed.
    pub(crate) fn expect_finalizers_removed(&self, key: &str, uids: impl IntoIterator<Item = String>) {
        self.finalizers().entry(key.to_owned()).or_default().extend(uids);
    }

    /// The pod `uid` was seen without its finalizer (or the removal failed).
    pub(crate) fn finalizer_removal_observed(&self, key: &str, uid: &str) {
        let mut f = self.finalizers();
        if let Some(set) = f.get_mut(key) {
            set.remove(uid);
            if set.is_empty() {
                f.remove(key);
            }
        }
    }

    /// Pods whose finalizer removal has not been observed yet.
    pub(crate) fn expected_finalizer_removals(&self, key: &str) -> HashSet<String> {
        self.finalizers().get(key).cloned().unwrap_or_default()
    }

    /// Forgets `key` (the Job is gone).
    pub(crate) fn forget(&self, key: &str) {
        self.counts().remove(key);
        self.finalizers().remove(key);
    }
}

/// The resourceVersion of each Job's last status write, to notice a cache that has not caught up yet
/// (a sync right after our own write would otherwise meet a conflict and back off).
#[derive(Debug, Default)]
pub(crate) struct Written {
    rvs: Mutex<HashMap<String, u64>>,
}

fn rv_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<u64> {
    meta.resource_version.as_deref()?.parse().ok()
}

impl Written {
    fn rvs(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.rvs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records our write of `job` (resourceVersions that are not integers are not tracked).
    pub(crate) fn note(&self, key: &str, job: &k8s_openapi::api::batch::v1::Job) {
        if let Some(rv) = rv_of(&job.metadata) {
            self.rvs().insert(key.to_owned(), rv);
        }
    }

    /// Whether the cached `job` is older than our last write of it.
    pub(crate) fn is_stale(&self, key: &str, job: &k8s_openapi::api::batch::v1::Job) -> bool {
        match (self.rvs().get(key), rv_of(&job.metadata)) {
            (Some(w), Some(c)) => c < *w,
            _ => false,
        }
    }

    /// Forgets `key`.
    pub(crate) fn forget(&self, key: &str) {
        self.rvs().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_versions_flag_stale_caches() {
        let w = Written::default();
        let job = |rv: &str| {
            let mut j = k8s_openapi::api::batch::v1::Job::default();
            j.metadata.resource_version = Some(rv.into());
            j
        };
        assert!(!w.is_stale("k", &job("5")));
        w.note("k", &job("10"));
        assert!(w.is_stale("k", &job("9")));
        assert!(!w.is_stale("k", &job("10")) && !w.is_stale("k", &job("11")));
        w.forget("k");
        assert!(!w.is_stale("k", &job("9")));
    }

    #[test]
    fn creations_must_be_observed() {
        let e = Expectations::default();
        assert!(e.satisfied("k"));
        e.expect_creations("k", 2);
        assert!(!e.satisfied("k"));
        e.creation_observed("k");
        assert!(!e.satisfied("k"));
        e.creation_observed("k");
        assert!(e.satisfied("k"));
        e.expect_finalizers_removed("k", ["a".to_owned(), "b".to_owned()]);
        e.finalizer_removal_observed("k", "a");
        assert_eq!(e.expected_finalizer_removals("k").len(), 1);
        e.forget("k");
        assert!(e.expected_finalizer_removals("k").is_empty());
    }
}
