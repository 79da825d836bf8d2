//! What nodes joining with a bootstrap token need, as `kubeadm init` writes it: the `kube-public/cluster-info`
//! ConfigMap (a kubeconfig holding the CA and the server, readable by `system:anonymous`), the roles letting
//! bootstrappers create CSRs and have them auto-approved, and the node role.
//!
//! Bootstrap tokens made by `rkube token create` (and `rkube server --token`) carry the extra group
//! [`NODE_TOKEN_GROUP`], which the bindings name, as kubeadm's tokens carry
//! `system:bootstrappers:kubeadm:default-node-token`.

use rkube_apimachinery::ApiError;
use serde_json::{Value, json};

use super::{binding, cluster_role, def, ensure};
use crate::registry::{Registry, WriteCtx};

/// The group of rkube's node-joining bootstrap tokens.
pub(crate) const NODE_TOKEN_GROUP: &str = "system:bootstrappers:rkube:default-node-token";

/// The cluster-info kubeconfig: one cluster named "" (as kubeadm writes it), no users.
fn cluster_info_kubeconfig(advertise: &str, ca_pem: &str) -> Result<String, ApiError> {
    let mut kc = rkube_pki::Kubeconfig::new(&format!("https://{advertise}"), ca_pem, "", Default::default());
    kc.users.clear();
    kc.contexts.clear();
    kc.current_context.clear();
    for c in &mut kc.clusters {
        c.name.clear();
    }
    kc.to_yaml().map_err(|e| ApiError::internal(format!("writing the cluster-info kubeconfig: {e}")))
}

/// Writes (or rewrites, when the CA or the address changed) `kube-public/cluster-info`.
async fn cluster_info(registry: &Registry, advertise: &str, ca_pem: &str) -> Result<(), ApiError> {
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": "cluster-info", "namespace": "kube-public" },
        "data": { "kubeconfig": cluster_info_kubeconfig(advertise, ca_pem)? },
    });
    ensure(registry, "", "configmaps", Some("kube-public"), cm.clone()).await?;
    let Some(d) = def("", "configmaps") else { return Ok(()) };
    registry
        .update_with(&d, Some("kube-public"), "cluster-info", None, &WriteCtx::default(), |current| {
            // Other keys (upstream's bootstrap signer adds `jws-kubeconfig-<id>`) are kept.
            let mut next = current.cloned().unwrap_or_else(|| cm.clone());
            next["data"]["kubeconfig"] = cm["data"]["kubeconfig"].clone();
            Ok(next)
        })
        .await
        .map(|_| ())
}

fn meta(name: &str, namespace: Option<&str>) -> Value {
    let mut m = json!({ "name": name, "labels": { "kubernetes.io/bootstrapping": "rbac-defaults" } });
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    m
}

/// The rules of the node identity (`system:node:<name>` in `system:nodes`): upstream's `system:node` role plus
/// what the agent's proxy, DNS and network parts read (upstream's node-proxier and CoreDNS roles). Upstream
/// narrows node access further with its Node authorizer, which rkube does not have yet.
fn node_rules() -> Value {
    let read = json!(["get", "list", "watch"]);
    json!([
        { "apiGroups": [""], "resources": ["nodes"], "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"] },
        { "apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch", "update"] },
        { "apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete", "get", "list", "watch"] },
        { "apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch", "update"] },
        { "apiGroups": [""], "resources": ["pods/eviction", "serviceaccounts/token"], "verbs": ["create"] },
        { "apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch", "update"] },
        { "apiGroups": [""], "resources": ["configmaps", "secrets", "services", "endpoints", "namespaces", "serviceaccounts", "persistentvolumeclaims", "persistentvolumes"], "verbs": read },
        { "apiGroups": [""], "resources": ["persistentvolumeclaims/status"], "verbs": ["get", "patch", "update"] },
        { "apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read },
        { "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"] },
        { "apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"] },
        { "apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews", "localsubjectaccessreviews"], "verbs": ["create"] },
        { "apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"], "verbs": ["create", "get", "list", "watch"] },
        { "apiGroups": ["storage.k8s.io"], "resources": ["csidrivers", "csinodes", "volumeattachments"], "verbs": read },
        { "apiGroups": ["node.k8s.io"], "resources": ["runtimeclasses"], "verbs": read },
    ])
}

/// Creates the join objects that are missing; cluster-info follows the CA and the advertise address.
pub(crate) async fn run(registry: &Registry, advertise: &str, ca_pem: &str) -> Result<(), ApiError> {
    cluster_info(registry, advertise, ca_pem).await?;
    // kubeadm's `kubeadm:bootstrap-signer-clusterinfo`: anonymous may read cluster-info and nothing else.
    let name = "rkube:bootstrap-signer-clusterinfo";
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta(name, Some("kube-public")),
        "rules": [{ "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cluster-info"], "verbs": ["get"] }],
    });
    ensure(registry, "rbac.authorization.k8s.io", "roles", Some("kube-public"), role).await?;
    let role_binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta(name, Some("kube-public")),
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:anonymous" }],
    });
    ensure(registry, "rbac.authorization.k8s.io", "rolebindings", Some("kube-public"), role_binding).await?;
    let csr =
        |sub: &str, verbs: Value| json!([{ "apiGroups": ["certificates.k8s.io"], "resources": [sub], "verbs": verbs }]);
    let nodeclient = "system:certificates.k8s.io:certificatesigningrequests:nodeclient";
    let selfnodeclient = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient";
    let roles = [
        cluster_role(
            "system:node-bootstrapper",
            csr("certificatesigningrequests", json!(["create", "get", "list", "watch"])),
            None,
        ),
        cluster_role(nodeclient, csr("certificatesigningrequests/nodeclient", json!(["create"])), None),
        cluster_role(selfnodeclient, csr("certificatesigningrequests/selfnodeclient", json!(["create"])), None),
        cluster_role("system:node", node_rules(), None),
    ];
    for r in roles {
        ensure(registry, "rbac.authorization.k8s.io", "clusterroles", None, r).await?;
    }
    let bindings = [
        binding("rkube:kubelet-bootstrap", "system:node-bootstrapper", "Group", NODE_TOKEN_GROUP),
        binding("rkube:node-autoapprove-bootstrap", nodeclient, "Group", NODE_TOKEN_GROUP),
        binding("rkube:node-autoapprove-certificate-rotation", selfnodeclient, "Group", "system:nodes"),
        // Upstream leaves `system:node` unbound and authorizes nodes with its Node authorizer instead.
        binding("rkube:nodes", "system:node", "Group", "system:nodes"),
    ];
    for b in bindings {
        ensure(registry, "rbac.authorization.k8s.io", "clusterrolebindings", None, b).await?;
    }
    // The cluster DNS runs in every agent (CoreDNS's Deployment upstream): a node keeps the selector-less
    // `kube-dns` Service and its own `kube-dns-<node>` EndpointSlice, in kube-system only.
    let name = "rkube:node-cluster-dns";
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta(name, Some("kube-system")),
        "rules": [
            { "apiGroups": [""], "resources": ["services"], "verbs": ["create", "get"] },
            { "apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
              "verbs": ["create", "update", "patch", "delete", "get", "list", "watch"] },
        ],
    });
    ensure(registry, "rbac.authorization.k8s.io", "roles", Some("kube-system"), role).await?;
    let role_binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta(name, Some("kube-system")),
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes" }],
    });
    ensure(registry, "rbac.authorization.k8s.io", "rolebindings", Some("kube-system"), role_binding).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_info_holds_the_ca_and_server_only() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let text = cluster_info_kubeconfig("10.0.0.1:6443", pem).expect("kubeconfig");
        let v: serde_json::Value = serde_yaml::from_str(&text).expect("yaml");
        assert_eq!(v["clusters"][0]["cluster"]["server"], "https://10.0.0.1:6443");
        assert_eq!(v["clusters"][0]["name"], "");
        assert_eq!(v["users"], json!([]));
        assert!(v["clusters"][0]["cluster"]["certificate-authority-data"].as_str().is_some_and(|s| !s.is_empty()));
    }
}
