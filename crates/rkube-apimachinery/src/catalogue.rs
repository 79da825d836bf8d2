//! The built-in resources rkube serves: group, version, names, scope, verbs, short names, categories,
//! subresources and the etcd key segment upstream stores them under (`services/specs`, `minions`, ...).

/// One served resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// Version, e.g. `v1`.
    pub version: &'static str,
    /// Plural resource name, as in URLs.
    pub resource: &'static str,
    /// Singular name, for kubectl's lookups.
    pub singular: &'static str,
    /// Kind of one object.
    pub kind: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Verbs the resource supports.
    pub verbs: &'static [&'static str],
    /// Short names (`po`, `svc`, ...).
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Subresources (`status`, `scale`, `log`, ...).
    pub subresources: &'static [&'static str],
    /// The key segment under the store prefix, as upstream's etcd layout has it.
    pub storage: &'static str,
}

impl ResourceInfo {
    /// `group/version`, or just `version` for the core group.
    pub fn group_version(&self) -> String {
        if self.group.is_empty() { self.version.to_owned() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Whether objects are stored (false for review-style resources that only answer a create).
    pub fn is_stored(&self) -> bool {
        self.verbs.contains(&"get")
    }

    /// The verbs a subresource supports, as discovery lists them.
    pub fn subresource_verbs(&self, sub: &str) -> &'static [&'static str] {
        match sub {
            "status" | "scale" | "approval" => &["get", "patch", "update"],
            "log" => &["get"],
            "exec" | "attach" | "portforward" | "proxy" => &["create", "get"],
            "binding" | "eviction" | "token" => &["create"],
            "finalize" => &["update"],
            _ => &[],
        }
    }

    /// The kind a subresource's body has.
    pub fn subresource_kind(&self, sub: &str) -> &'static str {
        match sub {
            "scale" => "Scale",
            "binding" => "Binding",
            "eviction" => "Eviction",
            "token" => "TokenRequest",
            "exec" => "PodExecOptions",
            "attach" => "PodAttachOptions",
            "portforward" => "PodPortForwardOptions",
            "log" => "Pod",
            "proxy" => "PodProxyOptions",
            _ => self.kind,
        }
    }
}

/// Verbs of a stored, fully editable resource.
pub const CRUD: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const CREATE_ONLY: &[&str] = &["create"];
const NONE: &[&str] = &[];
const ALL: &[&str] = &["all"];

macro_rules! r {
    ($g:expr, $v:expr, $res:expr, $sing:expr, $kind:expr, $ns:expr, $verbs:expr, $short:expr, $cat:expr, $sub:expr, $storage:expr) => {
        ResourceInfo {
            group: $g,
            version: $v,
            resource: $res,
            singular: $sing,
            kind: $kind,
            namespaced: $ns,
            verbs: $verbs,
            short_names: $short,
            categories: $cat,
            subresources: $sub,
            storage: $storage,
        }
    };
}

/// Every built-in resource, grouped by API group in discovery order.
pub const BUILTIN: &[ResourceInfo] = &[
    r!("", "v1", "bindings", "binding", "Binding", true, CREATE_ONLY, NONE, NONE, NONE, ""),
    r!("", "v1", "configmaps", "configmap", "ConfigMap", true, CRUD, &["cm"], NONE, NONE, "configmaps"),
    r!("", "v1", "endpoints", "endpoints", "Endpoints", true, CRUD, &["ep"], NONE, NONE, "services/endpoints"),
    r!("", "v1", "events", "event", "Event", true, CRUD, &["ev"], NONE, NONE, "events"),
    r!("", "v1", "limitranges", "limitrange", "LimitRange", true, CRUD, &["limits"], NONE, NONE, "limitranges"),
    r!(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["create", "delete", "get", "list", "patch", "update", "watch"],
        &["ns"],
        NONE,
        &["finalize", "status"],
        "namespaces"
    ),
    r!("", "v1", "nodes", "node", "Node", false, CRUD, &["no"], NONE, &["proxy", "status"], "minions"),
    r!(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        CRUD,
        &["pvc"],
        NONE,
        &["status"],
        "persistentvolumeclaims"
    ),
    r!(
        "",
        "v1",
        "persistentvolumes",
        "persistentvolume",
        "PersistentVolume",
        false,
        CRUD,
        &["pv"],
        NONE,
        &["status"],
        "persistentvolumes"
    ),
    r!(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        true,
        CRUD,
        &["po"],
        ALL,
        &["attach", "binding", "eviction", "exec", "log", "portforward", "proxy", "status"],
        "pods"
    ),
    r!("", "v1", "podtemplates", "podtemplate", "PodTemplate", true, CRUD, NONE, NONE, NONE, "podtemplates"),
    r!(
        "",
        "v1",
        "replicationcontrollers",
        "replicationcontroller",
        "ReplicationController",
        true,
        CRUD,
        &["rc"],
        ALL,
        &["scale", "status"],
        "controllers"
    ),
    r!(
        "",
        "v1",
        "resourcequotas",
        "resourcequota",
        "ResourceQuota",
        true,
        CRUD,
        &["quota"],
        NONE,
        &["status"],
        "resourcequotas"
    ),
    r!("", "v1", "secrets", "secret", "Secret", true, CRUD, NONE, NONE, NONE, "secrets"),
    r!(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        CRUD,
        &["sa"],
        NONE,
        &["token"],
        "serviceaccounts"
    ),
    r!(
        "",
        "v1",
        "services",
        "service",
        "Service",
        true,
        &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        &["svc"],
        ALL,
        &["proxy", "status"],
        "services/specs"
    ),
    r!(
        "apps",
        "v1",
        "controllerrevisions",
        "controllerrevision",
        "ControllerRevision",
        true,
        CRUD,
        NONE,
        NONE,
        NONE,
        "controllerrevisions"
    ),
    r!("apps", "v1", "daemonsets", "daemonset", "DaemonSet", true, CRUD, &["ds"], ALL, &["status"], "daemonsets"),
    r!(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        CRUD,
        &["deploy"],
        ALL,
        &["scale", "status"],
        "deployments"
    ),
    r!(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        CRUD,
        &["rs"],
        ALL,
        &["scale", "status"],
        "replicasets"
    ),
    r!(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        CRUD,
        &["sts"],
        ALL,
        &["scale", "status"],
        "statefulsets"
    ),
    r!(
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        "selfsubjectreview",
        "SelfSubjectReview",
        false,
        CREATE_ONLY,
        NONE,
        NONE,
        NONE,
        ""
    ),
    r!(
        "authentication.k8s.io",
        "v1",
        "tokenreviews",
        "tokenreview",
        "TokenReview",
        false,
        CREATE_ONLY,
        NONE,
        NONE,
        NONE,
        ""
    ),
    r!(
        "authorization.k8s.io",
        "v1",
        "localsubjectaccessreviews",
        "localsubjectaccessreview",
        "LocalSubjectAccessReview",
        true,
        CREATE_ONLY,
        NONE,
        NONE,
        NONE,
        ""
    ),
    r!(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "SelfSubjectAccessReview",
        false,
        CREATE_ONLY,
        NONE,
        NONE,
        NONE,
        ""
    ),
    r!(
        "authorization.k8s.io",
        "v1",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        "SelfSubjectRulesReview",
        false,
        CREATE_ONLY,
        NONE,
        NONE,
        NONE,
        ""
    ),
    r!(
        "authorization.k8s.io",
        "v1",
        "subjectaccessreviews",
        "subjectaccessreview",
        "SubjectAccessReview",
        false,
        CREATE_ONLY,
        NONE,
        NONE,
        NONE,
        ""
    ),
    r!("batch", "v1", "cronjobs", "cronjob", "CronJob", true, CRUD, &["cj"], ALL, &["status"], "cronjobs"),
    r!("batch", "v1", "jobs", "job", "Job", true, CRUD, NONE, ALL, &["status"], "jobs"),
    r!(
        "certificates.k8s.io",
        "v1",
        "certificatesigningrequests",
        "certificatesigningrequest",
        "CertificateSigningRequest",
        false,
        CRUD,
        &["csr"],
        NONE,
        &["approval", "status"],
        "certificatesigningrequests"
    ),
    r!("coordination.k8s.io", "v1", "leases", "lease", "Lease", true, CRUD, NONE, NONE, NONE, "leases"),
    r!(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        true,
        CRUD,
        NONE,
        NONE,
        NONE,
        "endpointslices"
    ),
    r!("events.k8s.io", "v1", "events", "event", "Event", true, CRUD, &["ev"], NONE, NONE, "events"),
    r!(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        CRUD,
        &["pdb"],
        NONE,
        &["status"],
        "poddisruptionbudgets"
    ),
    r!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        CRUD,
        NONE,
        NONE,
        NONE,
        "clusterrolebindings"
    ),
    r!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        CRUD,
        NONE,
        NONE,
        NONE,
        "clusterroles"
    ),
    r!(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        CRUD,
        NONE,
        NONE,
        NONE,
        "rolebindings"
    ),
    r!("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", true, CRUD, NONE, NONE, NONE, "roles"),
    r!(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        "priorityclass",
        "PriorityClass",
        false,
        CRUD,
        &["pc"],
        NONE,
        NONE,
        "priorityclasses"
    ),
    r!(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        CRUD,
        &["crd", "crds"],
        &["api-extensions"],
        &["status"],
        "apiextensions.k8s.io/customresourcedefinitions"
    ),
];

/// The built-in API groups in the order discovery lists them (core excluded).
pub fn builtin_groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for r in BUILTIN {
        if !r.group.is_empty() && !groups.contains(&r.group) {
            groups.push(r.group);
        }
    }
    groups
}

/// Looks up a built-in resource by group, version and plural name.
pub fn builtin(group: &str, version: &str, resource: &str) -> Option<&'static ResourceInfo> {
    BUILTIN.iter().find(|r| r.group == group && r.version == version && r.resource == resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_storage_layout() {
        let svc = builtin("", "v1", "services").expect("services");
        assert_eq!(svc.storage, "services/specs");
        assert_eq!(builtin("", "v1", "nodes").map(|r| r.storage), Some("minions"));
        assert_eq!(builtin("apps", "v1", "deployments").map(|r| r.group_version()), Some("apps/v1".to_owned()));
        assert!(!builtin("authorization.k8s.io", "v1", "selfsubjectaccessreviews").expect("ssar").is_stored());
        assert_eq!(builtin_groups()[0], "apps");
    }

    #[test]
    fn names_are_unique_within_a_group_version() {
        for (i, a) in BUILTIN.iter().enumerate() {
            for b in &BUILTIN[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.resource == b.resource),
                    "{} twice",
                    a.resource
                );
            }
        }
    }
}
