//! The pods of lost nodes, as upstream's `MarkPodsNotReady`: their Ready condition is set False (with a
//! `NodeNotReady` event) when their node goes down, and a pod newly bound to a node that is not Ready is
//! marked at once (upstream's `processPod`).

use std::collections::HashMap;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use rkube_client::api::is_not_found;
use rkube_client::events::{EventType, Recorder};
use rkube_client::{Error, Result};

use super::health;

/// Sets `pod`'s Ready condition False; `Ok(false)` when there was nothing to change (no Ready condition,
/// already False, or the pod is gone).
async fn mark_pod(client: &Client, recorder: &Recorder, mut pod: Pod) -> Result<bool> {
    let Some(cond) =
        pod.status.as_mut().and_then(|s| s.conditions.as_mut()).and_then(|c| c.iter_mut().find(|c| c.type_ == "Ready"))
    else {
        return Ok(false);
    };
    if cond.status == "False" {
        return Ok(false);
    }
    cond.status = "False".to_owned();
    cond.last_transition_time = Some(Time(k8s_openapi::jiff::Timestamp::now()));
    let ns = pod.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    match api.replace_status(&pod.name_any(), &PostParams::default(), &pod).await {
        Ok(_) => {
            recorder.record(&pod, EventType::Warning, "NodeNotReady", "Node is not ready").await;
            Ok(true)
        }
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(Error::api(format!("marking pod {ns}/{} not ready", pod.name_any()), e)),
    }
}

/// Marks every pod bound to `node` not Ready; the last failure is returned after trying them all.
pub(crate) async fn mark_pods_not_ready(client: &Client, recorder: &Recorder, node: &str) -> Result<()> {
    let pods: Api<Pod> = Api::all(client.clone());
    let lp = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let list = pods.list(&lp).await.map_err(|e| Error::api(format!("listing the pods of node {node}"), e))?;
    let mut failed = None;
    for pod in list.items {
        if let Err(e) = mark_pod(client, recorder, pod).await {
            tracing::info!(node, error = %e, "marking a pod not ready");
            failed = Some(e);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// Watches pods and marks those newly bound to a node whose Ready condition is not True.
pub(crate) async fn watch_bindings(client: Client, recorder: Recorder, nodes: Store<Node>) {
    let mut events =
        watcher::watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()).default_backoff().boxed();
    // Each pod's node as last seen: only a new binding is acted on.
    let mut bound: HashMap<(String, String), String> = HashMap::new();
    while let Some(event) = events.next().await {
        let pod = match event {
            Ok(Event::Apply(p) | Event::InitApply(p)) => p,
            Ok(Event::Delete(p)) => {
                bound.remove(&(p.namespace().unwrap_or_default(), p.name_any()));
                continue;
            }
            Ok(Event::Init | Event::InitDone) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "node lifecycle: pod watch");
                continue;
            }
        };
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()) else {
            continue;
        };
        let key = (pod.namespace().unwrap_or_default(), pod.name_any());
        if bound.get(&key) == Some(&node) {
            continue;
        }
        bound.insert(key, node.clone());
        let not_ready = nodes
            .get(&ObjectRef::new(&node))
            .and_then(|n| health::condition(&n, "Ready").map(|c| c.status != "True"))
            .unwrap_or(false);
        if not_ready && let Err(e) = mark_pod(&client, &recorder, pod).await {
            // The next change of the pod, or the node's next transition, tries again.
            tracing::info!(node = %node, error = %e, "marking a pod bound to a not-Ready node not ready");
        }
    }
}
