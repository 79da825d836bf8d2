//! The request authorizer's view of RBAC: rkube-auth's evaluator over the cached Roles, ClusterRoles and
//! bindings, rebuilt only when one of them changed (the watch cache records the last change per resource).

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::authn::User;
use crate::authz::{Attributes, Decision};
use crate::cache::Cache;

const SEGMENTS: [&str; 4] = ["clusterroles", "clusterrolebindings", "roles", "rolebindings"];

struct Snapshot {
    version: i64,
    lists: Arc<[Vec<Value>; 4]>,
}

/// The RBAC authorizer over the cached RBAC objects.
pub struct Rbac {
    cache: Arc<Cache>,
    prefix: String,
    snapshot: Mutex<Option<Snapshot>>,
}

impl Rbac {
    /// An authorizer reading roles and bindings under `prefix` (the store's key prefix) from `cache`.
    pub fn new(cache: Arc<Cache>, prefix: &str) -> Self {
        Rbac { cache, prefix: prefix.trim_end_matches('/').to_owned(), snapshot: Mutex::new(None) }
    }

    /// The four RBAC lists, re-read from the cache when one changed.
    pub(crate) fn lists(&self) -> Arc<[Vec<Value>; 4]> {
        let version = SEGMENTS.iter().map(|s| self.cache.last_change(s)).max().unwrap_or(0);
        let mut snap = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = snap.as_ref().filter(|s| s.version == version) {
            return s.lists.clone();
        }
        let read = |seg: &str| -> Vec<Value> {
            let (objs, _) = self.cache.list(&format!("{}/{seg}/", self.prefix));
            objs.iter().map(|o| o.value.clone()).collect()
        };
        let lists = Arc::new([read(SEGMENTS[0]), read(SEGMENTS[1]), read(SEGMENTS[2]), read(SEGMENTS[3])]);
        *snap = Some(Snapshot { version, lists: lists.clone() });
        lists
    }

    /// Allowed or not, with upstream's RBAC reason text (what the access reviews report).
    pub fn decide(&self, user: &User, a: &Attributes) -> (bool, String) {
        let l = self.lists();
        rkube_auth::Rbac::new(&l[0], &l[1], &l[2], &l[3]).authorize(user, a)
    }

    /// The RBAC rules that apply to `user` in `namespace` (SelfSubjectRulesReview).
    pub(crate) fn rules_for(&self, user: &User, namespace: &str) -> rkube_auth::UserRules {
        let l = self.lists();
        rkube_auth::Rbac::new(&l[0], &l[1], &l[2], &l[3]).rules_for(user, namespace)
    }

    /// Allows the request if any rule of any role bound to the user (or one of their groups) covers it.
    pub fn authorize(&self, user: &User, a: &Attributes) -> Decision {
        match self.decide(user, a) {
            (true, _) => Decision::Allow,
            (false, reason) => Decision::Deny(reason),
        }
    }
}
