//! Expectations (upstream's `UIDTrackingControllerExpectations`): after a controller creates or deletes pods,
//! it does not act on the same object again until its watch has shown those creations and deletions (or
//! five minutes have passed), so a lagging cache never causes double creates or deletes.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::key::ObjKey;

/// How long unobserved expectations hold before the controller acts anyway (upstream's `ExpectationsTimeout`).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Expect {
    adds: i64,
    /// Pod keys (`namespace/name`) whose deletion is awaited.
    dels: HashSet<String>,
    at: Instant,
}

/// Outstanding creations and deletions per controller object.
#[derive(Debug, Default)]
pub(crate) struct Expectations {
    inner: Mutex<HashMap<ObjKey, Expect>>,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjKey, Expect>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `key` may be acted on: nothing outstanding, or the expectations expired.
    pub(crate) fn satisfied(&self, key: &ObjKey) -> bool {
        self.satisfied_at(key, Instant::now())
    }

    fn satisfied_at(&self, key: &ObjKey, now: Instant) -> bool {
        match self.lock().get(key) {
            None => true,
            Some(e) => (e.adds <= 0 && e.dels.is_empty()) || now.duration_since(e.at) > TIMEOUT,
        }
    }

    /// `n` pods are about to be created for `key`.
    pub(crate) fn expect_creations(&self, key: &ObjKey, n: usize) {
        let adds = i64::try_from(n).unwrap_or(i64::MAX);
        self.lock().insert(key.clone(), Expect { adds, dels: HashSet::new(), at: Instant::now() });
    }

    /// The pods `pod_keys` are about to be deleted for `key`.
    pub(crate) fn expect_deletions(&self, key: &ObjKey, pod_keys: impl IntoIterator<Item = String>) {
        let dels = pod_keys.into_iter().collect();
        self.lock().insert(key.clone(), Expect { adds: 0, dels, at: Instant::now() });
    }

    /// One creation for `key` was seen (or will never be: a failed create).
    pub(crate) fn creation_observed(&self, key: &ObjKey) {
        if let Some(e) = self.lock().get_mut(key) {
            e.adds -= 1;
        }
    }

    /// The deletion of `pod_key` for `key` was seen (or will never be).
    pub(crate) fn deletion_observed(&self, key: &ObjKey, pod_key: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.dels.remove(pod_key);
        }
    }

    /// Forgets `key` (its object is gone).
    pub(crate) fn forget(&self, key: &ObjKey) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_observations_or_timeout() {
        let e = Expectations::default();
        let k = ObjKey { ns: "n".into(), name: "rs".into() };
        assert!(e.satisfied(&k));
        e.expect_creations(&k, 2);
        assert!(!e.satisfied(&k));
        e.creation_observed(&k);
        assert!(!e.satisfied(&k));
        e.creation_observed(&k);
        assert!(e.satisfied(&k));
        e.expect_deletions(&k, ["n/a".to_owned(), "n/b".to_owned()]);
        e.deletion_observed(&k, "n/a");
        e.deletion_observed(&k, "n/a");
        assert!(!e.satisfied(&k));
        assert!(e.satisfied_at(&k, Instant::now() + TIMEOUT + Duration::from_secs(1)));
        e.deletion_observed(&k, "n/b");
        assert!(e.satisfied(&k));
        e.expect_creations(&k, 1);
        e.forget(&k);
        assert!(e.satisfied(&k));
    }
}
