//! What upstream's post-start hooks create on an empty cluster: the system namespaces and the default
//! RBAC roles and bindings, plus what kubeadm's init adds for nodes joining with a bootstrap token
//! (`join.rs`). Existing objects are left as they are.

use rkube_apimachinery::ApiError;
use serde_json::{Value, json};

use crate::registry::{Registry, WriteCtx};
use crate::resource::ResourceDef;

mod join;

pub(crate) fn def(group: &str, resource: &str) -> Option<std::sync::Arc<ResourceDef>> {
    rkube_apimachinery::catalogue::builtin(group, "v1", resource).map(ResourceDef::builtin)
}

pub(crate) async fn ensure(
    registry: &Registry,
    group: &str,
    resource: &str,
    ns: Option<&str>,
    obj: Value,
) -> Result<(), ApiError> {
    let Some(d) = def(group, resource) else { return Ok(()) };
    match registry.create(&d, ns, obj, &WriteCtx::default()).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The `default/kubernetes` service on the first service IP, and its endpoints pointing at this API server.
async fn kubernetes_service(registry: &Registry, advertise: &str) -> Result<(), ApiError> {
    let (ip, port) = advertise.rsplit_once(':').unwrap_or((advertise, "6443"));
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().unwrap_or(6443);
    let first = registry.services().first();
    ensure(registry, "", "services", Some("default"), json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": "kubernetes", "namespace": "default", "labels": { "component": "apiserver", "provider": "kubernetes" } },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": first.to_string(),
            "ports": [{ "name": "https", "port": 443, "protocol": "TCP", "targetPort": port }],
            "sessionAffinity": "None",
        },
    }))
    .await?;
    if ip.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback()) {
        // The founding guides' pit: an API server advertised on 127.0.0.1 cannot be reached from pods.
        tracing::warn!(
            advertise = %ip,
            "the API server is advertised on a loopback address: pods cannot reach it through the `kubernetes` service; \
             pass --node-ip or --advertise-address with this node's address"
        );
        return Ok(());
    }
    let endpoints = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": { "name": "kubernetes", "namespace": "default", "labels": { "endpointslice.kubernetes.io/skip-mirror": "true" } },
        "subsets": [{ "addresses": [{ "ip": ip }], "ports": [{ "name": "https", "port": port, "protocol": "TCP" }] }],
    });
    let Some(def) = def("", "endpoints") else { return Ok(()) };
    // The endpoints follow the advertise address: rewritten when it changed since the last start.
    registry
        .update_with(&def, Some("default"), "kubernetes", None, &WriteCtx::default(), |_| Ok(endpoints.clone()))
        .await?;
    // Upstream's endpoints reconciler writes the matching EndpointSlice itself (named like the Endpoints,
    // labelled with the service name only), which is what service proxies read.
    let ip_family = if ip.contains(':') { "IPv6" } else { "IPv4" };
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": { "name": "kubernetes", "namespace": "default", "labels": { "kubernetes.io/service-name": "kubernetes" } },
        "addressType": ip_family,
        "endpoints": [{ "addresses": [ip], "conditions": { "ready": true } }],
        "ports": [{ "name": "https", "port": port, "protocol": "TCP" }],
    });
    ensure(registry, "discovery.k8s.io", "endpointslices", Some("default"), slice.clone()).await?;
    let Some(slices) = self::def("discovery.k8s.io", "endpointslices") else { return Ok(()) };
    // Like the Endpoints, it follows the advertise address.
    registry
        .update_with(&slices, Some("default"), "kubernetes", None, &WriteCtx::default(), |_| Ok(slice.clone()))
        .await
        .map(|_| ())
}

pub(crate) fn cluster_role(name: &str, rules: Value, aggregate_label: Option<&str>) -> Value {
    let mut r = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": { "name": name, "labels": { "kubernetes.io/bootstrapping": "rbac-defaults" }, "annotations": { "rbac.authorization.kubernetes.io/autoupdate": "true" } },
        "rules": rules,
    });
    if let Some(l) = aggregate_label {
        r["metadata"]["labels"][l] = json!("true");
    }
    r
}

pub(crate) fn binding(name: &str, role: &str, subject_kind: &str, subject: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": { "name": name, "labels": { "kubernetes.io/bootstrapping": "rbac-defaults" }, "annotations": { "rbac.authorization.kubernetes.io/autoupdate": "true" } },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": subject_kind, "name": subject }],
    })
}

/// Creates the system namespaces, the `kubernetes` service and the default RBAC objects that are missing.
/// `advertise` is `ip:port`: the address pods reach the API on (never 127.0.0.1: a founding-guide pit).
/// `ca_pem` is the cluster CA, published in `kube-public/cluster-info` for joining nodes.
pub(crate) async fn run(registry: &Registry, advertise: &str, ca_pem: &str) -> Result<(), ApiError> {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        ensure(
            registry,
            "",
            "namespaces",
            None,
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } }),
        )
        .await?;
    }
    kubernetes_service(registry, advertise).await?;
    let all = json!([{ "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"] }, { "nonResourceURLs": ["*"], "verbs": ["*"] }]);
    let read = json!(["get", "list", "watch"]);
    let write = json!(["create", "delete", "deletecollection", "patch", "update"]);
    let core_view = json!([
        "configmaps",
        "endpoints",
        "persistentvolumeclaims",
        "persistentvolumeclaims/status",
        "pods",
        "pods/log",
        "pods/status",
        "replicationcontrollers",
        "replicationcontrollers/scale",
        "replicationcontrollers/status",
        "serviceaccounts",
        "services",
        "services/status",
        "bindings",
        "events",
        "limitranges",
        "namespaces/status",
        "resourcequotas",
        "resourcequotas/status",
        "namespaces"
    ]);
    let apps = json!([
        "controllerrevisions",
        "daemonsets",
        "daemonsets/status",
        "deployments",
        "deployments/scale",
        "deployments/status",
        "replicasets",
        "replicasets/scale",
        "replicasets/status",
        "statefulsets",
        "statefulsets/scale",
        "statefulsets/status"
    ]);
    let view_rules = json!([
        { "apiGroups": [""], "resources": core_view, "verbs": read },
        { "apiGroups": ["apps"], "resources": apps, "verbs": read },
        { "apiGroups": ["batch"], "resources": ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], "verbs": read },
        { "apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read },
        { "apiGroups": ["policy"], "resources": ["poddisruptionbudgets", "poddisruptionbudgets/status"], "verbs": read },
    ]);
    let edit_rules = json!([
        { "apiGroups": [""], "resources": ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "pods/eviction", "configmaps", "endpoints", "persistentvolumeclaims", "replicationcontrollers", "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"], "verbs": write },
        { "apiGroups": [""], "resources": ["secrets"], "verbs": read },
        { "apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"] },
        { "apiGroups": ["apps"], "resources": ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"], "verbs": write },
        { "apiGroups": ["batch"], "resources": ["cronjobs", "jobs"], "verbs": write },
        { "apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": write },
    ]);
    let admin_rules = json!([
        { "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings", "roles"], "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"] },
        { "apiGroups": ["authorization.k8s.io"], "resources": ["localsubjectaccessreviews"], "verbs": ["create"] },
    ]);
    let discovery = json!([{ "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"] }]);
    let basic_user = json!([
        { "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"] },
        { "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"] },
    ]);
    let public_info =
        json!([{ "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"] }]);
    // The aggregated roles (admin ⊃ edit ⊃ view) are written out in full rather than aggregated: no aggregation controller yet.
    let mut edit_all = view_rules.as_array().cloned().unwrap_or_default();
    edit_all.extend(edit_rules.as_array().cloned().unwrap_or_default());
    let mut admin_all = edit_all.clone();
    admin_all.extend(admin_rules.as_array().cloned().unwrap_or_default());
    let roles = [
        cluster_role("cluster-admin", all, None),
        cluster_role("admin", Value::Array(admin_all), None),
        cluster_role("edit", Value::Array(edit_all), Some("rbac.authorization.k8s.io/aggregate-to-admin")),
        cluster_role("view", view_rules, Some("rbac.authorization.k8s.io/aggregate-to-edit")),
        cluster_role("system:discovery", discovery, None),
        cluster_role("system:basic-user", basic_user, None),
        cluster_role("system:public-info-viewer", public_info, None),
    ];
    for r in roles {
        ensure(registry, "rbac.authorization.k8s.io", "clusterroles", None, r).await?;
    }
    let bindings = [
        binding("cluster-admin", "cluster-admin", "Group", "system:masters"),
        binding("system:discovery", "system:discovery", "Group", "system:authenticated"),
        binding("system:basic-user", "system:basic-user", "Group", "system:authenticated"),
        binding("system:public-info-viewer", "system:public-info-viewer", "Group", "system:authenticated"),
    ];
    for b in bindings {
        ensure(registry, "rbac.authorization.k8s.io", "clusterrolebindings", None, b).await?;
    }
    join::run(registry, advertise, ca_pem).await
}
