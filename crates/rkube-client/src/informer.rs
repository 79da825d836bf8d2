//! Shared informers (client-go's `SharedInformerFactory`): one list+watch per kind per process, a cache
//! indexed by namespace, and change handlers that see the object before and after each change. Every
//! controller of the process reads the same cache, so 10k pods are held once, not once per controller,
//! and the API server streams each change to the process once.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::runtime::watcher::Event;
use kube::{Client, Resource};
use tokio::sync::watch;

/// What a handler is told.
#[derive(Debug)]
pub enum Change<'a, K> {
    /// An object appeared (`old` None), changed, or went (`new` None).
    Object {
        /// The cached object before the change.
        old: Option<&'a K>,
        /// The object after the change; `None` when deleted.
        new: Option<&'a K>,
    },
    /// The cache was (re)listed, or the handler was added to a cache already filled: every object may
    /// have changed (deletions during a watch gap are reported as `Object` with `new: None` first).
    Relisted,
}

impl<K> Clone for Change<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Change<'_, K> {}

type Handler<K> = Arc<dyn Fn(Change<'_, K>) + Send + Sync>;
type Key = (String, String);

struct Inner<K> {
    /// Held while an event is applied and told, and while a handler registers and is replayed the cache:
    /// a handler sees every change exactly once, whenever it registers.
    dispatch: Mutex<()>,
    cache: RwLock<BTreeMap<Key, Arc<K>>>,
    handlers: RwLock<Vec<Handler<K>>>,
    synced: watch::Sender<bool>,
}

/// One kind's shared cache and handlers. Cheap to clone.
pub struct Informer<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer { inner: self.inner.clone() }
    }
}

fn key<K: Resource>(o: &K) -> Key {
    (o.meta().namespace.clone().unwrap_or_default(), o.meta().name.clone().unwrap_or_default())
}

impl<K: Resource + Send + Sync + 'static> Informer<K> {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Key, Arc<K>>> {
        self.inner.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached object `namespace/name` (`""` namespace for cluster-scoped kinds).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.read().get(&(namespace.to_owned(), name.to_owned())).cloned()
    }

    /// Every cached object in `namespace`.
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        let from = (namespace.to_owned(), String::new());
        self.read().range(from..).take_while(|((n, _), _)| n == namespace).map(|(_, v)| v.clone()).collect()
    }

    /// Every cached object.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.read().values().cloned().collect()
    }

    /// How many objects are cached.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Turns true once the first complete list is in the cache.
    pub fn synced(&self) -> watch::Receiver<bool> {
        self.inner.synced.subscribe()
    }

    /// Waits until the first complete list is in the cache.
    pub async fn wait_synced(&self) {
        let _ = self.synced().wait_for(|s| *s).await;
    }

    /// Calls `f` for every change from now on. Handlers run on the watch task: they must only enqueue
    /// keys, never wait. Like client-go's `AddEventHandler`, a handler added to a filled cache is first told
    /// of every cached object as added, then `Relisted`.
    pub fn on_change(&self, f: impl Fn(Change<'_, K>) + Send + Sync + 'static) {
        let h: Handler<K> = Arc::new(f);
        let _dispatch = self.inner.dispatch.lock().unwrap_or_else(|p| p.into_inner());
        self.inner.handlers.write().unwrap_or_else(|p| p.into_inner()).push(h.clone());
        if !*self.inner.synced.borrow() {
            // The first list will tell it everything.
            return;
        }
        let snapshot: Vec<Arc<K>> = self.read().values().cloned().collect();
        for o in &snapshot {
            h(Change::Object { old: None, new: Some(o) });
        }
        h(Change::Relisted);
    }

    fn emit(&self, old: Option<&K>, new: Option<&K>) {
        let handlers = self.inner.handlers.read().unwrap_or_else(|p| p.into_inner()).clone();
        for h in handlers {
            h(Change::Object { old, new });
        }
    }

    fn relisted(&self) {
        let handlers = self.inner.handlers.read().unwrap_or_else(|p| p.into_inner()).clone();
        for h in handlers {
            h(Change::Relisted);
        }
    }
}

impl<K> Informer<K>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default,
{
    fn new() -> Self {
        Informer {
            inner: Arc::new(Inner {
                dispatch: Mutex::new(()),
                cache: RwLock::new(BTreeMap::new()),
                handlers: RwLock::new(Vec::new()),
                synced: watch::channel(false).0,
            }),
        }
    }

    /// Lists and watches `api` into the cache until the stream ends (the watcher retries with backoff by
    /// itself, so in practice until the task is dropped).
    async fn run(self, client: Client) {
        // managedFields are left out of the cache, as upstream's controller-manager drops them: no controller
        // reads them, they are most of a small object's size, and an update without them keeps the stored ones.
        // They are not even decoded (`lean.rs`).
        let stream = crate::lean::watch_all::<K>(client, kube::runtime::watcher::Config::default());
        futures::pin_mut!(stream);
        let mut pending: BTreeMap<Key, Arc<K>> = BTreeMap::new();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => self.apply(&mut pending, ev),
                Err(e) => {
                    tracing::debug!(kind = %K::kind(&K::DynamicType::default()), error = %e, "watch failed; retrying")
                }
            }
        }
    }

    /// Applies one watcher event to the cache and tells the handlers. A relist replaces the cache at its
    /// end (`InitDone`), reporting objects that disappeared meanwhile as deleted.
    fn apply(&self, pending: &mut BTreeMap<Key, Arc<K>>, ev: Event<K>) {
        let _dispatch = self.inner.dispatch.lock().unwrap_or_else(|p| p.into_inner());
        match ev {
            Event::Init => pending.clear(),
            Event::InitApply(o) => {
                pending.insert(key(&o), Arc::new(o));
            }
            Event::InitDone => {
                let fresh = std::mem::take(pending);
                let old =
                    std::mem::replace(&mut *self.inner.cache.write().unwrap_or_else(|p| p.into_inner()), fresh.clone());
                for (k, o) in &old {
                    if !fresh.contains_key(k) {
                        self.emit(Some(o), None);
                    }
                }
                // What the relist shows new or changed, as client-go's informer reports a relist.
                for (k, n) in &fresh {
                    let prev = old.get(k);
                    if prev.is_some_and(|p| p.meta().resource_version == n.meta().resource_version) {
                        continue;
                    }
                    self.emit(prev.map(|p| &**p), Some(n));
                }
                self.inner.synced.send_replace(true);
                self.relisted();
            }
            Event::Apply(o) => {
                let n = Arc::new(o);
                let prev = self.inner.cache.write().unwrap_or_else(|p| p.into_inner()).insert(key(&*n), n.clone());
                self.emit(prev.as_deref(), Some(&n));
            }
            Event::Delete(o) => {
                let prev = self.inner.cache.write().unwrap_or_else(|p| p.into_inner()).remove(&key(&o));
                self.emit(Some(prev.as_deref().unwrap_or(&o)), None);
            }
        }
    }
}

/// The process's informers, one per kind, created on first use and running until `stop` is set. Cheap to clone.
#[derive(Clone)]
pub struct SharedInformers {
    client: Client,
    informers: Arc<Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>>,
    stop: watch::Receiver<bool>,
}

impl SharedInformers {
    /// A factory whose watches use `client` and end when `stop` is set.
    pub fn new(client: Client, stop: watch::Receiver<bool>) -> SharedInformers {
        SharedInformers { client, informers: Arc::new(Mutex::new(HashMap::new())), stop }
    }

    /// The client the informers watch with (for writes by the controllers).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The informer of every `K` in the cluster, started now if it was not running.
    pub fn get<K>(&self) -> Informer<K>
    where
        K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
        K::DynamicType: Default,
    {
        let mut map = self.informers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = map.get(&TypeId::of::<K>()).and_then(|b| b.downcast_ref::<Informer<K>>()) {
            return i.clone();
        }
        let informer = Informer::<K>::new();
        map.insert(TypeId::of::<K>(), Box::new(informer.clone()));
        let run = informer.clone().run(self.client.clone());
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = run => {}
                _ = crate::stopped(&mut stop) => {}
            }
        });
        informer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn cm(ns: &str, name: &str, rv: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.namespace = Some(ns.into());
        c.metadata.name = Some(name.into());
        c.metadata.resource_version = Some(rv.into());
        c
    }

    #[test]
    fn relists_replace_the_cache_and_report_what_went() {
        let inf = Informer::<ConfigMap>::new();
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let s2 = seen.clone();
        inf.on_change(move |c| {
            let line = match c {
                Change::Object { old, new } => format!(
                    "{}->{}",
                    old.and_then(|o| o.metadata.name.clone()).unwrap_or_default(),
                    new.and_then(|o| o.metadata.resource_version.clone()).unwrap_or_default()
                ),
                Change::Relisted => "relisted".to_owned(),
            };
            s2.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        });
        let mut pending = BTreeMap::new();
        inf.apply(&mut pending, Event::Init);
        inf.apply(&mut pending, Event::InitApply(cm("a", "x", "1")));
        inf.apply(&mut pending, Event::InitApply(cm("b", "y", "1")));
        assert!(inf.is_empty(), "a relist shows only when complete");
        inf.apply(&mut pending, Event::InitDone);
        assert_eq!(inf.list_namespace("a").len(), 1);
        inf.apply(&mut pending, Event::Apply(cm("a", "x", "2")));
        assert_eq!(inf.get("a", "x").and_then(|c| c.metadata.resource_version.clone()).as_deref(), Some("2"));
        inf.apply(&mut pending, Event::Init);
        inf.apply(&mut pending, Event::InitApply(cm("a", "x", "3")));
        inf.apply(&mut pending, Event::InitDone);
        assert!(inf.get("b", "y").is_none());
        assert_eq!(inf.len(), 1);
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(seen, vec!["->1", "->1", "relisted", "x->2", "y->", "x->3", "relisted"]);
        // A handler added to a filled cache is told of every object, then to look at everything.
        let late = Arc::new(Mutex::new((0, 0)));
        let l2 = late.clone();
        inf.on_change(move |c| {
            let mut l = l2.lock().unwrap_or_else(|p| p.into_inner());
            match c {
                Change::Object { old: None, new: Some(_) } => l.0 += 1,
                Change::Relisted => l.1 += 1,
                Change::Object { .. } => {}
            }
        });
        assert_eq!(*late.lock().unwrap_or_else(|p| p.into_inner()), (1, 1));
    }
}
