//! Choosing the uplink (flannel's `--iface` / `--iface-regex`, else the default route's interface): its
//! address is the node's PublicIP and its MTU bounds the backend's.

use std::net::Ipv4Addr;

use regex::Regex;
use rtnetlink::Handle;

use crate::cidr::Ipv4Net;
use crate::nl::{self, NlError};

/// The chosen uplink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uplink {
    /// Interface name.
    pub name: String,
    /// Interface index.
    pub index: u32,
    /// Its (first) IPv4 address: the node's PublicIP.
    pub ip: Ipv4Addr,
    /// The directly connected network of that address (host-gw peers must be inside it).
    pub network: Ipv4Net,
    /// Its MTU.
    pub mtu: u32,
}

/// Why no uplink could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    /// Netlink failed.
    #[error(transparent)]
    Netlink(#[from] NlError),
    /// Nothing matches; the message names the value and the fix.
    #[error("{0}")]
    NotFound(String),
}

/// How to choose the uplink.
#[derive(Clone, Debug, Default)]
pub struct UplinkChoice {
    /// `--iface`: an interface name or one of its IPv4 addresses.
    pub iface: Option<String>,
    /// `--iface-regex`: matched against names and addresses, first match wins.
    pub iface_regex: Option<String>,
}

/// Chooses the uplink in the calling thread's network namespace.
pub async fn choose(h: &Handle, choice: &UplinkChoice) -> Result<Uplink, UplinkError> {
    let links = nl::links(h).await?;
    let addrs = nl::addresses(h, None).await?;
    let names = || {
        let mut v: Vec<String> = links.iter().map(|l| l.name.clone()).collect();
        v.sort();
        v.join(", ")
    };
    let build = |index: u32, ip: Option<Ipv4Addr>| -> Result<Uplink, UplinkError> {
        let link = links.iter().find(|l| l.index == index);
        let name = link.map(|l| l.name.clone()).unwrap_or_default();
        let (ip, prefix) = addrs
            .iter()
            .filter(|(i, a, _, _)| *i == index && ip.is_none_or(|want| want == *a))
            .map(|(_, a, p, _)| (*a, *p))
            .next()
            .ok_or_else(|| {
                UplinkError::NotFound(format!(
                    "uplink {name} has no IPv4 address; give it one or pick another with --flannel-iface"
                ))
            })?;
        let network = Ipv4Net::new(ip, prefix).ok_or_else(|| UplinkError::NotFound(format!("bad prefix on {name}")))?;
        Ok(Uplink { name, index, ip, network, mtu: link.map(|l| l.mtu).unwrap_or(0) })
    };
    if let Some(iface) = &choice.iface {
        if let Ok(ip) = iface.parse::<Ipv4Addr>() {
            let Some((index, ..)) = addrs.iter().find(|(_, a, _, _)| *a == ip) else {
                return Err(UplinkError::NotFound(format!(
                    "--flannel-iface {iface}: no interface has that address; use an address or a name of: {}",
                    names()
                )));
            };
            return build(*index, Some(ip));
        }
        let Some(l) = links.iter().find(|l| &l.name == iface) else {
            return Err(UplinkError::NotFound(format!(
                "--flannel-iface {iface}: no such interface; use one of: {} (or an address)",
                names()
            )));
        };
        return build(l.index, None);
    }
    if let Some(re) = &choice.iface_regex {
        let r = Regex::new(re).map_err(|e| {
            UplinkError::NotFound(format!("--flannel-iface-regex {re:?} is not a valid regular expression: {e}"))
        })?;
        for l in &links {
            if r.is_match(&l.name) && l.name != "lo" {
                return build(l.index, None);
            }
            if let Some((_, ip, ..)) = addrs.iter().find(|(i, a, _, _)| *i == l.index && r.is_match(&a.to_string())) {
                return build(l.index, Some(*ip));
            }
        }
        return Err(UplinkError::NotFound(format!(
            "--flannel-iface-regex {re:?} matches no interface name or address; interfaces: {}",
            names()
        )));
    }
    match nl::default_route_link(h).await? {
        Some(i) => build(i, None),
        None => Err(UplinkError::NotFound(format!(
            "no default route to pick the uplink from; choose one with --flannel-iface (interfaces: {})",
            names()
        ))),
    }
}
