//! The StatefulSet controller, as upstream's `pkg/controller/statefulset`: pods `<set>-<ordinal>` with
//! stable identities and claims, created in order (OrderedReady) or all at once (Parallel), scaled down
//! from the highest ordinal, updated by RollingUpdate (partition, maxUnavailable) or OnDelete, with
//! ControllerRevisions for `kubectl rollout history/undo`.
//!
//! `mod.rs` wires the watches to the work queue; `sync.rs` is one pass over one set; `plan.rs` and
//! `rolling.rs` decide the writes, `podcontrol.rs` makes them; `ordinals.rs` names things; `pvc.rs` builds
//! and owns claims; `revisions.rs` keeps the history; `status.rs` counts.

mod ordinals;
mod plan;
mod podcontrol;
mod pvc;
mod revisions;
mod rolling;
mod status;
mod sync;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use tokio::sync::watch;

use crate::expectations::Expectations;
use crate::informer::{Change, informer};
use crate::workers::{self, key_of};
use rkube_client::events::Recorder;
use rkube_client::queue::WorkQueue;

/// What every sync of the controller shares.
pub(crate) struct Ctx {
    pub(crate) client: Client,
    pub(crate) sets: Store<StatefulSet>,
    pub(crate) pods: Store<Pod>,
    pub(crate) claims: Store<PersistentVolumeClaim>,
    pub(crate) revisions: Store<ControllerRevision>,
    pub(crate) expectations: Expectations,
    pub(crate) recorder: Recorder,
}

/// Enqueues the StatefulSet controlling `meta`; for an orphan pod every set of its namespace it could
/// belong to (by name and selector).
fn enqueue_owner(queue: &WorkQueue<String>, sets: &Store<StatefulSet>, meta: &ObjectMeta, orphan_pod: Option<&Pod>) {
    match rkube_client::pods::controller_of(meta) {
        Some(r) if r.kind == "StatefulSet" && r.api_version.starts_with("apps/") => {
            queue.add(format!("{}/{}", meta.namespace.as_deref().unwrap_or_default(), r.name));
        }
        Some(_) => {}
        None => {
            let Some(pod) = orphan_pod else { return };
            let labels = meta.labels.clone().unwrap_or_default();
            for set in sets.state() {
                if set.metadata.namespace != meta.namespace || !ordinals::is_member(&set, pod) {
                    continue;
                }
                let sel = set.spec.as_ref().and_then(|s| rkube_client::pods::selector(&s.selector).ok().flatten());
                if rkube_client::pods::matches(sel.as_ref(), &labels) {
                    queue.add(key_of(&set.metadata));
                }
            }
        }
    }
}

fn enqueue_namespace(queue: &WorkQueue<String>, sets: &Store<StatefulSet>, ns: Option<&str>) {
    for set in sets.state() {
        if ns.is_none() || set.metadata.namespace.as_deref() == ns {
            queue.add(key_of(&set.metadata));
        }
    }
}

/// Runs the controller until `stop` is set.
pub(crate) async fn run(client: Client, mut stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    let queue = workers::queue();
    let q = queue.clone();
    let (sets, set_watch) = informer(Api::<StatefulSet>::all(client.clone()), watcher::Config::default(), move |c| {
        if let Change::Object { old, new } = c {
            for s in old.iter().chain(new.iter()) {
                q.add(key_of(&s.metadata));
            }
        }
    });
    let (q, ss) = (queue.clone(), sets.clone());
    let (pods, pod_watch) = informer(Api::<Pod>::all(client.clone()), watcher::Config::default(), move |c| match c {
        Change::Object { old, new } => {
            for p in old.iter().chain(new.iter()) {
                enqueue_owner(&q, &ss, &p.metadata, Some(p));
            }
        }
        Change::Relisted => enqueue_namespace(&q, &ss, None),
    });
    let (q, ss) = (queue.clone(), sets.clone());
    let (claims, claim_watch) =
        informer(Api::<PersistentVolumeClaim>::all(client.clone()), watcher::Config::default(), move |c| {
            // A claim that went may have held a pod back (a stale claim of a scaled-down pod).
            if let Change::Object { old: Some(o), new: None } = c {
                enqueue_namespace(&q, &ss, o.metadata.namespace.as_deref());
            }
        });
    let (q, ss) = (queue.clone(), sets.clone());
    let (revisions, rev_watch) =
        informer(Api::<ControllerRevision>::all(client.clone()), watcher::Config::default(), move |c| {
            if let Change::Object { old, new } = c {
                for r in old.iter().chain(new.iter()) {
                    enqueue_owner(&q, &ss, &r.metadata, None);
                }
            }
        });
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        sets,
        pods,
        claims,
        revisions,
        expectations: Expectations::default(),
        recorder: Recorder::new(client, "statefulset-controller", None),
    });
    let watches = futures::future::join4(set_watch, pod_watch, claim_watch, rev_watch);
    let sync_ctx = ctx.clone();
    let work = async move {
        let _ = ctx.sets.wait_until_ready().await;
        let _ = ctx.pods.wait_until_ready().await;
        let _ = ctx.claims.wait_until_ready().await;
        let _ = ctx.revisions.wait_until_ready().await;
        tracing::info!("statefulset controller caches synced");
        workers::run("statefulset", queue.clone(), 2, move |key| sync::sync(sync_ctx.clone(), key)).await;
    };
    tokio::select! {
        _ = watches => Err(rkube_client::Error::Stopped("statefulset watches")),
        _ = work => Err(rkube_client::Error::Stopped("statefulset workers")),
        _ = rkube_client::stopped(&mut stop) => Ok(()),
    }
}
