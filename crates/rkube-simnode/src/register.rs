//! Registering the nodes (created, or taken over when they exist) and their Leases, many at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rkube_client::api::{is_already_exists, is_conflict, is_not_found};
use rkube_client::{Error, Result};
use serde_json::json;

use crate::lease;
use crate::node;
use crate::shared::Shared;

/// Attempts per request before registration gives up (the server restarting, conflicts).
const ATTEMPTS: u32 = 6;

/// A registered node: its name, uid and the Lease as last written.
pub(crate) struct Registered {
    pub(crate) name: String,
    pub(crate) uid: Option<String>,
    pub(crate) lease: Option<Lease>,
}

/// Whether a failed request may succeed when repeated.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500 || s.code == 429 || s.code == 409,
        _ => true,
    }
}

/// Runs `f` until it succeeds, it fails for good, or the attempts are used up.
async fn retry<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(100);
    for attempt in 1.. {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < ATTEMPTS && transient(&e) => {
                tracing::debug!(%e, what, "retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(3));
            }
            Err(e) => return Err(Error::api(what, e)),
        }
    }
    unreachable!("the loop returns")
}

/// Creates `kube-node-lease` if the server has not (upstream's API server creates it at start).
pub(crate) async fn ensure_lease_namespace(client: &kube::Client) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta { name: Some(lease::NAMESPACE.to_owned()), ..ObjectMeta::default() },
        ..Namespace::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(e) if is_already_exists(&e) => Ok(()),
        Err(e) => Err(Error::api(format!("creating namespace {}", lease::NAMESPACE), e)),
    }
}

/// Registers every node of the configuration, `max_in_flight` at a time, reporting progress.
pub(crate) async fn all(shared: &Arc<Shared>) -> Result<Vec<Registered>> {
    let done = AtomicUsize::new(0);
    let config = &shared.config;
    futures::stream::iter(config.indices())
        .map(|i| {
            let done = &done;
            async move {
                let r = one(shared, i).await?;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(p) = &config.progress {
                    p(n);
                }
                Ok::<_, Error>(r)
            }
        })
        .buffer_unordered(config.max_in_flight)
        .try_collect()
        .await
}

/// Registers node `index`: the Node (with its status), then its Lease.
async fn one(shared: &Shared, index: usize) -> Result<Registered> {
    let config = &shared.config;
    let name = config.node_name(index);
    let nodes: Api<Node> = Api::all(shared.client.clone());
    let desired = node::build(config, index, &shared.kubelet_version, Timestamp::now());
    let created = {
        let _p = shared.permit().await;
        retry(&format!("creating node {name}"), || async {
            match nodes.create(&PostParams::default(), &desired).await {
                Ok(n) => Ok(Some(n)),
                Err(e) if is_already_exists(&e) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?
    };
    let (node, previous_conditions) = match created {
        // Upstream keeps the status sent with a create; write it through the subresource if this server did not.
        Some(n) if n.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| !c.is_empty()) => (n, None),
        Some(n) => (n, Some(Vec::new())),
        None => {
            let existing = take_over(shared, &nodes, &name).await?;
            let conds = existing.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
            (existing, Some(conds))
        }
    };
    if let Some(previous) = previous_conditions {
        let status = node::status(config, index, &shared.kubelet_version, Timestamp::now(), &previous);
        let patch = Patch::Merge(json!({ "status": status }));
        let params = PatchParams::default();
        let _p = shared.permit().await;
        retry(&format!("writing the status of node {name}"), || nodes.patch_status(&name, &params, &patch)).await?;
    }
    let uid = node.metadata.uid.clone();
    let lease = renew_lease(shared, &name, uid.as_deref(), None).await?;
    Ok(Registered { name, uid, lease: Some(lease) })
}

/// Adopts an existing node of our name: our labels and taints written over it.
async fn take_over(shared: &Shared, nodes: &Api<Node>, name: &str) -> Result<Node> {
    for _ in 0..ATTEMPTS {
        let existing = {
            let _p = shared.permit().await;
            retry(&format!("reading node {name}"), || nodes.get(name)).await?
        };
        let Some(changed) = node::take_over(&shared.config, &existing) else { return Ok(existing) };
        let _p = shared.permit().await;
        match nodes.replace(name, &PostParams::default(), &changed).await {
            Ok(n) => return Ok(n),
            Err(e) if is_conflict(&e) || is_not_found(&e) => continue,
            Err(e) => return Err(Error::api(format!("taking over node {name}"), e)),
        }
    }
    Err(Error::Conflict(format!("taking over node {name}")))
}

/// Renews (or creates) node `name`'s Lease; `last` is the Lease as last written, saving a read.
pub(crate) async fn renew_lease(
    shared: &Shared,
    name: &str,
    node_uid: Option<&str>,
    last: Option<Lease>,
) -> Result<Lease> {
    let api: Api<Lease> = Api::namespaced(shared.client.clone(), lease::NAMESPACE);
    let duration = shared.config.lease_duration_seconds;
    let mut last = last;
    for _ in 0..ATTEMPTS {
        let _p = shared.permit().await;
        let now = Timestamp::now();
        let result = match last.take() {
            Some(l) => api.replace(name, &PostParams::default(), &lease::renewed(l, name, duration, now)).await,
            None => match api.get_opt(name).await {
                Ok(Some(l)) => api.replace(name, &PostParams::default(), &lease::renewed(l, name, duration, now)).await,
                Ok(None) => api.create(&PostParams::default(), &lease::build(name, node_uid, duration, now)).await,
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(l) => return Ok(l),
            Err(e) if transient(&e) || is_not_found(&e) || is_already_exists(&e) => {
                tracing::debug!(%e, name, "renewing the lease again");
                drop(_p);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(Error::api(format!("renewing lease {}/{name}", lease::NAMESPACE), e)),
        }
    }
    Err(Error::Conflict(format!("renewing lease {}/{name}", lease::NAMESPACE)))
}
