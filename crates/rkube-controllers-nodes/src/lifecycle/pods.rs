//! The pods of lost nodes, as upstream's `MarkPodsNotReady`: their Ready condition is set False (with a
//! `NodeNotReady` event) when their node goes down, and a pod newly bound to a node that is not Ready is
//! marked at once (upstream's `processPod`).

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use rkube_client::api::is_not_found;
use rkube_client::events::{EventType, Recorder};
use rkube_client::informer::{Change, Informer, SharedInformers};
use rkube_client::queue::WorkQueue;
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

/// Whether `node`'s Ready condition is there and not True (a node not in the cache counts as Ready).
fn node_not_ready(nodes: &Informer<Node>, node: &str) -> bool {
    nodes.get("", node).and_then(|n| health::condition(&n, "Ready").map(|c| c.status != "True")).unwrap_or(false)
}

/// The node `pod` is bound to, if any.
fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty())
}

/// Follows pod changes and marks those newly bound to a node whose Ready condition is not True; the
/// returned future is the worker doing the writes.
pub(crate) fn watch_bindings(informers: &SharedInformers, recorder: Recorder) -> impl Future<Output = ()> + use<> {
    let (pods, nodes) = (informers.get::<Pod>(), informers.get::<Node>());
    let client = informers.client().clone();
    let queue = WorkQueue::<(String, String)>::new(Duration::from_millis(100), Duration::from_secs(30));
    {
        let (queue, nodes) = (queue.clone(), nodes.clone());
        pods.on_change(move |c| {
            let Change::Object { old, new: Some(pod) } = c else { return };
            let Some(node) = node_of(pod) else { return };
            // Only a new binding is acted on (a pod first seen counts as newly bound).
            if old.and_then(node_of) == Some(node) || !node_not_ready(&nodes, node) {
                return;
            }
            queue.add((pod.namespace().unwrap_or_default(), pod.name_any()));
        });
    }
    async move {
        while let Some(key) = queue.get().await {
            let pod = pods.get(&key.0, &key.1);
            if let Some(pod) = pod
                && let Some(node) = node_of(&pod)
                && node_not_ready(&nodes, node)
                && let Err(e) = mark_pod(&client, &recorder, (*pod).clone()).await
            {
                // The next change of the pod, or the node's next transition, tries again.
                tracing::info!(node = %node, error = %e, "marking a pod bound to a not-Ready node not ready");
            }
            queue.forget(&key);
            queue.done(&key);
        }
    }
}
