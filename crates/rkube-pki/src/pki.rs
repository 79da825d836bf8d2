//! `Pki`: the server's TLS directory as a whole, loaded or created on start, and what the API server asks of it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;

use crate::ca::Ca;
use crate::certs::{DEFAULT_LEAF_VALIDITY, IssuedCert, LeafSpec, Usage, Which, reissue_reason, unix_now};
use crate::error::{PkiError, Result};
use crate::files::{
    FileKind, PUBLIC_MODE, SECRET_MODE, ensure_private_dir, read_optional, tighten_secret_mode, write_atomic,
};
use crate::kubeconfig::Kubeconfig;
use crate::sakey::ServiceAccountKey;
use crate::san::{San, push_unique};
use crate::tls;

/// The admin user: upstream's `system:masters` group bypasses authorization.
pub const ADMIN_USER: &str = "system:admin";
/// The group that bypasses authorization.
pub const MASTERS_GROUP: &str = "system:masters";
/// The user the API server presents to kubelets (logs, exec, port-forward).
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";
/// The common name of the API serving certificate (clients match SANs, not this).
pub const APISERVER_CN: &str = "kube-apiserver";
/// The default cluster DNS domain.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";
/// The first IP of the default service CIDR `10.254.0.0/16`: the `kubernetes` Service's ClusterIP.
pub const DEFAULT_SERVICE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 254, 0, 1));

/// What the API serving certificate must cover, and where the files live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiConfig {
    /// The TLS directory, `<data-dir>/server/tls`; created 0700 if missing.
    pub dir: PathBuf,
    /// This node's name (a DNS name, or an IP address).
    pub node_name: String,
    /// This node's IP addresses.
    pub node_ips: Vec<IpAddr>,
    /// The first IP of the service CIDR (see [`crate::service_cidr_first_ip`]).
    pub service_cidr_first_ip: IpAddr,
    /// The cluster DNS domain, e.g. `cluster.local`.
    pub cluster_domain: String,
    /// `--tls-san` values: DNS names or IP addresses.
    pub extra_sans: Vec<String>,
}

impl PkiConfig {
    /// A configuration with the defaults: no node IPs, service IP 10.254.0.1, domain `cluster.local`, no extra SANs.
    pub fn new(dir: impl Into<PathBuf>, node_name: impl Into<String>) -> PkiConfig {
        PkiConfig {
            dir: dir.into(),
            node_name: node_name.into(),
            node_ips: Vec::new(),
            service_cidr_first_ip: DEFAULT_SERVICE_IP,
            cluster_domain: DEFAULT_CLUSTER_DOMAIN.to_owned(),
            extra_sans: Vec::new(),
        }
    }

    /// Every name the API serving certificate must hold: node name and IPs, loopback, `localhost`, the
    /// `kubernetes` Service's IP and DNS names, then the extra SANs. An invalid value is an error naming it.
    pub fn apiserver_sans(&self) -> Result<Vec<San>> {
        let mut sans = Vec::new();
        push_unique(&mut sans, San::parse(&self.node_name)?);
        for ip in &self.node_ips {
            push_unique(&mut sans, San::Ip(*ip));
        }
        push_unique(&mut sans, San::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        push_unique(&mut sans, San::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        push_unique(&mut sans, San::Dns("localhost".to_owned()));
        push_unique(&mut sans, San::Ip(self.service_cidr_first_ip));
        for name in ["kubernetes", "kubernetes.default", "kubernetes.default.svc"] {
            push_unique(&mut sans, San::Dns(name.to_owned()));
        }
        push_unique(&mut sans, San::parse(&format!("kubernetes.default.svc.{}", self.cluster_domain))?);
        for extra in &self.extra_sans {
            push_unique(&mut sans, San::parse(extra)?);
        }
        Ok(sans)
    }
}

/// The files of the TLS directory. Names follow k3s's `server/tls` so operators find what they expect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiPaths {
    /// The cluster CA certificate (0644).
    pub ca_cert: PathBuf,
    /// The cluster CA key (0600).
    pub ca_key: PathBuf,
    /// The API serving certificate (0644).
    pub serving_cert: PathBuf,
    /// The API serving key (0600).
    pub serving_key: PathBuf,
    /// The admin client certificate (0644).
    pub admin_cert: PathBuf,
    /// The admin client key (0600).
    pub admin_key: PathBuf,
    /// The API server's client certificate for kubelets (0644).
    pub kubelet_client_cert: PathBuf,
    /// The API server's client key for kubelets (0600).
    pub kubelet_client_key: PathBuf,
    /// The service-account signing key (0600).
    pub service_account_key: PathBuf,
}

impl PkiPaths {
    /// The paths inside `dir`.
    pub fn new(dir: &Path) -> PkiPaths {
        PkiPaths {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            serving_cert: dir.join("serving-kube-apiserver.crt"),
            serving_key: dir.join("serving-kube-apiserver.key"),
            admin_cert: dir.join("client-admin.crt"),
            admin_key: dir.join("client-admin.key"),
            kubelet_client_cert: dir.join("client-kube-apiserver.crt"),
            kubelet_client_key: dir.join("client-kube-apiserver.key"),
            service_account_key: dir.join("service.key"),
        }
    }
}

/// The cluster's PKI, loaded: the CA, the server's own certificates and the service-account key.
pub struct Pki {
    paths: PkiPaths,
    ca: Ca,
    serving_sans: Vec<San>,
    serving: IssuedCert,
    admin: IssuedCert,
    kubelet_client: IssuedCert,
    service_account: ServiceAccountKey,
}

impl Pki {
    /// Loads the TLS directory, creating what is missing and re-issuing (from the same CA) any leaf
    /// certificate that no longer fits: expiring within 90 days, signed by another CA, or lacking a
    /// SAN now asked for. Each re-issue is logged with its reason. Corrupt files are errors naming the
    /// file and the remedy; nothing corrupt is ever overwritten.
    pub fn load_or_create(cfg: &PkiConfig) -> Result<Pki> {
        // Validate every input before the first file is touched.
        let serving_sans = cfg.apiserver_sans()?;
        ensure_private_dir(&cfg.dir)?;
        let paths = PkiPaths::new(&cfg.dir);
        let ca = Ca::load_or_create(&paths.ca_cert, &paths.ca_key)?;
        let serving_spec = LeafSpec {
            cn: APISERVER_CN.to_owned(),
            orgs: Vec::new(),
            sans: serving_sans.clone(),
            usage: Usage::Server,
            validity: DEFAULT_LEAF_VALIDITY,
        };
        let serving = ensure_leaf(&ca, &paths.serving_cert, &paths.serving_key, &serving_spec, "API serving")?;
        let admin = ensure_leaf(
            &ca,
            &paths.admin_cert,
            &paths.admin_key,
            &client_spec(ADMIN_USER, &[MASTERS_GROUP], DEFAULT_LEAF_VALIDITY),
            "admin client",
        )?;
        let kubelet_client = ensure_leaf(
            &ca,
            &paths.kubelet_client_cert,
            &paths.kubelet_client_key,
            &client_spec(KUBELET_CLIENT_USER, &[MASTERS_GROUP], DEFAULT_LEAF_VALIDITY),
            "kubelet client",
        )?;
        let service_account = ServiceAccountKey::load_or_create(&paths.service_account_key)?;
        Ok(Pki { paths, ca, serving_sans, serving, admin, kubelet_client, service_account })
    }

    /// Where each file is.
    pub fn paths(&self) -> &PkiPaths {
        &self.paths
    }

    /// The CA certificate, PEM: what clients trust.
    pub fn ca_cert_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// The CA certificate, DER.
    pub fn ca_cert_der(&self) -> &CertificateDer<'static> {
        self.ca.cert_der()
    }

    /// The API serving certificate and key.
    pub fn serving(&self) -> &IssuedCert {
        &self.serving
    }

    /// The SANs the serving certificate was required to hold.
    pub fn serving_sans(&self) -> &[San] {
        &self.serving_sans
    }

    /// The admin client certificate (`system:admin`, group `system:masters`) and key.
    pub fn admin(&self) -> &IssuedCert {
        &self.admin
    }

    /// The API server's client certificate for talking to kubelets, and key.
    pub fn kubelet_client(&self) -> &IssuedCert {
        &self.kubelet_client
    }

    /// The service-account signing key.
    pub fn service_account_key(&self) -> &ServiceAccountKey {
        &self.service_account
    }

    /// The service-account private key, PEM (both signing and, through its public half, verifying).
    pub fn service_account_key_pem(&self) -> &str {
        self.service_account.private_key_pem()
    }

    /// Issues a client certificate for user `cn` in `groups`, signed by the CA. Nothing is written.
    pub fn issue_client_cert(&self, cn: &str, groups: &[impl AsRef<str>], validity: Duration) -> Result<IssuedCert> {
        let groups: Vec<&str> = groups.iter().map(AsRef::as_ref).collect();
        self.ca.sign(&checked_client_spec(cn, &groups, validity)?)
    }

    /// Issues a serving certificate for `sans` (at least one: clients match SANs, never the CN), signed
    /// by the CA. Nothing is written.
    pub fn issue_serving_cert(&self, cn: &str, sans: &[San], validity: Duration) -> Result<IssuedCert> {
        check_subject(cn)?;
        if sans.is_empty() {
            return Err(PkiError::InvalidSubject {
                value: cn.to_owned(),
                reason: "a serving certificate needs at least one subject alternative name",
            });
        }
        self.ca.sign(&LeafSpec {
            cn: cn.to_owned(),
            orgs: Vec::new(),
            sans: sans.to_vec(),
            usage: Usage::Server,
            validity,
        })
    }

    /// The admin kubeconfig for `server_url` (cluster `rkube`, user `admin`, client certificate).
    pub fn admin_kubeconfig(&self, server_url: &str) -> Kubeconfig {
        Kubeconfig::with_client_cert(
            server_url,
            self.ca_cert_pem(),
            "admin",
            self.admin.cert_pem(),
            self.admin.key_pem(),
        )
    }

    /// Writes the admin kubeconfig to `path` (0600), as k3s's `--write-kubeconfig` does.
    pub fn write_admin_kubeconfig(&self, path: &Path, server_url: &str) -> Result<()> {
        self.admin_kubeconfig(server_url).write(path)?;
        tracing::info!(path = %path.display(), "wrote the admin kubeconfig");
        Ok(())
    }

    /// A kubeconfig for `server_url` that trusts the CA and authenticates user entry `user` with `token`.
    pub fn token_kubeconfig(&self, server_url: &str, user: &str, token: &str) -> Kubeconfig {
        Kubeconfig::with_token(server_url, self.ca_cert_pem(), user, token)
    }

    /// The API server's rustls configuration (see [`crate::server_tls_config`]).
    pub fn server_tls_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        tls::server_tls_config(&self.serving, self.ca.cert_der())
    }
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("paths", &self.paths)
            .field("serving_sans", &self.serving_sans)
            .finish_non_exhaustive()
    }
}

fn client_spec(cn: &str, groups: &[&str], validity: Duration) -> LeafSpec {
    LeafSpec {
        cn: cn.to_owned(),
        orgs: groups.iter().map(|g| (*g).to_owned()).collect(),
        sans: Vec::new(),
        usage: Usage::Client,
        validity,
    }
}

fn checked_client_spec(cn: &str, groups: &[&str], validity: Duration) -> Result<LeafSpec> {
    check_subject(cn)?;
    for g in groups {
        check_subject(g)?;
    }
    Ok(client_spec(cn, groups, validity))
}

/// An empty CN authenticates as nobody upstream, and control characters make names no one can type.
fn check_subject(value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(PkiError::InvalidSubject { value: value.to_owned(), reason: "it is empty" });
    }
    if value.chars().any(char::is_control) {
        return Err(PkiError::InvalidSubject { value: value.to_owned(), reason: "it contains control characters" });
    }
    Ok(())
}

/// Loads a leaf certificate and key, re-issuing them from `ca` when missing or no longer fitting `spec`.
fn ensure_leaf(ca: &Ca, cert_path: &Path, key_path: &Path, spec: &LeafSpec, label: &str) -> Result<IssuedCert> {
    let cert_pem = read_optional(cert_path, FileKind::Leaf)?;
    let key_pem = read_optional(key_path, FileKind::Leaf)?;
    if key_pem.is_some() {
        tighten_secret_mode(key_path)?;
    }
    let reason = match (cert_pem, key_pem) {
        (None, None) => None,
        (Some(_), None) => Some(format!("{} is missing", key_path.display())),
        (None, Some(_)) => Some(format!("{} is missing", cert_path.display())),
        (Some(cert_pem), Some(key_pem)) => match IssuedCert::from_pem(cert_pem, key_pem) {
            Err((which, detail)) => {
                let (path, what) = match which {
                    Which::Cert => (cert_path, "PEM certificate"),
                    Which::Key => (key_path, "PEM private key"),
                };
                return Err(PkiError::Corrupt { path: path.to_owned(), what, detail, remedy: FileKind::Leaf.remedy() });
            }
            Ok(stored) => match reissue_reason(ca, &stored, spec, unix_now()) {
                None => return Ok(stored),
                Some(reason) => Some(reason),
            },
        },
    };
    let issued = ca.sign(spec)?;
    // Key first, so a crash in between leaves a pair that fails the key check and is re-issued.
    write_atomic(key_path, issued.key_pem().as_bytes(), SECRET_MODE)?;
    write_atomic(cert_path, issued.cert_pem().as_bytes(), PUBLIC_MODE)?;
    match reason {
        None => tracing::info!(cert = %cert_path.display(), "issued the {label} certificate"),
        Some(reason) => {
            tracing::warn!(cert = %cert_path.display(), %reason, "re-issued the {label} certificate from the cluster CA")
        }
    }
    Ok(issued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_is_shareable_across_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Pki>();
    }

    #[test]
    fn sans_are_complete_and_deduplicated() {
        let mut cfg = PkiConfig::new("/unused", "Node-1");
        cfg.node_ips = vec!["192.168.1.5".parse().expect("ip"), "127.0.0.1".parse().expect("ip")];
        cfg.extra_sans = vec!["api.example.com".into(), "localhost".into(), "10.0.0.9".into()];
        let sans: Vec<String> = cfg.apiserver_sans().expect("sans").iter().map(ToString::to_string).collect();
        assert_eq!(
            sans,
            [
                "node-1",
                "192.168.1.5",
                "127.0.0.1",
                "::1",
                "localhost",
                "10.254.0.1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                "api.example.com",
                "10.0.0.9",
            ]
        );
    }

    #[test]
    fn invalid_tls_san_is_named_before_anything_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = PkiConfig::new(dir.path().join("tls"), "node1");
        cfg.extra_sans = vec!["https://api.example.com:6443".into()];
        let err = Pki::load_or_create(&cfg).expect_err("invalid san");
        assert!(err.to_string().contains("https://api.example.com:6443"), "{err}");
        assert!(!cfg.dir.exists());
    }

    #[test]
    fn client_subjects_are_checked() {
        assert!(checked_client_spec("", &[], DEFAULT_LEAF_VALIDITY).is_err());
        assert!(checked_client_spec("u", &["a\nb"], DEFAULT_LEAF_VALIDITY).is_err());
        assert!(checked_client_spec("system:node:n1", &["system:nodes"], DEFAULT_LEAF_VALIDITY).is_ok());
    }
}
