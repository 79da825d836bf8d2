//! PodDisruptionBudget status and ResourceQuota status controllers.
//!
//! **Not built yet**: [`run`] only waits for its stop signal (the crate is being written).

use kube::Client;
use tokio::sync::watch;

/// Runs the controllers until `stop` is set.
pub async fn run(client: Client, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    let _ = client;
    let mut stop = stop;
    rkube_client::stopped(&mut stop).await;
    Ok(())
}
