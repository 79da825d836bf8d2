//! A minimal shared informer: one list+watch per kind feeding a namespaced cache and change handlers that
//! see the previous and the new object (client-go's add/update/delete handlers), which kube-runtime's
//! reflector does not give.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

type Key = (String, String);

/// The latest objects of a kind, by namespace and name.
#[derive(Debug)]
pub(crate) struct Cache<K> {
    map: RwLock<BTreeMap<Key, Arc<K>>>,
}

impl<K> Cache<K> {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Key, Arc<K>>> {
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Key, Arc<K>>> {
        self.map.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The object `ns/name`, if cached.
    pub(crate) fn get(&self, ns: &str, name: &str) -> Option<Arc<K>> {
        self.read().get(&(ns.to_owned(), name.to_owned())).cloned()
    }

    /// Every cached object in `ns`.
    pub(crate) fn list_ns(&self, ns: &str) -> Vec<Arc<K>> {
        let from = (ns.to_owned(), String::new());
        self.read().range(from..).take_while(|((n, _), _)| n == ns).map(|(_, v)| v.clone()).collect()
    }
}

/// Called with `(old, new)`: `(None, Some)` added, `(Some, Some)` updated, `(Some, None)` deleted.
pub(crate) type Handler<K> = Box<dyn Fn(Option<&K>, Option<&K>) + Send + Sync>;

/// One list+watch of a kind with its cache and handlers.
pub(crate) struct Informer<K: 'static> {
    api: Api<K>,
    cache: Arc<Cache<K>>,
    handlers: Vec<Handler<K>>,
    synced: watch::Sender<bool>,
}

fn key<K: Resource>(o: &K) -> Key {
    (o.meta().namespace.clone().unwrap_or_default(), o.meta().name.clone().unwrap_or_default())
}

impl<K> Informer<K>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default,
{
    /// An informer over every object `api` lists.
    pub(crate) fn new(api: Api<K>) -> Self {
        Informer {
            api,
            cache: Arc::new(Cache { map: RwLock::new(BTreeMap::new()) }),
            handlers: Vec::new(),
            synced: watch::channel(false).0,
        }
    }

    /// The cache the informer fills.
    pub(crate) fn cache(&self) -> Arc<Cache<K>> {
        self.cache.clone()
    }

    /// Turns true once the first complete list is in the cache.
    pub(crate) fn synced(&self) -> watch::Receiver<bool> {
        self.synced.subscribe()
    }

    /// Adds a change handler (before [`Informer::run`]).
    pub(crate) fn on_change(&mut self, h: Handler<K>) {
        self.handlers.push(h);
    }

    fn notify(&self, old: Option<&K>, new: Option<&K>) {
        for h in &self.handlers {
            h(old, new);
        }
    }

    /// Lists and watches until the stream ends (it retries with backoff on its own, so only at shutdown).
    pub(crate) async fn run(self) {
        let stream = watcher::watcher(self.api.clone(), watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        let mut pending: BTreeMap<Key, Arc<K>> = BTreeMap::new();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Init) => pending.clear(),
                Ok(Event::InitApply(o)) => {
                    pending.insert(key(&o), Arc::new(o));
                }
                Ok(Event::InitDone) => {
                    let fresh = std::mem::take(&mut pending);
                    let old = std::mem::replace(&mut *self.cache.write(), fresh.clone());
                    for (k, o) in &old {
                        if !fresh.contains_key(k) {
                            self.notify(Some(o), None);
                        }
                    }
                    for (k, n) in &fresh {
                        let prev = old.get(k);
                        if prev.is_some_and(|p| p.resource_version() == n.resource_version()) {
                            continue;
                        }
                        self.notify(prev.map(|p| &**p), Some(n));
                    }
                    let _ = self.synced.send(true);
                }
                Ok(Event::Apply(o)) => {
                    let n = Arc::new(o);
                    let prev = self.cache.write().insert(key(&*n), n.clone());
                    self.notify(prev.as_deref(), Some(&n));
                }
                Ok(Event::Delete(o)) => {
                    self.cache.write().remove(&key(&o));
                    self.notify(Some(&o), None);
                }
                Err(e) => tracing::debug!(error = %e, "watch error; the watcher retries"),
            }
        }
    }
}

/// Waits until every receiver reports synced (or its informer is gone).
pub(crate) async fn wait_synced(mut rx: Vec<watch::Receiver<bool>>) {
    for r in &mut rx {
        let _ = r.wait_for(|s| *s).await;
    }
}
