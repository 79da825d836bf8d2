//! PodDisruptionBudget status and ResourceQuota status controllers, as upstream kube-controller-manager's
//! `disruption` and `resourcequota` controllers.
//!
//! `budget.rs` and `usage.rs` are the pure arithmetic (no IO, the time passed in); `disruption.rs` (with
//! `stale.rs`, the clean-up of stale `DisruptionTarget` pod conditions) and `quota.rs` are the controllers
//! around them, reading the process's shared informers. The eviction subresource that spends budgets is
//! the API server's (`rkube-apiserver/src/eviction.rs`).

mod budget;
mod disruption;
mod quota;
mod stale;
pub mod usage;

use kube::Client;
use rkube_client::informer::SharedInformers;
use tokio::sync::watch;

/// Runs the controllers until `stop` is set, with informers of their own.
pub async fn run(client: Client, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    run_shared(SharedInformers::new(client, stop.clone()), stop).await
}

/// Runs the controllers on the process's shared informers until `stop` is set.
pub async fn run_shared(informers: SharedInformers, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    // Boxed: controller futures are large (more so in debug builds), and a task's stack is not.
    let (pdb, quota) =
        tokio::join!(Box::pin(disruption::run(informers.clone(), stop.clone())), Box::pin(quota::run(informers, stop)));
    pdb.and(quota)
}
