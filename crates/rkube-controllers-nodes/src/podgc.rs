//! The pod garbage collector (upstream's `podgc`): every 20 s, pods bound to a node that no longer exists
//! (confirmed by a live read after a 40 s quarantine) are marked Failed with a `DisruptionTarget` condition and
//! deleted at once; terminating pods that never reached a node are deleted at once; finished pods beyond the
//! threshold (12500) are deleted oldest first.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use tokio::sync::watch;

use rkube_client::informer::SharedInformers;
use rkube_client::pods::is_terminal;

/// How often the collector looks (upstream's `gcCheckPeriod`).
const PERIOD: Duration = Duration::from_secs(20);
/// How long a node must have been missing before its pods are collected (upstream's `quarantineTime`).
const QUARANTINE: Duration = Duration::from_secs(40);
/// Finished pods kept before the oldest are deleted (`--terminated-pod-gc-threshold`).
const TERMINATED_THRESHOLD: usize = 12_500;

/// What one pass decided, from the cached pods and nodes.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    /// Pods (namespace, name, uid, node) whose node is missing.
    orphaned: Vec<(String, String, String, String)>,
    /// Terminating pods never bound to a node.
    unscheduled_terminating: Vec<(String, String, String)>,
    /// Finished pods beyond the threshold, oldest first.
    excess_terminated: Vec<(String, String, String)>,
}

fn id(p: &Pod) -> (String, String, String) {
    (
        p.metadata.namespace.clone().unwrap_or_default(),
        p.metadata.name.clone().unwrap_or_default(),
        p.metadata.uid.clone().unwrap_or_default(),
    )
}

fn plan(pods: &[Arc<Pod>], nodes: &HashSet<String>, threshold: usize) -> Plan {
    let mut out = Plan::default();
    let mut terminated: Vec<&Arc<Pod>> = Vec::new();
    for p in pods {
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
        if node.is_empty() {
            if p.metadata.deletion_timestamp.is_some() {
                out.unscheduled_terminating.push(id(p));
            }
            continue;
        }
        if !nodes.contains(&node) {
            let (ns, name, uid) = id(p);
            out.orphaned.push((ns, name, uid, node));
            continue;
        }
        if is_terminal(p) && p.metadata.deletion_timestamp.is_none() {
            terminated.push(p);
        }
    }
    if terminated.len() > threshold {
        terminated.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let excess = terminated.len() - threshold;
        out.excess_terminated = terminated.into_iter().take(excess).map(|p| id(p)).collect();
    }
    out
}

async fn force_delete(api: &Api<Pod>, name: &str, uid: &str) {
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions { uid: Some(uid.to_owned()), resource_version: None }),
        ..DeleteParams::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => tracing::info!(pod = %name, "pod garbage collector deleted a pod"),
        Err(e) if rkube_client::api::is_not_found(&e) || rkube_client::api::is_conflict(&e) => {}
        Err(e) => tracing::warn!(pod = %name, error = %e, "pod garbage collector could not delete a pod"),
    }
}

/// Marks an orphaned pod Failed with upstream's DisruptionTarget condition, then deletes it at once.
async fn collect_orphan(client: &Client, ns: &str, name: &str, uid: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let now = k8s_openapi::jiff::Timestamp::now();
    let status = serde_json::json!({"status": {
        "phase": "Failed",
        "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists", "lastTransitionTime": now.to_string()}]
    }});
    // Strategic merge: the condition list merges by type.
    if let Err(e) = api.patch_status(name, &PatchParams::default(), &Patch::Strategic(&status)).await
        && !rkube_client::api::is_not_found(&e)
    {
        tracing::debug!(pod = %name, error = %e, "marking an orphaned pod failed");
    }
    force_delete(&api, name, uid).await;
}

/// Runs on the shared informers until `stop` is set.
pub(crate) async fn run(informers: SharedInformers, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    let client = informers.client().clone();
    let pods = informers.get::<Pod>();
    let nodes = informers.get::<Node>();
    let mut stop = stop;
    tokio::select! {
        _ = async { pods.wait_synced().await; nodes.wait_synced().await } => {}
        _ = rkube_client::stopped(&mut stop) => return Ok(()),
    }
    // Nodes first seen missing, on the local clock.
    let mut missing_since: HashMap<String, Instant> = HashMap::new();
    loop {
        let names: HashSet<String> = nodes.list().iter().filter_map(|n| n.metadata.name.clone()).collect();
        let p = plan(&pods.list(), &names, TERMINATED_THRESHOLD);
        missing_since.retain(|n, _| p.orphaned.iter().any(|(_, _, _, node)| node == n));
        let nodes_api: Api<Node> = Api::all(client.clone());
        let mut confirmed: HashMap<String, bool> = HashMap::new();
        for (ns, name, uid, node) in &p.orphaned {
            let since = *missing_since.entry(node.clone()).or_insert_with(Instant::now);
            if since.elapsed() < QUARANTINE {
                continue;
            }
            // The cache may lag: the node must be absent on a live read too.
            let gone = match confirmed.get(node) {
                Some(g) => *g,
                None => {
                    let g = matches!(nodes_api.get_opt(node).await, Ok(None));
                    confirmed.insert(node.clone(), g);
                    g
                }
            };
            if gone {
                collect_orphan(&client, ns, name, uid).await;
            }
        }
        for (ns, name, uid) in p.unscheduled_terminating.iter().chain(&p.excess_terminated) {
            force_delete(&Api::namespaced(client.clone(), ns), name, uid).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(PERIOD) => {}
            _ = rkube_client::stopped(&mut stop) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str, phase: &str, deleting: bool, created: i64) -> Arc<Pod> {
        let mut p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("u-{name}"),
                "creationTimestamp": k8s_openapi::jiff::Timestamp::from_second(created).unwrap().to_string()},
            "spec": {"nodeName": node, "containers": []},
            "status": {"phase": phase}
        }))
        .unwrap();
        if deleting {
            p.metadata.deletion_timestamp = p.metadata.creation_timestamp.clone();
        }
        Arc::new(p)
    }

    #[test]
    fn orphans_unscheduled_terminating_and_excess_finished_pods() {
        let nodes: HashSet<String> = ["n1".to_owned()].into();
        let pods = vec![
            pod("on-live-node", "n1", "Running", false, 1),
            pod("on-gone-node", "n2", "Running", false, 2),
            pod("pending-deleting", "", "Pending", true, 3),
            pod("pending", "", "Pending", false, 4),
            pod("done-old", "n1", "Succeeded", false, 5),
            pod("done-new", "n1", "Failed", false, 6),
        ];
        let p = plan(&pods, &nodes, 1);
        assert_eq!(p.orphaned, vec![("ns".into(), "on-gone-node".into(), "u-on-gone-node".into(), "n2".into())]);
        assert_eq!(
            p.unscheduled_terminating,
            vec![("ns".into(), "pending-deleting".into(), "u-pending-deleting".into())]
        );
        assert_eq!(p.excess_terminated, vec![("ns".into(), "done-old".into(), "u-done-old".into())]);
        assert!(plan(&pods, &nodes, 2).excess_terminated.is_empty());
    }
}
