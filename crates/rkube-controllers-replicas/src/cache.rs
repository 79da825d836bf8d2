//! Informers: one list+watch per kind feeding a namespaced in-memory cache, and reporting every change
//! with the object's previous state (client-go's shared informer with add/update/delete handlers), which
//! the controllers need for expectations and for re-syncing a pod's former owner.

use std::collections::HashMap;
use std::fmt::{self, Debug, Display};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use tokio::sync::watch;

/// A namespaced object's name, the unit of work of every queue here.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ObjKey {
    /// The namespace.
    pub(crate) ns: String,
    /// The name.
    pub(crate) name: String,
}

impl ObjKey {
    /// The key of `obj`.
    pub(crate) fn of<K: Resource>(obj: &K) -> ObjKey {
        ObjKey {
            ns: obj.meta().namespace.clone().unwrap_or_default(),
            name: obj.meta().name.clone().unwrap_or_default(),
        }
    }
}

impl Display for ObjKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ns, self.name)
    }
}

/// What happened to one object.
pub(crate) enum Change<K> {
    /// First seen.
    Added(Arc<K>),
    /// Seen before, now different.
    Updated {
        /// The state seen before.
        old: Arc<K>,
        /// The state now.
        new: Arc<K>,
    },
    /// Gone (its last known state).
    Deleted(Arc<K>),
}

/// The objects of one kind, by namespace and name.
pub(crate) struct Cache<K> {
    objects: RwLock<HashMap<String, HashMap<String, Arc<K>>>>,
    synced: watch::Sender<bool>,
}

impl<K: Resource> Cache<K> {
    /// An empty cache, not yet synced.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Cache { objects: RwLock::new(HashMap::new()), synced: watch::channel(false).0 })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, HashMap<String, Arc<K>>>> {
        self.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, HashMap<String, Arc<K>>>> {
        self.objects.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The object named `key`.
    pub(crate) fn get(&self, key: &ObjKey) -> Option<Arc<K>> {
        self.read().get(&key.ns)?.get(&key.name).cloned()
    }

    /// Every object in namespace `ns`.
    pub(crate) fn list(&self, ns: &str) -> Vec<Arc<K>> {
        self.read().get(ns).map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    /// Puts `obj` in and says what it replaced.
    pub(crate) fn apply(&self, obj: K) -> Option<Change<K>> {
        let key = ObjKey::of(&obj);
        let new = Arc::new(obj);
        let old = self.write().entry(key.ns).or_default().insert(key.name, new.clone());
        match old {
            None => Some(Change::Added(new)),
            Some(old) if old.meta().resource_version == new.meta().resource_version => None,
            Some(old) => Some(Change::Updated { old, new }),
        }
    }

    /// Takes `obj` out.
    pub(crate) fn remove(&self, obj: K) -> Change<K> {
        let key = ObjKey::of(&obj);
        let mut all = self.write();
        let old = all.get_mut(&key.ns).and_then(|m| m.remove(&key.name));
        if all.get(&key.ns).is_some_and(HashMap::is_empty) {
            all.remove(&key.ns);
        }
        Change::Deleted(old.unwrap_or_else(|| Arc::new(obj)))
    }

    /// Replaces everything with a fresh list; changes against the previous contents.
    pub(crate) fn replace(&self, objs: Vec<K>) -> Vec<Change<K>> {
        let mut changes = Vec::new();
        let mut fresh: HashMap<String, HashMap<String, Arc<K>>> = HashMap::new();
        let mut all = self.write();
        for obj in objs {
            let key = ObjKey::of(&obj);
            let new = Arc::new(obj);
            match all.get_mut(&key.ns).and_then(|m| m.remove(&key.name)) {
                None => changes.push(Change::Added(new.clone())),
                Some(old) if old.meta().resource_version == new.meta().resource_version => {}
                Some(old) => changes.push(Change::Updated { old, new: new.clone() }),
            }
            fresh.entry(key.ns).or_default().insert(key.name, new);
        }
        for (_, gone) in all.drain() {
            changes.extend(gone.into_values().map(Change::Deleted));
        }
        *all = fresh;
        changes
    }

    /// Resolves once the first full list is in.
    pub(crate) async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// Lists and watches every `K` into `cache` forever, calling `on_change` for each change (after the cache
/// holds it). Watch failures are retried with backoff by the watcher.
pub(crate) async fn inform<K, F>(api: Api<K>, cache: Arc<Cache<K>>, mut on_change: F)
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug + Send + Sync,
    K: 'static,
    F: FnMut(Change<K>) + Send,
{
    let mut stream = watcher::watcher(api, watcher::Config::default()).default_backoff().boxed();
    let mut buffer: Vec<K> = Vec::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Apply(obj)) => {
                if let Some(c) = cache.apply(obj) {
                    on_change(c);
                }
            }
            Ok(Event::Delete(obj)) => on_change(cache.remove(obj)),
            Ok(Event::Init) => buffer.clear(),
            Ok(Event::InitApply(obj)) => buffer.push(obj),
            Ok(Event::InitDone) => {
                for c in cache.replace(std::mem::take(&mut buffer)) {
                    on_change(c);
                }
                cache.synced.send_replace(true);
            }
            Err(e) => tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying"),
        }
    }
}

/// The name of an object for logs.
pub(crate) fn name_of<K: Resource>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn pod(ns: &str, name: &str, rv: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.namespace = Some(ns.into());
        p.metadata.name = Some(name.into());
        p.metadata.resource_version = Some(rv.into());
        p
    }

    #[test]
    fn reports_changes_with_previous_state() {
        let c = Cache::<Pod>::new();
        assert!(matches!(c.apply(pod("a", "x", "1")), Some(Change::Added(_))));
        assert!(c.apply(pod("a", "x", "1")).is_none());
        match c.apply(pod("a", "x", "2")) {
            Some(Change::Updated { old, new }) => {
                assert_eq!(old.metadata.resource_version.as_deref(), Some("1"));
                assert_eq!(new.metadata.resource_version.as_deref(), Some("2"));
            }
            _ => panic!("expected an update"),
        }
        c.apply(pod("b", "y", "3"));
        assert_eq!(c.list("a").len(), 1);
        let changes = c.replace(vec![pod("a", "x", "2"), pod("a", "z", "4")]);
        assert_eq!(changes.len(), 2, "z added, b/y deleted");
        assert!(c.get(&ObjKey { ns: "b".into(), name: "y".into() }).is_none());
        assert!(
            matches!(c.remove(pod("a", "x", "5")), Change::Deleted(p) if p.metadata.resource_version.as_deref() == Some("2"))
        );
        assert_eq!(c.list("a").len(), 1);
    }
}
