//! rkube's scheduler.
//!
//! **Not built yet**: [`run`] only waits for its stop signal (the crate is being written).

use tokio::sync::watch;

/// The user name the scheduler authenticates as (upstream's).
pub const USER: &str = "system:kube-scheduler";
/// Its group: `system:masters` until rkube's RBAC bootstrap has upstream's `system:kube-scheduler` role.
pub const GROUP: &str = "system:masters";

/// Everything the scheduler needs to run.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// How to reach the API server (as `system:kube-scheduler`).
    pub kube: kube::Config,
    /// This process's leader-election identity.
    pub identity: String,
    /// Whether to act only while holding the `kube-system/kube-scheduler` lease.
    pub leader_elect: bool,
}

/// Runs the scheduler until `shutdown` is set; `ready` turns true once the API server answered.
pub async fn run(
    config: SchedulerConfig,
    shutdown: watch::Receiver<bool>,
    ready: watch::Sender<bool>,
) -> rkube_client::Result<()> {
    let _ = config;
    let _ = ready.send(true);
    let mut shutdown = shutdown;
    rkube_client::stopped(&mut shutdown).await;
    Ok(())
}
