//! ReplicaSet, ReplicationController and Deployment controllers, behaving as upstream
//! kube-controller-manager's (`pkg/controller/replicaset`, `pkg/controller/deployment`).
//!
//! One informer per kind (pods, ReplicaSets, ReplicationControllers, Deployments) fills a shared cache and
//! fans each change out to the controllers' work queues; workers start once every cache has its first full
//! list, so no controller acts on a partial view.

mod cache;
mod claim;
mod deployment;
mod expectations;
mod replicaset;
mod worker;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::Client;
use kube::api::Api;
use tokio::sync::watch;

use cache::{Cache, inform};

/// Concurrent syncs per controller (upstream runs 5; two cores here).
const WORKERS: usize = 3;

/// Runs the controllers until `stop` is set.
pub async fn run(client: Client, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    let pods = Cache::<Pod>::new();
    let replica_sets = Cache::<ReplicaSet>::new();
    let rcs = Cache::<ReplicationController>::new();
    let deployments = Cache::<Deployment>::new();
    let rs_ctrl = replicaset::Controller::new(client.clone(), replica_sets.clone(), pods.clone());
    let rc_ctrl = replicaset::Controller::new(client.clone(), rcs.clone(), pods.clone());
    let d_ctrl = deployment::Controller::new(client.clone(), deployments.clone(), replica_sets.clone(), pods.clone());

    let informers = {
        let (rs1, rc1, d1) = (rs_ctrl.clone(), rc_ctrl.clone(), d_ctrl.clone());
        let (rs2, d2) = (rs_ctrl.clone(), d_ctrl.clone());
        let (rc3, d4) = (rc_ctrl.clone(), d_ctrl.clone());
        let c = &client;
        let pods_informer = inform(Api::<Pod>::all(c.clone()), pods.clone(), move |ch| {
            rs1.on_pod(&ch);
            rc1.on_pod(&ch);
            d1.on_pod(&ch);
        });
        let rs_informer = inform(Api::<ReplicaSet>::all(c.clone()), replica_sets.clone(), move |ch| {
            rs2.on_owner(&ch);
            d2.on_replica_set(&ch);
        });
        let rc_informer =
            inform(Api::<ReplicationController>::all(c.clone()), rcs.clone(), move |ch| rc3.on_owner(&ch));
        let d_informer =
            inform(Api::<Deployment>::all(c.clone()), deployments.clone(), move |ch| d4.on_deployment(&ch));
        async move {
            tokio::join!(pods_informer, rs_informer, rc_informer, d_informer);
        }
    };
    let workers = {
        let (rs, rc, d) = (rs_ctrl.clone(), rc_ctrl.clone(), d_ctrl.clone());
        let (pods, replica_sets, rcs, deployments) =
            (pods.clone(), replica_sets.clone(), rcs.clone(), deployments.clone());
        async move {
            tokio::join!(pods.wait_synced(), replica_sets.wait_synced(), rcs.wait_synced(), deployments.wait_synced());
            tracing::info!("replica controllers synced their caches");
            tokio::join!(rs.run(WORKERS), rc.run(WORKERS), d.run(WORKERS));
        }
    };
    let result = rkube_client::until_stopped(
        "replica controllers",
        async move {
            tokio::join!(informers, workers);
        },
        stop,
    )
    .await;
    rs_ctrl.shutdown();
    rc_ctrl.shutdown();
    d_ctrl.shutdown();
    result
}
