//! One monitor per resource: a metadata-only watch (list, then watch, relisting after `410 Gone`) that
//! feeds the dependency graph and queues the work its changes call for.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::DynamicObject;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use tokio::sync::{Notify, mpsc};

use super::graph::{Change, Graph, Identity, OwnerRef, Seen, Uid, Work};
use crate::discovery::Resource;
use rkube_client::queue::WorkQueue;

/// Where a monitor's changes go.
#[derive(Clone)]
pub(crate) struct Sink {
    /// The graph.
    pub(crate) graph: Arc<Mutex<Graph>>,
    /// The workers' queue.
    pub(crate) queue: Arc<WorkQueue<Work>>,
    /// Woken when custom resource definitions change: discovery runs again.
    pub(crate) rediscover: Arc<Notify>,
}

impl Sink {
    pub(crate) fn apply(&self, change: Change) {
        let work = self.graph.lock().unwrap_or_else(|p| p.into_inner()).apply(change);
        for w in work {
            self.queue.add(w);
        }
    }
}

/// What the graph needs from an object's metadata; `None` without a name or uid.
pub(crate) fn seen(r: &Resource, meta: &ObjectMeta) -> Option<Seen> {
    let identity = Identity {
        api_version: r.ar.api_version.clone(),
        kind: r.ar.kind.clone(),
        namespace: meta.namespace.clone().filter(|_| r.namespaced),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
    };
    let owners = meta
        .owner_references
        .iter()
        .flatten()
        .map(|o| OwnerRef {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            name: o.name.clone(),
            uid: o.uid.clone(),
            block: o.block_owner_deletion == Some(true),
        })
        .collect();
    Some(Seen {
        identity,
        owners,
        deleting: meta.deletion_timestamp.is_some(),
        finalizers: meta.finalizers.clone().unwrap_or_default(),
    })
}

/// Watches `r` until the task is aborted. Sends `r`'s key on `synced` after its first complete list.
pub(crate) async fn run(client: Client, r: Resource, sink: Sink, synced: mpsc::UnboundedSender<String>) {
    let key = super::key(&r);
    let is_crd = r.ar.group == "apiextensions.k8s.io" && r.ar.kind == "CustomResourceDefinition";
    // Metadata only, and of that not managedFields: the graph needs owners, finalizers and deletion.
    let mut events = rkube_client::lean::watch_all_with::<PartialObjectMeta<DynamicObject>>(
        client,
        &r.ar,
        watcher::Config::default(),
    )
    .boxed();
    let mut listed: Option<HashSet<Uid>> = None;
    let mut first_sync = true;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listed = Some(HashSet::new()),
            Ok(Event::InitApply(o)) => {
                if let Some(s) = seen(&r, &o.metadata) {
                    listed.get_or_insert_with(HashSet::new).insert(s.identity.uid.clone());
                    sink.apply(Change::Upsert(s));
                }
            }
            Ok(Event::InitDone) => {
                let uids = listed.take().unwrap_or_default();
                sink.apply(Change::Relisted { api_version: r.ar.api_version.clone(), kind: r.ar.kind.clone(), uids });
                if first_sync {
                    first_sync = false;
                    let _ = synced.send(key.clone());
                }
            }
            Ok(Event::Apply(o)) => {
                if let Some(s) = seen(&r, &o.metadata) {
                    sink.apply(Change::Upsert(s));
                }
                if is_crd {
                    sink.rediscover.notify_one();
                }
            }
            Ok(Event::Delete(o)) => {
                if let Some(s) = seen(&r, &o.metadata) {
                    sink.apply(Change::Delete(s.identity));
                }
                if is_crd {
                    sink.rediscover.notify_one();
                }
            }
            Err(e) => tracing::debug!(resource = %key, error = %e, "garbage collector watch"),
        }
    }
}
