//! What the node writes for others: the CNI conflist containerd uses, flannel's `/run/flannel/subnet.env`
//! and the docker options file as `mk-docker-opts.sh` writes it. Files are written atomically (temp + rename)
//! and only when their contents change.

use std::io;
use std::path::{Path, PathBuf};

use crate::cidr::Ipv4Net;

/// flannel's usual CNI network name (kube-flannel's `cbr0`).
pub const CNI_NETWORK_NAME: &str = "cbr0";
/// The bridge pods attach to.
pub const CNI_BRIDGE: &str = "cni0";
/// Default file name of the conflist inside containerd's CNI conf dir.
pub const CONFLIST_NAME: &str = "10-flannel.conflist";
/// flannel's default subnet file.
pub const DEFAULT_SUBNET_ENV: &str = "/run/flannel/subnet.env";
/// Where `mk-docker-opts.sh -d` is pointed by the guides.
pub const DEFAULT_DOCKER_OPTS: &str = "/run/flannel/docker";

/// Where the node side files go; every path is configurable (tests and several nodes on one machine).
#[derive(Clone, Debug)]
pub struct NodeFiles {
    /// The CNI conflist (containerd's `conf_dir` + [`CONFLIST_NAME`]); None: not written.
    pub cni_conflist: Option<PathBuf>,
    /// host-local's `dataDir` (None: the plugin's default `/var/lib/cni/networks`).
    pub ipam_data_dir: Option<PathBuf>,
    /// flannel's subnet.env; None: not written.
    pub subnet_env: Option<PathBuf>,
    /// The docker options file; None: not written.
    pub docker_opts: Option<PathBuf>,
}

impl Default for NodeFiles {
    fn default() -> Self {
        Self {
            cni_conflist: None,
            ipam_data_dir: None,
            subnet_env: Some(DEFAULT_SUBNET_ENV.into()),
            docker_opts: Some(DEFAULT_DOCKER_OPTS.into()),
        }
    }
}

/// The CNI conflist for a node's lease: bridge `cni0` with the lease as host-local range and `.1` as gateway,
/// hairpin on, masquerading left to our iptables rules, the backend's MTU, then portmap. (Loopback is not
/// listed: containerd's CRI plugin sets up `lo` in every sandbox itself.)
pub fn conflist(subnet: Ipv4Net, mtu: u32, ipam_data_dir: Option<&Path>) -> String {
    let mut ipam = serde_json::json!({
        "type": "host-local",
        "ranges": [[{"subnet": subnet.to_string(), "gateway": subnet.nth(1).to_string()}]],
        "routes": [{"dst": "0.0.0.0/0"}],
    });
    if let Some(d) = ipam_data_dir {
        ipam["dataDir"] = serde_json::Value::String(d.display().to_string());
    }
    let doc = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": CNI_BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "mtu": mtu,
                "ipam": ipam,
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// flannel's subnet.env. `FLANNEL_IPMASQ=true`: this node masquerades traffic leaving the cluster network.
pub fn subnet_env(network: Ipv4Net, subnet: Ipv4Net, mtu: u32) -> String {
    format!(
        "FLANNEL_NETWORK={network}\nFLANNEL_SUBNET={}/{}\nFLANNEL_MTU={mtu}\nFLANNEL_IPMASQ=true\n",
        subnet.nth(1),
        subnet.prefix()
    )
}

/// The docker options file as `mk-docker-opts.sh -k DOCKER_NETWORK_OPTIONS -d FILE` writes it: one variable
/// per option, then the combined one. Docker's own masquerading is off because ours is on.
pub fn docker_opts(subnet: Ipv4Net, mtu: u32) -> String {
    let bip = format!("--bip={}/{}", subnet.nth(1), subnet.prefix());
    let masq = "--ip-masq=false";
    let mtu = format!("--mtu={mtu}");
    format!(
        "DOCKER_OPT_BIP=\"{bip}\"\nDOCKER_OPT_IPMASQ=\"{masq}\"\nDOCKER_OPT_MTU=\"{mtu}\"\nDOCKER_NETWORK_OPTIONS=\" {bip} {masq} {mtu}\"\n"
    )
}

/// Writes `contents` to `path` (creating parents) unless it already holds exactly that; returns whether it wrote.
pub fn write_if_changed(path: &Path, contents: &str) -> io::Result<bool> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(contents) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)?;
    Ok(true)
}

impl NodeFiles {
    /// Writes every configured file for the lease; errors name the file.
    pub fn write(&self, network: Ipv4Net, subnet: Ipv4Net, mtu: u32) -> Result<(), String> {
        let w = |p: &Option<PathBuf>, c: String| -> Result<(), String> {
            match p {
                Some(p) => write_if_changed(p, &c).map(|_| ()).map_err(|e| format!("writing {}: {e}", p.display())),
                None => Ok(()),
            }
        };
        w(&self.cni_conflist, conflist(subnet, mtu, self.ipam_data_dir.as_deref()))?;
        w(&self.subnet_env, subnet_env(network, subnet, mtu))?;
        w(&self.docker_opts, docker_opts(subnet, mtu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn subnet_env_and_docker_opts_are_flannels() {
        assert_eq!(
            subnet_env(net("172.30.0.0/16"), net("172.30.19.0/24"), 1450),
            "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.19.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
        );
        assert_eq!(
            docker_opts(net("172.30.19.0/24"), 1450),
            "DOCKER_OPT_BIP=\"--bip=172.30.19.1/24\"\nDOCKER_OPT_IPMASQ=\"--ip-masq=false\"\nDOCKER_OPT_MTU=\"--mtu=1450\"\nDOCKER_NETWORK_OPTIONS=\" --bip=172.30.19.1/24 --ip-masq=false --mtu=1450\"\n"
        );
    }

    #[test]
    fn conflist_contents() {
        let c: serde_json::Value =
            serde_json::from_str(&conflist(net("172.30.19.0/24"), 1450, Some(Path::new("/tmp/x")))).unwrap();
        assert_eq!(c["name"], "cbr0");
        let b = &c["plugins"][0];
        assert_eq!(b["type"], "bridge");
        assert_eq!(b["bridge"], "cni0");
        assert_eq!(b["hairpinMode"], true);
        assert_eq!(b["isGateway"], true);
        assert_eq!(b["ipMasq"], false);
        assert_eq!(b["mtu"], 1450);
        assert_eq!(b["ipam"]["type"], "host-local");
        assert_eq!(b["ipam"]["ranges"][0][0]["subnet"], "172.30.19.0/24");
        assert_eq!(b["ipam"]["ranges"][0][0]["gateway"], "172.30.19.1");
        assert_eq!(b["ipam"]["dataDir"], "/tmp/x");
        assert_eq!(c["plugins"][1]["type"], "portmap");
        assert_eq!(c["plugins"][1]["capabilities"]["portMappings"], true);
    }

    #[test]
    fn writes_only_on_change() {
        let d = tempfile::tempdir().unwrap();
        let files = NodeFiles {
            cni_conflist: Some(d.path().join("net.d/10-flannel.conflist")),
            ipam_data_dir: None,
            subnet_env: Some(d.path().join("run/subnet.env")),
            docker_opts: Some(d.path().join("run/docker")),
        };
        files.write(net("172.30.0.0/16"), net("172.30.7.0/24"), 1450).unwrap();
        let env = std::fs::read_to_string(d.path().join("run/subnet.env")).unwrap();
        assert!(env.contains("FLANNEL_SUBNET=172.30.7.1/24"));
        assert!(std::fs::read_to_string(d.path().join("run/docker")).unwrap().contains("--bip=172.30.7.1/24"));
        assert!(!write_if_changed(&d.path().join("run/subnet.env"), &env).unwrap());
    }
}
