//! The CertificateSigningRequest controllers of kube-controller-manager: the approver (`csrapproving`: node
//! client certificates requested by bootstrap tokens or by the node itself, after a SubjectAccessReview) and
//! the signer (`csrsigning`: the `kubernetes.io/kube-apiserver-client-kubelet`, `kubelet-serving` and
//! `kube-apiserver-client` signers, with the cluster CA).
//!
//! Unlike upstream, the approver also approves `kubernetes.io/kubelet-serving` requests, but only from the node
//! the request names (requester `system:node:<name>` in `system:nodes`, subject `system:node:<name>` in
//! `system:nodes`, DNS/IP names only): rkube's agents get their serving certificate this way, where upstream
//! leaves such requests to an operator or a third-party approver.

mod controller;
mod request;
mod rules;
mod sign;

pub use rules::{API_CLIENT_SIGNER, KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER};
pub use sign::{DEFAULT_DURATION, Signer};

/// Errors starting the controllers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The CA files cannot sign.
    #[error("the cluster CA cannot sign certificate requests: {0}")]
    Ca(String),
}

/// Runs the approver and the signer until `stop` turns true. Several servers may run it at once: a second
/// approval or signature of the same request loses the update race and is dropped.
pub async fn run(client: kube::Client, signer: Signer, stop: tokio::sync::watch::Receiver<bool>) {
    controller::run(client, signer, stop).await;
}
