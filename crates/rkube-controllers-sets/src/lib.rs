//! DaemonSet and StatefulSet controllers, behaving as upstream kube-controller-manager's
//! (`pkg/controller/daemon`, `pkg/controller/statefulset`, `pkg/controller/history`).
//!
//! Each controller keeps watch caches of what it reads (its sets, pods, nodes or claims, and
//! ControllerRevisions), queues the sets that need a look, and syncs one set at a time per key: plans are
//! pure functions over cached objects (unit-tested beside them), writes go through the API server.

mod claims;
mod daemonset;
mod expectations;
mod history;
mod informer;
mod intstr;
mod statefulset;
mod workers;

use kube::Client;
use tokio::sync::watch;

/// Runs the DaemonSet and StatefulSet controllers until `stop` is set; the first to fail stops both.
pub async fn run(client: Client, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    tokio::try_join!(daemonset::run(client.clone(), stop.clone()), statefulset::run(client, stop))?;
    Ok(())
}
