//! The disruption controller: keeps every PodDisruptionBudget's status (healthy, desired and expected
//! pods, disruptions allowed, the `DisruptionAllowed` condition) current as its pods change, as upstream's
//! `pkg/controller/disruption`. The eviction subresource reads this status and decrements it. A second
//! worker clears stale `DisruptionTarget` pod conditions (`stale.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{GroupVersionKind, Selector, SelectorExt};
use kube::{Client, ResourceExt};
use rkube_client::api::{is_conflict, is_not_found};
use rkube_client::events::{EventType, Recorder};
use rkube_client::informer::{Change, Informer, SharedInformers};
use rkube_client::queue::WorkQueue;
use rkube_client::{Error, Result};
use tokio::sync::watch;

use crate::budget::{self, Observed};
use crate::stale;

type Key = (String, String);

struct Ctx {
    client: Client,
    pods: Informer<Pod>,
    pdbs: Informer<PodDisruptionBudget>,
    queue: Arc<WorkQueue<Key>>,
    events: Recorder,
}

/// Why the expected pod count could not be computed.
enum ScaleError {
    /// Wrong as things are (no controller found, a kind without scale): reported in the status.
    Fatal(String),
    /// The API failed: retried.
    Api(Error),
}

fn key_of<K: ResourceExt>(o: &K) -> Key {
    (o.namespace().unwrap_or_default(), o.name_any())
}

/// Runs the disruption controller on the shared informers until `stop` is set.
pub(crate) async fn run(informers: SharedInformers, stop: watch::Receiver<bool>) -> Result<()> {
    let queue = WorkQueue::<Key>::new(Duration::from_millis(5), Duration::from_secs(300));
    let pdbs = informers.get::<PodDisruptionBudget>();
    let pods = informers.get::<Pod>();
    let q = queue.clone();
    pdbs.on_change(move |c| {
        if let Change::Object { old, new } = c
            && let Some(pdb) = new.or(old)
        {
            q.add(key_of(pdb));
        }
    });
    let stale_queue = WorkQueue::<Key>::new(Duration::from_millis(5), Duration::from_secs(300));
    // A pod change concerns the budgets of its namespace (its labels may have just left one).
    let (q, pdb_reader, sq) = (queue.clone(), pdbs.clone(), stale_queue.clone());
    pods.on_change(move |c| {
        let budgets = match c {
            Change::Object { old, new } => {
                let Some(pod) = new.or(old) else { return };
                if let Some(wait) = new.and_then(|p| stale::stale_in(p, Timestamp::now())) {
                    sq.add_after(key_of(pod), wait);
                }
                pdb_reader.list_namespace(&pod.namespace().unwrap_or_default())
            }
            Change::Relisted => pdb_reader.list(),
        };
        for pdb in budgets {
            q.add(key_of(pdb.as_ref()));
        }
    });
    let stale_shutdown = stale_queue.clone();
    let ctx = Arc::new(Ctx {
        events: Recorder::new(informers.client().clone(), "controllermanager", None),
        client: informers.client().clone(),
        pods,
        pdbs,
        queue: queue.clone(),
    });
    let work = async move {
        // Every budget is queued by the handlers once the caches fill.
        tokio::join!(ctx.pods.wait_synced(), ctx.pdbs.wait_synced());
        let workers = (0..2).map(|_| {
            let ctx = ctx.clone();
            Box::pin(async move {
                while let Some(key) = ctx.queue.get().await {
                    match sync(&ctx, &key).await {
                        Ok(()) => ctx.queue.forget(&key),
                        Err(e) => {
                            if matches!(e, Error::Conflict(_)) {
                                // An eviction wrote the budget first: read it again.
                                tracing::debug!(error = %e, "status write conflicted");
                            } else {
                                let pdb = format!("{}/{}", key.0, key.1);
                                tracing::info!(%pdb, error = %e, "syncing PodDisruptionBudget");
                            }
                            ctx.queue.add_rate_limited(key.clone());
                        }
                    }
                    ctx.queue.done(&key);
                }
            })
        });
        let cleaner = Box::pin(async {
            while let Some(key) = stale_queue.get().await {
                match stale::clean(&ctx.client, &ctx.pods, &key).await {
                    Ok(later) => {
                        stale_queue.forget(&key);
                        if let Some(wait) = later {
                            stale_queue.add_after(key.clone(), wait);
                        }
                    }
                    Err(e) => {
                        tracing::info!(pod = %format!("{}/{}", key.0, key.1), error = %e, "cleaning DisruptionTarget");
                        stale_queue.add_rate_limited(key.clone());
                    }
                }
                stale_queue.done(&key);
            }
        });
        tokio::join!(futures::future::join_all(workers), cleaner);
    };
    let result = rkube_client::until_stopped("disruption controller", Box::pin(work), stop).await;
    queue.shutdown();
    stale_shutdown.shutdown();
    result
}

fn matching_pods(ctx: &Ctx, ns: &str, sel: Option<&LabelSelector>) -> Result<Vec<Pod>, String> {
    // A missing selector selects nothing; an empty one every pod of the namespace (policy/v1).
    let Some(sel) = sel else { return Ok(Vec::new()) };
    let sel: Selector = sel.clone().try_into().map_err(|e| format!("{e}"))?;
    let empty = std::collections::BTreeMap::new();
    let mut pods: Vec<Pod> = ctx
        .pods
        .list_namespace(ns)
        .iter()
        .filter(|p| sel.matches(p.metadata.labels.as_ref().unwrap_or(&empty)))
        .map(|p| p.as_ref().clone())
        .collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(pods)
}

async fn sync(ctx: &Ctx, key: &Key) -> Result<()> {
    let Some(pdb) = ctx.pdbs.get(&key.0, &key.1) else { return Ok(()) };
    if pdb.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let spec = pdb.spec.clone().unwrap_or_default();
    let pods = match matching_pods(ctx, &key.0, spec.selector.as_ref()) {
        Ok(p) => p,
        Err(e) => return fail_safe(ctx, &pdb, &e).await,
    };
    if pods.is_empty() {
        ctx.events.record(pdb.as_ref(), EventType::Normal, "NoPods", "No matching pods found").await;
    }
    let scale = if budget::needs_scale(&spec) {
        match expected_scale(ctx, &key.0, &pods).await {
            Ok((scale, unmanaged)) => {
                if !unmanaged.is_empty() {
                    let msg = format!(
                        "Pods selected by this PodDisruptionBudget (selector: {}) were found to be unmanaged. \
                         As a result, the status of the PDB cannot be calculated correctly, which may result in \
                         undefined behavior. To account for these pods please set \".spec.minAvailable\" field of \
                         the PDB to an integer value.",
                        go_selector(spec.selector.as_ref())
                    );
                    ctx.events.record(pdb.as_ref(), EventType::Warning, "UnmanagedPods", &msg).await;
                }
                Some(scale)
            }
            Err(ScaleError::Api(e)) => return Err(e),
            Err(ScaleError::Fatal(e)) => {
                let msg = format!("Failed to calculate the number of expected pods: {e}");
                ctx.events.record(pdb.as_ref(), EventType::Warning, "CalculateExpectedPodCountFailed", &msg).await;
                return fail_safe(ctx, &pdb, &e).await;
            }
        }
    } else {
        None
    };
    let (expected, desired) = match budget::expected_and_desired(&spec, pods.len(), scale) {
        Ok(v) => v,
        Err(e) => {
            let msg = format!("Failed to calculate the number of expected pods: {e}");
            ctx.events.record(pdb.as_ref(), EventType::Warning, "CalculateExpectedPodCountFailed", &msg).await;
            return fail_safe(ctx, &pdb, &e).await;
        }
    };
    let now = Timestamp::now();
    let (disrupted, recheck, expired) = budget::disrupted_pods(&pods, pdb.status.as_ref(), now);
    for pod in expired {
        let msg = format!("Pod was expected by PDB {}/{} to be deleted but it wasn't", key.0, key.1);
        ctx.events.record(pod, EventType::Warning, "NotDeleted", &msg).await;
    }
    let current_healthy = budget::current_healthy(&pods, &disrupted, now);
    let seen = Observed { current_healthy, desired_healthy: desired, expected_pods: expected, disrupted };
    if let Some(status) = budget::next_status(&pdb, seen, now) {
        write_status(ctx, &pdb, status).await?;
    }
    if let Some(at) = recheck {
        let wait = at.duration_since(now).unsigned_abs();
        ctx.queue.add_after(key.clone(), wait + Duration::from_millis(100));
    }
    Ok(())
}

/// Writes `status` over the budget as read: a concurrent change (an eviction) is a conflict, retried.
async fn write_status(
    ctx: &Ctx,
    pdb: &PodDisruptionBudget,
    status: k8s_openapi::api::policy::v1::PodDisruptionBudgetStatus,
) -> Result<()> {
    let mut next = pdb.clone();
    next.status = Some(status);
    next.metadata.managed_fields = None;
    let api = Api::<PodDisruptionBudget>::namespaced(ctx.client.clone(), &pdb.namespace().unwrap_or_default());
    match api.replace_status(&pdb.name_any(), &PostParams::default(), &next).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) if is_conflict(&e) => {
            Err(Error::Conflict(format!("updating status of PodDisruptionBudget {}", pdb.name_any())))
        }
        Err(e) => Err(Error::api(format!("updating status of PodDisruptionBudget {}", pdb.name_any()), e)),
    }
}

/// Upstream's `failSafe`: no disruption allowed, and why, until the budget or its pods change.
async fn fail_safe(ctx: &Ctx, pdb: &PodDisruptionBudget, error: &str) -> Result<()> {
    match budget::fail_safe_status(pdb, error, Timestamp::now()) {
        Some(status) => write_status(ctx, pdb, status).await,
        None => Ok(()),
    }
}

/// A LabelSelector as Go's `%v` prints the pointer upstream formats into its UnmanagedPods event.
fn go_selector(sel: Option<&LabelSelector>) -> String {
    let Some(sel) = sel else { return "nil".into() };
    let labels: Vec<String> = sel.match_labels.iter().flatten().map(|(k, v)| format!("{k}: {v},")).collect();
    let exprs: Vec<String> = sel
        .match_expressions
        .iter()
        .flatten()
        .map(|e| {
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}}",
                e.key,
                e.operator,
                e.values.clone().unwrap_or_default().join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{}}},MatchExpressions:[]LabelSelectorRequirement{{{}}},}}",
        labels.join(""),
        exprs.join(",")
    )
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The sum of the replicas of the pods' controllers, and the pods without a controller (upstream's
/// `getExpectedScale`).
async fn expected_scale(ctx: &Ctx, ns: &str, pods: &[Pod]) -> Result<(i32, Vec<String>), ScaleError> {
    let mut scales: HashMap<String, i32> = HashMap::new();
    let mut unmanaged = Vec::new();
    for pod in pods {
        let Some(cref) = rkube_client::pods::controller_of(&pod.metadata) else {
            unmanaged.push(pod.name_any());
            continue;
        };
        if scales.contains_key(&cref.uid) {
            continue;
        }
        match controller_scale(&ctx.client, ns, cref).await? {
            Some((uid, replicas)) => {
                scales.insert(uid, replicas);
            }
            None => return Err(ScaleError::Fatal(format!("found no controllers for pod {:?}", pod.name_any()))),
        }
    }
    Ok((scales.values().sum(), unmanaged))
}

fn api_err(what: String) -> impl FnOnce(kube::Error) -> ScaleError {
    move |e| ScaleError::Api(Error::api(what, e))
}

/// The controller `cref` names and its `spec.replicas`, if it exists with that UID: ReplicationControllers,
/// Deployments (through their ReplicaSet), StatefulSets, then anything with a scale subresource.
async fn controller_scale(
    client: &Client,
    ns: &str,
    cref: &OwnerReference,
) -> Result<Option<(String, i32)>, ScaleError> {
    let group = group_of(&cref.api_version);
    let uid_ok = |uid: Option<&String>| uid.is_some_and(|u| *u == cref.uid);
    if cref.kind == "ReplicationController" && group.is_empty() {
        let rc = Api::<ReplicationController>::namespaced(client.clone(), ns)
            .get_opt(&cref.name)
            .await
            .map_err(api_err(format!("reading replicationcontroller {ns}/{}", cref.name)))?;
        if let Some(rc) = rc.filter(|rc| uid_ok(rc.metadata.uid.as_ref())) {
            return Ok(Some((cref.uid.clone(), rc.spec.and_then(|s| s.replicas).unwrap_or(1))));
        }
        return Ok(None);
    }
    if cref.kind == "ReplicaSet" && group == "apps" {
        let rs = Api::<ReplicaSet>::namespaced(client.clone(), ns)
            .get_opt(&cref.name)
            .await
            .map_err(api_err(format!("reading replicaset {ns}/{}", cref.name)))?;
        let owner = rs
            .as_ref()
            .filter(|rs| uid_ok(rs.metadata.uid.as_ref()))
            .and_then(|rs| rkube_client::pods::controller_of(&rs.metadata))
            .filter(|o| o.kind == "Deployment" && group_of(&o.api_version) == "apps")
            .cloned();
        if let Some(owner) = owner {
            let d = Api::<Deployment>::namespaced(client.clone(), ns)
                .get_opt(&owner.name)
                .await
                .map_err(api_err(format!("reading deployment {ns}/{}", owner.name)))?;
            if let Some(d) = d.filter(|d| d.metadata.uid.as_ref() == Some(&owner.uid)) {
                return Ok(Some((owner.uid.clone(), d.spec.and_then(|s| s.replicas).unwrap_or(1))));
            }
        }
        // A ReplicaSet of its own: its scale, below.
    }
    if cref.kind == "StatefulSet" && group == "apps" {
        let ss = Api::<StatefulSet>::namespaced(client.clone(), ns)
            .get_opt(&cref.name)
            .await
            .map_err(api_err(format!("reading statefulset {ns}/{}", cref.name)))?;
        if let Some(ss) = ss.filter(|s| uid_ok(s.metadata.uid.as_ref())) {
            return Ok(Some((cref.uid.clone(), ss.spec.and_then(|s| s.replicas).unwrap_or(1))));
        }
        return Ok(None);
    }
    scale_of(client, ns, cref).await
}

/// Any other controller: its scale subresource (upstream's `getScaleController`).
async fn scale_of(client: &Client, ns: &str, cref: &OwnerReference) -> Result<Option<(String, i32)>, ScaleError> {
    let (group, version) = match cref.api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", cref.api_version.as_str()),
    };
    let gvk = GroupVersionKind::gvk(group, version, &cref.kind);
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk).await.map_err(|e| {
        if is_not_found(&e) || matches!(e, kube::Error::Discovery(_)) {
            ScaleError::Fatal(format!("no matches for kind {:?} in version {:?}", cref.kind, cref.api_version))
        } else {
            ScaleError::Api(Error::api(format!("discovering {}", cref.api_version), e))
        }
    })?;
    let resource = if group.is_empty() { ar.plural.clone() } else { format!("{}.{group}", ar.plural) };
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar);
    match api.get_scale(&cref.name).await {
        Ok(scale) if scale.metadata.uid.as_ref() == Some(&cref.uid) => {
            Ok(Some((cref.uid.clone(), scale.spec.and_then(|s| s.replicas).unwrap_or(0))))
        }
        Ok(_) => Ok(None),
        Err(e) if is_not_found(&e) => {
            if caps.subresources.iter().any(|(sub, _)| sub.plural == "scale") {
                Ok(None)
            } else {
                Err(ScaleError::Fatal(format!("{resource} does not implement the scale subresource")))
            }
        }
        Err(e) => Err(ScaleError::Api(Error::api(format!("reading the scale of {resource} {ns}/{}", cref.name), e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_print_as_go_does() {
        let sel = LabelSelector {
            match_labels: Some([("app".to_owned(), "web".to_owned())].into()),
            match_expressions: None,
        };
        assert_eq!(
            go_selector(Some(&sel)),
            "&LabelSelector{MatchLabels:map[string]string{app: web,},MatchExpressions:[]LabelSelectorRequirement{},}"
        );
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(group_of("v1"), "");
    }
}
