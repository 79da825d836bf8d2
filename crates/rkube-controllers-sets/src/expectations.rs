//! Upstream's "expectations", keyed by what was written: after a controller creates or deletes objects it
//! does not act on the same owner again until its cache shows those writes (or a timeout passes), so a
//! lagging watch cannot make it create a second pod for a node or delete a pod twice.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long unobserved writes hold an owner back (upstream's ExpectationsTimeout is 5 minutes; a lost
/// watch event is rarer here than a slow one, so a shorter wait recovers sooner).
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Pending {
    /// Names created that the cache has not shown yet.
    creates: Vec<String>,
    /// (name, uid) deleted that the cache still shows alive.
    deletes: Vec<(String, String)>,
    at: Option<Instant>,
}

/// What the cache says about an object by name.
pub(crate) enum Seen {
    /// Not in the cache.
    Absent,
    /// In the cache with this uid, not being deleted.
    Alive(String),
    /// In the cache, being deleted.
    Deleting,
}

/// Outstanding writes per owner key (`namespace/name`).
#[derive(Default)]
pub(crate) struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `name` was created for `key`.
    pub(crate) fn created(&self, key: &str, name: String) {
        let mut m = self.lock();
        let p = m.entry(key.to_owned()).or_default();
        p.creates.push(name);
        p.at = Some(Instant::now());
    }

    /// Records that the object `name` with `uid` was deleted for `key`.
    pub(crate) fn deleted(&self, key: &str, name: String, uid: String) {
        let mut m = self.lock();
        let p = m.entry(key.to_owned()).or_default();
        p.deletes.push((name, uid));
        p.at = Some(Instant::now());
    }

    /// Whether every write for `key` shows in the cache (`seen` looks a name up), or they are too old to
    /// wait for. Observed writes are forgotten.
    pub(crate) fn satisfied(&self, key: &str, seen: impl Fn(&str) -> Seen) -> bool {
        let mut m = self.lock();
        let Some(p) = m.get_mut(key) else { return true };
        p.creates.retain(|n| matches!(seen(n), Seen::Absent));
        p.deletes.retain(|(n, uid)| matches!(seen(n), Seen::Alive(u) if &u == uid));
        let done = p.creates.is_empty() && p.deletes.is_empty();
        let expired = p.at.is_some_and(|t| t.elapsed() > TIMEOUT);
        if done || expired {
            m.remove(key);
            return true;
        }
        false
    }

    /// Forgets `key` (its owner is gone).
    pub(crate) fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_writes_show_in_the_cache() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/a", |_| Seen::Absent));
        e.created("ns/a", "a-x".into());
        e.deleted("ns/a", "a-y".into(), "u1".into());
        assert!(!e.satisfied("ns/a", |n| if n == "a-x" { Seen::Absent } else { Seen::Alive("u1".into()) }));
        let seen = |n: &str| if n == "a-x" { Seen::Alive("u9".into()) } else { Seen::Alive("u1".into()) };
        assert!(!e.satisfied("ns/a", seen));
        // The deleted pod re-created under the same name (another uid) counts as the deletion observed.
        assert!(e.satisfied("ns/a", |n| if n == "a-y" { Seen::Alive("u2".into()) } else { Seen::Deleting }));
        e.deleted("ns/b", "b-0".into(), "u".into());
        assert!(e.satisfied("ns/b", |_| Seen::Deleting));
    }
}
