//! rkube's PKI: the cluster CA, the server's certificates, the service-account key, kubeconfigs, and rustls glue.
//!
//! [`Pki::load_or_create`] runs on every `rkube server` start against `<data-dir>/server/tls/`:
//!
//! | file | what |
//! | --- | --- |
//! | `ca.crt`, `ca.key` | the cluster CA (ECDSA P-256, 10 years), trusted for serving and client certificates |
//! | `serving-kube-apiserver.{crt,key}` | the API serving certificate (node name and IPs, loopback, `kubernetes.*`, `--tls-san`) |
//! | `client-admin.{crt,key}` | `system:admin` in `system:masters`, for the admin kubeconfig |
//! | `client-kube-apiserver.{crt,key}` | the API server's identity towards kubelets |
//! | `service.key` | the service-account token key (RSA 2048), signing and verifying |
//!
//! Keys are 0600, certificates 0644, every write atomic. What exists and fits is reused byte for byte;
//! a leaf that no longer fits is re-issued from the same CA; a corrupt file is an error naming it.
//! All crypto is aws-lc-rs (through rcgen, rustls and x509-parser), the project's one provider.

mod ca;
mod certs;
mod dn;
mod error;
mod files;
mod kubeconfig;
mod pki;
mod sakey;
mod san;
mod tls;

pub use ca::{CA_VALIDITY, pem_certificate};
pub use certs::{DEFAULT_LEAF_VALIDITY, IssuedCert};
pub use error::{PkiError, Result};
pub use kubeconfig::{
    AuthInfo, CLUSTER_NAME, Cluster, Context, DEFAULT_SERVER_URL, Kubeconfig, NamedCluster, NamedContext, NamedUser,
};
pub use pki::{
    ADMIN_USER, APISERVER_CN, DEFAULT_CLUSTER_DOMAIN, DEFAULT_SERVICE_IP, KUBELET_CLIENT_USER, MASTERS_GROUP, Pki,
    PkiConfig, PkiPaths,
};
pub use sakey::ServiceAccountKey;
pub use san::{San, service_cidr_first_ip};
pub use tls::{ClientIdentity, client_identity, client_tls_config, crypto_provider, server_tls_config};
