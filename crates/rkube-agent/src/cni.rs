//! The single-node CNI configuration: a bridge over the node's `spec.podCIDR` with host-local IPAM, then
//! portmap and loopback, written where the runtime's CRI plugin loads it. Until the pod network (issue 6)
//! writes the conflist, this is what gives pods their addresses. No masquerading: traffic leaving the cluster
//! is NATed by the pod network, not here (so the host's NAT table stays untouched).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::{Error, Result};

/// The conflist's file name (sorted first among what containerd finds, as `10-` prefixes do upstream).
pub const CONFLIST: &str = "10-rkube.conflist";
/// The CNI network's name (host-local keeps its allocations under `<dataDir>/<name>`).
pub const NETWORK: &str = "rkube";

/// An IPv4 pod range `a.b.c.d/len` with its gateway (the first address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodCidr {
    /// The network address.
    pub network: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl PodCidr {
    /// Parses `spec.podCIDR` (IPv4 only, as the IPAM controller allocates).
    pub fn parse(text: &str) -> Result<PodCidr> {
        let bad = |why: &str| Error::Cni(format!("podCIDR {text:?}: {why}"));
        let (ip, len) = text.split_once('/').ok_or_else(|| bad("not a CIDR"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad("not an IPv4 network"))?;
        let prefix: u8 = len.parse().map_err(|_| bad("bad prefix length"))?;
        if !(1..=30).contains(&prefix) {
            return Err(bad("the prefix must leave room for pods (between /1 and /30)"));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(PodCidr { network: Ipv4Addr::from(u32::from(ip) & mask), prefix })
    }

    /// The bridge's address and the pods' gateway: the range's first address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Whether `ip` lies inside the range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(ip) & mask == u32::from(self.network)
    }
}

impl std::fmt::Display for PodCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The conflist for `bridge` over `cidr`, host-local keeping its state under `ipam_dir`.
pub fn conflist(bridge: &str, cidr: &PodCidr, ipam_dir: &Path) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "hairpinMode": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": cidr.to_string(), "gateway": cidr.gateway().to_string() }]],
                    "routes": [{ "dst": "0.0.0.0/0" }],
                    "dataDir": ipam_dir.display().to_string(),
                },
            },
            { "type": "portmap", "capabilities": { "portMappings": true } },
            { "type": "loopback" },
        ],
    })
}

/// Writes the conflist into `conf_dir` atomically (a runtime watching the directory never reads half a file);
/// returns its path. Unchanged content is not rewritten.
pub fn write(conf_dir: &Path, bridge: &str, cidr: &PodCidr, ipam_dir: &Path) -> Result<PathBuf> {
    let io = |what: String| move |e: std::io::Error| Error::Cni(format!("{what}: {e}"));
    std::fs::create_dir_all(conf_dir).map_err(io(format!("creating {}", conf_dir.display())))?;
    std::fs::create_dir_all(ipam_dir).map_err(io(format!("creating {}", ipam_dir.display())))?;
    let path = conf_dir.join(CONFLIST);
    let text =
        serde_json::to_string_pretty(&conflist(bridge, cidr, ipam_dir)).map_err(|e| Error::Cni(e.to_string()))?;
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(path);
    }
    // The temporary name has no .conf/.conflist/.json extension, so the runtime ignores it.
    let tmp = conf_dir.join(format!(".{CONFLIST}.tmp"));
    std::fs::write(&tmp, &text).map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(io(format!("renaming {} to {}", tmp.display(), path.display())))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr() {
        let c = PodCidr::parse("10.231.7.0/24").unwrap();
        assert_eq!(c.gateway(), Ipv4Addr::new(10, 231, 7, 1));
        assert!(c.contains(Ipv4Addr::new(10, 231, 7, 200)));
        assert!(!c.contains(Ipv4Addr::new(10, 231, 8, 2)));
        assert_eq!(PodCidr::parse("172.30.3.9/24").unwrap().to_string(), "172.30.3.0/24");
        assert!(PodCidr::parse("fd00::/64").is_err());
        assert!(PodCidr::parse("10.0.0.0/31").is_err());
        assert!(PodCidr::parse("10.0.0.0").is_err());
    }

    #[test]
    fn conflist_content() {
        let c = PodCidr::parse("10.231.7.0/24").unwrap();
        let v = conflist("rk4242", &c, Path::new("/d/agent/cni/networks"));
        assert_eq!(v["cniVersion"], "1.0.0");
        let plugins = v["plugins"].as_array().unwrap();
        let types: Vec<&str> = plugins.iter().map(|p| p["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["bridge", "portmap", "loopback"]);
        let b = &plugins[0];
        assert_eq!(b["bridge"], "rk4242");
        assert_eq!(b["isGateway"], true);
        assert_eq!(b["hairpinMode"], true);
        assert_eq!(b["ipMasq"], false);
        assert_eq!(b["ipam"]["type"], "host-local");
        assert_eq!(b["ipam"]["ranges"][0][0]["subnet"], "10.231.7.0/24");
        assert_eq!(b["ipam"]["ranges"][0][0]["gateway"], "10.231.7.1");
        assert_eq!(b["ipam"]["dataDir"], "/d/agent/cni/networks");
        assert_eq!(plugins[1]["capabilities"]["portMappings"], true);
    }

    #[test]
    fn writes_atomically_once() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("net.d");
        let c = PodCidr::parse("10.231.9.0/24").unwrap();
        let p = write(&conf, "cni0", &c, &dir.path().join("networks")).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["name"], NETWORK);
        let names: Vec<_> = std::fs::read_dir(&conf).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [CONFLIST]);
        let before = std::fs::metadata(&p).unwrap().modified().unwrap();
        write(&conf, "cni0", &c, &dir.path().join("networks")).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().modified().unwrap(), before);
    }
}
