//! ReplicaSet, ReplicationController and Deployment controllers, behaving as upstream
//! kube-controller-manager's (`pkg/controller/replicaset`, `pkg/controller/deployment`).
//!
//! The controllers read pods, ReplicaSets, ReplicationControllers and Deployments from the process's
//! shared informers, whose change handlers fan each change out to the controllers' work queues; workers
//! start once every cache has its first full list, so no controller acts on a partial view.

mod claim;
mod deployment;
mod expectations;
mod key;
mod replicaset;
mod worker;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::Client;
use rkube_client::informer::SharedInformers;
use tokio::sync::watch;

/// Concurrent syncs per controller (upstream runs 5; two cores here).
const WORKERS: usize = 3;

/// Runs the controllers until `stop` is set, with informers of their own.
pub async fn run(client: Client, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    run_shared(SharedInformers::new(client, stop.clone()), stop).await
}

/// Runs the controllers until `stop` is set, reading every kind through `informers`.
pub async fn run_shared(informers: SharedInformers, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    let client = informers.client().clone();
    let pods = informers.get::<Pod>();
    let replica_sets = informers.get::<ReplicaSet>();
    let rcs = informers.get::<ReplicationController>();
    let deployments = informers.get::<Deployment>();
    let rs_ctrl = replicaset::Controller::new(client.clone(), replica_sets.clone(), pods.clone());
    let rc_ctrl = replicaset::Controller::new(client.clone(), rcs.clone(), pods.clone());
    let d_ctrl = deployment::Controller::new(client, deployments.clone(), replica_sets.clone(), pods.clone());

    {
        let (rs, rc, d) = (rs_ctrl.clone(), rc_ctrl.clone(), d_ctrl.clone());
        pods.on_change(move |ch| {
            rs.on_pod(&ch);
            rc.on_pod(&ch);
            d.on_pod(&ch);
        });
        let (rs, d) = (rs_ctrl.clone(), d_ctrl.clone());
        replica_sets.on_change(move |ch| {
            rs.on_owner(&ch);
            d.on_replica_set(&ch);
        });
        let rc = rc_ctrl.clone();
        rcs.on_change(move |ch| rc.on_owner(&ch));
        let d = d_ctrl.clone();
        deployments.on_change(move |ch| d.on_deployment(&ch));
    }
    let workers = {
        let (rs, rc, d) = (rs_ctrl.clone(), rc_ctrl.clone(), d_ctrl.clone());
        async move {
            tokio::join!(pods.wait_synced(), replica_sets.wait_synced(), rcs.wait_synced(), deployments.wait_synced());
            tracing::info!("replica controllers synced their caches");
            tokio::join!(rs.run(WORKERS), rc.run(WORKERS), d.run(WORKERS));
        }
    };
    let result = rkube_client::until_stopped("replica controllers", workers, stop).await;
    rs_ctrl.shutdown();
    rc_ctrl.shutdown();
    d_ctrl.shutdown();
    result
}
