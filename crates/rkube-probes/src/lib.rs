//! Probes and lifecycle hooks as the kubelet runs them: liveness, readiness and startup probes (exec through
//! CRI `ExecSync`, httpGet, tcpSocket, grpc health) on per-container workers with upstream's timing
//! (initialDelaySeconds, periodSeconds, timeoutSeconds, success/failure thresholds), and postStart/preStop
//! handlers (exec, httpGet, sleep).

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

/// Runs probe workers for containers and reports verdict changes.
pub struct ProbeManager {
    _updates: mpsc::Sender<ProbeUpdate>,
}

impl ProbeManager {
    /// A manager recording `Unhealthy` events with `recorder`; verdict changes arrive on the returned receiver.
    pub fn new(recorder: rkube_client::events::Recorder) -> (ProbeManager, mpsc::Receiver<ProbeUpdate>) {
        let _ = recorder;
        todo!("rkube-probes helper")
    }

    /// Starts the probe workers of one running container (its spec is found in `pod`).
    pub fn add_container(&self, pod: &Pod, target: Target) {
        let _ = (pod, target);
        todo!("rkube-probes helper")
    }

    /// Stops the workers of one container instance.
    pub fn remove_container(&self, container_id: &str) {
        let _ = container_id;
        todo!("rkube-probes helper")
    }

    /// Stops every worker of a pod.
    pub fn remove_pod(&self, pod_uid: &str) {
        let _ = pod_uid;
        todo!("rkube-probes helper")
    }
}

/// Runs a postStart or preStop handler to completion (or its deadline); `Err` carries upstream's message.
pub async fn run_handler(handler: &LifecycleHandler, pod: &Pod, target: &Target) -> Result<(), String> {
    let _ = (handler, pod, target);
    todo!("rkube-probes helper")
}
