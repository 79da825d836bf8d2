//! The DaemonSet controller, as upstream's `pkg/controller/daemon`: one pod per eligible node, pinned to
//! it by node affinity for the scheduler to bind; RollingUpdate (with maxUnavailable or maxSurge) and
//! OnDelete; ControllerRevisions for `kubectl rollout history/undo`; status counts written when they change.
//!
//! `mod.rs` wires the shared informers to the work queue; `sync.rs` is one pass over one DaemonSet;
//! `placement.rs` decides which nodes qualify; `manage.rs` and `rolling.rs` plan pod changes;
//! `revisions.rs` keeps the history; `status.rs` counts.

mod manage;
mod placement;
mod revisions;
mod rolling;
mod status;
mod sync;

#[cfg(test)]
mod fixtures;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use rkube_client::informer::{Change, Informer, SharedInformers};
use tokio::sync::watch;

use crate::expectations::Expectations;
use crate::workers::{self, key_of};
use rkube_client::events::Recorder;
use rkube_client::queue::WorkQueue;

/// Upstream's failed-pod backoff per (DaemonSet, node): 1 s doubling to 15 minutes.
const FAILED_BACKOFF_BASE: Duration = Duration::from_secs(1);
const FAILED_BACKOFF_MAX: Duration = Duration::from_secs(900);

/// What every sync of the controller shares.
pub(crate) struct Ctx {
    pub(crate) client: Client,
    pub(crate) daemonsets: Informer<DaemonSet>,
    pub(crate) pods: Informer<Pod>,
    pub(crate) nodes: Informer<Node>,
    pub(crate) revisions: Informer<ControllerRevision>,
    pub(crate) expectations: Expectations,
    pub(crate) recorder: Recorder,
    /// Last deletion of a failed pod and the current delay, per `ns/ds/node`.
    failed: Mutex<HashMap<String, (Instant, Duration)>>,
}

impl Ctx {
    /// Whether failed pods of `key` on `node` were deleted too recently to delete again.
    pub(crate) fn in_backoff(&self, key: &str, node: &str) -> bool {
        let m = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&format!("{key}/{node}")).is_some_and(|(at, delay)| at.elapsed() < *delay)
    }

    /// Records a deletion of a failed pod of `key` on `node`, doubling the node's delay.
    pub(crate) fn backoff_failed(&self, key: &str, node: &str) {
        let mut m = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() > 10_000 {
            m.retain(|_, (at, _)| at.elapsed() < FAILED_BACKOFF_MAX * 2);
        }
        let e = m.entry(format!("{key}/{node}")).or_insert((Instant::now(), Duration::ZERO));
        e.1 = if e.1.is_zero() { FAILED_BACKOFF_BASE } else { (e.1 * 2).min(FAILED_BACKOFF_MAX) };
        e.0 = Instant::now();
    }
}

/// Enqueues the DaemonSet controlling `meta`, or for an orphan every DaemonSet of its namespace whose
/// selector matches it (it may be adopted).
fn enqueue_owner(
    queue: &WorkQueue<String>,
    dss: &Informer<DaemonSet>,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) {
    match rkube_client::pods::controller_of(meta) {
        Some(r) if r.kind == "DaemonSet" && r.api_version.starts_with("apps/") => {
            queue.add(format!("{}/{}", meta.namespace.as_deref().unwrap_or_default(), r.name));
        }
        Some(_) => {}
        None => {
            let labels = meta.labels.clone().unwrap_or_default();
            for ds in dss.list_namespace(meta.namespace.as_deref().unwrap_or_default()) {
                let sel = ds.spec.as_ref().and_then(|s| rkube_client::pods::selector(&s.selector).ok().flatten());
                if rkube_client::pods::matches(sel.as_ref(), &labels) {
                    queue.add(key_of(&ds.metadata));
                }
            }
        }
    }
}

/// What about a node decides where daemon pods go.
fn node_fingerprint(n: &Node) -> (Option<std::collections::BTreeMap<String, String>>, String) {
    let taints = n.spec.as_ref().and_then(|s| s.taints.as_ref()).map(|t| serde_json::to_string(t).unwrap_or_default());
    (n.metadata.labels.clone(), taints.unwrap_or_default())
}

fn enqueue_all(queue: &WorkQueue<String>, dss: &Informer<DaemonSet>) {
    for ds in dss.list() {
        queue.add(key_of(&ds.metadata));
    }
}

/// Runs the controller until `stop` is set.
pub(crate) async fn run(informers: SharedInformers, mut stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    let client = informers.client().clone();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        daemonsets: informers.get(),
        pods: informers.get(),
        nodes: informers.get(),
        revisions: informers.get(),
        expectations: Expectations::default(),
        recorder: Recorder::new(client, "daemonset-controller", None),
        failed: Mutex::new(HashMap::new()),
    });
    let queue = workers::queue();
    let q = queue.clone();
    ctx.daemonsets.on_change(move |c| {
        if let Change::Object { old, new } = c {
            for ds in old.iter().chain(new.iter()) {
                q.add(key_of(&ds.metadata));
            }
        }
    });
    let (q, dss) = (queue.clone(), ctx.daemonsets.clone());
    ctx.pods.on_change(move |c| match c {
        Change::Object { old, new } => {
            for p in old.iter().chain(new.iter()) {
                enqueue_owner(&q, &dss, &p.metadata);
            }
        }
        Change::Relisted => enqueue_all(&q, &dss),
    });
    let (q, dss) = (queue.clone(), ctx.daemonsets.clone());
    ctx.nodes.on_change(move |c| match c {
        Change::Object { old, new } => {
            let changed = match (old, new) {
                (Some(o), Some(n)) => node_fingerprint(o) != node_fingerprint(n),
                _ => true,
            };
            if changed {
                enqueue_all(&q, &dss);
            }
        }
        Change::Relisted => enqueue_all(&q, &dss),
    });
    let (q, dss) = (queue.clone(), ctx.daemonsets.clone());
    ctx.revisions.on_change(move |c| {
        if let Change::Object { old, new } = c {
            for r in old.iter().chain(new.iter()) {
                if rkube_client::pods::controller_of(&r.metadata).is_some() {
                    enqueue_owner(&q, &dss, &r.metadata);
                }
            }
        }
    });
    let work = async move {
        ctx.daemonsets.wait_synced().await;
        ctx.pods.wait_synced().await;
        ctx.nodes.wait_synced().await;
        ctx.revisions.wait_synced().await;
        tracing::info!("daemonset controller caches synced");
        let sync_ctx = ctx.clone();
        workers::run("daemonset", queue.clone(), 2, move |key| sync::sync(sync_ctx.clone(), key)).await;
    };
    tokio::select! {
        _ = work => Err(rkube_client::Error::Stopped("daemonset workers")),
        _ = rkube_client::stopped(&mut stop) => Ok(()),
    }
}
