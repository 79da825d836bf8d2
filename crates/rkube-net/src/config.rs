//! flannel's network config (`<prefix>/config` in etcd, `net-conf.json` for the kube manager): parsing,
//! flannel's defaults and validation. IPv4 only: `EnableIPv6`/`IPv6Network` are refused.

use std::net::Ipv4Addr;

use serde::Deserialize;

use crate::cidr::Ipv4Net;

/// Default VXLAN network identifier (flannel's).
pub const DEFAULT_VNI: u32 = 1;
/// Default VXLAN UDP port (the Linux kernel's and flannel's, not IANA's 4789).
pub const DEFAULT_VXLAN_PORT: u16 = 8472;

/// A bad network config: the message names the value and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON or not the expected shape; carries serde's line and column.
    #[error(
        "network config is not valid JSON ({0}); expected e.g. {{\"Network\":\"172.30.0.0/16\",\"SubnetLen\":24,\"Backend\":{{\"Type\":\"vxlan\"}}}}"
    )]
    Json(#[from] serde_json::Error),
    /// Anything else, already worded.
    #[error("network config: {0}")]
    Invalid(String),
}

/// The backend part of the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// VXLAN overlay (`flannel.1`).
    Vxlan {
        /// VNI (default 1).
        vni: u32,
        /// UDP port (default 8472).
        port: u16,
    },
    /// Plain routes via the peers' public IPs; all nodes must share one L2 network.
    HostGw,
}

impl Backend {
    /// flannel's name for it, as stored in leases' `BackendType`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Backend::Vxlan { .. } => "vxlan",
            Backend::HostGw => "host-gw",
        }
    }
}

/// A validated network config with flannel's defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// The cluster network (`172.30.0.0/16`).
    pub network: Ipv4Net,
    /// Prefix length of each node's subnet (`24`).
    pub subnet_len: u8,
    /// First subnet handed out (default: the second subnet of the network; the first is never used).
    pub subnet_min: Ipv4Addr,
    /// Last subnet handed out (default: the last subnet of the network).
    pub subnet_max: Ipv4Addr,
    /// The backend.
    pub backend: Backend,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawConfig {
    network: Option<String>,
    #[serde(default)]
    subnet_len: u8,
    subnet_min: Option<String>,
    subnet_max: Option<String>,
    #[serde(rename = "EnableIPv6", default)]
    enable_ipv6: bool,
    backend: Option<RawBackend>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawBackend {
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "VNI")]
    vni: Option<u32>,
    port: Option<u16>,
}

fn invalid(msg: String) -> ConfigError {
    ConfigError::Invalid(msg)
}

impl NetConfig {
    /// Parses and validates flannel's JSON.
    pub fn parse(json: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = serde_json::from_str(json)?;
        if raw.enable_ipv6 {
            return Err(invalid("EnableIPv6 is true but rkube-net is IPv4 only; remove EnableIPv6".into()));
        }
        let net =
            raw.network.ok_or_else(|| invalid("Network is missing; add e.g. \"Network\":\"172.30.0.0/16\"".into()))?;
        let network: Ipv4Net = net.parse().map_err(|e| invalid(format!("Network {e}")))?;
        let backend = match raw.backend {
            None => Backend::Vxlan { vni: DEFAULT_VNI, port: DEFAULT_VXLAN_PORT },
            Some(b) => match b.kind.as_deref().unwrap_or("vxlan") {
                "vxlan" => {
                    let vni = b.vni.unwrap_or(DEFAULT_VNI);
                    if vni >= 1 << 24 {
                        return Err(invalid(format!("Backend VNI {vni} is out of range; use 1 to 16777215")));
                    }
                    Backend::Vxlan { vni, port: b.port.filter(|p| *p != 0).unwrap_or(DEFAULT_VXLAN_PORT) }
                }
                "host-gw" => Backend::HostGw,
                other => {
                    return Err(invalid(format!(
                        "Backend Type {other:?} is not supported; use \"vxlan\" or \"host-gw\""
                    )));
                }
            },
        };
        let subnet_len = if raw.subnet_len > 0 {
            if raw.subnet_len > 30 {
                return Err(invalid(format!(
                    "SubnetLen {} is out of range: a node's subnet needs a bridge address and pods, so at most 30; use 24",
                    raw.subnet_len
                )));
            }
            if raw.subnet_len < network.prefix() + 2 {
                return Err(invalid(format!(
                    "Network {network} is too small for SubnetLen {}: it must hold at least four subnets, so SubnetLen must be at least {} (or widen Network)",
                    raw.subnet_len,
                    network.prefix() + 2
                )));
            }
            raw.subnet_len
        } else if network.prefix() > 28 {
            return Err(invalid(format!("Network {network} is too small; use a prefix of /28 or shorter (e.g. /16)")));
        } else if network.prefix() <= 22 {
            24
        } else {
            network.prefix() + 2
        };
        let size = 1u32 << (32 - subnet_len);
        let bound = |name: &str, v: Option<String>, default: u32| -> Result<Ipv4Addr, ConfigError> {
            let Some(v) = v else { return Ok(Ipv4Addr::from(default)) };
            let ip: Ipv4Addr = v.parse().map_err(|_| invalid(format!("{name} {v:?} is not an IPv4 address")))?;
            if !network.contains(ip) {
                return Err(invalid(format!("{name} {ip} is outside Network {network}; pick an address inside it")));
            }
            if u32::from(ip) % size != 0 {
                return Err(invalid(format!(
                    "{name} {ip} is not on a /{subnet_len} boundary; use the first address of a /{subnet_len}"
                )));
            }
            Ok(ip)
        };
        let base = u32::from(network.addr());
        let last = base.wrapping_add(((1u64 << (32 - network.prefix())) as u32).wrapping_sub(size));
        let subnet_min = bound("SubnetMin", raw.subnet_min, base + size)?;
        let subnet_max = bound("SubnetMax", raw.subnet_max, last)?;
        if subnet_min > subnet_max {
            return Err(invalid(format!("SubnetMin {subnet_min} is above SubnetMax {subnet_max}; swap them")));
        }
        Ok(Self { network, subnet_len, subnet_min, subnet_max, backend })
    }

    /// How many node subnets the config allows (SubnetMin to SubnetMax).
    pub fn capacity(&self) -> u32 {
        (u32::from(self.subnet_max) - u32::from(self.subnet_min)) / (1 << (32 - self.subnet_len)) + 1
    }

    /// Every subnet a node may lease, in order.
    pub fn subnets(&self) -> impl Iterator<Item = Ipv4Net> + '_ {
        let size = 1u32 << (32 - self.subnet_len);
        (0..self.capacity())
            .filter_map(move |i| Ipv4Net::new(Ipv4Addr::from(u32::from(self.subnet_min) + i * size), self.subnet_len))
    }

    /// Whether `subnet` is one this config hands out.
    pub fn allows(&self, subnet: &Ipv4Net) -> bool {
        subnet.prefix() == self.subnet_len && subnet.addr() >= self.subnet_min && subnet.addr() <= self.subnet_max
    }

    /// The config back in flannel's JSON (what `rkube cluster` writes to `<prefix>/config`).
    pub fn to_json(&self) -> String {
        let backend = match &self.backend {
            Backend::Vxlan { vni, port } => serde_json::json!({"Type": "vxlan", "VNI": vni, "Port": port}),
            Backend::HostGw => serde_json::json!({"Type": "host-gw"}),
        };
        serde_json::json!({
            "Network": self.network.to_string(),
            "SubnetLen": self.subnet_len,
            "SubnetMin": self.subnet_min.to_string(),
            "SubnetMax": self.subnet_max.to_string(),
            "Backend": backend,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        NetConfig::parse(json).unwrap_err().to_string()
    }

    #[test]
    fn defaults_follow_flannel() {
        let c = NetConfig::parse(r#"{"Network":"172.30.0.0/16","Backend":{"Type":"vxlan"}}"#).unwrap();
        assert_eq!(c.subnet_len, 24);
        assert_eq!(c.subnet_min.to_string(), "172.30.1.0");
        assert_eq!(c.subnet_max.to_string(), "172.30.255.0");
        assert_eq!(c.backend, Backend::Vxlan { vni: 1, port: 8472 });
        assert_eq!(c.capacity(), 255);
        let small = NetConfig::parse(r#"{"Network":"10.0.0.0/26"}"#).unwrap();
        assert_eq!(small.subnet_len, 28);
        assert_eq!(small.capacity(), 3);
    }

    #[test]
    fn full_config_and_round_trip() {
        let json = r#"{"Network":"172.30.0.0/16","SubnetLen":24,"SubnetMin":"172.30.10.0","SubnetMax":"172.30.12.0","Backend":{"Type":"host-gw"}}"#;
        let c = NetConfig::parse(json).unwrap();
        assert_eq!(c.capacity(), 3);
        assert_eq!(
            c.subnets().map(|s| s.to_string()).collect::<Vec<_>>(),
            ["172.30.10.0/24", "172.30.11.0/24", "172.30.12.0/24"]
        );
        assert_eq!(NetConfig::parse(&c.to_json()).unwrap(), c);
        let v = NetConfig::parse(r#"{"Network":"172.30.0.0/16","Backend":{"Type":"vxlan","VNI":7,"Port":4789}}"#);
        assert_eq!(v.unwrap().backend, Backend::Vxlan { vni: 7, port: 4789 });
    }

    #[test]
    fn bad_configs_name_value_and_fix() {
        let e = err(r#"{"Network":"172.30.0.0/24","SubnetLen":24}"#);
        assert!(e.contains("172.30.0.0/24") && e.contains("at least 26"), "{e}");
        let e = err(r#"{"Network":"172.30.0.0/16","SubnetLen":31}"#);
        assert!(e.contains("SubnetLen 31 is out of range") && e.contains("use 24"), "{e}");
        let e = err(r#"{"Network":"172.30.0.0/16", "SubnetLen": }"#);
        assert!(e.contains("line 1 column") && e.contains("expected e.g."), "{e}");
        let e = err(r#"{"Network":"172.30.0.0/16","Backend":{"Type":"udp"}}"#);
        assert!(e.contains("\"udp\"") && e.contains("\"vxlan\" or \"host-gw\""), "{e}");
        let e = err(r#"{"Network":"172.30.0.0/16","SubnetMin":"10.0.0.0"}"#);
        assert!(e.contains("SubnetMin 10.0.0.0 is outside Network 172.30.0.0/16"), "{e}");
        let e = err(r#"{"Network":"172.30.0.0/16","SubnetMax":"172.31.0.0"}"#);
        assert!(e.contains("SubnetMax 172.31.0.0 is outside"), "{e}");
        let e = err(r#"{"Network":"172.30.0.0/16","SubnetMin":"172.30.1.5"}"#);
        assert!(e.contains("boundary"), "{e}");
        let e = err(r#"{"Network":"fd00::/64"}"#);
        assert!(e.contains("IPv4 only"), "{e}");
        let e = err(r#"{"Network":"172.30.0.0/16","EnableIPv6":true}"#);
        assert!(e.contains("IPv4 only"), "{e}");
        let e = err(r#"{"SubnetLen":24}"#);
        assert!(e.contains("Network is missing"), "{e}");
    }
}
