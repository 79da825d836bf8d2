//! DaemonSet and StatefulSet controllers, behaving as upstream kube-controller-manager's
//! (`pkg/controller/daemon`, `pkg/controller/statefulset`, `pkg/controller/history`).
//!
//! Each controller reads the process's shared informers (its sets, pods, nodes or claims, and
//! ControllerRevisions), queues the sets that need a look, and syncs one set at a time per key: plans are
//! pure functions over cached objects (unit-tested beside them), writes go through the API server.

mod claims;
mod daemonset;
mod expectations;
mod history;
mod intstr;
mod statefulset;
mod workers;

use kube::Client;
use rkube_client::informer::SharedInformers;
use tokio::sync::watch;

/// Runs the DaemonSet and StatefulSet controllers until `stop` is set, with informers of their own.
pub async fn run(client: Client, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    run_shared(SharedInformers::new(client, stop.clone()), stop).await
}

/// Runs the DaemonSet and StatefulSet controllers until `stop` is set, reading the caches of `informers`
/// (shared with the other controllers of the process); the first to fail stops both.
pub async fn run_shared(informers: SharedInformers, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    tokio::try_join!(daemonset::run(informers.clone(), stop.clone()), statefulset::run(informers, stop))?;
    Ok(())
}
