//! Resource arithmetic as the scheduler sees it: a pod's effective requests (containers, sidecars, init
//! containers and overhead, as upstream's `PodRequests`), the "non-zero" requests scoring uses, and a node's
//! allocatable resources.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Upstream's default cpu request (millicores) assumed for scoring a container that requests none.
pub(crate) const DEFAULT_MILLI_CPU: i64 = 100;
/// Upstream's default memory request (bytes) assumed for scoring a container that requests none.
pub(crate) const DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

/// A vector of resources: cpu in millicores, the rest in whole units (bytes, devices).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Resources {
    pub(crate) milli_cpu: i64,
    pub(crate) memory: i64,
    pub(crate) ephemeral_storage: i64,
    /// Extended resources, hugepages and any other named resource.
    pub(crate) scalar: BTreeMap<String, i64>,
}

fn value_of(name: &str, q: &Quantity) -> i64 {
    let Ok(parsed) = rkube_validation::quantity::Quantity::parse(&q.0) else { return 0 };
    let Some(milli) = parsed.milli_value() else { return i64::MAX };
    let v = if name == "cpu" { milli } else { (milli + 999).div_euclid(1000) };
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Resources {
    /// Resources read from a requests/allocatable map; `pods` is skipped (a node's pod count is separate).
    pub(crate) fn from_map(map: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let mut r = Resources::default();
        for (name, q) in map.into_iter().flatten() {
            r.set(name, value_of(name, q));
        }
        r
    }

    fn set(&mut self, name: &str, v: i64) {
        match name {
            "cpu" => self.milli_cpu = v,
            "memory" => self.memory = v,
            "ephemeral-storage" => self.ephemeral_storage = v,
            "pods" => {}
            other => {
                self.scalar.insert(other.to_owned(), v);
            }
        }
    }

    /// Adds `other` dimension by dimension.
    pub(crate) fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) += v;
        }
    }

    /// Subtracts `other` dimension by dimension (removing a pod).
    pub(crate) fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        for (k, v) in &other.scalar {
            if let Some(e) = self.scalar.get_mut(k) {
                *e -= v;
                if *e == 0 {
                    self.scalar.remove(k);
                }
            }
        }
    }

    /// Takes the larger of each dimension (init containers run one at a time).
    fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }

    /// Whether nothing at all is requested.
    pub(crate) fn is_zero(&self) -> bool {
        self.milli_cpu == 0 && self.memory == 0 && self.ephemeral_storage == 0 && self.scalar.values().all(|v| *v == 0)
    }

    /// The amount of one named resource.
    pub(crate) fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }
}

fn container_requests(c: &Container) -> Resources {
    Resources::from_map(c.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Combines per-container vectors as upstream's `PodRequests`: regular containers and sidecars add up,
/// each init container needs its own request plus the sidecars started before it, the largest wins, and
/// the pod overhead comes on top.
fn combine(spec: &PodSpec, each: impl Fn(&Container) -> Resources) -> Resources {
    let mut total = Resources::default();
    for c in &spec.containers {
        total.add(&each(c));
    }
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let r = each(c);
        if is_sidecar(c) {
            sidecars.add(&r);
            init_max.max_with(&sidecars);
        } else {
            let mut with_sidecars = r;
            with_sidecars.add(&sidecars);
            init_max.max_with(&with_sidecars);
        }
    }
    total.add(&sidecars);
    total.max_with(&init_max);
    if let Some(overhead) = spec.overhead.as_ref() {
        total.add(&Resources::from_map(Some(overhead)));
    }
    total
}

/// A pod's effective requests.
pub(crate) fn pod_requests(spec: &PodSpec) -> Resources {
    combine(spec, container_requests)
}

/// The (cpu, memory) requests scoring uses: a container that requests no cpu (memory) counts as 100m (200Mi).
pub(crate) fn pod_non_zero_requests(spec: &PodSpec) -> (i64, i64) {
    let r = combine(spec, |c| {
        let mut r = container_requests(c);
        let reqs = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        if !reqs.is_some_and(|m| m.contains_key("cpu")) {
            r.milli_cpu = DEFAULT_MILLI_CPU;
        }
        if !reqs.is_some_and(|m| m.contains_key("memory")) {
            r.memory = DEFAULT_MEMORY;
        }
        Resources { scalar: BTreeMap::new(), ephemeral_storage: 0, ..r }
    });
    (r.milli_cpu, r.memory)
}

/// A node's allocatable resources and how many pods it takes.
pub(crate) fn node_allocatable(node: &Node) -> (Resources, i64) {
    let status = node.status.as_ref();
    let map = status.and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()));
    let pods = map.and_then(|m| m.get("pods")).map_or(0, |q| value_of("pods", q));
    (Resources::from_map(map), pods)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn requests_take_the_larger_of_containers_and_init_containers_plus_overhead() {
        let s = spec(json!({
            "initContainers": [
                {"name": "i1", "resources": {"requests": {"cpu": "2", "memory": "1G"}}},
                {"name": "i2", "resources": {"requests": {"cpu": "2", "memory": "3G"}}}
            ],
            "containers": [
                {"name": "c1", "resources": {"requests": {"cpu": "2", "memory": "1G"}}},
                {"name": "c2", "resources": {"requests": {"cpu": "1", "memory": "1G", "example.com/gpu": "1"}}}
            ],
            "overhead": {"cpu": "250m"}
        }));
        let r = pod_requests(&s);
        assert_eq!(r.milli_cpu, 3250);
        assert_eq!(r.memory, 3_000_000_000);
        assert_eq!(r.get("example.com/gpu"), 1);
    }

    #[test]
    fn sidecars_add_to_the_containers_and_to_later_init_containers() {
        let s = spec(json!({
            "initContainers": [
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
                {"name": "init", "resources": {"requests": {"cpu": "5"}}}
            ],
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]
        }));
        assert_eq!(pod_requests(&s).milli_cpu, 6000);
    }

    #[test]
    fn scoring_counts_defaults_for_containers_without_requests() {
        let s = spec(json!({"containers": [
            {"name": "a"},
            {"name": "b", "resources": {"requests": {"cpu": "500m"}}}
        ]}));
        assert_eq!(pod_non_zero_requests(&s), (600, 2 * DEFAULT_MEMORY));
        assert!(pod_requests(&s).memory == 0);
    }
}
