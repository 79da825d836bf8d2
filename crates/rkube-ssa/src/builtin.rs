//! The structure of the built-in kinds without OpenAPI: list types, list-map keys, atomic and free-form maps,
//! taken from the `+listType`/`+listMapKey`/`+structType`/`+mapType` markers (and the `patchStrategy`
//! fallback upstream's schema converter applies) of k8s.io/api. Other kinds get only ObjectMeta's rules.

use serde_json::{Value, json};

use crate::path::PathElement;
use crate::schema::{ListType, MapType, Schema};
use crate::skeleton;

/// The built-in kinds' schema, for one kind (some rules differ by kind: Job conditions are atomic,
/// Service ports are keyed by port and protocol, ServiceAccount image pull secrets are atomic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinSchema {
    group: String,
    kind: String,
    known: bool,
}

/// The built-in kinds by API group, whose structure these rules describe.
const KINDS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "Pod",
            "Service",
            "ConfigMap",
            "Secret",
            "Namespace",
            "Node",
            "PersistentVolume",
            "PersistentVolumeClaim",
            "ServiceAccount",
            "Endpoints",
            "ReplicationController",
            "LimitRange",
            "ResourceQuota",
            "Event",
            "PodTemplate",
            "Binding",
            "ComponentStatus",
        ],
    ),
    ("apps", &["Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "ControllerRevision"]),
    ("batch", &["Job", "CronJob"]),
    ("networking.k8s.io", &["Ingress", "NetworkPolicy", "IngressClass"]),
    ("rbac.authorization.k8s.io", &["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"]),
    ("policy", &["PodDisruptionBudget", "Eviction"]),
    ("autoscaling", &["HorizontalPodAutoscaler", "Scale"]),
    ("storage.k8s.io", &["StorageClass", "CSIDriver", "CSINode", "VolumeAttachment", "CSIStorageCapacity"]),
    ("discovery.k8s.io", &["EndpointSlice"]),
    ("coordination.k8s.io", &["Lease"]),
    ("scheduling.k8s.io", &["PriorityClass"]),
    ("node.k8s.io", &["RuntimeClass"]),
    (
        "admissionregistration.k8s.io",
        &[
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ],
    ),
    ("certificates.k8s.io", &["CertificateSigningRequest"]),
    ("events.k8s.io", &["Event"]),
    ("flowcontrol.apiserver.k8s.io", &["FlowSchema", "PriorityLevelConfiguration"]),
    ("apiextensions.k8s.io", &["CustomResourceDefinition"]),
    ("apiregistration.k8s.io", &["APIService"]),
];

impl BuiltinSchema {
    /// The schema for objects of `kind` served at `api_version` (`apps/v1`, `v1`). Kinds outside the
    /// built-in set (custom resources) get ObjectMeta's rules and atomic lists.
    pub fn for_kind(api_version: &str, kind: &str) -> Self {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or_default();
        let known = KINDS.iter().any(|(g, kinds)| *g == group && kinds.contains(&kind));
        BuiltinSchema { group: group.to_owned(), kind: kind.to_owned(), known }
    }

    /// Whether the kind is one of the built-in kinds these rules describe.
    pub fn is_known_kind(&self) -> bool {
        self.known
    }

    fn is(&self, group: &str, kind: &str) -> bool {
        self.group == group && self.kind == kind
    }
}

/// The last segments of a path by field name (list items are `None`) and its length: all the rules look
/// at. Kept on the stack, as the diff asks the schema at every map and list of every write.
#[derive(Clone, Copy)]
struct Names<'a> {
    /// `last[0]` is the last segment.
    last: [Option<&'a str>; TAIL],
    len: usize,
}

/// How far back the rules look.
const TAIL: usize = 3;

fn names(path: &[PathElement]) -> Names<'_> {
    let mut last = [None; TAIL];
    for (slot, pe) in last.iter_mut().zip(path.iter().rev()) {
        if let PathElement::Field(n) = pe {
            *slot = Some(n.as_str());
        }
    }
    Names { last, len: path.len() }
}

/// The `i`-th segment from the end (1 = last, at most `TAIL`), or `None` (a list item or before the root).
fn back<'a>(s: &Names<'a>, i: usize) -> Option<&'a str> {
    if (1..=s.len.min(TAIL)).contains(&i) { s.last[i - 1] } else { None }
}

/// Whether the segment `i` from the end is a list item.
fn is_item(s: &Names<'_>, i: usize) -> bool {
    (1..=s.len.min(TAIL)).contains(&i) && s.last[i - 1].is_none()
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// Whether the path's last field belongs to a container (`...containers[name=x].<field>`).
fn in_container(s: &Names<'_>) -> bool {
    is_item(s, 2) && back(s, 3).is_some_and(|n| CONTAINER_LISTS.contains(&n))
}

fn keys(k: &[&str]) -> ListType {
    ListType::Map(k.iter().map(|s| (*s).to_owned()).collect())
}

impl Schema for BuiltinSchema {
    fn list_type(&self, path: &[PathElement]) -> ListType {
        let s = names(path);
        let top_status = s.len == 2 && back(&s, 2) == Some("status");
        match back(&s, 1) {
            // ObjectMeta, in every kind (custom resources too).
            Some("finalizers") if back(&s, 2) == Some("metadata") => ListType::Set,
            Some("ownerReferences") if back(&s, 2) == Some("metadata") => keys(&["uid"]),
            _ if !self.known => ListType::Atomic,
            // Pod specs, wherever they are embedded.
            Some("containers" | "initContainers" | "ephemeralContainers") => {
                if is_item(&s, 2) && back(&s, 3) == Some("nodeAllocatableResourceClaimStatuses") {
                    ListType::Set
                } else {
                    keys(&["name"])
                }
            }
            Some("ports") if in_container(&s) => keys(&["containerPort", "protocol"]),
            Some("ports") if self.is("", "Service") && s.len == 2 && back(&s, 2) == Some("spec") => {
                keys(&["port", "protocol"])
            }
            Some("env") if in_container(&s) => keys(&["name"]),
            Some("volumeMounts") if in_container(&s) => keys(&["mountPath"]),
            Some("volumeDevices") if in_container(&s) => keys(&["devicePath"]),
            Some("claims") if back(&s, 2) == Some("resources") => keys(&["name"]),
            Some("volumes") => keys(&["name"]),
            // ServiceAccount's own list is atomic; pod specs merge by name.
            Some("imagePullSecrets") if s.len == 1 => ListType::Atomic,
            Some("imagePullSecrets") => keys(&["name"]),
            Some("hostAliases") => keys(&["ip"]),
            Some("topologySpreadConstraints") => keys(&["topologyKey", "whenUnsatisfiable"]),
            Some("schedulingGates" | "resourceClaims") => keys(&["name"]),
            // Status lists; Job conditions are the one atomic exception.
            Some("conditions") if top_status && self.is("batch", "Job") => ListType::Atomic,
            Some("conditions") if top_status => keys(&["type"]),
            Some("podIPs") if top_status => keys(&["ip"]),
            Some("resourceClaimStatuses") if top_status => keys(&["name"]),
            Some("addresses") if top_status && self.is("", "Node") => keys(&["type"]),
            Some("podCIDRs") if self.is("", "Node") => ListType::Set,
            Some("secrets") if s.len == 1 && self.is("", "ServiceAccount") => keys(&["name"]),
            Some("webhooks") if s.len == 1 => keys(&["name"]),
            Some("matchConditions") if back(&s, 3) == Some("webhooks") => keys(&["name"]),
            Some("drivers") if self.is("storage.k8s.io", "CSINode") => keys(&["name"]),
            Some("volumeLifecycleModes") => ListType::Set,
            // args, command, tolerations, envFrom, rules, subjects, ...: atomic, as upstream.
            _ => ListType::Atomic,
        }
    }

    fn map_type(&self, path: &[PathElement]) -> MapType {
        let s = names(path);
        if is_item(&s, 1) {
            // Items whose type is an atomic struct: OwnerReference, LocalObjectReference, ObjectReference.
            return match back(&s, 2) {
                Some("ownerReferences") if back(&s, 3) == Some("metadata") => MapType::Atomic,
                Some("imagePullSecrets") if self.known => MapType::Atomic,
                Some("secrets") if self.known && s.len == 2 => MapType::Atomic,
                _ => MapType::Struct,
            };
        }
        match back(&s, 1) {
            Some("labels" | "annotations") if back(&s, 2) == Some("metadata") => MapType::Map,
            _ if !self.known => MapType::Struct,
            // LabelSelector and the map selectors of Service and ReplicationController are atomic.
            Some(
                "selector" | "podSelector" | "namespaceSelector" | "objectSelector" | "labelSelector" | "nodeSelector"
                | "scopeSelector" | "nodeTopology",
            ) => MapType::Atomic,
            Some("requiredDuringSchedulingIgnoredDuringExecution" | "required")
                if back(&s, 2) == Some("nodeAffinity") =>
            {
                MapType::Atomic
            }
            Some("configMapKeyRef" | "secretKeyRef" | "fieldRef" | "resourceFieldRef" | "fileKeyRef") => {
                MapType::Atomic
            }
            Some(
                "secretRef"
                | "nodePublishSecretRef"
                | "nodeStageSecretRef"
                | "nodeExpandSecretRef"
                | "controllerPublishSecretRef"
                | "controllerExpandSecretRef"
                | "claimRef"
                | "dataSource",
            ) => MapType::Atomic,
            Some("involvedObject" | "regarding" | "related" | "roleRef") if s.len == 1 => MapType::Atomic,
            Some("target") if s.len == 1 && self.is("", "Binding") => MapType::Atomic,
            Some("port") if back(&s, 2) == Some("service") => MapType::Atomic,
            Some("resource") if matches!(back(&s, 2), Some("defaultBackend" | "backend")) => MapType::Atomic,
            Some("data" | "binaryData" | "stringData") if s.len == 1 => MapType::Map,
            Some("limits" | "requests") if back(&s, 2) == Some("resources") => MapType::Map,
            Some(
                "capacity" | "allocatable" | "hard" | "used" | "overhead" | "volumeAttributes" | "attachmentMetadata",
            ) => MapType::Map,
            Some("parameters") if s.len == 1 => MapType::Map,
            _ => MapType::Struct,
        }
    }

    fn key_default(&self, path: &[PathElement], key: &str) -> Option<Value> {
        let s = names(path);
        (self.known && key == "protocol" && back(&s, 1) == Some("ports")).then(|| json!("TCP"))
    }

    fn empty_object(&self) -> Value {
        skeleton::empty_object(&self.group, &self.kind, self.known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::field_path;

    fn p(names: &[&str]) -> Vec<PathElement> {
        field_path(names)
    }

    fn item(mut path: Vec<PathElement>, name: &str) -> Vec<PathElement> {
        path.push(PathElement::key([("name", json!(name))]));
        path
    }

    #[test]
    fn pod_spec_lists() {
        let d = BuiltinSchema::for_kind("apps/v1", "Deployment");
        let containers = p(&["spec", "template", "spec", "containers"]);
        assert_eq!(d.list_type(&containers), keys(&["name"]));
        let c = item(containers, "nginx");
        let field = |n: &str| {
            let mut x = c.clone();
            x.push(PathElement::field(n));
            x
        };
        assert_eq!(d.list_type(&field("ports")), keys(&["containerPort", "protocol"]));
        assert_eq!(d.key_default(&field("ports"), "protocol"), Some(json!("TCP")));
        assert_eq!(d.list_type(&field("env")), keys(&["name"]));
        assert_eq!(d.list_type(&field("volumeMounts")), keys(&["mountPath"]));
        assert_eq!(d.list_type(&field("args")), ListType::Atomic);
        assert_eq!(d.list_type(&p(&["spec", "template", "spec", "tolerations"])), ListType::Atomic);
        assert_eq!(d.list_type(&p(&["metadata", "finalizers"])), ListType::Set);
        assert_eq!(d.map_type(&p(&["spec", "selector"])), MapType::Atomic);
        assert_eq!(d.map_type(&p(&["spec", "template", "spec", "nodeSelector"])), MapType::Atomic);
        assert_eq!(d.list_type(&p(&["status", "conditions"])), keys(&["type"]));
    }

    #[test]
    fn kind_specific_rules() {
        let svc = BuiltinSchema::for_kind("v1", "Service");
        assert_eq!(svc.list_type(&p(&["spec", "ports"])), keys(&["port", "protocol"]));
        let job = BuiltinSchema::for_kind("batch/v1", "Job");
        assert_eq!(job.list_type(&p(&["status", "conditions"])), ListType::Atomic);
        let sa = BuiltinSchema::for_kind("v1", "ServiceAccount");
        assert_eq!(sa.list_type(&p(&["imagePullSecrets"])), ListType::Atomic);
        assert_eq!(sa.list_type(&p(&["secrets"])), keys(&["name"]));
        let ep = BuiltinSchema::for_kind("discovery.k8s.io/v1", "EndpointSlice");
        assert_eq!(ep.list_type(&p(&["ports"])), ListType::Atomic);
        let owner = vec![
            PathElement::field("metadata"),
            PathElement::field("ownerReferences"),
            PathElement::key([("uid", json!("u"))]),
        ];
        assert_eq!(ep.map_type(&owner), MapType::Atomic);
    }

    #[test]
    fn custom_resources_get_only_object_meta_rules() {
        let cr = BuiltinSchema::for_kind("example.com/v1", "Deployment");
        assert!(!cr.is_known_kind());
        assert_eq!(cr.list_type(&p(&["spec", "containers"])), ListType::Atomic);
        assert_eq!(cr.map_type(&p(&["spec", "selector"])), MapType::Struct);
        assert_eq!(cr.list_type(&p(&["metadata", "ownerReferences"])), keys(&["uid"]));
        assert_eq!(cr.empty_object(), json!({}));
    }
}
