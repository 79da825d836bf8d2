//! IPv4 networks in CIDR form (`172.30.19.0/24`) and flannel's key form (`172.30.19.0-24`).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network: a base address with its host bits cleared and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// A network from an address (host bits are cleared) and a prefix length of at most 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then(|| Self { addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)), prefix })
    }
    /// The network's base address (`172.30.19.0`).
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }
    /// The prefix length (`24`).
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
    /// The `n`th address in the network (`.1` is the gateway of a node's subnet).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr).wrapping_add(n))
    }
    /// Whether the address lies inside this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }
    /// Whether `other` lies wholly inside this network.
    pub fn contains_net(&self, other: &Ipv4Net) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }
    /// flannel's etcd key form: `172.30.19.0-24`.
    pub fn key(&self) -> String {
        format!("{}-{}", self.addr, self.prefix)
    }
    /// Parses flannel's key form `172.30.19.0-24`.
    pub fn from_key(key: &str) -> Option<Self> {
        let (a, p) = key.split_once('-')?;
        Self::new(a.parse().ok()?, p.parse().ok()?)
    }
}

pub(crate) fn mask(prefix: u8) -> u32 {
    if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s.split_once('/').ok_or_else(|| format!("{s:?} is not in CIDR form (like 172.30.0.0/16)"))?;
        let addr: Ipv4Addr =
            a.parse().map_err(|_| format!("{s:?}: {a:?} is not an IPv4 address (rkube-net is IPv4 only)"))?;
        let prefix: u8 = p.parse().map_err(|_| format!("{s:?}: prefix {p:?} is not a number from 0 to 32"))?;
        Self::new(addr, prefix).ok_or_else(|| format!("{s:?}: prefix {prefix} is larger than 32"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_display_key() {
        let n: Ipv4Net = "172.30.19.7/24".parse().unwrap();
        assert_eq!(n.to_string(), "172.30.19.0/24");
        assert_eq!(n.key(), "172.30.19.0-24");
        assert_eq!(Ipv4Net::from_key("172.30.19.0-24"), Some(n));
        assert_eq!(n.nth(1).to_string(), "172.30.19.1");
        assert!("172.30.0.0/16".parse::<Ipv4Net>().unwrap().contains_net(&n));
        assert!("fd00::/8".parse::<Ipv4Net>().unwrap_err().contains("IPv4 only"));
        assert!("10.0.0.0/33".parse::<Ipv4Net>().is_err());
    }
}
