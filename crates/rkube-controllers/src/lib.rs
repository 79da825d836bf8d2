//! rkube's controller manager: the namespace, service-account, root-CA publisher and garbage-collector
//! controllers, behaving as upstream kube-controller-manager's.
//!
//! **Architecture Invariant:** the controllers talk to the API server only, over HTTPS with kube-rs, even
//! inside the server's process; they never see the store.
//!
//! Entry point: [`run`] with a [`ControllersConfig`] (see [`ControllersConfig::in_process`] for the
//! server's own controllers), a shutdown signal and a readiness signal.

mod config;
mod discovery;
mod error;
mod gc;
mod namespace;
mod per_namespace;
mod rootca;
mod serviceaccount;

use kube::Client;
use rkube_client::informer::SharedInformers;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use config::{ControllersConfig, GROUP, USER};
pub use error::{Error, Result};
pub use rkube_controllers_nodes::NodesConfig;

/// The leader lease (in `kube-system`) and the component's name in metrics, upstream's.
pub const LEASE: &str = "kube-controller-manager";

/// Runs the controllers until `shutdown` is set. `ready` turns true once the API server has answered
/// with the configured identity. With leader election on, the controllers act only while this process
/// holds the `kube-system/kube-controller-manager` lease; a standby waits, and is still "ready". Returns an
/// error when a controller fails for good (the caller shuts down).
pub async fn run(config: ControllersConfig, shutdown: watch::Receiver<bool>, ready: watch::Sender<bool>) -> Result<()> {
    let client = Client::try_from(config.kube).map_err(Error::Connect)?;
    client.apiserver_version().await.map_err(|e| Error::api("reaching the API server", e))?;
    let _ = ready.send(true);
    let health = config.health.unwrap_or_else(|| rkube_status::Health::new(LEASE));
    health.set_ready(true);
    tracing::info!(user = USER, "controllers connected to the API server");
    let ca = config.root_ca_pem;
    let nodes = config.nodes;
    let lead_client = client.clone();
    let lead = move |stop: watch::Receiver<bool>| {
        let (client, ca, nodes, health) = (lead_client.clone(), ca.clone(), nodes.clone(), health.clone());
        async move {
            let _term = health.leading();
            run_all(client, ca, nodes, stop).await
        }
    };
    if config.leader_elect {
        rkube_client::leader::run_elected(client, LEASE, config.identity, shutdown, lead).await
    } else {
        lead(shutdown).await
    }
}

/// Runs every controller until `stop` is set; the first failure stops the others.
async fn run_all(client: Client, ca: String, nodes: NodesConfig, stop: watch::Receiver<bool>) -> Result<()> {
    let mut set = JoinSet::new();
    // One cache per kind for every controller of this term (client-go's shared informer factory): 10k pods
    // are held once, and the API server streams each change to this process once. A new factory per term,
    // so a standby that becomes leader again starts from fresh caches and handlers.
    let informers = SharedInformers::new(client.clone(), stop.clone());
    // The controllers of other crates fail with the shared client error.
    let lift = |r: rkube_client::Result<()>| r.map_err(Error::from);
    let i = &informers;
    set.spawn({
        let (i, s) = (i.clone(), stop.clone());
        async move { lift(rkube_controllers_replicas::run_shared(i, s).await) }
    });
    set.spawn({
        let (i, s) = (i.clone(), stop.clone());
        async move { lift(rkube_controllers_sets::run_shared(i, s).await) }
    });
    set.spawn({
        let (i, s) = (i.clone(), stop.clone());
        async move { lift(rkube_controllers_batch::run_shared(i, s).await) }
    });
    set.spawn({
        let (i, s) = (i.clone(), stop.clone());
        async move { lift(rkube_controllers_endpoints::run_shared(i, s).await) }
    });
    set.spawn({
        let (i, s) = (i.clone(), stop.clone());
        async move { lift(rkube_controllers_nodes::run_shared(i, nodes, s).await) }
    });
    set.spawn({
        let (i, s) = (i.clone(), stop.clone());
        async move { lift(rkube_controllers_policy::run_shared(i, s).await) }
    });
    set.spawn(namespace::run(client.clone(), stop.clone()));
    set.spawn(serviceaccount::run(client.clone(), stop.clone()));
    set.spawn(rootca::run(client.clone(), ca, stop.clone()));
    set.spawn(gc::run(client, stop.clone()));
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(Error::Stopped("a controller (panicked)")),
        }
    }
    Ok(())
}

pub(crate) use rkube_client::{stopped, until_stopped};
