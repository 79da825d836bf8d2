//! What a pod sync must do, decided from the pod and its runtime state alone (upstream's
//! `computePodActions`, `PodSandboxChanged`, `findNextInitContainerToRun`, `ShouldContainerBeRestarted`).
//! Pure: the spec hash and probe verdicts come in as functions.

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::runtime_state::{CState, ContainerInfo, PodRuntime};

/// A container instance to stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Kill {
    /// CRI ID.
    pub(crate) id: String,
    /// Container name.
    pub(crate) name: String,
    /// The `Killing` event's message (None: `Stopping container X`).
    pub(crate) message: Option<String>,
}

/// The decisions of one sync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Actions {
    /// Stop every container and the sandbox.
    pub(crate) kill_pod: bool,
    /// Create a sandbox with this attempt number.
    pub(crate) create_sandbox: Option<u32>,
    /// Start this init container (index in `spec.initContainers`).
    pub(crate) next_init: Option<usize>,
    /// Start these containers (indexes in `spec.containers`).
    pub(crate) start: Vec<usize>,
    /// Stop these instances first.
    pub(crate) kill: Vec<Kill>,
}

fn restart_on_failure(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) != Some("Never")
}

fn policy(pod: &Pod) -> &str {
    pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or("Always")
}

/// Upstream's `ShouldContainerBeRestarted`.
pub(crate) fn should_restart(container: &Container, pod: &Pod, rt: &PodRuntime) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(status) = rt.latest(&container.name) else { return true };
    match status.state() {
        CState::Running => false,
        CState::Unknown | CState::Created => true,
        CState::Exited => match policy(pod) {
            "Never" => false,
            "OnFailure" => status.exit_code != 0,
            _ => true,
        },
    }
}

fn init_failed(c: &ContainerInfo) -> bool {
    match c.state() {
        CState::Exited => c.exit_code != 0,
        CState::Unknown => true,
        _ => false,
    }
}

/// Upstream's `findNextInitContainerToRun`: (last failed instance, next index to run, done).
fn next_init(pod: &Pod, rt: &PodRuntime) -> (Option<ContainerInfo>, Option<usize>, bool) {
    let Some(spec) = pod.spec.as_ref() else { return (None, None, true) };
    let inits = spec.init_containers.as_deref().unwrap_or_default();
    if inits.is_empty() {
        return (None, None, true);
    }
    if spec.containers.iter().any(|c| rt.latest(&c.name).is_some_and(|s| s.state() == CState::Running)) {
        return (None, None, true);
    }
    for (i, c) in inits.iter().enumerate().rev() {
        if let Some(s) = rt.latest(&c.name).filter(|s| init_failed(s)) {
            return (Some(s.clone()), Some(i), false);
        }
    }
    for (i, c) in inits.iter().enumerate().rev() {
        let Some(s) = rt.latest(&c.name) else { continue };
        match s.state() {
            CState::Running => return (None, None, false),
            CState::Exited if i == inits.len() - 1 => return (None, None, true),
            CState::Exited => return (None, Some(i + 1), false),
            _ => {}
        }
    }
    (None, Some(0), false)
}

/// Upstream's `PodSandboxChanged`: (create, attempt).
fn sandbox_changed(pod: &Pod, rt: &PodRuntime) -> (bool, u32) {
    let Some(latest) = rt.sandbox() else { return (true, 0) };
    let ready = rt.sandboxes.iter().filter(|s| s.ready).count();
    let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
    if ready > 1 || !latest.ready || (!host_network && latest.ips.is_empty()) {
        return (true, latest.attempt + 1);
    }
    (false, latest.attempt)
}

/// What this sync must do. `hash` is the spec hash of a container; `unhealthy` says whether an instance
/// failed its liveness or startup probe (and which, for the message).
pub(crate) fn compute(
    pod: &Pod,
    rt: &PodRuntime,
    hash: &dyn Fn(&Container) -> String,
    unhealthy: &dyn Fn(&str) -> Option<&'static str>,
) -> Actions {
    let mut a = Actions::default();
    let Some(spec) = pod.spec.as_ref() else { return a };
    let (create, attempt) = sandbox_changed(pod, rt);
    if create {
        a.kill_pod = true;
        if !restart_on_failure(pod) && attempt != 0 && !rt.containers.is_empty() {
            return a;
        }
        let start: Vec<usize> = spec
            .containers
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                !(policy(pod) == "OnFailure"
                    && rt.latest(&c.name).is_some_and(|s| s.state() == CState::Exited && s.exit_code == 0))
            })
            .map(|(i, _)| i)
            .collect();
        let initialized = spec.containers.iter().any(|c| rt.latest(&c.name).is_some());
        if initialized && start.is_empty() {
            return a;
        }
        a.create_sandbox = Some(attempt);
        if spec.init_containers.as_ref().is_some_and(|i| !i.is_empty()) && !initialized {
            a.next_init = Some(0);
            return a;
        }
        a.start = start;
        return a;
    }
    let (last_failed, next, done) = next_init(pod, rt);
    if !done {
        if let Some(next) = next {
            if last_failed.is_some() && !restart_on_failure(pod) {
                a.kill_pod = true;
            } else {
                if let Some(l) = last_failed.filter(|l| l.state() == CState::Unknown) {
                    a.kill.push(Kill { id: l.id, name: l.name, message: None });
                }
                a.next_init = Some(next);
            }
        }
        return a;
    }
    let mut keep = 0;
    for (i, c) in spec.containers.iter().enumerate() {
        let status = rt.latest(&c.name);
        let Some(status) = status.filter(|s| s.state() == CState::Running) else {
            if should_restart(c, pod, rt) {
                a.start.push(i);
                if let Some(s) = status.filter(|s| s.state() == CState::Unknown) {
                    a.kill.push(Kill { id: s.id.clone(), name: s.name.clone(), message: None });
                }
            }
            continue;
        };
        let message = if !status.hash.is_empty() && status.hash != hash(c) {
            // A changed spec restarts the container whatever the restart policy.
            a.start.push(i);
            a.kill.push(Kill {
                id: status.id.clone(),
                name: c.name.clone(),
                message: Some(format!("Container {} definition changed, will be restarted", c.name)),
            });
            continue;
        } else if let Some(probe) = unhealthy(&status.id) {
            format!("Container {} failed {probe} probe", c.name)
        } else {
            keep += 1;
            continue;
        };
        let message = if restart_on_failure(pod) {
            a.start.push(i);
            format!("{message}, will be restarted")
        } else {
            message
        };
        a.kill.push(Kill { id: status.id.clone(), name: c.name.clone(), message: Some(message) });
    }
    if keep == 0 && a.start.is_empty() {
        a.kill_pod = true;
    }
    a
}

#[cfg(test)]
#[path = "actions_tests.rs"]
pub(crate) mod tests;
