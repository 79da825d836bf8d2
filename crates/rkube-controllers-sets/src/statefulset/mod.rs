//! The StatefulSet controller, as upstream's `pkg/controller/statefulset`: pods `<set>-<ordinal>` with
//! stable identities and claims, created in order (OrderedReady) or all at once (Parallel), scaled down
//! from the highest ordinal, updated by RollingUpdate (partition, maxUnavailable) or OnDelete, with
//! ControllerRevisions for `kubectl rollout history/undo`.
//!
//! `mod.rs` wires the shared informers to the work queue; `sync.rs` is one pass over one set; `plan.rs` and
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
use rkube_client::informer::{Change, Informer, SharedInformers};
use tokio::sync::watch;

use crate::expectations::Expectations;
use crate::workers::{self, key_of};
use rkube_client::events::Recorder;
use rkube_client::queue::WorkQueue;

/// What every sync of the controller shares.
pub(crate) struct Ctx {
    pub(crate) client: Client,
    pub(crate) sets: Informer<StatefulSet>,
    pub(crate) pods: Informer<Pod>,
    pub(crate) claims: Informer<PersistentVolumeClaim>,
    pub(crate) revisions: Informer<ControllerRevision>,
    pub(crate) expectations: Expectations,
    pub(crate) recorder: Recorder,
}

/// Enqueues the StatefulSet controlling `meta`; for an orphan pod every set of its namespace it could
/// belong to (by name and selector).
fn enqueue_owner(queue: &WorkQueue<String>, sets: &Informer<StatefulSet>, meta: &ObjectMeta, orphan_pod: Option<&Pod>) {
    match rkube_client::pods::controller_of(meta) {
        Some(r) if r.kind == "StatefulSet" && r.api_version.starts_with("apps/") => {
            queue.add(format!("{}/{}", meta.namespace.as_deref().unwrap_or_default(), r.name));
        }
        Some(_) => {}
        None => {
            let Some(pod) = orphan_pod else { return };
            let labels = meta.labels.clone().unwrap_or_default();
            for set in sets.list_namespace(meta.namespace.as_deref().unwrap_or_default()) {
                if !ordinals::is_member(&set, pod) {
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

fn enqueue_namespace(queue: &WorkQueue<String>, sets: &Informer<StatefulSet>, ns: Option<&str>) {
    let sets = match ns {
        Some(ns) => sets.list_namespace(ns),
        None => sets.list(),
    };
    for set in sets {
        queue.add(key_of(&set.metadata));
    }
}

/// Runs the controller until `stop` is set.
pub(crate) async fn run(informers: SharedInformers, mut stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    let client = informers.client().clone();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        sets: informers.get(),
        pods: informers.get(),
        claims: informers.get(),
        revisions: informers.get(),
        expectations: Expectations::default(),
        recorder: Recorder::new(client, "statefulset-controller", None),
    });
    let queue = workers::queue();
    let q = queue.clone();
    ctx.sets.on_change(move |c| {
        if let Change::Object { old, new } = c {
            for s in old.iter().chain(new.iter()) {
                q.add(key_of(&s.metadata));
            }
        }
    });
    let (q, ss) = (queue.clone(), ctx.sets.clone());
    ctx.pods.on_change(move |c| match c {
        Change::Object { old, new } => {
            for p in old.iter().chain(new.iter()) {
                enqueue_owner(&q, &ss, &p.metadata, Some(p));
            }
        }
        Change::Relisted => enqueue_namespace(&q, &ss, None),
    });
    let (q, ss) = (queue.clone(), ctx.sets.clone());
    ctx.claims.on_change(move |c| {
        // A claim that went may have held a pod back (a stale claim of a scaled-down pod).
        if let Change::Object { old: Some(o), new: None } = c {
            enqueue_namespace(&q, &ss, o.metadata.namespace.as_deref());
        }
    });
    let (q, ss) = (queue.clone(), ctx.sets.clone());
    ctx.revisions.on_change(move |c| {
        if let Change::Object { old, new } = c {
            for r in old.iter().chain(new.iter()) {
                enqueue_owner(&q, &ss, &r.metadata, None);
            }
        }
    });
    let work = async move {
        ctx.sets.wait_synced().await;
        ctx.pods.wait_synced().await;
        ctx.claims.wait_synced().await;
        ctx.revisions.wait_synced().await;
        tracing::info!("statefulset controller caches synced");
        let sync_ctx = ctx.clone();
        workers::run("statefulset", queue.clone(), 2, move |key| sync::sync(sync_ctx.clone(), key)).await;
    };
    tokio::select! {
        _ = work => Err(rkube_client::Error::Stopped("statefulset workers")),
        _ = rkube_client::stopped(&mut stop) => Ok(()),
    }
}
