//! Keeping the node's status current: the runtime's health polled every 2 s (a dead containerd turns the node
//! NotReady within seconds, a recovered one Ready again), the whole status compared with the server's every
//! 10 s and posted only when it changed or every 5 minutes (upstream's report frequency). When a part of the
//! agent that readiness depends on comes up (the pod network's CNI config), the health is checked at once and
//! then at short, growing intervals until the node is Ready, so Ready is posted within milliseconds rather than
//! at the next tick (as upstream's kubelet polls fast at start, `fastStatusUpdateOnce`).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, NodeStatus, NodeSystemInfo};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use rkube_cri::api;
use serde_json::json;
use tokio::sync::{Notify, watch};

use crate::conditions::{self, Health};
use crate::node::{self, Facts};
use crate::resources::Capacity;

/// How often the runtime's health is checked.
const HEALTH_EVERY: Duration = Duration::from_secs(2);
/// How often the status is compared with the server's (upstream's `nodeStatusUpdateFrequency`).
const SYNC_EVERY: Duration = Duration::from_secs(10);
/// How long a runtime call may take before the runtime counts as down.
const RUNTIME_TIMEOUT: Duration = Duration::from_secs(3);
/// The first quick recheck after a part came up (containerd reloads the CNI config a few ms after it is
/// written); each next one waits twice as long, up to [`HEALTH_EVERY`].
const RECHECK_FIRST: Duration = Duration::from_millis(20);

/// What the status loop needs.
pub(crate) struct StatusLoop {
    pub(crate) client: kube::Client,
    pub(crate) runtime: rkube_cri::Runtime,
    pub(crate) facts: Facts,
    pub(crate) agent_dir: std::path::PathBuf,
    pub(crate) max_pods: u32,
    /// The supervised containerd: a restart between two checks is an outage even when it was too short for
    /// a check to see (the node goes NotReady until the restarted runtime answers a check).
    pub(crate) supervisor: Option<std::sync::Arc<rkube_cri::Supervisor>>,
    /// Notified when something readiness depends on may have changed: check now rather than at the next tick.
    pub(crate) recheck: std::sync::Arc<Notify>,
}

/// The runtime's health from CRI `Status`.
pub(crate) async fn runtime_health(runtime: &rkube_cri::Runtime) -> Health {
    let mut client = runtime.runtime.clone();
    let call = client.status(api::StatusRequest { verbose: false });
    match tokio::time::timeout(RUNTIME_TIMEOUT, call).await {
        Ok(Ok(r)) => {
            let status = r.into_inner().status.unwrap_or_default();
            Health::from_runtime_conditions(
                status.conditions.iter().map(|c| (c.r#type.as_str(), c.status, c.reason.as_str(), c.message.as_str())),
            )
        }
        Ok(Err(e)) => {
            tracing::debug!("runtime status: {e}");
            Health::runtime_down()
        }
        Err(_) => Health::runtime_down(),
    }
}

impl StatusLoop {
    /// Runs until `stop`; `ready` carries whether the node was last posted Ready.
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>, ready: watch::Sender<bool>) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let mut info = crate::hostinfo::system_info();
        let mut images = Vec::new();
        let mut health = runtime_health(&self.runtime).await;
        let mut last_sync: Option<tokio::time::Instant> = None;
        let mut restarts = self.supervisor.as_ref().map_or(0, |s| s.restarts());
        // The next quick recheck's wait, while rechecks are under way.
        let mut fast: Option<Duration> = None;
        loop {
            let due = last_sync.is_none_or(|t| t.elapsed() >= SYNC_EVERY);
            let (now_restarts, dead) = self.supervisor.as_ref().map_or((0, false), |s| (s.restarts(), s.pid() == 0));
            let fresh = if dead || now_restarts != restarts {
                restarts = now_restarts;
                Health::runtime_down()
            } else {
                runtime_health(&self.runtime).await
            };
            let changed = fresh != health;
            if changed {
                if fresh.ready() {
                    tracing::info!(node = %self.facts.name, "node is ready: the container runtime is healthy");
                } else {
                    tracing::warn!(node = %self.facts.name, errors = ?fresh.errors, "node is not ready");
                }
                health = fresh;
            }
            if due || changed {
                if health.ready() || info.container_runtime_version.is_empty() {
                    self.refresh_runtime_facts(&mut info, &mut images).await;
                }
                match self.sync(&nodes, &info, &images, &health).await {
                    Ok(posted_ready) => {
                        last_sync = Some(tokio::time::Instant::now());
                        ready.send_replace(posted_ready);
                    }
                    // Retried at the next health tick (not only at the next sync: a Ready not posted yet matters).
                    Err(e) => {
                        last_sync = None;
                        tracing::warn!(node = %self.facts.name, "error updating node status, will retry: {e}");
                    }
                }
            }
            let wait = next_wait(&mut fast, health.ready());
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.recheck.notified() => fast = Some(RECHECK_FIRST),
                _ = crate::stopped(&mut stop) => return,
            }
        }
    }

    async fn refresh_runtime_facts(
        &self,
        info: &mut NodeSystemInfo,
        images: &mut Vec<k8s_openapi::api::core::v1::ContainerImage>,
    ) {
        if let Ok(Ok(v)) = tokio::time::timeout(RUNTIME_TIMEOUT, self.runtime.version()).await {
            info.container_runtime_version = format!("{}://{}", v.runtime_name, v.runtime_version);
        }
        let mut images_client = self.runtime.images.clone();
        let call = images_client.list_images(api::ListImagesRequest { filter: None });
        if let Ok(Ok(r)) = tokio::time::timeout(RUNTIME_TIMEOUT, call).await {
            *images = node::images(&r.into_inner().images);
        }
    }

    /// Reads the node, posts the status if it must; returns whether the server now has the node Ready.
    async fn sync(
        &self,
        nodes: &Api<Node>,
        info: &NodeSystemInfo,
        images: &[k8s_openapi::api::core::v1::ContainerImage],
        health: &Health,
    ) -> Result<bool, kube::Error> {
        let current = nodes.get(&self.facts.name).await?;
        let posted = current.status.as_ref();
        let previous = posted.and_then(|s| s.conditions.clone()).unwrap_or_default();
        let now = Timestamp::now();
        let capacity = Capacity::from_host(&self.agent_dir, self.max_pods);
        let desired = node::status(&self.facts, &capacity, info, images.to_vec(), health, now, &previous);
        if conditions::needs_post(posted.map(comparable).as_ref(), &desired, now) {
            let patch = Patch::Merge(json!({ "status": desired }));
            nodes.patch_status(&self.facts.name, &PatchParams::default(), &patch).await?;
        }
        Ok(health.ready())
    }
}

/// The wait before the next health check: while quick rechecks are under way (`fast`) and the node is not Ready,
/// the next quick wait (each twice the last, so a runtime that stays not ready is soon polled at the normal pace
/// again); else [`HEALTH_EVERY`].
fn next_wait(fast: &mut Option<Duration>, ready: bool) -> Duration {
    match *fast {
        Some(d) if !ready && d < HEALTH_EVERY => {
            *fast = Some(d * 2);
            d
        }
        _ => {
            *fast = None;
            HEALTH_EVERY
        }
    }
}

/// The server's status reduced to the fields the agent writes (others, e.g. volumesInUse, are not ours).
fn comparable(s: &NodeStatus) -> NodeStatus {
    NodeStatus {
        addresses: s.addresses.clone(),
        allocatable: s.allocatable.clone(),
        capacity: s.capacity.clone(),
        conditions: s.conditions.clone(),
        daemon_endpoints: s.daemon_endpoints.clone(),
        images: s.images.clone(),
        node_info: s.node_info.clone(),
        ..NodeStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rechecks_are_quick_then_back_to_the_tick() {
        let mut fast = None;
        assert_eq!(next_wait(&mut fast, false), HEALTH_EVERY, "no recheck asked: the normal tick");
        fast = Some(RECHECK_FIRST);
        let mut waits = Vec::new();
        while fast.is_some() {
            waits.push(next_wait(&mut fast, false));
        }
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [20, 40, 80, 160, 320, 640, 1280, 2000], "a runtime that stays not ready");
        fast = Some(RECHECK_FIRST);
        assert_eq!(next_wait(&mut fast, false), RECHECK_FIRST);
        assert_eq!(next_wait(&mut fast, true), HEALTH_EVERY, "Ready ends the rechecks");
        assert_eq!(fast, None);
    }
}
