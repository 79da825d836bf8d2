//! Identities issued from node 1's CA (joining with a token is issue 8): each joining node's kubeconfig
//! (`system:node:<name>` in the groups of the embedded agent's identity) and its agent API serving
//! certificate, the host's admin kubeconfig pointing at the forwarder, and what every further server shares
//! with n1 (the CA and the service-account key).

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::layout::Layout;
use crate::{Error, Result};

/// How long issued node certificates are valid.
const VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// A joining node's identity files.
#[derive(Clone, Debug)]
pub struct NodeIdentity {
    /// Its kubeconfig (client certificate, the server at 192.168.77.11:6443).
    pub kubeconfig: PathBuf,
    /// Its agent API serving certificate.
    pub cert: PathBuf,
    /// That certificate's key.
    pub key: PathBuf,
    /// The cluster CA (client certificates the agent API accepts).
    pub ca: PathBuf,
}

/// Loads node 1's PKI (the server made it; the same inputs as the server's, so nothing is re-issued).
fn load_pki(layout: &Layout) -> Result<rkube_pki::Pki> {
    let mut config = rkube_pki::PkiConfig::new(layout.node_dir(1).join("server").join("tls"), Layout::node_name(1));
    config.node_ips = vec![IpAddr::V4(Layout::node_ip(1))];
    rkube_pki::Pki::load_or_create(&config).map_err(|e| Error::Invalid(format!("loading node n1's certificates: {e}")))
}

/// The files of node `i`'s identity, under its data directory.
pub fn node_identity_paths(layout: &Layout, i: u32) -> NodeIdentity {
    let dir = layout.node_dir(i).join("identity");
    NodeIdentity {
        kubeconfig: dir.join("kubeconfig.yaml"),
        cert: dir.join("serving.crt"),
        key: dir.join("serving.key"),
        ca: dir.join("ca.crt"),
    }
}

/// Issues node `i`'s identity from node 1's CA and writes it (keys 0600).
pub fn issue_node(layout: &Layout, i: u32) -> Result<NodeIdentity> {
    let pki = load_pki(layout)?;
    let name = Layout::node_name(i);
    let paths = node_identity_paths(layout, i);
    if let Some(dir) = paths.kubeconfig.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    }
    let issue = |e: rkube_pki::PkiError| Error::Invalid(format!("issuing node {name}'s certificates: {e}"));
    let user = rkube_agent::identity::node_user(&name);
    let client = pki.issue_client_cert(&user, &rkube_agent::identity::IN_PROCESS_GROUPS, VALIDITY).map_err(issue)?;
    let kubeconfig = rkube_pki::Kubeconfig::with_client_cert(
        &Layout::server_url(),
        pki.ca_cert_pem(),
        &user,
        client.cert_pem(),
        client.key_pem(),
    );
    kubeconfig.write(&paths.kubeconfig).map_err(issue)?;
    let ip = IpAddr::V4(Layout::node_ip(i));
    let sans = [rkube_pki::San::Ip(ip), rkube_pki::San::Dns(name.clone())];
    let serving = pki.issue_serving_cert(&name, &sans, VALIDITY).map_err(issue)?;
    write_file(&paths.cert, serving.cert_pem(), 0o644)?;
    write_file(&paths.key, serving.key_pem(), 0o600)?;
    write_file(&paths.ca, pki.ca_cert_pem(), 0o644)?;
    Ok(paths)
}

/// Copies n1's CA (certificate and key) and service-account key into server `i`'s PKI directory before its first
/// start, so that every server trusts the same clients and accepts the tokens any of them signed (the guides'
/// "service-account keys differ" pit). The server issues its own serving certificate from that CA.
pub fn copy_shared_pki(layout: &Layout, i: u32) -> Result<()> {
    let from = rkube_pki::PkiPaths::new(&layout.node_dir(1).join("server").join("tls"));
    let dir = layout.node_dir(i).join("server").join("tls");
    std::fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(Error::io(format!("securing {}", dir.display())))?;
    let to = rkube_pki::PkiPaths::new(&dir);
    for (src, dst, mode) in [
        (&from.ca_cert, &to.ca_cert, 0o644),
        (&from.ca_key, &to.ca_key, 0o600),
        (&from.service_account_key, &to.service_account_key, 0o600),
    ] {
        let text = std::fs::read_to_string(src).map_err(Error::io(format!("reading {}", src.display())))?;
        write_file(dst, &text, mode)?;
    }
    Ok(())
}

/// Writes the admin kubeconfig for kubectl on the host, pointing at the forwarder on 127.0.0.1:`port` (the
/// serving certificate holds 127.0.0.1).
pub fn write_admin_kubeconfig(layout: &Layout, port: u16) -> Result<PathBuf> {
    let pki = load_pki(layout)?;
    let path = layout.kubeconfig();
    pki.write_admin_kubeconfig(&path, &format!("https://127.0.0.1:{port}"))
        .map_err(|e| Error::Invalid(format!("writing {}: {e}", path.display())))?;
    Ok(path)
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(Error::io(format!("writing {}", path.display())))?;
    f.write_all(text.as_bytes()).map_err(Error::io(format!("writing {}", path.display())))
}
