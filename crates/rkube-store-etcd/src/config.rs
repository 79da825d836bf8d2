//! Where the etcd cluster is and how to authenticate to it, and turning that into etcd-client connect options.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use rkube_store::{Error, Result};

/// How to reach an etcd v3 cluster: kube-apiserver's `--etcd-servers`, `--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// Client URLs of the members, e.g. `https://127.0.0.1:2379`; a URL without scheme is taken as
    /// `https://` when a CA file is given, else `http://`.
    pub endpoints: Vec<String>,
    /// PEM file of the CA that signed the servers' certificates (required for `https://` endpoints).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate presented to etcd (with `--client-cert-auth` on the server); needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// How long establishing a connection (and the first request at connect) may take before the
    /// endpoint counts as unavailable.
    pub connect_timeout: Duration,
}

impl Default for EtcdConfig {
    /// No endpoints (they must be given), no TLS, a 5 s connect timeout.
    fn default() -> Self {
        EtcdConfig {
            endpoints: Vec::new(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// How often an idle connection is pinged, so a dead etcd is noticed while a watch waits for events.
/// etcd refuses pings more often than every 5 s (`--grpc-keepalive-min-time`).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

impl EtcdConfig {
    /// A configuration for plain-HTTP `endpoints` with the default timeout.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        EtcdConfig { endpoints: endpoints.into_iter().map(Into::into).collect(), ..Default::default() }
    }

    /// The endpoints with their scheme made explicit, so errors and the client agree on what was dialled.
    pub(crate) fn normalized_endpoints(&self) -> Vec<String> {
        let default_scheme = if self.ca_file.is_some() { "https://" } else { "http://" };
        self.endpoints
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .map(|e| if e.contains("://") { e.to_owned() } else { format!("{default_scheme}{e}") })
            .collect()
    }

    /// The TLS files given, for error messages: `CA /x/ca.pem, client certificate /x/c.pem, ...`.
    pub(crate) fn tls_files(&self) -> String {
        let files: Vec<String> =
            [("CA", &self.ca_file), ("client certificate", &self.cert_file), ("client key", &self.key_file)]
                .into_iter()
                .filter_map(|(what, f)| f.as_ref().map(|f| format!("{what} {}", f.display())))
                .collect();
        if files.is_empty() { "no TLS files".to_owned() } else { files.join(", ") }
    }

    /// Checks the endpoints and reads the TLS files, reporting every problem with what to do about it.
    pub(crate) fn connect_options(&self) -> Result<ConnectOptions> {
        let endpoints = self.normalized_endpoints();
        let location = endpoints.join(",");
        if endpoints.is_empty() {
            return Err(config_error(
                "etcd",
                "no etcd endpoints given: pass the client URLs, e.g. https://127.0.0.1:2379",
            ));
        }
        for ep in &endpoints {
            if !(ep.starts_with("http://") || ep.starts_with("https://")) {
                return Err(config_error(
                    ep,
                    "the endpoint must be an http:// or https:// URL, e.g. https://127.0.0.1:2379",
                ));
            }
        }
        let https = endpoints.iter().filter(|e| e.starts_with("https://")).count();
        if https > 0 && https < endpoints.len() {
            return Err(config_error(
                &location,
                "the endpoints mix http:// and https://; every member of one cluster speaks the same: use one scheme",
            ));
        }
        let tls_given = self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some();
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.connect_timeout)
            .with_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT);
        if https == 0 {
            if tls_given {
                return Err(config_error(
                    &location,
                    &format!(
                        "TLS files are given ({}) but the endpoints are plain http://: write them as https://... to use TLS, or drop the files",
                        self.tls_files()
                    ),
                ));
            }
            return Ok(options);
        }
        let Some(ca_file) = &self.ca_file else {
            return Err(config_error(
                &location,
                "https:// endpoints need the CA that signed etcd's server certificate: give the CA file (--etcd-cafile)",
            ));
        };
        let mut tls =
            TlsOptions::new().ca_certificate(Certificate::from_pem(read_pem(ca_file, "CA file (--etcd-cafile)")?));
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let cert_pem = read_pem(cert, "client certificate file (--etcd-certfile)")?;
                let key_pem = read_pem(key, "client key file (--etcd-keyfile)")?;
                tls = tls.identity(Identity::from_pem(cert_pem, key_pem));
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(config_error(
                    &location,
                    "a client certificate is given without its key: give the key file (--etcd-keyfile) too",
                ));
            }
            (None, Some(_)) => {
                return Err(config_error(
                    &location,
                    "a client key is given without its certificate: give the certificate file (--etcd-certfile) too",
                ));
            }
        }
        options = options.with_tls(tls);
        Ok(options)
    }
}

fn config_error(location: &str, message: &str) -> Error {
    Error::Unavailable { location: location.to_owned(), message: message.to_owned(), source: None }
}

/// Reads a PEM file, naming it (and the flag it came from) when it is missing, unreadable or not PEM.
fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>> {
    let data = std::fs::read(path).map_err(|e| Error::Unavailable {
        location: path.display().to_string(),
        message: format!("cannot read the etcd {what} {}: {e}; check the path and its permissions", path.display()),
        source: Some(Box::new(e)),
    })?;
    if !data.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(Error::Unavailable {
            location: path.display().to_string(),
            message: format!(
                "the etcd {what} {} is not PEM (no -----BEGIN line): give the PEM-encoded file",
                path.display()
            ),
            source: None,
        });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_without_scheme_follow_the_tls_setup() {
        let mut config = EtcdConfig::new(["127.0.0.1:2379", " http://127.0.0.1:2380 ", ""]);
        assert_eq!(config.normalized_endpoints(), vec!["http://127.0.0.1:2379", "http://127.0.0.1:2380"]);
        config.ca_file = Some("/etc/etcd/ca.pem".into());
        assert_eq!(config.normalized_endpoints()[0], "https://127.0.0.1:2379");
        assert_eq!(config.tls_files(), "CA /etc/etcd/ca.pem");
        assert_eq!(EtcdConfig::default().tls_files(), "no TLS files");
    }
}
