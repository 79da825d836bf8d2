//! Which CSRs are node certificates, by upstream's rules (`ValidateKubeletClientCSR`,
//! `ValidateKubeletServingCSR`, the approver's recognizers). Pure: the approver and the signer both ask.

use crate::request::Parsed;

/// The signer of kubelets' client certificates.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// The signer of kubelets' serving certificates.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
/// The signer of other API client certificates (never auto-approved).
pub const API_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";

const NODES_GROUP: &str = "system:nodes";
const NODE_PREFIX: &str = "system:node:";

/// Why a CSR may be auto-approved, and the SubjectAccessReview subresource that must allow its requester.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recognized {
    /// A node renewing its own client certificate (`certificatesigningrequests/selfnodeclient`).
    SelfNodeClient,
    /// A bootstrapper asking for a node client certificate (`certificatesigningrequests/nodeclient`).
    NodeClient,
    /// A node asking for its serving certificate (rkube's rule: no SubjectAccessReview, the requester must be
    /// the node named in the request).
    NodeServing,
}

impl Recognized {
    /// The subresource of `certificatesigningrequests` the requester must be allowed to `create`.
    pub(crate) fn permission(self) -> Option<&'static str> {
        match self {
            Recognized::SelfNodeClient => Some("selfnodeclient"),
            Recognized::NodeClient => Some("nodeclient"),
            Recognized::NodeServing => None,
        }
    }

    /// The Approved condition's message, upstream's wording for the client cases.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Recognized::SelfNodeClient => "Auto approving self kubelet client certificate after SubjectAccessReview.",
            Recognized::NodeClient => "Auto approving kubelet client certificate after SubjectAccessReview.",
            Recognized::NodeServing => {
                "Auto approving kubelet serving certificate: the requester is the node it names."
            }
        }
    }
}

fn same_usages(usages: &[String], allowed: &[&[&str]]) -> bool {
    let mut have: Vec<&str> = usages.iter().map(String::as_str).collect();
    have.sort_unstable();
    have.dedup();
    allowed.iter().any(|set| {
        let mut want = set.to_vec();
        want.sort_unstable();
        want == have
    })
}

fn node_subject(req: &Parsed) -> Result<(), String> {
    if req.orgs != [NODES_GROUP] {
        return Err("subject organization is not system:nodes".to_owned());
    }
    if !req.cn.starts_with(NODE_PREFIX) {
        return Err("subject common name does not begin with system:node:".to_owned());
    }
    if req.emails > 0 {
        return Err("Email subjectAltNames are not allowed".to_owned());
    }
    if req.uris > 0 {
        return Err("URI subjectAltNames are not allowed".to_owned());
    }
    Ok(())
}

/// Upstream's `ValidateKubeletClientCSR`.
pub(crate) fn kubelet_client(req: &Parsed, usages: &[String]) -> Result<(), String> {
    node_subject(req)?;
    if !req.dns.is_empty() {
        return Err("DNS subjectAltNames are not allowed".to_owned());
    }
    if !req.ips.is_empty() {
        return Err("IP subjectAltNames are not allowed".to_owned());
    }
    if !same_usages(
        usages,
        &[&["digital signature", "client auth"], &["key encipherment", "digital signature", "client auth"]],
    ) {
        return Err(format!("usages did not match [client auth digital signature]: {usages:?}"));
    }
    Ok(())
}

/// Upstream's `ValidateKubeletServingCSR`.
pub(crate) fn kubelet_serving(req: &Parsed, usages: &[String]) -> Result<(), String> {
    node_subject(req)?;
    if req.dns.is_empty() && req.ips.is_empty() {
        return Err("DNS or IP subjectAltName is required".to_owned());
    }
    if !same_usages(
        usages,
        &[&["digital signature", "server auth"], &["key encipherment", "digital signature", "server auth"]],
    ) {
        return Err(format!("usages did not match [digital signature server auth]: {usages:?}"));
    }
    Ok(())
}

/// Whether the approver may approve this CSR (then after the SubjectAccessReview named by
/// [`Recognized::permission`]). `username`/`groups` are the requester's, as the API server recorded them.
pub(crate) fn recognize(
    signer: &str,
    username: &str,
    groups: &[String],
    req: &Parsed,
    usages: &[String],
) -> Option<Recognized> {
    match signer {
        KUBELET_CLIENT_SIGNER if kubelet_client(req, usages).is_ok() => {
            Some(if req.cn == username { Recognized::SelfNodeClient } else { Recognized::NodeClient })
        }
        KUBELET_SERVING_SIGNER
            if kubelet_serving(req, usages).is_ok()
                && req.cn == username
                && groups.iter().any(|g| g == NODES_GROUP) =>
        {
            Some(Recognized::NodeServing)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(cn: &str) -> Parsed {
        Parsed { cn: cn.to_owned(), orgs: vec![NODES_GROUP.to_owned()], ..Parsed::default() }
    }
    fn u(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn bootstrap_and_self_client_requests() {
        let usages = u(&["digital signature", "client auth"]);
        let req = node("system:node:n1");
        let boot = ["system:bootstrappers".to_owned()];
        assert_eq!(
            recognize(KUBELET_CLIENT_SIGNER, "system:bootstrap:abcdef", &boot, &req, &usages),
            Some(Recognized::NodeClient)
        );
        let nodes = [NODES_GROUP.to_owned()];
        assert_eq!(
            recognize(KUBELET_CLIENT_SIGNER, "system:node:n1", &nodes, &req, &usages),
            Some(Recognized::SelfNodeClient)
        );
        // Key encipherment is accepted (RSA keys), other usages are not.
        let rsa = u(&["key encipherment", "digital signature", "client auth"]);
        assert!(recognize(KUBELET_CLIENT_SIGNER, "x", &boot, &req, &rsa).is_some());
        assert!(
            recognize(
                KUBELET_CLIENT_SIGNER,
                "x",
                &boot,
                &req,
                &u(&["client auth", "server auth", "digital signature"])
            )
            .is_none()
        );
        assert!(recognize(API_CLIENT_SIGNER, "x", &boot, &req, &usages).is_none());
    }

    #[test]
    fn client_requests_that_are_not_node_certificates() {
        let usages = u(&["digital signature", "client auth"]);
        let boot = ["system:bootstrappers".to_owned()];
        let mut admin = node("system:node:n1");
        admin.orgs = vec!["system:masters".to_owned()];
        assert!(recognize(KUBELET_CLIENT_SIGNER, "x", &boot, &admin, &usages).is_none());
        let mut two = node("system:node:n1");
        two.orgs.push("system:masters".to_owned());
        assert!(recognize(KUBELET_CLIENT_SIGNER, "x", &boot, &two, &usages).is_none());
        assert!(recognize(KUBELET_CLIENT_SIGNER, "x", &boot, &node("bob"), &usages).is_none());
        let mut with_ip = node("system:node:n1");
        with_ip.ips.push("10.0.0.1".parse().expect("ip"));
        assert_eq!(kubelet_client(&with_ip, &usages), Err("IP subjectAltNames are not allowed".to_owned()));
    }

    #[test]
    fn serving_requests_only_from_the_node_they_name() {
        let usages = u(&["digital signature", "server auth"]);
        let mut req = node("system:node:n1");
        req.dns.push("n1".to_owned());
        req.ips.push("10.0.0.1".parse().expect("ip"));
        let nodes = [NODES_GROUP.to_owned()];
        assert_eq!(
            recognize(KUBELET_SERVING_SIGNER, "system:node:n1", &nodes, &req, &usages),
            Some(Recognized::NodeServing)
        );
        assert!(recognize(KUBELET_SERVING_SIGNER, "system:node:n2", &nodes, &req, &usages).is_none());
        let boot = ["system:bootstrappers".to_owned()];
        assert!(recognize(KUBELET_SERVING_SIGNER, "system:node:n1", &boot, &req, &usages).is_none());
        let bare = node("system:node:n1");
        assert_eq!(kubelet_serving(&bare, &usages), Err("DNS or IP subjectAltName is required".to_owned()));
        assert!(kubelet_serving(&req, &u(&["digital signature", "client auth"])).is_err());
    }
}
