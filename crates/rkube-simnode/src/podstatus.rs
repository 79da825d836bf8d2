//! The status a kubelet writes for a pod whose containers run (and, for pods that run to completion, once
//! they exited), as pure functions of the pod, its placement and the clock. Times already in the pod's status
//! are kept when nothing changed, so recomputing the status of an unchanged pod gives the same status back.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus, HostIP, Pod,
    PodCondition, PodIP, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Annotation: how long a pod that runs to completion runs, in seconds (default 1).
pub const RUN_SECONDS: &str = "sim.rkube.io/run-seconds";
/// Annotation: the exit code its containers end with (default 0; non-zero makes the pod Failed).
pub const EXIT_CODE: &str = "sim.rkube.io/exit-code";

const DEFAULT_RUN: Duration = Duration::from_secs(1);

/// Conditions the kubelet owns (everything else in `status.conditions` is kept as it is).
const KUBELET_CONDITIONS: [&str; 5] =
    ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"];

/// Upstream's QoS class: Guaranteed when every container has equal, non-zero CPU and memory requests and
/// limits; BestEffort when none has any CPU or memory request or limit; Burstable otherwise.
pub(crate) fn qos_class(spec: &PodSpec) -> &'static str {
    const TRACKED: [&str; 2] = ["cpu", "memory"];
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    let milli = |q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| {
        rkube_validation::Quantity::parse(&q.0).ok().and_then(|q| q.milli_value()).unwrap_or(0)
    };
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        let res = c.resources.clone().unwrap_or_default();
        let lim = res.limits.unwrap_or_default();
        // Requests default to limits (API defaulting); done here too in case the pod was not defaulted.
        let mut req = res.requests.unwrap_or_default();
        for (k, v) in &lim {
            req.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for name in TRACKED {
            if let Some(v) = req.get(name).map(milli).filter(|v| *v > 0) {
                *requests.entry(name).or_default() += v;
            }
        }
        let mut found = BTreeSet::new();
        for name in TRACKED {
            if let Some(v) = lim.get(name).map(milli).filter(|v| *v > 0) {
                *limits.entry(name).or_default() += v;
                found.insert(name);
            }
        }
        if found.len() != TRACKED.len() {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed && requests.iter().all(|(k, v)| limits.get(k) == Some(v)) && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Whether the pod's containers exit by themselves (restartPolicy `Never` or `OnFailure`).
pub(crate) fn runs_to_completion(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).is_some_and(|p| p != "Always")
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.annotations.as_ref()?.get(key).map(|s| s.trim())
}

/// How long the pod's containers run (annotation [`RUN_SECONDS`], fractions allowed).
pub(crate) fn run_duration(pod: &Pod) -> Duration {
    annotation(pod, RUN_SECONDS)
        .and_then(|s| s.parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(DEFAULT_RUN)
}

/// The exit code of the pod's containers (annotation [`EXIT_CODE`]).
pub(crate) fn exit_code(pod: &Pod) -> i32 {
    annotation(pod, EXIT_CODE).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// When a pod that runs to completion is due to finish: its start time plus its run duration.
pub(crate) fn finish_time(pod: &Pod) -> Option<Timestamp> {
    let start = pod.status.as_ref()?.start_time.as_ref()?.0;
    let ms = start.as_millisecond().saturating_add(run_duration(pod).as_millis().min(i64::MAX as u128) as i64);
    Timestamp::from_millisecond(ms).ok()
}

/// A stable fake container id: `sim://` and 64 hex digits from the pod's uid and the container's name.
pub(crate) fn container_id(uid: &str, container: &str) -> String {
    let mut s = String::from("sim://");
    for i in 0..4u8 {
        let mut h = DefaultHasher::new();
        (uid, container, i).hash(&mut h);
        s.push_str(&format!("{:016x}", h.finish()));
    }
    s
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn condition(
    previous: &[PodCondition],
    type_: &str,
    status: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: Timestamp,
) -> PodCondition {
    let status = if status { "True" } else { "False" };
    let transition = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    PodCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.map(str::to_owned),
        message,
        last_transition_time: Some(transition),
        ..PodCondition::default()
    }
}

/// The conditions others own, kept first as upstream's status manager does, then the kubelet's own.
fn conditions(previous: &[PodCondition], own: Vec<PodCondition>, now: Timestamp) -> Vec<PodCondition> {
    let mut out: Vec<PodCondition> =
        previous.iter().filter(|c| !KUBELET_CONDITIONS.contains(&c.type_.as_str())).cloned().collect();
    out.extend(own);
    out.push(
        previous
            .iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "True")
            .cloned()
            .unwrap_or_else(|| condition(previous, "PodScheduled", true, None, None, now)),
    );
    out
}

/// The Ready condition once all containers are ready: readiness gates (conditions set by others) decide.
fn ready_condition(pod: &Pod, previous: &[PodCondition], now: Timestamp) -> PodCondition {
    let gates = pod.spec.as_ref().and_then(|s| s.readiness_gates.as_ref()).map(Vec::as_slice).unwrap_or_default();
    let unready: Vec<String> = gates
        .iter()
        .filter_map(|g| match previous.iter().find(|c| c.type_ == g.condition_type) {
            None => {
                Some(format!("corresponding condition of pod readiness gate {:?} does not exist.", g.condition_type))
            }
            Some(c) if c.status != "True" => Some(format!(
                "the status of pod readiness gate {:?} is not \"True\", but {}",
                g.condition_type, c.status
            )),
            Some(_) => None,
        })
        .collect();
    if unready.is_empty() {
        condition(previous, "Ready", true, None, None, now)
    } else {
        condition(previous, "Ready", false, Some("ReadinessGatesNotReady"), Some(unready.join(", ")), now)
    }
}

fn previous_status<'a>(statuses: Option<&'a Vec<ContainerStatus>>, name: &str) -> Option<&'a ContainerStatus> {
    statuses?.iter().find(|s| s.name == name)
}

fn started_at(prev: Option<&ContainerStatus>) -> Option<Time> {
    let state = prev?.state.as_ref()?;
    state
        .running
        .as_ref()
        .and_then(|r| r.started_at.clone())
        .or_else(|| state.terminated.as_ref().and_then(|t| t.started_at.clone()))
}

fn running_container(uid: &str, c: &Container, prev: Option<&ContainerStatus>, now: Timestamp) -> ContainerStatus {
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        image_id: format!("sim://{}", c.image.as_deref().unwrap_or_default()),
        container_id: Some(container_id(uid, &c.name)),
        ready: true,
        started: Some(true),
        restart_count: 0,
        state: Some(ContainerState {
            running: Some(ContainerStateRunning { started_at: Some(started_at(prev).unwrap_or(Time(now))) }),
            ..ContainerState::default()
        }),
        ..ContainerStatus::default()
    }
}

fn terminated_container(
    uid: &str,
    c: &Container,
    prev: Option<&ContainerStatus>,
    exit_code: i32,
    fallback_start: Option<&Time>,
    now: Timestamp,
) -> ContainerStatus {
    if let Some(p) = prev.filter(|p| p.state.as_ref().is_some_and(|s| s.terminated.is_some())) {
        return p.clone();
    }
    let started = started_at(prev).or_else(|| fallback_start.cloned()).unwrap_or(Time(now));
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        image_id: format!("sim://{}", c.image.as_deref().unwrap_or_default()),
        container_id: Some(container_id(uid, &c.name)),
        ready: false,
        started: Some(false),
        restart_count: 0,
        state: Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code,
                reason: Some(if exit_code == 0 { "Completed" } else { "Error" }.to_owned()),
                started_at: Some(started),
                finished_at: Some(Time(now)),
                container_id: Some(container_id(uid, &c.name)),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        }),
        ..ContainerStatus::default()
    }
}

/// The status of a pod whose containers all run on a node with address `host_ip`, with addresses `pod_ips`.
pub(crate) fn running(pod: &Pod, host_ip: &str, pod_ips: &[String], now: Timestamp) -> PodStatus {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let prev = pod.status.clone().unwrap_or_default();
    let prev_conds = prev.conditions.clone().unwrap_or_default();
    let start = prev.start_time.clone().unwrap_or(Time(now));
    let init: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            let p = previous_status(prev.init_container_statuses.as_ref(), &c.name);
            if is_sidecar(c) {
                running_container(uid, c, p, now)
            } else {
                let mut s = terminated_container(uid, c, p, 0, Some(&start), now);
                s.ready = true;
                s
            }
        })
        .collect();
    let containers: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| running_container(uid, c, previous_status(prev.container_statuses.as_ref(), &c.name), now))
        .collect();
    let own = vec![
        condition(&prev_conds, "PodReadyToStartContainers", true, None, None, now),
        condition(&prev_conds, "Initialized", true, None, None, now),
        ready_condition(pod, &prev_conds, now),
        condition(&prev_conds, "ContainersReady", true, None, None, now),
    ];
    PodStatus {
        phase: Some("Running".into()),
        conditions: Some(conditions(&prev_conds, own, now)),
        host_ip: Some(host_ip.to_owned()),
        host_ips: Some(vec![HostIP { ip: host_ip.to_owned() }]),
        pod_ip: pod_ips.first().cloned(),
        pod_ips: (!pod_ips.is_empty()).then(|| pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time: Some(start),
        qos_class: Some(prev.qos_class.clone().unwrap_or_else(|| qos_class(&spec).to_owned())),
        init_container_statuses: (!init.is_empty()).then_some(init),
        container_statuses: Some(containers),
        ..prev
    }
}

/// The status of a pod the node did not admit (its requests do not fit): Failed, with upstream's reason
/// (e.g. `OutOfcpu`) and message.
pub(crate) fn rejected(pod: &Pod, reason: &str, message: &str) -> PodStatus {
    let prev = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    PodStatus {
        phase: Some("Failed".into()),
        reason: Some(reason.to_owned()),
        message: Some(format!("Pod was rejected: {message}")),
        qos_class: Some(prev.qos_class.clone().unwrap_or_else(|| qos_class(&spec).to_owned())),
        ..prev
    }
}

/// The status of a running pod whose containers exited with [`exit_code`]: Succeeded or Failed.
pub(crate) fn finished(pod: &Pod, now: Timestamp) -> PodStatus {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let prev = pod.status.clone().unwrap_or_default();
    let prev_conds = prev.conditions.clone().unwrap_or_default();
    let code = exit_code(pod);
    let succeeded = code == 0;
    let start = prev.start_time.clone();
    let init: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            let p = previous_status(prev.init_container_statuses.as_ref(), &c.name);
            let mut s = terminated_container(uid, c, p, 0, start.as_ref(), now);
            s.ready = !is_sidecar(c) && s.ready;
            s
        })
        .collect();
    let containers: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| {
            let p = previous_status(prev.container_statuses.as_ref(), &c.name);
            terminated_container(uid, c, p, code, start.as_ref(), now)
        })
        .collect();
    let reason = if succeeded { "PodCompleted" } else { "PodFailed" };
    let own = vec![
        condition(&prev_conds, "PodReadyToStartContainers", false, None, None, now),
        condition(&prev_conds, "Initialized", true, succeeded.then_some("PodCompleted"), None, now),
        condition(&prev_conds, "Ready", false, Some(reason), None, now),
        condition(&prev_conds, "ContainersReady", false, Some(reason), None, now),
    ];
    PodStatus {
        phase: Some(if succeeded { "Succeeded" } else { "Failed" }.into()),
        conditions: Some(conditions(&prev_conds, own, now)),
        init_container_statuses: (!init.is_empty()).then_some(init),
        container_statuses: Some(containers),
        ..prev
    }
}

#[cfg(test)]
#[path = "podstatus_tests.rs"]
mod tests;
