//! What the scheduler precomputes once per pod (requests, host ports, parsed affinity terms), shared by
//! `Arc` between the queue, the cache and every plugin so that hot paths never clone a pod.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::core::{Selector, SelectorExt};

use crate::resources::{Resources, pod_non_zero_requests, pod_requests};

/// Namespace name → its labels (for affinity terms' `namespaceSelector`).
pub(crate) type NamespaceLabels = HashMap<String, BTreeMap<String, String>>;

/// A host port a pod asks for, defaults filled in (`0.0.0.0`, `TCP`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct HostPort {
    pub(crate) ip: String,
    pub(crate) protocol: String,
    pub(crate) port: i32,
}

/// A pod (anti-)affinity term with its selectors parsed.
#[derive(Clone, Debug)]
pub(crate) struct AffinityTerm {
    /// `None`: the term had no label selector and matches no pod (upstream's `labels.Nothing()`).
    pub(crate) selector: Option<Selector>,
    pub(crate) namespaces: HashSet<String>,
    pub(crate) namespace_selector: Option<Selector>,
    pub(crate) topology_key: String,
}

impl AffinityTerm {
    fn new(owner: &Pod, term: &PodAffinityTerm) -> Result<AffinityTerm, String> {
        let own_ns = owner.metadata.namespace.clone().unwrap_or_default();
        let labels = owner.metadata.labels.as_ref();
        let selector = match &term.label_selector {
            None => None,
            Some(sel) => {
                let mut sel: LabelSelector = sel.clone();
                // matchLabelKeys / mismatchLabelKeys: the owner's own values join the selector.
                let mut extra = Vec::new();
                for (keys, op) in [(&term.match_label_keys, "In"), (&term.mismatch_label_keys, "NotIn")] {
                    for key in keys.iter().flatten() {
                        if let Some(v) = labels.and_then(|l| l.get(key)) {
                            extra.push(LabelSelectorRequirement {
                                key: key.clone(),
                                operator: op.to_owned(),
                                values: Some(vec![v.clone()]),
                            });
                        }
                    }
                }
                if !extra.is_empty() {
                    sel.match_expressions.get_or_insert_with(Vec::new).extend(extra);
                }
                Some(Selector::try_from(sel).map_err(|e| e.to_string())?)
            }
        };
        let namespace_selector = match &term.namespace_selector {
            None => None,
            Some(sel) => Some(Selector::try_from(sel.clone()).map_err(|e| e.to_string())?),
        };
        let mut namespaces: HashSet<String> = term.namespaces.iter().flatten().cloned().collect();
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.insert(own_ns);
        }
        Ok(AffinityTerm { selector, namespaces, namespace_selector, topology_key: term.topology_key.clone() })
    }

    /// Whether `pod` is one the term selects.
    pub(crate) fn matches(&self, pod: &PodInfo, ns_labels: &NamespaceLabels) -> bool {
        let ns_ok = self.namespaces.contains(&pod.namespace)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|s| ns_labels.get(&pod.namespace).is_some_and(|l| s.matches(l)));
        ns_ok && self.selector.as_ref().is_some_and(|s| s.matches(pod.labels()))
    }
}

/// A pod and the facts about it the plugins read.
#[derive(Debug)]
pub(crate) struct PodInfo {
    pub(crate) pod: Arc<Pod>,
    pub(crate) uid: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) priority: i32,
    pub(crate) requests: Resources,
    /// (cpu, memory) with upstream's defaults for containers that request none (scoring).
    pub(crate) non_zero: (i64, i64),
    pub(crate) host_ports: Vec<HostPort>,
    pub(crate) required_affinity: Vec<AffinityTerm>,
    pub(crate) required_anti_affinity: Vec<AffinityTerm>,
    pub(crate) preferred_affinity: Vec<(i32, AffinityTerm)>,
    pub(crate) preferred_anti_affinity: Vec<(i32, AffinityTerm)>,
    /// A selector in the pod's affinity that does not parse (the pod is then unschedulable).
    pub(crate) invalid: Option<String>,
}

static EMPTY_LABELS: BTreeMap<String, String> = BTreeMap::new();

impl PodInfo {
    /// Precomputes everything from `pod`.
    pub(crate) fn new(pod: Arc<Pod>) -> PodInfo {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref();
        let (requests, non_zero) =
            spec.map_or((Resources::default(), (0, 0)), |s| (pod_requests(s), pod_non_zero_requests(s)));
        let mut host_ports = Vec::new();
        if let Some(s) = spec {
            let sidecars = s.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
            for c in s.containers.iter().chain(sidecars) {
                for p in c.ports.iter().flatten() {
                    if let Some(hp) = p.host_port.filter(|p| *p > 0) {
                        host_ports.push(HostPort {
                            ip: p.host_ip.clone().filter(|ip| !ip.is_empty()).unwrap_or_else(|| "0.0.0.0".to_owned()),
                            protocol: p.protocol.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "TCP".to_owned()),
                            port: hp,
                        });
                    }
                }
            }
        }
        let mut info = PodInfo {
            uid: meta.uid.clone().unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            requests,
            non_zero,
            host_ports,
            required_affinity: Vec::new(),
            required_anti_affinity: Vec::new(),
            preferred_affinity: Vec::new(),
            preferred_anti_affinity: Vec::new(),
            invalid: None,
            pod: pod.clone(),
        };
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let mut parse = |t: &PodAffinityTerm| match AffinityTerm::new(&pod, t) {
            Ok(t) => Some(t),
            Err(e) => {
                info.invalid = Some(e);
                None
            }
        };
        let mut req_aff = Vec::new();
        let mut req_anti = Vec::new();
        let mut pref_aff = Vec::new();
        let mut pref_anti = Vec::new();
        if let Some(a) = affinity.and_then(|a| a.pod_affinity.as_ref()) {
            req_aff =
                a.required_during_scheduling_ignored_during_execution.iter().flatten().filter_map(&mut parse).collect();
            pref_aff = a
                .preferred_during_scheduling_ignored_during_execution
                .iter()
                .flatten()
                .filter_map(|w| parse(&w.pod_affinity_term).map(|t| (w.weight, t)))
                .collect();
        }
        if let Some(a) = affinity.and_then(|a| a.pod_anti_affinity.as_ref()) {
            req_anti =
                a.required_during_scheduling_ignored_during_execution.iter().flatten().filter_map(&mut parse).collect();
            pref_anti = a
                .preferred_during_scheduling_ignored_during_execution
                .iter()
                .flatten()
                .filter_map(|w| parse(&w.pod_affinity_term).map(|t| (w.weight, t)))
                .collect();
        }
        info.required_affinity = req_aff;
        info.required_anti_affinity = req_anti;
        info.preferred_affinity = pref_aff;
        info.preferred_anti_affinity = pref_anti;
        info
    }

    /// The pod's labels.
    pub(crate) fn labels(&self) -> &BTreeMap<String, String> {
        self.pod.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS)
    }

    /// Whether the pod has any pod affinity or anti-affinity term.
    pub(crate) fn has_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    /// `namespace/name`.
    pub(crate) fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Whether the pod is being deleted.
    pub(crate) fn terminating(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }

    /// When the pod started (or was created), for upstream's "more important pod" order.
    pub(crate) fn start_time(&self) -> Option<k8s_openapi::jiff::Timestamp> {
        self.pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .or(self.pod.metadata.creation_timestamp.as_ref())
            .map(|t| t.0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A pod from JSON (tests across the crate build theirs with this).
    pub(crate) fn pod(v: serde_json::Value) -> Arc<PodInfo> {
        let mut v = v;
        if v["metadata"]["namespace"].is_null() {
            v["metadata"]["namespace"] = json!("default");
        }
        if v["metadata"]["uid"].is_null() {
            let name = v["metadata"]["name"].as_str().unwrap_or("p").to_owned();
            v["metadata"]["uid"] = json!(format!("uid-{name}"));
        }
        if v["spec"].is_null() {
            v["spec"] = json!({"containers": [{"name": "c"}]});
        }
        Arc::new(PodInfo::new(Arc::new(serde_json::from_value(v).unwrap())))
    }

    #[test]
    fn host_ports_default_ip_and_protocol() {
        let p = pod(json!({"metadata": {"name": "a"}, "spec": {"containers": [
            {"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 53, "protocol": "UDP"}]}
        ]}}));
        assert_eq!(p.host_ports, vec![HostPort { ip: "0.0.0.0".into(), protocol: "TCP".into(), port: 8080 }]);
    }

    #[test]
    fn affinity_terms_default_to_the_pods_namespace_and_match_label_keys_narrow_the_selector() {
        let p = pod(json!({"metadata": {"name": "a", "labels": {"app": "x", "rev": "1"}}, "spec": {
            "containers": [{"name": "c"}],
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "h", "matchLabelKeys": ["rev"]}
            ]}}
        }}));
        let t = &p.required_anti_affinity[0];
        let same = pod(json!({"metadata": {"name": "b", "labels": {"app": "x", "rev": "1"}}}));
        let other_rev = pod(json!({"metadata": {"name": "c", "labels": {"app": "x", "rev": "2"}}}));
        let other_ns = pod(json!({"metadata": {"name": "d", "namespace": "o", "labels": {"app": "x", "rev": "1"}}}));
        let ns = NamespaceLabels::new();
        assert!(t.matches(&same, &ns));
        assert!(!t.matches(&other_rev, &ns));
        assert!(!t.matches(&other_ns, &ns));
    }
}
