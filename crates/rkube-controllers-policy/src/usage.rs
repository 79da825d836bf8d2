//! ResourceQuota usage arithmetic, as upstream's `pkg/quota/v1/evaluator/core` and generic object-count
//! evaluators: which objects a quota resource name counts, what one object adds (pods' compute requests
//! and limits with init and sidecar containers, services' node ports and load balancers, claims' storage),
//! quota scopes, and the sum written to `status.used`. Pure: objects are JSON, the time is passed in.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;
use rkube_validation::quantity::{Format, Quantity};
use serde_json::Value;

/// A stored kind: `(group, resource)`, `""` for the core group.
pub type Kind = (String, String);

const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

fn core(resource: &str) -> Kind {
    (String::new(), resource.to_owned())
}

fn is_pod_compute(name: &str) -> bool {
    matches!(
        name,
        "cpu"
            | "memory"
            | "ephemeral-storage"
            | "requests.cpu"
            | "requests.memory"
            | "requests.ephemeral-storage"
            | "limits.cpu"
            | "limits.memory"
            | "limits.ephemeral-storage"
    ) || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
        // Extended resources are quota'd as `requests.<domain>/<name>`.
        || (name.starts_with("requests.") && name.contains('/') && !name.contains("kubernetes.io/"))
}

/// The kind whose objects a quota resource name counts, `None` for names no evaluator knows.
pub fn kind_of(name: &str) -> Option<Kind> {
    if name == "requests.storage" || name.contains(STORAGE_CLASS_SUFFIX) {
        return Some(core("persistentvolumeclaims"));
    }
    if name == "pods" || is_pod_compute(name) {
        return Some(core("pods"));
    }
    if name == "services.loadbalancers" || name == "services.nodeports" {
        return Some(core("services"));
    }
    if matches!(
        name,
        "services" | "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas" | "persistentvolumeclaims"
    ) {
        return Some(core(name));
    }
    let counted = name.strip_prefix("count/")?;
    Some(match counted.split_once('.') {
        Some((resource, group)) => (group.to_owned(), resource.to_owned()),
        None => core(counted),
    })
}

/// One amount: milli-units, and the suffix format of the quantity it came from (kept in the sum, as
/// upstream's `Quantity.Add` keeps the first operand's format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    /// The value in milli-units.
    pub milli: i128,
    /// How to write it.
    pub format: Format,
}

impl Amount {
    fn count(n: i128) -> Amount {
        Amount { milli: n * 1000, format: Format::DecimalSI }
    }

    fn parse(v: &Value) -> Option<Amount> {
        let q = Quantity::from_value(v).ok()?;
        Some(Amount { milli: q.milli_value()?, format: q.format() })
    }

    fn add(self, other: Amount) -> Amount {
        let format = if self.milli == 0 { other.format } else { self.format };
        Amount { milli: self.milli + other.milli, format }
    }

    /// The canonical text (`2`, `1500m`, `192Mi`), as upstream's `Quantity.String()`.
    pub fn render(&self) -> String {
        let m = self.milli;
        let text = if m % 1000 != 0 {
            format!("{m}m")
        } else if self.format == Format::BinarySI && (m / 1000) % 1024 == 0 && m != 0 {
            format!("{}Ki", m / 1000 / 1024)
        } else {
            format!("{}", m / 1000)
        };
        Quantity::parse(&text).map(|q| q.canonical()).unwrap_or(text)
    }
}

/// Parses a quantity to milli-units (for comparing stored and computed usage).
pub fn milli(v: &Value) -> Option<i128> {
    Amount::parse(v).map(|a| a.milli)
}

type Resources = BTreeMap<String, Amount>;

fn resources(c: &Value, field: &str) -> Resources {
    c.pointer(&format!("/resources/{field}"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), Amount::parse(v)?)))
        .collect()
}

fn add_all(into: &mut Resources, from: &Resources) {
    for (k, v) in from {
        let cur = into.get(k).copied();
        into.insert(k.clone(), cur.map_or(*v, |c| c.add(*v)));
    }
}

fn max_all(into: &mut Resources, from: &Resources) {
    for (k, v) in from {
        if into.get(k).is_none_or(|c| v.milli > c.milli) {
            into.insert(k.clone(), *v);
        }
    }
}

fn containers<'a>(pod: &'a Value, list: &str) -> impl Iterator<Item = &'a Value> {
    pod.pointer(&format!("/spec/{list}")).and_then(Value::as_array).into_iter().flatten()
}

/// A pod's effective requests or limits (`field`), as upstream's `PodRequests`/`PodLimits`: the containers'
/// sum, sidecars (restartable init containers) added, the largest init container step, plus overhead.
pub fn pod_resources(pod: &Value, field: &str) -> BTreeMap<String, Amount> {
    let mut total = Resources::new();
    for c in containers(pod, "containers") {
        add_all(&mut total, &resources(c, field));
    }
    let mut sidecars = Resources::new();
    let mut init = Resources::new();
    for c in containers(pod, "initContainers") {
        let own = resources(c, field);
        let step = if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            add_all(&mut total, &own);
            add_all(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut step = own;
            add_all(&mut step, &sidecars);
            step
        };
        max_all(&mut init, &step);
    }
    max_all(&mut total, &init);
    let overhead: Resources = pod
        .pointer("/spec/overhead")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), Amount::parse(v)?)))
        .collect();
    if field == "requests" {
        add_all(&mut total, &overhead);
    } else {
        // Overhead raises only limits that are set.
        for (k, v) in &overhead {
            if let Some(cur) = total.get(k).copied() {
                total.insert(k.clone(), cur.add(*v));
            }
        }
    }
    total
}

fn timestamp(v: Option<&Value>) -> Option<Timestamp> {
    v?.as_str()?.parse().ok()
}

/// Whether a pod is charged for compute and `pods` (upstream's `QuotaV1Pod`): not terminal, and not
/// stuck terminating past its grace period.
pub fn pod_is_charged(pod: &Value, now: Timestamp) -> bool {
    if matches!(pod.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed")) {
        return false;
    }
    let deleted = timestamp(pod.pointer("/metadata/deletionTimestamp"));
    let grace = pod.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64);
    match (deleted, grace) {
        (Some(at), Some(g)) => now.as_second() <= at.as_second() + g,
        _ => true,
    }
}

fn pod_usage(pod: &Value, name: &str, now: Timestamp) -> Option<Amount> {
    if name == "count/pods" {
        return Some(Amount::count(1));
    }
    if !pod_is_charged(pod, now) {
        return None;
    }
    if name == "pods" {
        return Some(Amount::count(1));
    }
    let (field, resource) = match name.split_once('.') {
        Some(("requests", r)) => ("requests", r),
        Some(("limits", r)) => ("limits", r),
        _ => ("requests", name),
    };
    pod_resources(pod, field).get(resource).copied()
}

fn service_usage(svc: &Value, name: &str) -> Option<Amount> {
    let ty = svc.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP");
    let ports: Vec<&Value> = svc.pointer("/spec/ports").and_then(Value::as_array).into_iter().flatten().collect();
    match name {
        "services.loadbalancers" => (ty == "LoadBalancer").then(|| Amount::count(1)),
        "services.nodeports" => match ty {
            "NodePort" => Some(Amount::count(ports.len() as i128)),
            "LoadBalancer" if svc.pointer("/spec/allocateLoadBalancerNodePorts") == Some(&Value::Bool(false)) => {
                let with = ports.iter().filter(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0);
                Some(Amount::count(with.count() as i128))
            }
            "LoadBalancer" => Some(Amount::count(ports.len() as i128)),
            _ => None,
        },
        _ => Some(Amount::count(1)),
    }
}

fn claim_usage(pvc: &Value, name: &str) -> Option<Amount> {
    let class = pvc
        .pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
        .or_else(|| pvc.pointer("/spec/storageClassName"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (scoped_class, what) = match name.split_once(STORAGE_CLASS_SUFFIX) {
        Some((c, w)) => (Some(c), w),
        None => (None, name),
    };
    if scoped_class.is_some_and(|c| c != class) {
        return None;
    }
    if what != "requests.storage" {
        return Some(Amount::count(1));
    }
    // What the claim asked for, or what was allocated when an expansion is under way.
    let asked = pvc.pointer("/spec/resources/requests/storage").and_then(Amount::parse);
    let allocated = pvc.pointer("/status/allocatedResources/storage").and_then(Amount::parse);
    match (asked, allocated) {
        (Some(a), Some(b)) if b.milli > a.milli => Some(b),
        (a, b) => a.or(b),
    }
}

/// What one object of `kind` adds to the quota resource `name`.
pub fn object_usage(kind: &Kind, obj: &Value, name: &str, now: Timestamp) -> Option<Amount> {
    match (kind.0.as_str(), kind.1.as_str()) {
        ("", "pods") => pod_usage(obj, name, now),
        ("", "services") => service_usage(obj, name),
        ("", "persistentvolumeclaims") => claim_usage(obj, name),
        _ => Some(Amount::count(1)),
    }
}

fn is_best_effort(pod: &Value) -> bool {
    containers(pod, "containers").chain(containers(pod, "initContainers")).all(|c| {
        ["requests", "limits"].iter().all(|f| {
            c.pointer(&format!("/resources/{f}"))
                .and_then(Value::as_object)
                .is_none_or(|m| !m.keys().any(|k| k == "cpu" || k == "memory"))
        })
    })
}

/// One scope term of a quota: `spec.scopes` entries and `spec.scopeSelector.matchExpressions`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeTerm {
    /// `Terminating`, `NotTerminating`, `BestEffort`, `NotBestEffort`, `PriorityClass`, ...
    pub scope: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub operator: String,
    /// Values for `In`/`NotIn`.
    pub values: Vec<String>,
}

/// The quota's scope terms.
pub fn scopes(quota: &Value) -> Vec<ScopeTerm> {
    let mut out: Vec<ScopeTerm> = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| ScopeTerm { scope: s.to_owned(), operator: "Exists".into(), values: Vec::new() })
        .collect();
    for e in quota.pointer("/spec/scopeSelector/matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        out.push(ScopeTerm {
            scope: e.get("scopeName").and_then(Value::as_str).unwrap_or_default().to_owned(),
            operator: e.get("operator").and_then(Value::as_str).unwrap_or_default().to_owned(),
            values: e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
        });
    }
    out
}

fn pod_matches(pod: &Value, term: &ScopeTerm) -> bool {
    let terminating = pod.pointer("/spec/activeDeadlineSeconds").and_then(Value::as_i64).is_some_and(|d| d >= 0);
    match term.scope.as_str() {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        "PriorityClass" => {
            let class = pod.pointer("/spec/priorityClassName").and_then(Value::as_str).unwrap_or_default();
            match term.operator.as_str() {
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                "In" => term.values.iter().any(|v| v == class),
                "NotIn" => !term.values.iter().any(|v| v == class),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether an object of `kind` falls under the quota's scopes: scopes select pods only (other kinds'
/// evaluators match no scope, as upstream's).
pub fn in_scope(kind: &Kind, obj: &Value, terms: &[ScopeTerm]) -> bool {
    if terms.is_empty() {
        return true;
    }
    *kind == core("pods") && terms.iter().all(|t| pod_matches(obj, t))
}

/// The kinds whose objects the quota's `spec.hard` counts.
pub fn kinds_needed(quota: &Value) -> BTreeSet<Kind> {
    hard_names(quota).iter().filter_map(|n| kind_of(n)).collect()
}

fn hard_names(quota: &Value) -> Vec<String> {
    quota.pointer("/spec/hard").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// `status.used` for the quota: for every name in `spec.hard` an evaluator knows, the sum over
/// `objects(kind)` (the namespace's objects of that kind) in scope, `0` when nothing counts.
pub fn used<'a, F>(quota: &Value, mut objects: F, now: Timestamp) -> BTreeMap<String, Amount>
where
    F: FnMut(&Kind) -> &'a [Value],
{
    let terms = scopes(quota);
    let mut out = BTreeMap::new();
    for name in hard_names(quota) {
        let Some(kind) = kind_of(&name) else { continue };
        let mut sum = Amount::count(0);
        for obj in objects(&kind).iter().filter(|o| in_scope(&kind, o, &terms)) {
            if let Some(a) = object_usage(&kind, obj, &name, now) {
                sum = sum.add(a);
            }
        }
        out.insert(name, sum);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::from_second(1_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn pod(cpu: &str, mem: &str, phase: &str) -> Value {
        json!({
            "metadata": { "name": "p" },
            "spec": { "containers": [
                { "name": "a",
                  "resources": { "requests": { "cpu": cpu, "memory": mem }, "limits": { "memory": mem } } },
                { "name": "b", "resources": { "requests": { "cpu": "100m" } } },
            ] },
            "status": { "phase": phase },
        })
    }

    fn used_of(quota: &Value, objs: &BTreeMap<Kind, Vec<Value>>) -> BTreeMap<String, String> {
        used(quota, |k| objs.get(k).map_or(&[][..], Vec::as_slice), now())
            .into_iter()
            .map(|(k, v)| (k, v.render()))
            .collect()
    }

    #[test]
    fn names_map_to_kinds() {
        assert_eq!(kind_of("pods"), Some(core("pods")));
        assert_eq!(kind_of("requests.cpu"), Some(core("pods")));
        assert_eq!(kind_of("requests.nvidia.com/gpu"), Some(core("pods")));
        assert_eq!(kind_of("requests.storage"), Some(core("persistentvolumeclaims")));
        assert_eq!(kind_of("gold.storageclass.storage.k8s.io/requests.storage"), Some(core("persistentvolumeclaims")));
        assert_eq!(kind_of("services.nodeports"), Some(core("services")));
        assert_eq!(kind_of("count/deployments.apps"), Some(("apps".into(), "deployments".into())));
        assert_eq!(kind_of("count/widgets.example.com"), Some(("example.com".into(), "widgets".into())));
        assert_eq!(kind_of("count/configmaps"), Some(core("configmaps")));
        assert_eq!(kind_of("bogus"), None);
    }

    #[test]
    fn pods_add_up_and_terminal_pods_count_only_as_objects() {
        let quota = json!({ "spec": { "hard": {
            "pods": "10", "count/pods": "10", "requests.cpu": "4", "cpu": "4", "requests.memory": "1Gi",
            "limits.memory": "1Gi", "limits.cpu": "4", "configmaps": "5",
        } } });
        let objs = BTreeMap::from([(
            core("pods"),
            vec![pod("500m", "64Mi", "Running"), pod("1", "128Mi", "Pending"), pod("2", "1Gi", "Succeeded")],
        )]);
        let u = used_of(&quota, &objs);
        assert_eq!(u["pods"], "2");
        assert_eq!(u["count/pods"], "3");
        assert_eq!(u["requests.cpu"], "1700m");
        assert_eq!(u["cpu"], "1700m");
        assert_eq!(u["requests.memory"], "192Mi");
        assert_eq!(u["limits.memory"], "192Mi");
        assert_eq!(u["limits.cpu"], "0");
        assert_eq!(u["configmaps"], "0");
    }

    #[test]
    fn init_containers_sidecars_and_overhead() {
        let p = json!({ "spec": {
            "containers": [{ "resources": { "requests": { "cpu": "1" } } }],
            "initContainers": [
                { "restartPolicy": "Always", "resources": { "requests": { "cpu": "500m" } } },
                { "resources": { "requests": { "cpu": "3" } } },
            ],
            "overhead": { "cpu": "250m" },
        } });
        // max(1 + 0.5 sidecar, 3 + 0.5 sidecar before it) + 0.25 overhead
        assert_eq!(pod_resources(&p, "requests")["cpu"].render(), "3750m");
    }

    #[test]
    fn services_claims_and_scopes() {
        let quota = json!({ "spec": { "hard": {
            "services": "9", "services.nodeports": "9", "services.loadbalancers": "9",
            "requests.storage": "10Gi", "persistentvolumeclaims": "9",
            "gold.storageclass.storage.k8s.io/requests.storage": "9Gi",
        } } });
        let objs = BTreeMap::from([
            (
                core("services"),
                vec![
                    json!({ "spec": { "type": "NodePort", "ports": [{ "port": 1 }, { "port": 2 }] } }),
                    json!({ "spec": { "type": "LoadBalancer", "ports": [{ "port": 1 }] } }),
                    json!({ "spec": { "ports": [{ "port": 1 }] } }),
                ],
            ),
            (
                core("persistentvolumeclaims"),
                vec![
                    json!({ "spec": { "storageClassName": "gold",
                                      "resources": { "requests": { "storage": "1Gi" } } } }),
                    json!({ "spec": { "resources": { "requests": { "storage": "512Mi" } } } }),
                ],
            ),
        ]);
        let u = used_of(&quota, &objs);
        assert_eq!(u["services"], "3");
        assert_eq!(u["services.nodeports"], "3");
        assert_eq!(u["services.loadbalancers"], "1");
        assert_eq!(u["requests.storage"], "1536Mi");
        assert_eq!(u["persistentvolumeclaims"], "2");
        assert_eq!(u["gold.storageclass.storage.k8s.io/requests.storage"], "1Gi");

        let best_effort = json!({ "spec": { "containers": [{ "name": "a" }] } });
        let burstable = pod("1", "1Mi", "Running");
        let q = json!({ "spec": { "hard": { "pods": "5" }, "scopes": ["BestEffort"] } });
        let objs = BTreeMap::from([(core("pods"), vec![best_effort.clone(), burstable.clone()])]);
        assert_eq!(used_of(&q, &objs)["pods"], "1");
        let q = json!({ "spec": { "hard": { "pods": "5" }, "scopeSelector": { "matchExpressions": [
            { "scopeName": "PriorityClass", "operator": "In", "values": ["high"] } ] } } });
        let mut high = best_effort;
        high["spec"]["priorityClassName"] = json!("high");
        let objs = BTreeMap::from([(core("pods"), vec![high, burstable])]);
        assert_eq!(used_of(&q, &objs)["pods"], "1");
    }

    #[test]
    fn stuck_terminating_pods_are_not_charged() {
        let mut p = pod("1", "1Mi", "Running");
        p["metadata"]["deletionTimestamp"] = json!("1970-01-12T13:45:00Z"); // 999_900
        p["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        assert!(!pod_is_charged(&p, now()));
        p["metadata"]["deletionGracePeriodSeconds"] = json!(300);
        assert!(pod_is_charged(&p, now()));
    }
}
