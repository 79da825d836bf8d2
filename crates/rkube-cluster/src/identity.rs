//! Identities issued from node 1's CA (joining with a token is issue 8): each joining node's kubeconfig
//! (`system:node:<name>` in the groups of the embedded agent's identity) and its agent API serving
//! certificate, and the host's admin kubeconfig pointing at the forwarder.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
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
