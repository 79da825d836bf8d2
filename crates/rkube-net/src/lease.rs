//! Subnet leases in flannel's format (`pkg/lease`): the JSON stored per node, and picking a free subnet.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::cidr::Ipv4Net;
use crate::config::NetConfig;

/// How long a lease lives in etcd (flannel's `subnetTTL`): renewed well before it runs out.
pub const LEASE_TTL_SECS: i64 = 24 * 3600;
/// Renew when less than this is left (flannel's `--subnet-lease-renew-margin` default, 60 min).
pub const RENEW_MARGIN_SECS: i64 = 3600;

/// What a lease says about its node, exactly flannel's `LeaseAttrs` JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaseAttrs {
    /// The node's uplink address (the VTEP for vxlan, the gateway for host-gw).
    #[serde(rename = "PublicIP")]
    pub public_ip: Ipv4Addr,
    /// Always null here (IPv4 only), kept so the JSON is flannel's.
    #[serde(rename = "PublicIPv6", default)]
    pub public_ipv6: Option<String>,
    /// `vxlan` or `host-gw`.
    #[serde(rename = "BackendType", default)]
    pub backend_type: String,
    /// Backend specifics: `{"VNI":1,"VtepMAC":"..."}` for vxlan, null for host-gw.
    #[serde(rename = "BackendData", default)]
    pub backend_data: serde_json::Value,
}

/// flannel's vxlan `BackendData`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VxlanData {
    /// The VNI.
    #[serde(rename = "VNI")]
    pub vni: u32,
    /// MAC of the node's `flannel.1`, `aa:bb:cc:dd:ee:ff`.
    #[serde(rename = "VtepMAC")]
    pub vtep_mac: String,
}

impl LeaseAttrs {
    /// flannel's JSON, byte for byte (field order PublicIP, PublicIPv6, BackendType, BackendData).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
    /// The vxlan data, when this is a vxlan lease with well-formed data.
    pub fn vxlan(&self) -> Option<VxlanData> {
        serde_json::from_value(self.backend_data.clone()).ok()
    }
}

/// A node's lease on one subnet.
#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    /// The subnet (`172.30.19.0/24`).
    pub subnet: Ipv4Net,
    /// What the node published.
    pub attrs: LeaseAttrs,
    /// When it runs out (None: never, as with the kube manager).
    pub expiration: Option<SystemTime>,
}

/// A change among the peers' leases.
#[derive(Clone, Debug, PartialEq)]
pub enum LeaseEvent {
    /// Every peer lease there is (sent first by each (re)started watch): peers not in it are gone.
    Snapshot(Vec<Lease>),
    /// A lease appeared or changed (renewals that change nothing are sent too; backends ignore them).
    Added(Lease),
    /// A lease went away (deleted or expired).
    Removed(Ipv4Net),
}

/// The first free subnet of the config, or an error naming the exhausted network and the fixes.
pub fn pick_free(config: &NetConfig, taken: &HashSet<Ipv4Net>) -> Result<Ipv4Net, String> {
    config.subnets().find(|s| !taken.contains(s)).ok_or_else(|| {
        format!(
            "network {} is exhausted: all {} /{} subnets from SubnetMin {} to SubnetMax {} are leased; widen Network, raise SubnetLen, widen SubnetMin/SubnetMax or delete stale leases",
            config.network,
            config.capacity(),
            config.subnet_len,
            config.subnet_min,
            config.subnet_max
        )
    })
}

/// Formats a 6-byte MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_json_is_flannels() {
        let a = LeaseAttrs {
            public_ip: "10.0.0.2".parse().unwrap(),
            public_ipv6: None,
            backend_type: "vxlan".into(),
            backend_data: serde_json::to_value(VxlanData { vni: 1, vtep_mac: "aa:bb:cc:dd:ee:ff".into() }).unwrap(),
        };
        let golden = r#"{"PublicIP":"10.0.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}}"#;
        assert_eq!(a.to_json(), golden);
        let back: LeaseAttrs = serde_json::from_str(golden).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.vxlan().unwrap().vtep_mac, "aa:bb:cc:dd:ee:ff");
        // What an older flanneld writes (no PublicIPv6, no VNI in the data) still reads.
        let old: LeaseAttrs = serde_json::from_str(
            r#"{"PublicIP":"192.168.1.107","BackendType":"vxlan","BackendData":{"VtepMAC":"4a:e5:53:6d:4a:66"}}"#,
        )
        .unwrap();
        assert_eq!(old.public_ip.to_string(), "192.168.1.107");
        let hg = LeaseAttrs { backend_type: "host-gw".into(), backend_data: serde_json::Value::Null, ..a };
        assert_eq!(
            hg.to_json(),
            r#"{"PublicIP":"10.0.0.2","PublicIPv6":null,"BackendType":"host-gw","BackendData":null}"#
        );
    }

    #[test]
    fn picks_free_subnets_and_reports_exhaustion() {
        let c = NetConfig::parse(r#"{"Network":"10.0.0.0/26"}"#).unwrap();
        let mut taken = HashSet::new();
        for want in ["10.0.0.16/28", "10.0.0.32/28", "10.0.0.48/28"] {
            let s = pick_free(&c, &taken).unwrap();
            assert_eq!(s.to_string(), want);
            taken.insert(s);
        }
        let e = pick_free(&c, &taken).unwrap_err();
        assert!(e.contains("10.0.0.0/26 is exhausted: all 3 /28"), "{e}");
    }

    #[test]
    fn macs() {
        assert_eq!(format_mac(&[0xaa, 0xbb, 0, 1, 2, 0xff]), "aa:bb:00:01:02:ff");
        assert_eq!(parse_mac("aa:bb:00:01:02:ff"), Some([0xaa, 0xbb, 0, 1, 2, 0xff]));
        assert_eq!(parse_mac("aa:bb"), None);
    }
}
