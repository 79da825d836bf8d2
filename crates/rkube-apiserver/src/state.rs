//! What every request handler shares: the registry, the served resources, the authorizer, metrics.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::metrics::Metrics;
use crate::rbac::Rbac;
use crate::registry::Registry;

/// Shared server state.
pub(crate) struct AppState {
    /// Objects.
    pub registry: Registry,
    /// Served resources.
    pub catalog: Arc<Catalog>,
    /// RBAC authorizer.
    pub rbac: Rbac,
    /// Request metrics.
    pub metrics: Metrics,
    /// `host:port` clients should use (discovery's serverAddressByClientCIDRs).
    pub advertise: String,
    /// Issues service-account tokens (TokenRequest).
    pub tokens: rkube_auth::TokenIssuer,
    /// Checks service-account tokens.
    pub verifier: rkube_auth::TokenVerifier,
    /// TLS to node agents: the cluster CA and the API server's kubelet-client certificate.
    pub kubelet_tls: Arc<rustls::ClientConfig>,
    /// Set once the server has finished starting (post-start hooks done).
    pub ready: std::sync::atomic::AtomicBool,
}
