//! Watches feeding the state: pods, nodes, namespaces (labels for `namespaceSelector`) and
//! PodDisruptionBudgets (for preemption), each relist reconciled so that nothing deleted while the watch
//! was down lingers.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ReplicationController, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::core::Selector;
use kube::runtime::watcher;
use tokio::sync::{Notify, watch};

use crate::preemption::Pdb;
use crate::state::State;

/// The state, the wake-up for the scheduling loop, and which watches have listed once.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) wake: Notify,
    /// Watch events received (all kinds), for the throughput log.
    pub(crate) events: std::sync::atomic::AtomicU64,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the scheduling loop when a pod is waiting.
    pub(crate) fn kick(&self, st: &State) {
        if st.queue.has_active() {
            self.wake.notify_one();
        }
    }
}

/// Runs one watch forever, turning its events into `apply`/`delete`/`resync` calls on the state.
async fn run<K>(
    client: Client,
    shared: Arc<Shared>,
    synced: watch::Sender<bool>,
    apply: impl Fn(&mut State, K),
    delete: impl Fn(&mut State, &K),
    key: impl Fn(&K) -> String,
    resync: impl Fn(&mut State, &HashSet<String>),
) where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    // managedFields are never read here and are the bulk of a cached pod's memory (upstream's scheduler trims
    // them from its informers); they are not even decoded.
    let mut stream = rkube_client::lean::watch_all::<K>(client, watcher::Config::default()).boxed();
    let mut seen = HashSet::new();
    while let Some(ev) = stream.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(error = %e, "scheduler watch");
                continue;
            }
        };
        shared.events.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut st = shared.lock();
        match ev {
            watcher::Event::Init => seen.clear(),
            watcher::Event::InitApply(o) => {
                seen.insert(key(&o));
                apply(&mut st, o);
            }
            watcher::Event::InitDone => {
                resync(&mut st, &seen);
                seen.clear();
                let _ = synced.send(true);
            }
            watcher::Event::Apply(o) => apply(&mut st, o),
            watcher::Event::Delete(o) => delete(&mut st, &o),
        }
        shared.kick(&st);
    }
}

/// Starts the watches; the returned receivers turn true once pods and nodes have been listed.
pub(crate) fn start(
    client: &Client,
    shared: &Arc<Shared>,
) -> (Vec<tokio::task::JoinHandle<()>>, Vec<watch::Receiver<bool>>) {
    let mut tasks = Vec::new();
    let mut synced = Vec::new();
    let uid = |p: &Pod| p.metadata.uid.clone().unwrap_or_default();
    let name = |m: &kube::api::ObjectMeta| m.name.clone().unwrap_or_default();

    let (tx, rx) = watch::channel(false);
    synced.push(rx);
    tasks.push(tokio::spawn(run::<Pod>(
        client.clone(),
        shared.clone(),
        tx,
        |st, p| st.pod_applied(Arc::new(p)),
        move |st, p| st.pod_deleted(&uid(p)),
        uid,
        |st, seen| st.pods_resynced(seen),
    )));

    let (tx, rx) = watch::channel(false);
    synced.push(rx);
    tasks.push(tokio::spawn(run::<Node>(
        client.clone(),
        shared.clone(),
        tx,
        |st, n| st.node_applied(Arc::new(n)),
        move |st, n| st.node_deleted(&name(&n.metadata)),
        move |n| name(&n.metadata),
        |st, seen| st.nodes_resynced(seen),
    )));

    let (tx, rx) = watch::channel(false);
    synced.push(rx);
    tasks.push(tokio::spawn(run::<Namespace>(
        client.clone(),
        shared.clone(),
        tx,
        move |st, ns| {
            st.cache.namespaces.insert(name(&ns.metadata), ns.metadata.labels.unwrap_or_default());
        },
        move |st, ns| {
            st.cache.namespaces.remove(&name(&ns.metadata));
        },
        move |ns| name(&ns.metadata),
        |st, seen| st.cache.namespaces.retain(|k, _| seen.contains(k)),
    )));

    let (tx, _rx) = watch::channel(false);
    let pdb_key = |p: &PodDisruptionBudget| {
        format!("{}/{}", p.metadata.namespace.clone().unwrap_or_default(), p.metadata.name.clone().unwrap_or_default())
    };
    tasks.push(tokio::spawn(run::<PodDisruptionBudget>(
        client.clone(),
        shared.clone(),
        tx,
        move |st, p| {
            let selector = p.spec.as_ref().and_then(|s| s.selector.clone()).and_then(|s| s.try_into().ok());
            let pdb = Pdb {
                namespace: p.metadata.namespace.clone().unwrap_or_default(),
                selector,
                disruptions_allowed: p.status.as_ref().map_or(0, |s| s.disruptions_allowed),
            };
            st.pdbs.insert(pdb_key(&p), pdb);
        },
        move |st, p| {
            st.pdbs.remove(&pdb_key(p));
        },
        pdb_key,
        |st, seen| st.pdbs.retain(|k, _| seen.contains(k)),
    )));
    tasks.push(owner_watch(client, shared, "Service", |s: &Service| {
        s.spec.as_ref().and_then(|s| s.selector.clone()).filter(|m| !m.is_empty()).map(Selector::from_iter)
    }));
    tasks.push(owner_watch(client, shared, "ReplicationController", |r: &ReplicationController| {
        r.spec.as_ref().and_then(|s| s.selector.clone()).filter(|m| !m.is_empty()).map(Selector::from_iter)
    }));
    tasks.push(owner_watch(client, shared, "ReplicaSet", |r: &ReplicaSet| {
        r.spec.as_ref().and_then(|s| Selector::try_from(s.selector.clone()).ok())
    }));
    tasks.push(owner_watch(client, shared, "StatefulSet", |r: &StatefulSet| {
        r.spec.as_ref().and_then(|s| Selector::try_from(s.selector.clone()).ok())
    }));
    (tasks, synced)
}

/// Watches one kind whose selectors feed PodTopologySpread's system default constraints.
fn owner_watch<K>(
    client: &Client,
    shared: &Arc<Shared>,
    kind: &'static str,
    selector: fn(&K) -> Option<Selector>,
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let ns = |o: &K| o.meta().namespace.clone().unwrap_or_default();
    let key = move |o: &K| format!("{kind}/{}", o.meta().name.clone().unwrap_or_default());
    let (tx, _rx) = watch::channel(false);
    tokio::spawn(run::<K>(
        client.clone(),
        shared.clone(),
        tx,
        move |st, o| {
            let by_ns = st.cache.owner_selectors.entry(ns(&o)).or_default();
            match selector(&o) {
                Some(sel) => by_ns.insert(key(&o), sel),
                None => by_ns.remove(&key(&o)),
            };
        },
        move |st, o| {
            if let Some(by_ns) = st.cache.owner_selectors.get_mut(&ns(o)) {
                by_ns.remove(&key(o));
            }
        },
        move |o| format!("{}/{}", ns(o), key(o)),
        move |st, seen| {
            let prefix = format!("{kind}/");
            for (namespace, by_ns) in st.cache.owner_selectors.iter_mut() {
                by_ns.retain(|k, _| !k.starts_with(&prefix) || seen.contains(&format!("{namespace}/{k}")));
            }
        },
    ))
}
