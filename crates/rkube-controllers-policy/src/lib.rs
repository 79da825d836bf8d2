//! PodDisruptionBudget status and ResourceQuota status controllers, as upstream kube-controller-manager's
//! `disruption` and `resourcequota` controllers.
//!
//! `budget.rs` and `usage.rs` are the pure arithmetic (no IO, the time passed in); `disruption.rs` (with
//! `stale.rs`, the clean-up of stale `DisruptionTarget` pod conditions) and `quota.rs` are the controllers
//! around them; `informer.rs` the cached watches they use. The eviction subresource that spends budgets is
//! the API server's (`rkube-apiserver/src/eviction.rs`).

mod budget;
mod disruption;
mod informer;
mod quota;
mod stale;
pub mod usage;

use kube::Client;
use tokio::sync::watch;

/// Runs the controllers until `stop` is set.
pub async fn run(client: Client, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    // Boxed: controller futures are large (more so in debug builds), and a task's stack is not.
    let (pdb, quota) =
        tokio::join!(Box::pin(disruption::run(client.clone(), stop.clone())), Box::pin(quota::run(client, stop)));
    pdb.and(quota)
}
