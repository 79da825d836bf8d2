//! Kubeconfig files in the format kubectl and client-go read (`apiVersion: v1`, `kind: Config`).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::{PkiError, Result};
use crate::files::{SECRET_MODE, write_atomic};

/// The cluster and context name in every kubeconfig rkube writes.
pub const CLUSTER_NAME: &str = "rkube";
/// The API server URL of a kubeconfig used on the server's own host.
pub const DEFAULT_SERVER_URL: &str = "https://127.0.0.1:6443";

/// A kubeconfig document. Field names follow client-go's `clientcmd/api/v1` exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kubeconfig {
    /// Always `v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Always `Config`.
    pub kind: String,
    /// The clusters, by name.
    pub clusters: Vec<NamedCluster>,
    /// The credentials, by name.
    pub users: Vec<NamedUser>,
    /// Cluster/user pairs, by name.
    pub contexts: Vec<NamedContext>,
    /// The context kubectl uses when none is given.
    #[serde(rename = "current-context")]
    pub current_context: String,
    /// kubectl writes an empty map here; kept so our files round-trip through `kubectl config` unchanged.
    #[serde(default)]
    pub preferences: serde_yaml::Mapping,
}

/// A cluster entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedCluster {
    /// Its name.
    pub name: String,
    /// Where it is and how to trust it.
    pub cluster: Cluster,
}

/// How to reach and trust an API server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// The API server URL.
    pub server: String,
    /// The CA bundle, base64 of PEM.
    #[serde(rename = "certificate-authority-data")]
    pub certificate_authority_data: String,
}

/// A credentials entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedUser {
    /// Its name.
    pub name: String,
    /// The credentials.
    pub user: AuthInfo,
}

/// Credentials: a client certificate and key, or a bearer token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthInfo {
    /// The client certificate, base64 of PEM.
    #[serde(rename = "client-certificate-data", default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_data: Option<String>,
    /// The client key, base64 of PEM.
    #[serde(rename = "client-key-data", default, skip_serializing_if = "Option::is_none")]
    pub client_key_data: Option<String>,
    /// A bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// A context entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedContext {
    /// Its name.
    pub name: String,
    /// The cluster/user pair.
    pub context: Context,
}

/// A cluster/user pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// The cluster's name.
    pub cluster: String,
    /// The user's name.
    pub user: String,
}

impl Kubeconfig {
    /// A kubeconfig with one cluster (`rkube`), one user named `user` with `auth`, and one context selecting them.
    pub fn new(server_url: &str, ca_pem: &str, user: &str, auth: AuthInfo) -> Kubeconfig {
        Kubeconfig {
            api_version: "v1".to_owned(),
            kind: "Config".to_owned(),
            clusters: vec![NamedCluster {
                name: CLUSTER_NAME.to_owned(),
                cluster: Cluster { server: server_url.to_owned(), certificate_authority_data: STANDARD.encode(ca_pem) },
            }],
            users: vec![NamedUser { name: user.to_owned(), user: auth }],
            contexts: vec![NamedContext {
                name: CLUSTER_NAME.to_owned(),
                context: Context { cluster: CLUSTER_NAME.to_owned(), user: user.to_owned() },
            }],
            current_context: CLUSTER_NAME.to_owned(),
            preferences: serde_yaml::Mapping::new(),
        }
    }

    /// A kubeconfig authenticating with a client certificate.
    pub fn with_client_cert(server_url: &str, ca_pem: &str, user: &str, cert_pem: &str, key_pem: &str) -> Kubeconfig {
        let auth = AuthInfo {
            client_certificate_data: Some(STANDARD.encode(cert_pem)),
            client_key_data: Some(STANDARD.encode(key_pem)),
            token: None,
        };
        Kubeconfig::new(server_url, ca_pem, user, auth)
    }

    /// A kubeconfig authenticating with a bearer token.
    pub fn with_token(server_url: &str, ca_pem: &str, user: &str, token: &str) -> Kubeconfig {
        let auth = AuthInfo { token: Some(token.to_owned()), ..AuthInfo::default() };
        Kubeconfig::new(server_url, ca_pem, user, auth)
    }

    /// The YAML text.
    pub fn to_yaml(&self) -> Result<String> {
        serde_yaml::to_string(self).map_err(|source| PkiError::Kubeconfig { action: "render", source })
    }

    /// Parses YAML text.
    pub fn from_yaml(text: &str) -> Result<Kubeconfig> {
        serde_yaml::from_str(text).map_err(|source| PkiError::Kubeconfig { action: "parse", source })
    }

    /// Writes the YAML to `path` with mode 0600 (it holds credentials), replacing the file atomically,
    /// and leaving it untouched (mode included) when it already has exactly this content.
    pub fn write(&self, path: &Path) -> Result<()> {
        let yaml = self.to_yaml()?;
        if std::fs::read(path).is_ok_and(|old| old == yaml.as_bytes()) {
            return Ok(());
        }
        write_atomic(path, yaml.as_bytes(), SECRET_MODE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_kubeconfig_has_only_a_token() {
        let kc = Kubeconfig::with_token(DEFAULT_SERVER_URL, "PEM", "bootstrap", "abc.def");
        let yaml = kc.to_yaml().expect("render");
        assert!(yaml.contains("token: abc.def"), "{yaml}");
        assert!(!yaml.contains("client-key-data"), "{yaml}");
        assert!(yaml.contains("current-context: rkube"), "{yaml}");
        assert_eq!(Kubeconfig::from_yaml(&yaml).expect("parse"), kc);
    }

    #[test]
    fn write_is_0600_and_idempotent() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kubeconfig.yaml");
        let kc = Kubeconfig::with_token(DEFAULT_SERVER_URL, "PEM", "u", "t");
        kc.write(&path).expect("write");
        assert_eq!(std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777, 0o600);
        // An operator who widened the mode on purpose keeps it while the content is unchanged.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        kc.write(&path).expect("rewrite");
        assert_eq!(std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777, 0o640);
    }
}
