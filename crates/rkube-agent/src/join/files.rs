//! The node's credentials on disk, under `<data-dir>/agent/` with k3s's names: `server-ca.crt` (the cluster CA
//! the token pinned), `client-kubelet.{crt,key}` and `kubelet.kubeconfig` (the node's identity),
//! `serving-kubelet.{crt,key}` (the agent API's certificate). Keys are 0600, every write atomic.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::JoinError;

/// Where each file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// The cluster CA.
    pub ca: PathBuf,
    /// The node's client certificate.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// The node's kubeconfig (CA, server, client certificate embedded).
    pub kubeconfig: PathBuf,
    /// The agent API's serving certificate.
    pub serving_cert: PathBuf,
    /// Its key.
    pub serving_key: PathBuf,
}

impl Paths {
    /// The files under `<data_dir>/agent`.
    pub fn new(data_dir: &Path) -> Paths {
        let dir = data_dir.join("agent");
        Paths {
            ca: dir.join("server-ca.crt"),
            client_cert: dir.join("client-kubelet.crt"),
            client_key: dir.join("client-kubelet.key"),
            kubeconfig: dir.join("kubelet.kubeconfig"),
            serving_cert: dir.join("serving-kubelet.crt"),
            serving_key: dir.join("serving-kubelet.key"),
        }
    }
}

fn io(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> JoinError {
    let what = format!("{what} {}", path.display());
    move |source| JoinError::Io { what, source }
}

/// Writes `bytes` to `path` through a temporary file and a rename, with `mode`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), JoinError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir, "creating"))?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io(&tmp, "writing"))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io(&tmp, "writing"))?;
    std::fs::rename(&tmp, path).map_err(io(path, "writing"))
}

/// Reads a file that may be absent.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, JoinError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, "reading")(e)),
    }
}

/// What the agent needs to know about one of its certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CertState {
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
    pub(crate) cn: String,
    pub(crate) dns: Vec<String>,
    pub(crate) ips: Vec<IpAddr>,
    /// Whether the CA it was checked against signed it.
    pub(crate) signed_by_ca: bool,
}

fn at(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

impl CertState {
    /// Reads the first certificate of `cert_pem` and checks it against `ca_pem`; `None` if unreadable.
    pub(crate) fn read(cert_pem: &[u8], ca_pem: &[u8]) -> Option<CertState> {
        let der = CertificateDer::from_pem_slice(cert_pem).ok()?;
        let ca = CertificateDer::from_pem_slice(ca_pem).ok()?;
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
        let (_, ca) = x509_parser::parse_x509_certificate(ca.as_ref()).ok()?;
        let mut dns = Vec::new();
        let mut ips = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(d) => dns.push((*d).to_owned()),
                    x509_parser::extensions::GeneralName::IPAddress(b) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                            ips.push(IpAddr::from(v4));
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                            ips.push(IpAddr::from(v6));
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(CertState {
            not_before: at(cert.validity().not_before.timestamp()),
            not_after: at(cert.validity().not_after.timestamp()),
            cn: cert.subject().iter_common_name().next().and_then(|a| a.as_str().ok()).unwrap_or_default().to_owned(),
            dns,
            ips,
            signed_by_ca: cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok(),
        })
    }

    /// When a certificate is renewed: once 80% of its lifetime has passed.
    pub(crate) fn renew_at(&self) -> SystemTime {
        let life = self.not_after.duration_since(self.not_before).unwrap_or_default();
        self.not_before + life.mul_f64(0.8)
    }

    /// Whether it can still authenticate at `now`.
    pub(crate) fn valid_at(&self, now: SystemTime) -> bool {
        self.signed_by_ca && self.not_before <= now + Duration::from_secs(300) && now < self.not_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_at_four_fifths_of_the_lifetime() {
        let s = CertState {
            not_before: at(1_000),
            not_after: at(11_000),
            cn: String::new(),
            dns: Vec::new(),
            ips: Vec::new(),
            signed_by_ca: true,
        };
        assert_eq!(s.renew_at(), at(9_000));
        assert!(s.valid_at(at(10_999)));
        assert!(!s.valid_at(at(11_000)));
        assert!(!CertState { signed_by_ca: false, ..s }.valid_at(at(5_000)));
    }
}
