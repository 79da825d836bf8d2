//! One pass over one DaemonSet (upstream's `syncDaemonSet`): history, claimed pods, pods created on the
//! nodes that need one and deleted where they must go, a rolling-update step, history cleanup, status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod, PodSpec};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::SelectorExt;
use serde_json::json;

use super::{Ctx, manage, placement, revisions, rolling, status};
use crate::claims;
use crate::expectations::Seen;
use crate::history::POD_REVISION_LABEL;
use crate::workers::{Requeue, error_text};
use rkube_client::api::{is_namespace_terminating, is_not_found};
use rkube_client::events::EventType;
use rkube_client::{Error, Result};

/// Upstream's `BurstReplicas`: at most this many creates or deletes per pass.
const BURST: usize = 250;

/// Syncs the DaemonSet `key` (`namespace/name`).
pub(crate) async fn sync(ctx: Arc<Ctx>, key: String) -> Result<Requeue> {
    let Some((ns, name)) = key.split_once('/') else { return Ok(None) };
    let Some(ds) = ctx.daemonsets.get(ns, name) else {
        ctx.expectations.forget(&key);
        return Ok(None);
    };
    let ds: DaemonSet = (*ds).clone();
    let Some(spec) = ds.spec.as_ref() else { return Ok(None) };
    let selector = match rkube_client::pods::selector(&spec.selector) {
        Ok(Some(s)) => s,
        Ok(None) => {
            let msg = "This daemon set is selecting all pods. A non-empty selector is required.";
            ctx.recorder.record(&ds, EventType::Warning, "SelectingAll", msg).await;
            return Ok(None);
        }
        Err(e) => {
            // Nothing to retry until the object changes.
            tracing::warn!(daemonset = %key, error = %e, "invalid selector");
            return Ok(None);
        }
    };
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let node_list = ctx.nodes.list();
    let nodes: Vec<&Node> = node_list.iter().map(|n| n.as_ref()).collect();
    let history = revisions::construct(&ctx, &ds, &selector).await?;
    let hash = history.current.labels().get(POD_REVISION_LABEL).cloned().unwrap_or_default();
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let candidates: Vec<Pod> = ctx.pods.list_namespace(ns).iter().map(|p| (**p).clone()).collect();
    let pods = claims::claim(&pod_api, &ds, candidates, |p| selector.matches(&claims::labels_of(&p.metadata))).await?;
    let now = Timestamp::now();
    let seen = |n: &str| match ctx.pods.get(ns, n) {
        None => Seen::Absent,
        Some(p) if p.metadata.deletion_timestamp.is_some() => Seen::Deleting,
        Some(p) => Seen::Alive(p.metadata.uid.clone().unwrap_or_default()),
    };
    if !ctx.expectations.satisfied(&key, seen) {
        write_status(&ctx, &ds, &nodes, &pods, &hash, now, false).await?;
        return Ok(None);
    }
    let by_node = manage::pods_by_node(&pods);
    let plan = manage::plan(&ds, &nodes, &by_node, &hash, now, |node| ctx.in_backoff(&key, node));
    for (pod, node) in &plan.failed {
        let msg = format!("Found failed daemon pod {ns}/{pod} on node {node}, will try to kill it");
        ctx.recorder.record(&ds, EventType::Warning, "FailedDaemonPod", &msg).await;
        ctx.backoff_failed(&key, node);
    }
    let mut delete = plan.delete.clone();
    delete.extend(plan.failed.iter().map(|(p, _)| p.clone()));
    sync_nodes(&ctx, &ds, &key, &pods, &delete, &plan.create_on, &hash).await?;
    let rolling_update =
        spec.update_strategy.as_ref().and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate") == "RollingUpdate";
    if rolling_update && ctx.expectations.satisfied(&key, seen) {
        let roll = rolling::plan(&ds, &nodes, &by_node, &hash, now);
        sync_nodes(&ctx, &ds, &key, &pods, &roll.delete, &roll.create_on, &hash).await?;
    }
    revisions::cleanup(&ctx, &ds, history.old, &pods).await?;
    let counts = write_status(&ctx, &ds, &nodes, &pods, &hash, now, true).await?;
    if !plan.failed.is_empty() {
        // As upstream: an error, so the rate limiter spaces out kill-and-recreate loops.
        return Err(Error::Invalid(format!("deleted {} failed pods of DaemonSet {key}", plan.failed.len())));
    }
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    if plan.backing_off {
        return Ok(Some(Duration::from_secs(1)));
    }
    if min_ready > 0 && counts.0 != counts.1 {
        return Ok(Some(Duration::from_secs(u64::try_from(min_ready).unwrap_or(1))));
    }
    Ok(None)
}

/// Deletes `delete` and creates a pod on each of `create_on` (slow start: batches of 1, 2, 4, ... stop at
/// the first batch with a failure), with upstream's events.
async fn sync_nodes(
    ctx: &Ctx,
    ds: &DaemonSet,
    key: &str,
    pods: &[Pod],
    delete: &[String],
    create_on: &[String],
    hash: &str,
) -> Result<()> {
    if delete.is_empty() && create_on.is_empty() {
        return Ok(());
    }
    let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let template = placement::pod_template(ds, hash);
    let mut first_error = None;
    let create_on = &create_on[..create_on.len().min(BURST)];
    let mut pos = 0;
    let mut batch = 1;
    while pos < create_on.len() {
        let end = (pos + batch).min(create_on.len());
        let creates = create_on[pos..end].iter().map(|node| {
            let mut t = template.clone();
            placement::pin_to_node(t.spec.get_or_insert_with(PodSpec::default), node);
            let pod = rkube_client::pods::pod_from_template(&t, ds, &format!("{}-", ds.name_any()));
            let api = api.clone();
            async move { api.create(&PostParams::default(), &pod).await }
        });
        let results = futures::future::join_all(creates).await;
        let mut failed = false;
        for r in results {
            match r {
                Ok(p) => {
                    ctx.expectations.created(key, p.name_any());
                    ctx.recorder
                        .record(ds, EventType::Normal, "SuccessfulCreate", &format!("Created pod: {}", p.name_any()))
                        .await;
                }
                Err(e) if is_namespace_terminating(&e) => failed = true,
                Err(e) => {
                    failed = true;
                    ctx.recorder
                        .record(ds, EventType::Warning, "FailedCreate", &format!("Error creating: {}", error_text(&e)))
                        .await;
                    first_error.get_or_insert(Error::api(format!("creating a pod for daemonset {key}"), e));
                }
            }
        }
        if failed {
            break;
        }
        pos = end;
        batch *= 2;
    }
    for name in delete.iter().take(BURST) {
        let uid = pods.iter().find(|p| &p.name_any() == name).and_then(|p| p.metadata.uid.clone()).unwrap_or_default();
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                ctx.expectations.deleted(key, name.clone(), uid);
                ctx.recorder.record(ds, EventType::Normal, "SuccessfulDelete", &format!("Deleted pod: {name}")).await;
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                ctx.recorder
                    .record(ds, EventType::Warning, "FailedDelete", &format!("Error deleting: {}", error_text(&e)))
                    .await;
                first_error.get_or_insert(Error::api(format!("deleting pod {ns}/{name}"), e));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Writes the status counts when they changed (and the observed generation when `raise_generation`);
/// returns (ready, available) for the minReadySeconds recheck.
async fn write_status(
    ctx: &Ctx,
    ds: &DaemonSet,
    nodes: &[&Node],
    pods: &[Pod],
    hash: &str,
    now: Timestamp,
    raise_generation: bool,
) -> Result<(i32, i32)> {
    let by_node = manage::pods_by_node(pods);
    let counts = status::compute(ds, nodes, &by_node, hash, now);
    let out = (counts.number_ready, counts.number_available.unwrap_or(0));
    if !status::needs_write(ds, &counts, raise_generation) {
        return Ok(out);
    }
    let mut body = json!({
        "desiredNumberScheduled": counts.desired_number_scheduled,
        "currentNumberScheduled": counts.current_number_scheduled,
        "numberMisscheduled": counts.number_misscheduled,
        "numberReady": counts.number_ready,
        "numberAvailable": counts.number_available,
        "numberUnavailable": counts.number_unavailable,
        "updatedNumberScheduled": counts.updated_number_scheduled,
    });
    if raise_generation {
        body["observedGeneration"] = json!(ds.metadata.generation);
    }
    let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), ds.metadata.namespace.as_deref().unwrap_or_default());
    match api.patch_status(&ds.name_any(), &PatchParams::default(), &Patch::Merge(json!({"status": body}))).await {
        Ok(_) => Ok(out),
        Err(e) if is_not_found(&e) => Ok(out),
        Err(e) => Err(Error::api(format!("updating the status of daemonset {}", ds.name_any()), e)),
    }
}
