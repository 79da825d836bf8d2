//! The kubelet's resource admission: a pod starts only if its requests fit in what the node's allocatable
//! leaves after the pods already admitted; otherwise it fails with `OutOf<resource>`, as upstream's kubelet
//! rejects pods a scheduler placed wrongly. That makes over-commitment by the scheduler visible.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Amounts per resource name, in thousandths (CPU millicores; bytes × 1000 for memory).
pub(crate) type Amounts = BTreeMap<String, i128>;

fn milli(q: &Quantity) -> i128 {
    rkube_validation::Quantity::parse(&q.0).ok().and_then(|q| q.milli_value()).unwrap_or(0)
}

/// Parses a resource list (e.g. allocatable) into [`Amounts`].
pub(crate) fn amounts<'a>(list: impl IntoIterator<Item = (&'a String, &'a Quantity)>) -> Amounts {
    list.into_iter().map(|(k, v)| (k.clone(), milli(v))).collect()
}

fn container_requests(c: &Container) -> Amounts {
    let res = c.resources.clone().unwrap_or_default();
    let mut req = amounts(res.requests.iter().flatten());
    // Requests default to limits (API defaulting); done here in case the pod was not defaulted.
    for (k, v) in amounts(res.limits.iter().flatten()) {
        req.entry(k).or_insert(v);
    }
    req
}

fn add(into: &mut Amounts, from: &Amounts) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

fn max_into(into: &mut Amounts, from: &Amounts) {
    for (k, v) in from {
        let e = into.entry(k.clone()).or_default();
        *e = (*e).max(*v);
    }
}

/// What a pod requests of its node, as upstream computes it: the regular containers plus the sidecars
/// (restartable init containers), or the largest init container step if more, plus the pod overhead.
pub(crate) fn pod_requests(spec: &PodSpec) -> Amounts {
    let mut regular = Amounts::new();
    for c in &spec.containers {
        add(&mut regular, &container_requests(c));
    }
    let mut sidecars = Amounts::new();
    let mut init_max = Amounts::new();
    for c in spec.init_containers.iter().flatten() {
        let req = container_requests(c);
        if c.restart_policy.as_deref() == Some("Always") {
            add(&mut sidecars, &req);
            max_into(&mut init_max, &sidecars);
        } else {
            let mut step = sidecars.clone();
            add(&mut step, &req);
            max_into(&mut init_max, &step);
        }
    }
    add(&mut regular, &sidecars);
    max_into(&mut regular, &init_max);
    add(&mut regular, &amounts(spec.overhead.iter().flatten()));
    regular.retain(|_, v| *v > 0);
    regular
}

/// Why a pod was not admitted: `reason` (e.g. `OutOfcpu`) and the message after "Pod was rejected: ".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) reason: String,
    pub(crate) message: String,
}

/// The pods one node admitted and what they use.
#[derive(Debug, Default)]
pub(crate) struct NodeUsage {
    pods: HashMap<String, Amounts>,
    used: Amounts,
}

/// Upstream reports CPU in millicores and everything else in whole units.
fn shown(resource: &str, v: i128) -> i128 {
    if resource == "cpu" { v } else { (v + 999).div_euclid(1000) }
}

impl NodeUsage {
    /// Admits pod `uid` with `requests` if it fits in `allocatable` (a pod admitted before is admitted again).
    pub(crate) fn admit(&mut self, uid: &str, requests: Amounts, allocatable: &Amounts) -> Result<(), Rejection> {
        if self.pods.contains_key(uid) {
            return Ok(());
        }
        let cap = |r: &str| allocatable.get(r).copied().unwrap_or(0);
        let max_pods = cap("pods") / 1000;
        if self.pods.len() as i128 + 1 > max_pods {
            return Err(Rejection {
                reason: "OutOfpods".into(),
                message: format!(
                    "Node didn't have enough resource: pods, requested: 1, used: {}, capacity: {max_pods}",
                    self.pods.len()
                ),
            });
        }
        // cpu, memory and ephemeral-storage first, as upstream checks them, then the rest by name.
        let mut order: Vec<&String> = requests.keys().collect();
        order.sort_by_key(|r| (["cpu", "memory", "ephemeral-storage"].iter().position(|x| x == r).unwrap_or(3), *r));
        for r in order {
            let want = requests[r];
            let used = self.used.get(r).copied().unwrap_or(0);
            if r != "pods" && used + want > cap(r) {
                return Err(Rejection {
                    reason: format!("OutOf{r}"),
                    message: format!(
                        "Node didn't have enough resource: {r}, requested: {}, used: {}, capacity: {}",
                        shown(r, want),
                        shown(r, used),
                        shown(r, cap(r))
                    ),
                });
            }
        }
        self.account(uid, requests);
        Ok(())
    }

    /// Counts pod `uid` without checking (a pod that was running before this process started).
    pub(crate) fn account(&mut self, uid: &str, requests: Amounts) {
        if self.pods.contains_key(uid) {
            return;
        }
        add(&mut self.used, &requests);
        self.pods.insert(uid.to_owned(), requests);
    }

    /// Forgets pod `uid` (it ended or was deleted).
    pub(crate) fn release(&mut self, uid: &str) {
        if let Some(req) = self.pods.remove(uid) {
            for (k, v) in req {
                if let Some(u) = self.used.get_mut(&k) {
                    *u -= v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).unwrap()
    }

    fn alloc(cpu: &str, memory: &str, pods: &str) -> Amounts {
        let q = |s: &str| Quantity(s.to_owned());
        let list: BTreeMap<String, Quantity> =
            [("cpu".to_owned(), q(cpu)), ("memory".to_owned(), q(memory)), ("pods".to_owned(), q(pods))].into();
        amounts(&list)
    }

    #[test]
    fn requests_as_upstream() {
        let s = spec(json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                {"name": "b", "resources": {"limits": {"cpu": "200m"}}}
            ],
            "initContainers": [
                {"name": "big", "resources": {"requests": {"cpu": "1"}}},
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}}
            ],
            "overhead": {"cpu": "10m"}
        }));
        let r = pod_requests(&s);
        // max(100m + 200m + 50m sidecar, 1 init) + 10m overhead
        assert_eq!(r["cpu"], 1010);
        assert_eq!(r["memory"], 64 * 1024 * 1024 * 1000);
        assert!(pod_requests(&spec(json!({"containers": [{"name": "x"}]}))).is_empty());
    }

    #[test]
    fn admits_until_full() {
        let a = alloc("1", "1Gi", "3");
        let mut u = NodeUsage::default();
        let half =
            pod_requests(&spec(json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "500m"}}}]})));
        u.admit("p1", half.clone(), &a).unwrap();
        u.admit("p1", half.clone(), &a).unwrap();
        u.admit("p2", half.clone(), &a).unwrap();
        let e = u.admit("p3", half.clone(), &a).unwrap_err();
        assert_eq!(e.reason, "OutOfcpu");
        assert_eq!(e.message, "Node didn't have enough resource: cpu, requested: 500, used: 1000, capacity: 1000");
        u.release("p1");
        u.admit("p3", half, &a).unwrap();
        u.admit("p4", Amounts::new(), &a).unwrap();
        let e = u.admit("p5", Amounts::new(), &a).unwrap_err();
        assert_eq!(e.reason, "OutOfpods");
        assert_eq!(e.message, "Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3");
        let gpu: Amounts = [("nvidia.com/gpu".to_owned(), 1000)].into();
        u.release("p4");
        let e = u.admit("p6", gpu, &a).unwrap_err();
        assert_eq!(e.reason, "OutOfnvidia.com/gpu");
        assert!(e.message.ends_with("requested: 1, used: 0, capacity: 0"), "{}", e.message);
        let mem: Amounts = [("memory".to_owned(), 2 * 1024 * 1024 * 1024 * 1000)].into();
        let e = u.admit("p7", mem, &a).unwrap_err();
        assert_eq!(
            e.message,
            "Node didn't have enough resource: memory, requested: 2147483648, used: 0, capacity: 1073741824"
        );
    }
}
