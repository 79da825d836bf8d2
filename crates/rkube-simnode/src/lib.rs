//! Simulated nodes in the manner of kwok: Nodes registered with a kubelet's labels, capacity and
//! conditions, kept alive by renewed Leases in `kube-node-lease`, but with no container runtime. Pods bound
//! to them are marked Running and Ready as a kubelet would (pod IPs from the node's podCIDR), pods that run to
//! completion finish after a while, and pods being deleted are removed. For testing and benchmarking the
//! scheduler and controllers at scale: one process keeps thousands of nodes.
//!
//! Like a kubelet, a node admits a pod only if its requests fit in what is left of the node's allocatable
//! (else the pod fails with `OutOfcpu`, `OutOfpods`, ...), so a scheduler that over-commits is caught.
//!
//! Pods can steer the simulation with annotations: [`RUN_SECONDS`] (how long a pod whose restartPolicy is not
//! `Always` runs, default 1 s) and [`EXIT_CODE`] (non-zero: the pod fails).
//!
//! When the process stops, the nodes stay registered and their Leases expire: the node lifecycle controller
//! then marks them unhealthy, which is how tests make nodes fail.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod admit;
mod config;
mod heartbeat;
mod ipam;
mod lease;
mod node;
mod pods;
mod podstatus;
mod register;
mod shared;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use rkube_client::{Error, Result};

pub use config::{MAX_INDEX, Progress, SimConfig, parse_label, parse_taint};
pub use lease::NAMESPACE as LEASE_NAMESPACE;
pub use node::SIMULATED_LABEL;
pub use podstatus::{EXIT_CODE, RUN_SECONDS};

/// The taint type [`SimConfig::taints`] holds (k8s-openapi's), for callers without that dependency.
pub use k8s_openapi::api::core::v1::Taint;

/// A client for the API server named by the kubeconfig file at `path` (its current context).
pub async fn client_from_kubeconfig(path: &std::path::Path) -> Result<kube::Client> {
    let config = rkube_client::config::from_file(path).await?;
    kube::Client::try_from(config).map_err(Error::Client)
}

/// Registers the configured nodes (creating them, or taking over existing ones of the same names) with their
/// Leases, fires `ready` once all are registered (and the pods already bound to them are known), then keeps them alive and acts as their kubelet until `stop`
/// is set. Fails if the configuration is invalid ([`Error::Invalid`]) or registration fails; afterwards,
/// failed requests are logged and retried.
pub async fn run(
    client: kube::Client,
    config: SimConfig,
    mut stop: watch::Receiver<bool>,
    ready: Option<oneshot::Sender<()>>,
) -> Result<()> {
    config.validate().map_err(Error::Invalid)?;
    let version = client.apiserver_version().await.map_err(|e| Error::api("reading the server version", e))?;
    register::ensure_lease_namespace(&client).await?;
    let shared = shared::Shared::new(client, config, version.git_version);
    let mut tasks = JoinSet::new();
    tasks.spawn(heartbeat::watch_nodes(shared.clone()));
    tasks.spawn(pods::run(shared.clone()));
    let registered = tokio::select! {
        r = register::all(&shared) => r?,
        _ = rkube_client::stopped(&mut stop) => return Ok(()),
    };
    // Ready means acting on pods too: the pods already running are known (addresses, resources).
    let mut pods_synced = shared.pods_synced.subscribe();
    tokio::select! {
        _ = pods_synced.wait_for(|s| *s) => {}
        _ = rkube_client::stopped(&mut stop) => return Ok(()),
    }
    tracing::info!(nodes = registered.len(), "simulated nodes registered");
    if let Some(ready) = ready {
        let _ = ready.send(());
    }
    for (k, r) in registered.into_iter().enumerate() {
        tasks.spawn(heartbeat::keep_alive(shared.clone(), r, k));
    }
    tokio::select! {
        _ = tasks.join_next() => Err(Error::Stopped("simulated nodes")),
        _ = rkube_client::stopped(&mut stop) => Ok(()),
    }
}
