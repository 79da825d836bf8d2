//! Probes and lifecycle hooks as the kubelet runs them: liveness, readiness and startup probes (exec through
//! CRI `ExecSync`, httpGet, tcpSocket, grpc health) on per-container workers with upstream's timing
//! (initialDelaySeconds, periodSeconds, timeoutSeconds, success/failure thresholds), and postStart/preStop
//! handlers (exec, httpGet, sleep).

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod exec;
mod gostr;
mod grpc;
mod http;
mod lifecycle;
mod manager;
mod outcome;
mod port;
mod prober;
mod tcp;
mod tls;
mod worker;

#[cfg(test)]
mod tests;

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{LifecycleHandler, Pod};
use tokio::sync::mpsc;

/// Which probe a result is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// `livenessProbe`: failure restarts the container.
    Liveness,
    /// `readinessProbe`: the container's `ready` flag.
    Readiness,
    /// `startupProbe`: until it succeeds, the other probes do not run.
    Startup,
}

/// Where a container's probes and hooks go.
#[derive(Clone, Debug)]
pub struct Target {
    /// The pod's IP (httpGet/tcpSocket/grpc default host); `None` with hostNetwork means the node's IP.
    pub pod_ip: Option<IpAddr>,
    /// The CRI container ID (exec actions).
    pub container_id: String,
    /// The container's name in the pod spec.
    pub container_name: String,
    /// The runtime, for exec.
    pub runtime: rkube_cri::Runtime,
}

/// A change of a probe's verdict for one container (sent only when the verdict changes).
///
/// Readiness and startup send their first verdict whatever it is; liveness starts out healthy, so its first
/// update is a failure. A liveness or startup failure is the worker's last update for that container instance.
#[derive(Clone, Debug)]
pub struct ProbeUpdate {
    /// The pod's UID.
    pub pod_uid: String,
    /// The container's name.
    pub container_name: String,
    /// The CRI container ID the verdict is about (a restarted container has a new one).
    pub container_id: String,
    /// Which probe.
    pub kind: ProbeKind,
    /// The verdict: true once `successThreshold` successes in a row, false after `failureThreshold` failures.
    pub success: bool,
    /// The last failure's output, for the event and the kill message.
    pub message: String,
}

/// Runs probe workers for containers and reports verdict changes. Dropping it stops every worker.
pub struct ProbeManager {
    updates: mpsc::Sender<ProbeUpdate>,
    events: prober::Events,
    workers: manager::Workers,
}

impl ProbeManager {
    /// A manager recording `Unhealthy` events with `recorder`; verdict changes arrive on the returned receiver.
    pub fn new(recorder: rkube_client::events::Recorder) -> (ProbeManager, mpsc::Receiver<ProbeUpdate>) {
        ProbeManager::with_events(prober::Events::Recorder(recorder))
    }

    /// Starts the probe workers of one running container (its spec is found in `pod`). Must be called within a
    /// tokio runtime; adding a container instance that already has workers does nothing.
    pub fn add_container(&self, pod: &Pod, target: Target) {
        let exec = exec::Executor::Cri(Box::new(target.runtime));
        self.start(pod, target.pod_ip, &target.container_name, &target.container_id, exec);
    }

    /// Stops the workers of one container instance.
    pub fn remove_container(&self, container_id: &str) {
        self.stop(|id, _| id == container_id);
    }

    /// Stops every worker of a pod.
    pub fn remove_pod(&self, pod_uid: &str) {
        self.stop(|_, entry| ProbeManager::owned_by(entry, pod_uid));
    }
}

/// Which lifecycle hook a handler is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// `postStart`: runs right after the container started; no deadline (as upstream).
    PostStart,
    /// `preStop`: runs before the container is stopped, within the pod's termination grace period.
    PreStop,
}

/// Runs a postStart or preStop handler to completion (or its deadline); `Err` carries upstream's message.
///
/// The hook is told apart by comparing `handler` with the container's `lifecycle.preStop`; use [`run_hook`]
/// to say which it is.
pub async fn run_handler(handler: &LifecycleHandler, pod: &Pod, target: &Target) -> Result<(), String> {
    let lifecycle = manager::find_container(pod, &target.container_name).and_then(|(c, _)| c.lifecycle.as_ref());
    let is_pre_stop =
        lifecycle.is_some_and(|l| l.pre_stop.as_ref() == Some(handler) && l.post_start.as_ref() != Some(handler));
    run_hook(if is_pre_stop { Hook::PreStop } else { Hook::PostStart }, handler, pod, target).await
}

/// Runs `handler` as `hook`: a preStop hook is bounded by the pod's termination grace period (its exec gets
/// it as the `ExecSync` timeout; when it runs out the hook is abandoned and `Ok` returned, as upstream only
/// logs that), a postStart hook has no deadline. `Err` carries upstream's message for the
/// `FailedPostStartHook`/`FailedPreStopHook` event.
pub async fn run_hook(hook: Hook, handler: &LifecycleHandler, pod: &Pod, target: &Target) -> Result<(), String> {
    let exec = exec::Executor::Cri(Box::new(target.runtime.clone()));
    lifecycle::run(hook, handler, pod, &target.container_name, &target.container_id, target.pod_ip, &exec).await
}
