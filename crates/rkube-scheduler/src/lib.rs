//! rkube's scheduler: upstream kube-scheduler's default profile. Pending pods of `default-scheduler` are
//! taken from a priority queue with backoff, filtered and scored over a cache of nodes and placed pods
//! (with assumed pods counted the moment they are picked), bound through `pods/binding`, and explained
//! with upstream's FailedScheduling wording when they fit nowhere; higher-priority pods preempt lower ones.
//!
//! Modules: `cache` (nodes and placed pods), `queue`, `framework` (one file per plugin), `schedule` (one
//! attempt), `preemption`, `diagnosis` (the failure message), `state` + `informers` (watch events),
//! `actions` (API writes), `scheduler` (the loop).

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod actions;
mod cache;
mod diagnosis;
mod framework;
mod informers;
mod podinfo;
mod preemption;
mod queue;
mod resources;
mod schedule;
mod scheduler;
mod state;

use tokio::sync::watch;

/// The user name the scheduler authenticates as (upstream's).
pub const USER: &str = "system:kube-scheduler";
/// Its group: `system:masters` until rkube's RBAC bootstrap has upstream's `system:kube-scheduler` role.
pub const GROUP: &str = "system:masters";
/// The Lease the scheduler instances elect their leader on (in `kube-system`).
pub const LEASE: &str = "kube-scheduler";

/// Everything the scheduler needs to run.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// How to reach the API server (as `system:kube-scheduler`).
    pub kube: kube::Config,
    /// This process's leader-election identity.
    pub identity: String,
    /// Whether to act only while holding the `kube-system/kube-scheduler` lease.
    pub leader_elect: bool,
    /// Where readiness and leadership are reported for a status port (`rkube scheduler`'s).
    pub health: Option<std::sync::Arc<rkube_status::Health>>,
}

/// Runs the scheduler until `shutdown` is set; `ready` turns true once the API server answered.
pub async fn run(
    config: SchedulerConfig,
    shutdown: watch::Receiver<bool>,
    ready: watch::Sender<bool>,
) -> rkube_client::Result<()> {
    let client = kube::Client::try_from(config.kube).map_err(rkube_client::Error::Client)?;
    client.apiserver_version().await.map_err(|e| rkube_client::Error::api("reading the API server's version", e))?;
    let _ = ready.send(true);
    let health = config.health.unwrap_or_else(|| rkube_status::Health::new(LEASE));
    health.set_ready(true);
    let lead = move |c: kube::Client, stop: watch::Receiver<bool>| {
        let health = health.clone();
        async move {
            let _term = health.leading();
            scheduler::run(c, stop).await
        }
    };
    if config.leader_elect {
        let c = client.clone();
        rkube_client::leader::run_elected(client, LEASE, config.identity, shutdown, move |stop| lead(c.clone(), stop))
            .await
    } else {
        lead(client, shutdown).await
    }
}
