//! Stopping containers and sandboxes as upstream's `killContainer`/`killPodWithSyncResult`: the preStop
//! hook within the grace period, a `Killing` event, StopContainer with what is left of it (at least 2 s).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use rkube_client::events::EventType;
use rkube_cri::api;

use crate::Kubelet;
use crate::runtime_state::{CState, PodRuntime};

/// Upstream's `minimumGracePeriodInSeconds`.
const MIN_GRACE: i64 = 2;

/// The pod's grace period: the deletion's, else the spec's, else 30 s.
pub(crate) fn grace_period(pod: &Pod) -> i64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or(pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30)
}

/// The target of a container's hooks and probes.
pub(crate) fn target(k: &Kubelet, pod: &Pod, rt: &PodRuntime, id: &str, name: &str) -> rkube_probes::Target {
    let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
    let pod_ip = if host_network {
        None
    } else {
        rt.sandbox().and_then(|s| s.ips.first()).and_then(|ip| ip.parse::<IpAddr>().ok())
    };
    rkube_probes::Target {
        pod_ip,
        container_id: id.to_owned(),
        container_name: name.to_owned(),
        runtime: k.runtime.clone(),
    }
}

/// Stops one container instance: preStop (for a running regular container with one), the `Killing` event
/// (`message`, or `Stopping container X`), StopContainer.
pub(crate) async fn kill_container(
    k: &Kubelet,
    pod: &Pod,
    rt: &PodRuntime,
    id: &str,
    name: &str,
    message: Option<&str>,
    grace: i64,
) -> crate::Result<()> {
    let mut grace = grace;
    let spec = pod.spec.as_ref().and_then(|s| s.containers.iter().find(|c| c.name == name));
    let running = rt.containers.iter().any(|c| c.id == id && c.state() == CState::Running);
    if let Some(pre_stop) = spec.and_then(|c| c.lifecycle.as_ref()).and_then(|l| l.pre_stop.as_ref())
        && running
        && grace > 0
    {
        let started = Instant::now();
        let t = target(k, pod, rt, id, name);
        let limit = Duration::from_secs(u64::try_from(grace).unwrap_or(0));
        match tokio::time::timeout(limit, rkube_probes::run_handler(pre_stop, pod, &t)).await {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => {
                k.container_event(
                    pod,
                    name,
                    EventType::Warning,
                    "FailedPreStopHook",
                    &format!("PreStopHook failed: {msg}"),
                )
                .await;
            }
            Err(_) => tracing::info!(container = %name, "preStop hook did not finish within the grace period"),
        }
        grace -= i64::try_from(started.elapsed().as_secs()).unwrap_or(grace);
    }
    let grace = grace.max(MIN_GRACE);
    let message = message.map(str::to_owned).unwrap_or_else(|| format!("Stopping container {name}"));
    k.container_event(pod, name, EventType::Normal, "Killing", &message).await;
    k.probes.remove_container(id);
    k.memory().probing.remove(id);
    let mut r = k.runtime.runtime.clone();
    match r.stop_container(api::StopContainerRequest { container_id: id.to_owned(), timeout: grace }).await {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        Err(s) => Err(rkube_cri::Error::Cri { what: format!("StopContainer {id}"), source: s }.into()),
    }
}

/// Stops every running container of the pod (in parallel) and then its ready sandboxes.
pub(crate) async fn kill_pod(k: &Kubelet, pod: &Pod, rt: &PodRuntime, grace: i64) -> crate::Result<()> {
    let running: Vec<_> =
        rt.containers.iter().filter(|c| matches!(c.state(), CState::Running | CState::Unknown)).collect();
    let results = join_all(running.iter().map(|c| kill_container(k, pod, rt, &c.id, &c.name, None, grace))).await;
    for r in results {
        r?;
    }
    stop_sandboxes(k, rt).await
}

/// Stops the pod's ready sandboxes (their network goes; containers were stopped first).
pub(crate) async fn stop_sandboxes(k: &Kubelet, rt: &PodRuntime) -> crate::Result<()> {
    let mut r = k.runtime.runtime.clone();
    for s in rt.sandboxes.iter().filter(|s| s.ready) {
        match r.stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id: s.id.clone() }).await {
            Ok(_) => {}
            Err(st) if st.code() == tonic::Code::NotFound => {}
            Err(st) => {
                return Err(rkube_cri::Error::Cri { what: format!("StopPodSandbox {}", s.id), source: st }.into());
            }
        }
    }
    Ok(())
}
