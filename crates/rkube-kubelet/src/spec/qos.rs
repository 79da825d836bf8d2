//! A pod's QoS class (upstream's `qos.GetPodQOS`) and the OOM score adjustment of its containers
//! (`qos.GetContainerOOMScoreAdjust`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::quantity;

/// The QoS classes, as `status.qosClass` spells them.
pub(crate) const GUARANTEED: &str = "Guaranteed";
/// See [`GUARANTEED`].
pub(crate) const BURSTABLE: &str = "Burstable";
/// See [`GUARANTEED`].
pub(crate) const BEST_EFFORT: &str = "BestEffort";

/// Upstream's score for guaranteed (and node-critical) containers.
const GUARANTEED_OOM_SCORE_ADJ: i64 = -997;
/// Upstream's score for best-effort containers.
const BEST_EFFORT_OOM_SCORE_ADJ: i64 = 1000;
/// Upstream's memory request assumed for a container that requests none, where requests are compared.
const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;
/// `scheduling.SystemCriticalPriority`: pods at or above it are critical.
const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// The QoS class: the one recorded in `status.qosClass` (it never changes once set), else computed from
/// the cpu and memory requests and limits of all containers, init containers included: BestEffort when
/// none is set, Guaranteed when every container has cpu and memory limits and the pod's summed requests
/// equal its summed limits, Burstable otherwise.
pub(crate) fn qos_class(pod: &Pod) -> &'static str {
    match pod.status.as_ref().and_then(|s| s.qos_class.as_deref()) {
        Some(GUARANTEED) => return GUARANTEED,
        Some(BURSTABLE) => return BURSTABLE,
        Some(BEST_EFFORT) => return BEST_EFFORT,
        _ => {}
    }
    compute(pod)
}

fn compute(pod: &Pod) -> &'static str {
    const TRACKED: [&str; 2] = ["cpu", "memory"];
    let Some(spec) = pod.spec.as_ref() else { return BEST_EFFORT };
    let mut requests: BTreeMap<&str, i64> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i64> = BTreeMap::new();
    let mut guaranteed = true;
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        let res = c.resources.as_ref();
        let lim = res.and_then(|r| r.limits.as_ref());
        // Requests default to limits in the API; repeated here for pods that skipped defaulting.
        let req = |name: &str| {
            res.and_then(|r| r.requests.as_ref()).and_then(|r| r.get(name)).or_else(|| lim.and_then(|l| l.get(name)))
        };
        let mut limits_found = 0;
        for name in TRACKED {
            if let Some(q) = req(name).filter(|q| quantity::is_positive(q)) {
                *requests.entry(name).or_default() += quantity::milli_value(q);
            }
            if let Some(q) = lim.and_then(|l| l.get(name)).filter(|q| quantity::is_positive(q)) {
                *limits.entry(name).or_default() += quantity::milli_value(q);
                limits_found += 1;
            }
        }
        if limits_found != TRACKED.len() {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return BEST_EFFORT;
    }
    if guaranteed && requests.len() == limits.len() && requests.iter().all(|(k, v)| limits.get(k) == Some(v)) {
        GUARANTEED
    } else {
        BURSTABLE
    }
}

/// Whether the pod is node-critical (`system-node-critical` with a critical priority, or a static pod of
/// that class): such pods are killed last.
fn is_node_critical(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return false };
    if spec.priority_class_name.as_deref() != Some("system-node-critical") {
        return false;
    }
    let is_static = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubernetes.io/config.source"))
        .is_some_and(|source| source != "api");
    is_static || spec.priority.is_some_and(|p| p >= SYSTEM_CRITICAL_PRIORITY)
}

fn memory_request(c: &Container) -> Option<i64> {
    let res = c.resources.as_ref()?;
    let q = res
        .requests
        .as_ref()
        .and_then(|r| r.get("memory"))
        .or_else(|| res.limits.as_ref().and_then(|l| l.get("memory")))?;
    Some(quantity::value(q))
}

fn is_sidecar(pod: &Pod, c: &Container) -> bool {
    let inits = pod.spec.as_ref().and_then(|s| s.init_containers.as_ref());
    inits.is_some_and(|i| i.iter().any(|i| i.name == c.name)) && c.restart_policy.as_deref() == Some("Always")
}

/// The container's `oom_score_adj` as upstream computes it: -997 for guaranteed and node-critical pods,
/// 1000 for best-effort ones, and for burstable ones `1000 - 1000 × request / capacity` kept within
/// [3, 999] (a sidecar scores from the smaller of its and the regular containers' memory requests, and
/// one more when that is its own, so it dies before them).
pub(crate) fn upstream_oom_score_adj(pod: &Pod, container: &Container, memory_capacity: i64) -> i64 {
    if is_node_critical(pod) {
        return GUARANTEED_OOM_SCORE_ADJ;
    }
    match qos_class(pod) {
        GUARANTEED => return GUARANTEED_OOM_SCORE_ADJ,
        BEST_EFFORT => return BEST_EFFORT_OOM_SCORE_ADJ,
        _ => {}
    }
    let capacity = memory_capacity.max(1);
    let score_for = |request: i64| 1000 - i64::try_from(1000 * i128::from(request) / i128::from(capacity)).unwrap_or(0);
    let own = memory_request(container).unwrap_or(0);
    let mut score = score_for(own);
    if is_sidecar(pod, container) {
        let own_or_default = memory_request(container).unwrap_or(DEFAULT_MEMORY_REQUEST);
        let regular_min = pod
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .map(|c| memory_request(c).unwrap_or(DEFAULT_MEMORY_REQUEST))
            .min();
        let min = regular_min.map_or(own_or_default, |m| m.min(own_or_default));
        score = score_for(min);
        if min <= own {
            score += 1;
        }
    }
    if score < 1000 + GUARANTEED_OOM_SCORE_ADJ {
        return 1000 + GUARANTEED_OOM_SCORE_ADJ;
    }
    if score == BEST_EFFORT_OOM_SCORE_ADJ {
        return score - 1;
    }
    score
}

/// What the kubelet asks the runtime for: upstream's score, but never below 0. This VM's kernel refuses
/// negative `oom_score_adj` for unprivileged writers (containerd runs with `restrict_oom_score_adj`, which
/// would clamp it anyway); guaranteed and node-critical containers get 0, still below every burstable (≥ 3)
/// and best-effort (1000) container, so the kill order upstream wants is kept among pods.
pub(crate) fn oom_score_adj(pod: &Pod, container: &Container, memory_capacity: i64) -> i64 {
    upstream_oom_score_adj(pod, container, memory_capacity).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::testutil::pod;
    use serde_json::json;

    fn res(requests: serde_json::Value, limits: serde_json::Value) -> serde_json::Value {
        json!({"requests": requests, "limits": limits})
    }

    #[test]
    fn qos_class_follows_upstream_rules() {
        let cases = [
            ("no resources", json!([{"name": "a"}]), json!([]), BEST_EFFORT),
            (
                "equal requests and limits",
                json!([{"name": "a", "resources": res(json!({"cpu": "1", "memory": "1Gi"}), json!({"cpu": "1", "memory": "1Gi"}))}]),
                json!([]),
                GUARANTEED,
            ),
            (
                "limits only (requests default to them)",
                json!([{"name": "a", "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}]),
                json!([]),
                GUARANTEED,
            ),
            (
                "equal in different units",
                json!([{"name": "a", "resources": res(json!({"cpu": "1000m", "memory": "1024Mi"}), json!({"cpu": "1", "memory": "1Gi"}))}]),
                json!([]),
                GUARANTEED,
            ),
            (
                "requests below limits",
                json!([{"name": "a", "resources": res(json!({"cpu": "500m", "memory": "1Gi"}), json!({"cpu": "1", "memory": "1Gi"}))}]),
                json!([]),
                BURSTABLE,
            ),
            (
                "cpu only",
                json!([{"name": "a", "resources": res(json!({"cpu": "1"}), json!({"cpu": "1"}))}]),
                json!([]),
                BURSTABLE,
            ),
            (
                "one container without limits",
                json!([
                    {"name": "a", "resources": res(json!({"cpu": "1", "memory": "1Gi"}), json!({"cpu": "1", "memory": "1Gi"}))},
                    {"name": "b"}
                ]),
                json!([]),
                BURSTABLE,
            ),
            (
                "init container without limits",
                json!([{"name": "a", "resources": res(json!({"cpu": "1", "memory": "1Gi"}), json!({"cpu": "1", "memory": "1Gi"}))}]),
                json!([{"name": "i"}]),
                BURSTABLE,
            ),
            (
                "init container with a request only",
                json!([{"name": "a"}]),
                json!([{"name": "i", "resources": {"requests": {"memory": "10Mi"}}}]),
                BURSTABLE,
            ),
            (
                "zero quantities ignored",
                json!([{"name": "a", "resources": res(json!({"cpu": "0"}), json!({"memory": "0"}))}]),
                json!([]),
                BEST_EFFORT,
            ),
            (
                "extended resources do not count",
                json!([{"name": "a", "resources": res(json!({"example.com/gpu": "1"}), json!({"example.com/gpu": "1"}))}]),
                json!([]),
                BEST_EFFORT,
            ),
        ];
        for (name, containers, inits, want) in cases {
            let p = pod(json!({"spec": {"containers": containers, "initContainers": inits}}));
            assert_eq!(qos_class(&p), want, "{name}");
        }
    }

    #[test]
    fn recorded_qos_class_wins() {
        let p = pod(json!({"spec": {"containers": [{"name": "a"}]}, "status": {"qosClass": "Burstable"}}));
        assert_eq!(qos_class(&p), BURSTABLE);
    }

    #[test]
    fn oom_score_adj_per_class() {
        const GI: i64 = 1 << 30;
        let burstable = |mem: &str| {
            pod(json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"memory": mem}}}]}}))
        };
        let cases = [
            ("best effort", pod(json!({"spec": {"containers": [{"name": "a"}]}})), 1000, 1000),
            (
                "guaranteed",
                pod(
                    json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}),
                ),
                -997,
                0,
            ),
            ("burstable 10%", burstable("409.6Mi"), 900, 900),
            ("burstable tiny request", burstable("1"), 999, 999),
            ("burstable huge request", burstable("8Gi"), 3, 3),
            (
                "node critical",
                pod(json!({"spec": {"priorityClassName": "system-node-critical", "priority": 2000001000,
                    "containers": [{"name": "a"}]}})),
                -997,
                0,
            ),
        ];
        for (name, p, upstream, ours) in cases {
            let c = &p.spec.as_ref().unwrap().containers[0];
            assert_eq!(upstream_oom_score_adj(&p, c, 4 * GI), upstream, "{name}");
            assert_eq!(oom_score_adj(&p, c, 4 * GI), ours, "{name}");
        }
    }

    #[test]
    fn sidecar_scores_at_least_as_high_as_regular_containers() {
        const GI: i64 = 1 << 30;
        let p = pod(json!({"spec": {
            "initContainers": [{"name": "side", "restartPolicy": "Always", "resources": {"requests": {"memory": "1Gi"}}}],
            "containers": [{"name": "a", "resources": {"requests": {"memory": "512Mi"}}}]
        }}));
        let spec = p.spec.as_ref().unwrap();
        let side = &spec.init_containers.as_ref().unwrap()[0];
        let regular = &spec.containers[0];
        assert_eq!(upstream_oom_score_adj(&p, regular, 4 * GI), 875);
        // min(1Gi, 512Mi) = 512Mi → 875, +1 because the minimum is not above its own request.
        assert_eq!(upstream_oom_score_adj(&p, side, 4 * GI), 876);
    }
}
