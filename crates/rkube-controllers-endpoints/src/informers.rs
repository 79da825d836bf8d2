//! Shared informers: one watch per kind (services, pods, nodes, Endpoints, EndpointSlices) feeding a
//! namespace-indexed cache, and a handler told of every change with the object before and after (what
//! client-go's informers give upstream's event handlers). Objects that vanished while a watch was being
//! re-listed are reported as deleted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource};
use tokio::sync::watch;

use crate::trackers::{Key, key_of};

/// A change seen by an informer.
pub(crate) enum Change<K> {
    /// Created (or first listed).
    Added(Arc<K>),
    /// Changed: before and after.
    Updated(Arc<K>, Arc<K>),
    /// Deleted: the last state known.
    Deleted(Arc<K>),
}

/// The objects of one kind, by namespace (`""` for cluster-scoped kinds) and name.
pub(crate) struct Cache<K> {
    objects: RwLock<HashMap<String, BTreeMap<String, Arc<K>>>>,
    synced: watch::Sender<bool>,
}

impl<K: Resource> Cache<K> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Cache { objects: RwLock::new(HashMap::new()), synced: watch::Sender::new(false) })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, BTreeMap<String, Arc<K>>>> {
        self.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, BTreeMap<String, Arc<K>>>> {
        self.objects.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The object `ns/name`.
    pub(crate) fn get(&self, ns: &str, name: &str) -> Option<Arc<K>> {
        self.read().get(ns)?.get(name).cloned()
    }

    /// Every object of namespace `ns`, ordered by name.
    pub(crate) fn list(&self, ns: &str) -> Vec<Arc<K>> {
        self.read().get(ns).map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    /// Every object.
    pub(crate) fn all(&self) -> Vec<Arc<K>> {
        self.read().values().flat_map(|m| m.values().cloned()).collect()
    }

    /// Stores `obj`, returning the previous version.
    fn put(&self, obj: Arc<K>) -> Option<Arc<K>> {
        let (ns, name) = key_of(obj.meta());
        self.write().entry(ns).or_default().insert(name, obj)
    }

    fn remove(&self, key: &Key) -> Option<Arc<K>> {
        let mut w = self.write();
        let m = w.get_mut(&key.0)?;
        let old = m.remove(&key.1);
        if m.is_empty() {
            w.remove(&key.0);
        }
        old
    }

    fn keys(&self) -> HashSet<Key> {
        self.read().iter().flat_map(|(ns, m)| m.keys().map(|n| (ns.clone(), n.clone()))).collect()
    }

    /// Resolves once the first full list has been stored.
    pub(crate) async fn synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// Watches `api` for ever (the watcher retries with backoff), keeping `cache` current and telling
/// `handler` of each change after the cache has it.
pub(crate) async fn run<K>(name: &'static str, api: Api<K>, cache: Arc<Cache<K>>, handler: impl Fn(Change<K>))
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let mut stream = watcher::watcher(api, watcher::Config::default()).default_backoff().boxed();
    let mut relisted: Option<HashSet<Key>> = None;
    let apply = |obj: K| {
        let obj = Arc::new(obj);
        match cache.put(obj.clone()) {
            Some(old) => handler(Change::Updated(old, obj)),
            None => handler(Change::Added(obj)),
        }
    };
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Init) => relisted = Some(HashSet::new()),
            Ok(Event::InitApply(obj)) => {
                if let Some(seen) = relisted.as_mut() {
                    seen.insert(key_of(obj.meta()));
                }
                apply(obj);
            }
            Ok(Event::InitDone) => {
                if let Some(seen) = relisted.take() {
                    for gone in cache.keys().difference(&seen) {
                        if let Some(old) = cache.remove(gone) {
                            handler(Change::Deleted(old));
                        }
                    }
                }
                cache.synced.send_replace(true);
            }
            Ok(Event::Apply(obj)) => apply(obj),
            Ok(Event::Delete(obj)) => {
                let old = cache.remove(&key_of(obj.meta())).unwrap_or_else(|| Arc::new(obj));
                handler(Change::Deleted(old));
            }
            Err(e) => tracing::warn!(informer = name, error = %e, "watch failed; retrying"),
        }
    }
}
