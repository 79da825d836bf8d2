//! Pod status as upstream's kubelet generates it (`generateAPIPodStatus`, `convertToAPIContainerStatuses`,
//! `getPhase`, the pod condition generators, the prober's ready/started flags), from the pod, its runtime
//! state and what the kubelet remembers (last start failure per container, probe verdicts). Pure.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    HostIP, Pod, PodCondition, PodIP, PodStatus, VolumeMountStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::actions::should_restart;
use crate::runtime_state::{CState, ContainerInfo, PodRuntime};

/// The probe verdicts known for one container instance (None: no verdict yet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Verdicts {
    /// Readiness.
    pub(crate) ready: Option<bool>,
    /// Startup.
    pub(crate) started: Option<bool>,
    /// Liveness.
    pub(crate) live: Option<bool>,
}

/// Everything a pod's status is made from.
pub(crate) struct StatusInput<'a> {
    /// The pod as the API has it (its status is the old status).
    pub(crate) pod: &'a Pod,
    /// Its runtime state.
    pub(crate) rt: &'a PodRuntime,
    /// Per container name, the last start failure (reason, message), e.g. `CrashLoopBackOff`.
    pub(crate) reasons: &'a HashMap<String, (String, String)>,
    /// Probe verdicts by container ID.
    pub(crate) probes: &'a HashMap<String, Verdicts>,
    /// The node's IP.
    pub(crate) node_ip: &'a str,
    /// The pod's QoS class.
    pub(crate) qos: &'a str,
    /// Whether the pod is terminal (being terminated or finished: its containers will not restart).
    pub(crate) terminal: bool,
    /// The time now.
    pub(crate) now: Timestamp,
}

/// A CRI time as upstream converts it (`time.Unix(0, n)`): an unset time is the epoch, which is what
/// upstream shows for a container that never started (`startedAt: 1970-01-01T00:00:00Z`).
fn time(nanos: i64) -> Option<Time> {
    Timestamp::from_nanosecond(i128::from(nanos.max(0))).ok().map(Time)
}

fn waiting(reason: Option<&str>, message: Option<&str>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: reason.map(str::to_owned),
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        }),
        ..ContainerState::default()
    }
}

/// `containerd://<id>`, as the kubelet names container IDs.
pub(crate) fn container_id(id: &str) -> String {
    format!("containerd://{id}")
}

fn convert(c: &ContainerInfo, spec: &Container) -> ContainerStatus {
    let cid = container_id(&c.id);
    let state = match c.state() {
        CState::Running => ContainerState {
            running: Some(ContainerStateRunning { started_at: time(c.started_at) }),
            ..ContainerState::default()
        },
        CState::Exited => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: c.exit_code,
                reason: Some(c.reason.clone()).filter(|r| !r.is_empty()),
                message: Some(c.message.clone()).filter(|m| !m.is_empty()),
                started_at: time(c.started_at),
                finished_at: time(c.finished_at),
                container_id: Some(cid.clone()),
                signal: None,
            }),
            ..ContainerState::default()
        },
        CState::Created | CState::Unknown => waiting(None, None),
    };
    let mounts: Vec<VolumeMountStatus> = spec
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| VolumeMountStatus {
            name: m.name.clone(),
            mount_path: m.mount_path.clone(),
            read_only: m.read_only.filter(|r| *r),
            recursive_read_only: m.read_only.filter(|r| *r).map(|_| "Disabled".to_owned()),
        })
        .collect();
    ContainerStatus {
        name: c.name.clone(),
        restart_count: c.restart_count,
        image: if c.image.is_empty() { spec.image.clone().unwrap_or_default() } else { c.image.clone() },
        image_id: c.image_ref.clone(),
        container_id: Some(cid),
        state: Some(state),
        volume_mounts: Some(mounts).filter(|m| !m.is_empty()),
        ..ContainerStatus::default()
    }
}

/// The statuses of `containers` (the regular or the init ones), sorted by name as upstream.
pub(crate) fn container_statuses(
    input: &StatusInput<'_>,
    containers: &[Container],
    init: bool,
) -> Vec<ContainerStatus> {
    let pod = input.pod;
    let status = pod.status.as_ref();
    let old: Vec<ContainerStatus> = if init {
        status.and_then(|s| s.init_container_statuses.clone()).unwrap_or_default()
    } else {
        status.and_then(|s| s.container_statuses.clone()).unwrap_or_default()
    };
    let has_init = pod.spec.as_ref().and_then(|s| s.init_containers.as_ref()).is_some_and(|i| !i.is_empty());
    let default_reason = if has_init { "PodInitializing" } else { "ContainerCreating" };
    let mut out: Vec<ContainerStatus> = Vec::new();
    for spec in containers {
        let prior = old.iter().find(|o| o.name == spec.name);
        let mut st = match prior {
            Some(o) if o.state.as_ref().is_some_and(|s| s.terminated.is_some()) => o.clone(),
            _ => ContainerStatus {
                name: spec.name.clone(),
                image: spec.image.clone().unwrap_or_default(),
                state: Some(waiting(Some(default_reason), None)),
                restart_count: prior.map(|o| o.restart_count).unwrap_or(0),
                last_state: prior.and_then(|o| o.last_state.clone()),
                ..ContainerStatus::default()
            },
        };
        // The newest instance is the state; the one before it the last state.
        let mut instances = input.rt.containers.iter().filter(|c| c.name == spec.name);
        if let Some(latest) = instances.next() {
            st = convert(latest, spec);
            match instances.next() {
                Some(prev) => st.last_state = convert(prev, spec).state,
                None => st.last_state = prior.and_then(|o| o.last_state.clone()).filter(|_| latest.restart_count > 0),
            }
        }
        // A container that will be (re)started shows why it is not running yet.
        let latest = input.rt.latest(&spec.name);
        let succeeded_init = init && latest.is_some_and(|l| l.state() == CState::Exited && l.exit_code == 0);
        if !succeeded_init
            && !input.terminal
            && should_restart(spec, pod, input.rt)
            && let Some((reason, message)) = input.reasons.get(&spec.name)
        {
            if st.state.as_ref().is_some_and(|s| s.terminated.is_some()) {
                st.last_state = st.state.take();
            }
            st.state = Some(waiting(Some(reason), Some(message)));
        }
        set_flags(&mut st, spec, latest, input.probes, init);
        // Upstream's lastState is a struct, never absent: `{}` when there is none.
        st.last_state.get_or_insert_with(ContainerState::default);
        out.push(st);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// `started` and `ready` as the prober manager sets them.
fn set_flags(
    st: &mut ContainerStatus,
    spec: &Container,
    latest: Option<&ContainerInfo>,
    probes: &HashMap<String, Verdicts>,
    init: bool,
) {
    let running = st.state.as_ref().is_some_and(|s| s.running.is_some());
    let verdicts = latest.and_then(|l| probes.get(&l.id)).copied().unwrap_or_default();
    let started = running && verdicts.started.unwrap_or(spec.startup_probe.is_none());
    st.started = Some(started);
    st.ready = if init {
        st.state.as_ref().and_then(|s| s.terminated.as_ref()).is_some_and(|t| t.exit_code == 0)
    } else {
        started && verdicts.ready.unwrap_or(spec.readiness_probe.is_none())
    };
}

fn find<'a>(statuses: &'a [ContainerStatus], name: &str) -> Option<&'a ContainerStatus> {
    statuses.iter().find(|s| s.name == name)
}

/// Upstream's `getPhase` (without restartable init containers).
pub(crate) fn phase(pod: &Pod, init: &[ContainerStatus], regular: &[ContainerStatus], terminal: bool) -> &'static str {
    let Some(spec) = pod.spec.as_ref() else { return "Pending" };
    let never = spec.restart_policy.as_deref() == Some("Never");
    let (mut pending_init, mut failed_init) = (0, 0);
    for c in spec.init_containers.iter().flatten() {
        let Some(s) = find(init, &c.name).and_then(|s| s.state.as_ref().map(|st| (st, s))) else {
            pending_init += 1;
            continue;
        };
        let (state, status) = s;
        if state.running.is_some() {
            pending_init += 1;
        } else if let Some(t) = &state.terminated {
            if t.exit_code != 0 {
                failed_init += 1;
            }
        } else if state.waiting.is_some() {
            match status.last_state.as_ref().and_then(|l| l.terminated.as_ref()) {
                Some(t) if t.exit_code != 0 => failed_init += 1,
                Some(_) => {}
                None => pending_init += 1,
            }
        } else {
            pending_init += 1;
        }
    }
    let (mut unknown, mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);
    for c in &spec.containers {
        let Some(status) = find(regular, &c.name) else {
            unknown += 1;
            continue;
        };
        let Some(state) = status.state.as_ref() else {
            unknown += 1;
            continue;
        };
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = &state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if state.waiting.is_some() {
            if status.last_state.as_ref().is_some_and(|l| l.terminated.is_some()) {
                stopped += 1;
            } else {
                waiting += 1;
            }
        } else {
            unknown += 1;
        }
    }
    if failed_init > 0 && never {
        return "Failed";
    }
    let any_regular_started = regular.iter().any(|s| {
        s.state.as_ref().is_some_and(|st| st.running.is_some() || st.terminated.is_some())
            || s.last_state.as_ref().is_some_and(|st| st.terminated.is_some())
    });
    if (pending_init > 0 && !any_regular_started) || waiting > 0 {
        return "Pending";
    }
    if running > 0 && unknown == 0 {
        return "Running";
    }
    if running == 0 && stopped > 0 && unknown == 0 {
        if terminal {
            return if stopped == succeeded { "Succeeded" } else { "Failed" };
        }
        if spec.restart_policy.as_deref().unwrap_or("Always") == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if never {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

fn condition(kind: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: kind.to_owned(),
        status: if ok { "True" } else { "False" }.to_owned(),
        reason: reason.map(str::to_owned),
        message,
        ..PodCondition::default()
    }
}

fn go_list(names: &[String]) -> String {
    format!("[{}]", names.join(" "))
}

/// Upstream's `GeneratePodInitializedCondition`.
fn initialized(pod: &Pod, init: &[ContainerStatus], regular: &[ContainerStatus], phase: &str) -> PodCondition {
    let spec_init: Vec<&Container> = pod.spec.iter().flat_map(|s| s.init_containers.iter().flatten()).collect();
    let (mut unknown, mut incomplete) = (vec![], vec![]);
    for c in &spec_init {
        match find(init, &c.name) {
            None => unknown.push(c.name.clone()),
            Some(s) => {
                if s.state.as_ref().and_then(|st| st.terminated.as_ref()).is_none_or(|t| t.exit_code != 0) {
                    incomplete.push(c.name.clone());
                }
            }
        }
    }
    if phase == "Succeeded" && unknown.is_empty() {
        return condition("Initialized", true, Some("PodCompleted"), None);
    }
    let any_started = regular.iter().any(|s| {
        s.state.as_ref().is_some_and(|st| st.running.is_some() || st.terminated.is_some())
            || s.last_state.as_ref().is_some_and(|st| st.terminated.is_some())
    });
    if any_started {
        return condition("Initialized", true, None, None);
    }
    let mut msgs = vec![];
    if !unknown.is_empty() {
        msgs.push(format!("containers with unknown status: {}", go_list(&unknown)));
    }
    if !incomplete.is_empty() {
        msgs.push(format!("containers with incomplete status: {}", go_list(&incomplete)));
    }
    if msgs.is_empty() {
        condition("Initialized", true, None, None)
    } else {
        condition("Initialized", false, Some("ContainersNotInitialized"), Some(msgs.join(", ")))
    }
}

/// Upstream's `GenerateContainersReadyCondition` (the Ready condition copies it, readiness gates aside).
fn containers_ready(pod: &Pod, regular: &[ContainerStatus], phase: &str) -> PodCondition {
    let (mut unknown, mut unready) = (vec![], vec![]);
    for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        match find(regular, &c.name) {
            Some(s) if !s.ready => unready.push(c.name.clone()),
            Some(_) => {}
            None => unknown.push(c.name.clone()),
        }
    }
    if phase == "Succeeded" && unknown.is_empty() {
        return condition("ContainersReady", false, Some("PodCompleted"), None);
    }
    if phase == "Failed" {
        return condition("ContainersReady", false, Some("PodFailed"), None);
    }
    let mut msgs = vec![];
    if !unknown.is_empty() {
        msgs.push(format!("containers with unknown status: {}", go_list(&unknown)));
    }
    if !unready.is_empty() {
        msgs.push(format!("containers with unready status: {}", go_list(&unready)));
    }
    if msgs.is_empty() {
        condition("ContainersReady", true, None, None)
    } else {
        condition("ContainersReady", false, Some("ContainersNotReady"), Some(msgs.join(", ")))
    }
}

/// Upstream's `GeneratePodReadyCondition`, readiness gates included.
fn ready(pod: &Pod, containers_ready: &PodCondition, old: &[PodCondition]) -> PodCondition {
    let mut c = containers_ready.clone();
    c.type_ = "Ready".to_owned();
    if c.status != "True" {
        return c;
    }
    let gates: Vec<String> =
        pod.spec.iter().flat_map(|s| s.readiness_gates.iter().flatten()).map(|g| g.condition_type.clone()).collect();
    let unready: Vec<String> = gates
        .iter()
        .filter(|g| !old.iter().any(|c| &c.type_ == *g && c.status == "True"))
        .map(|g| format!("corresponding condition of pod readiness gate \"{g}\" does not exist."))
        .collect();
    if unready.is_empty() {
        c
    } else {
        condition("Ready", false, Some("ReadinessGatesNotReady"), Some(unready.join(", ")))
    }
}

const KUBELET_CONDITIONS: [&str; 5] =
    ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"];

/// The pod's whole status as the kubelet writes it (old non-kubelet conditions kept first, as upstream's
/// `mergePodStatus`; transition times kept while a condition's status does not change).
pub(crate) fn pod_status(input: &StatusInput<'_>) -> PodStatus {
    let pod = input.pod;
    let old = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let init = container_statuses(input, spec.init_containers.as_deref().unwrap_or_default(), true);
    let regular = container_statuses(input, &spec.containers, false);
    let mut phase = phase(pod, &init, &regular, input.terminal);
    // A terminal phase is final (the status manager refuses to leave it).
    if let Some(p) = old.phase.as_deref().filter(|p| *p == "Succeeded" || *p == "Failed") {
        phase = if p == "Succeeded" { "Succeeded" } else { "Failed" };
    }
    let host_network = spec.host_network.unwrap_or(false);
    let sandbox = input.rt.sandbox();
    let sandbox_ready = sandbox.is_some_and(|s| s.ready && (host_network || !s.ips.is_empty()));
    let old_conditions = old.conditions.clone().unwrap_or_default();
    let cready = containers_ready(pod, &regular, phase);
    let generated = vec![
        condition("PodReadyToStartContainers", sandbox_ready, None, None),
        initialized(pod, &init, &regular, phase),
        ready(pod, &cready, &old_conditions),
        cready,
        condition("PodScheduled", true, None, None),
    ];
    let mut conditions: Vec<PodCondition> =
        old_conditions.iter().filter(|c| !KUBELET_CONDITIONS.contains(&c.type_.as_str())).cloned().collect();
    for mut c in generated {
        let prior = old_conditions.iter().find(|o| o.type_ == c.type_);
        c.last_transition_time = match prior {
            Some(o) if o.status == c.status => o.last_transition_time.clone(),
            _ => Some(Time(input.now)),
        };
        c.last_probe_time = None;
        conditions.push(c);
    }
    let ips: Vec<String> =
        if host_network { vec![input.node_ip.to_owned()] } else { sandbox.map(|s| s.ips.clone()).unwrap_or_default() };
    // Keep the IPs the pod had once its sandbox is gone (as upstream keeps them in the cache).
    let (pod_ip, pod_ips) = if ips.is_empty() {
        (old.pod_ip.clone(), old.pod_ips.clone())
    } else {
        (Some(ips[0].clone()), Some(ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()))
    };
    PodStatus {
        phase: Some(phase.to_owned()),
        conditions: Some(conditions),
        host_ip: Some(input.node_ip.to_owned()),
        host_ips: Some(vec![HostIP { ip: input.node_ip.to_owned() }]),
        pod_ip,
        pod_ips,
        start_time: old.start_time.clone().or(Some(Time(input.now))),
        qos_class: Some(input.qos.to_owned()),
        container_statuses: Some(regular),
        init_container_statuses: Some(init).filter(|i| !i.is_empty()),
        ..old
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
