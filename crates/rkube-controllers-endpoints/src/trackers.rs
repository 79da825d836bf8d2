//! Per-service memory the controllers keep between syncs: the trigger-time tracker behind the
//! `endpoints.kubernetes.io/last-change-trigger-time` annotation, and the tracker of the writes a controller
//! made, which tells its own echoes from others' changes and a cache that is behind from a current one.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use crate::model;

/// A namespaced name.
pub(crate) type Key = (String, String);

#[derive(Default)]
struct ServiceState {
    service_time: Option<Timestamp>,
    pod_times: HashMap<String, Timestamp>,
}

/// Upstream's `TriggerTimeTracker`: the earliest of the trigger times (a pod's last Ready transition, the
/// service's creation) that changed since the previous sync of the service; the service's creation time on
/// its first sync; `None` when nothing changed.
#[derive(Default)]
pub(crate) struct TriggerTimes {
    states: Mutex<HashMap<Key, ServiceState>>,
}

impl TriggerTimes {
    /// Records this sync's trigger times and returns the time to publish.
    pub(crate) fn compute<'a>(&self, svc: &Service, pods: impl IntoIterator<Item = &'a Pod>) -> Option<Timestamp> {
        let key = key_of(&svc.metadata);
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let known = states.contains_key(&key);
        let state = states.entry(key).or_default();
        let mut min: Option<Timestamp> = None;
        let mut keep = |t: Timestamp| min = Some(min.map_or(t, |m| m.min(t)));
        let mut pod_times = HashMap::new();
        for pod in pods {
            let Some(t) = model::pod_trigger_time(pod) else { continue };
            let name = pod.metadata.name.clone().unwrap_or_default();
            if state.pod_times.get(&name).is_none_or(|old| t > *old) {
                keep(t);
            }
            pod_times.insert(name, t);
        }
        let created = svc.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(c) = created
            && state.service_time.is_none_or(|old| c > old)
        {
            keep(c);
        }
        state.pod_times = pod_times;
        state.service_time = created;
        if known { min } else { created }
    }

    /// Forgets a deleted service.
    pub(crate) fn delete(&self, key: &Key) {
        self.states.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// The annotation value for a trigger time (RFC 3339 with nanoseconds, UTC, as Go's `RFC3339Nano`).
pub(crate) fn format_time(t: Timestamp) -> String {
    t.to_string()
}

/// The namespaced name of an object.
pub(crate) fn key_of(meta: &ObjectMeta) -> Key {
    (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
}

fn rv(meta: &ObjectMeta) -> Option<u64> {
    meta.resource_version.as_deref()?.parse().ok()
}

/// What a controller last did to one of its objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Written {
    /// Created or updated, answered with this resourceVersion.
    At(u64),
    /// Deleted.
    Deleted,
}

/// The objects (EndpointSlices, by name) a controller wrote for each owner key, as upstream's
/// `EndpointSliceTracker` but on resourceVersions (store revisions here, so they order).
#[derive(Default)]
pub(crate) struct WriteTracker {
    owners: Mutex<HashMap<Key, HashMap<String, Written>>>,
}

impl WriteTracker {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<Key, HashMap<String, Written>>) -> R) -> R {
        f(&mut self.owners.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Remembers a create or update answered with `meta`.
    pub(crate) fn wrote(&self, owner: &Key, meta: &ObjectMeta) {
        let (Some(name), Some(v)) = (meta.name.clone(), rv(meta)) else { return };
        self.with(|o| o.entry(owner.clone()).or_default().insert(name, Written::At(v)));
    }

    /// Remembers a deletion.
    pub(crate) fn deleted(&self, owner: &Key, name: &str) {
        self.with(|o| o.entry(owner.clone()).or_default().insert(name.to_owned(), Written::Deleted));
    }

    /// Whether a watched change of `meta` is news (not the echo of this controller's own write).
    pub(crate) fn is_news(&self, owner: &Key, meta: &ObjectMeta) -> bool {
        let name = meta.name.as_deref().unwrap_or("");
        self.with(|o| match (o.get(owner).and_then(|m| m.get(name)), rv(meta)) {
            (Some(Written::At(mine)), Some(seen)) => seen > *mine,
            _ => true,
        })
    }

    /// Handles a watched deletion: whether it is news (not one this controller made).
    pub(crate) fn on_deleted(&self, owner: &Key, name: &str) -> bool {
        self.with(|o| {
            let Some(m) = o.get_mut(owner) else { return true };
            m.remove(name) != Some(Written::Deleted)
        })
    }

    /// Whether the cached objects of `owner` are older than what this controller wrote: an object written is
    /// missing or older, or one deleted is still there.
    pub(crate) fn stale<'a>(&self, owner: &Key, cached: impl IntoIterator<Item = &'a ObjectMeta>) -> bool {
        self.with(|o| {
            let Some(m) = o.get(owner) else { return false };
            let cached: HashMap<&str, Option<u64>> =
                cached.into_iter().map(|meta| (meta.name.as_deref().unwrap_or(""), rv(meta))).collect();
            m.iter().any(|(name, w)| match (w, cached.get(name.as_str())) {
                (Written::At(_), None) => true,
                (Written::At(mine), Some(seen)) => seen.is_some_and(|s| s < *mine),
                (Written::Deleted, Some(_)) => true,
                (Written::Deleted, None) => false,
            })
        })
    }

    /// Forgets an owner (deleted).
    pub(crate) fn forget(&self, owner: &Key) {
        self.with(|o| o.remove(owner));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn pod(name: &str, ready_at: i64) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.status = Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_transition_time: Some(Time(ts(ready_at))),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        });
        p
    }

    #[test]
    fn trigger_time_is_creation_first_then_earliest_change() {
        let mut svc = Service::default();
        svc.metadata.name = Some("web".into());
        svc.metadata.creation_timestamp = Some(Time(ts(100)));
        let t = TriggerTimes::default();
        assert_eq!(t.compute(&svc, [&pod("a", 50)]), Some(ts(100)));
        assert_eq!(t.compute(&svc, [&pod("a", 50)]), None);
        assert_eq!(t.compute(&svc, [&pod("a", 300), &pod("b", 200)]), Some(ts(200)));
        t.delete(&key_of(&svc.metadata));
        assert_eq!(t.compute(&svc, [&pod("a", 300)]), Some(ts(100)));
        assert_eq!(format_time(ts(200)), "1970-01-01T00:03:20Z");
        let frac = Timestamp::new(200, 123_400_000).unwrap_or(Timestamp::UNIX_EPOCH);
        assert_eq!(format_time(frac), "1970-01-01T00:03:20.1234Z");
    }

    #[test]
    fn write_tracker_tells_echoes_and_stale_caches() {
        let owner = ("ns".to_owned(), "web".to_owned());
        let meta = |name: &str, v: &str| ObjectMeta {
            name: Some(name.into()),
            resource_version: Some(v.into()),
            ..ObjectMeta::default()
        };
        let w = WriteTracker::default();
        w.wrote(&owner, &meta("web-a", "10"));
        assert!(!w.is_news(&owner, &meta("web-a", "10")));
        assert!(w.is_news(&owner, &meta("web-a", "11")));
        assert!(w.stale(&owner, []));
        assert!(w.stale(&owner, [&meta("web-a", "9")]));
        assert!(!w.stale(&owner, [&meta("web-a", "10")]));
        w.deleted(&owner, "web-a");
        assert!(w.stale(&owner, [&meta("web-a", "10")]));
        assert!(!w.on_deleted(&owner, "web-a"));
        assert!(!w.stale(&owner, []));
        assert!(w.on_deleted(&owner, "web-b"));
    }
}
