//! Fake addresses: each node's InternalIP, a stand-in pod range for nodes without `spec.podCIDR`, and pod IP
//! allocation inside a node's ranges (freed when the pod ends or is deleted). Nothing here is ever contacted.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The InternalIP of node `index`: `10.200.x.y`, `y` in 1..=250.
pub(crate) fn node_ip(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 200, ((index / 250) % 256) as u8, (index % 250 + 1) as u8)
}

/// The stand-in pod range of node `index` when the cluster assigned it none: a /24 from `10.201.0.0` upwards.
pub(crate) fn fake_pod_cidr(index: usize) -> String {
    let second = 201 + (index / 256) % 55;
    format!("10.{second}.{}.0/24", index % 256)
}

/// A parsed CIDR: base address as a number, prefix length, family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Cidr {
    base: u128,
    prefix: u32,
    v6: bool,
}

impl Cidr {
    /// Parses `10.244.1.0/24` or `fd00:10:244:1::/64`.
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = s.split_once('/')?;
        let prefix: u32 = prefix.parse().ok()?;
        let (value, bits, v6) = match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(a) => (u32::from(a) as u128, 32, false),
            IpAddr::V6(a) => (u128::from(a), 128, true),
        };
        if prefix > bits {
            return None;
        }
        let host_bits = bits - prefix;
        let mask = if host_bits >= 128 { 0 } else { !((1u128 << host_bits) - 1) };
        Some(Cidr { base: value & mask, prefix, v6 })
    }

    fn host_bits(&self) -> u32 {
        (if self.v6 { 128 } else { 32 }) - self.prefix
    }

    /// The usable offsets: from 2 (.1 is the bridge's, as with the bridge and flannel plugins) to the last
    /// before the IPv4 broadcast address; capped so a huge IPv6 range stays cheap to scan.
    fn offsets(&self) -> std::ops::Range<u128> {
        let size = if self.host_bits() >= 64 { 1u128 << 64 } else { 1u128 << self.host_bits() };
        let end = if self.v6 { size } else { size.saturating_sub(1) };
        2..end.max(2)
    }

    fn addr(&self, offset: u128) -> IpAddr {
        let v = self.base + offset;
        if self.v6 { IpAddr::V6(Ipv6Addr::from(v)) } else { IpAddr::V4(Ipv4Addr::from(v as u32)) }
    }

    fn offset_of(&self, ip: IpAddr) -> Option<u128> {
        let v = match (ip, self.v6) {
            (IpAddr::V4(a), false) => u32::from(a) as u128,
            (IpAddr::V6(a), true) => u128::from(a),
            _ => return None,
        };
        let off = v.checked_sub(self.base)?;
        self.offsets().contains(&off).then_some(off)
    }
}

#[derive(Debug, Default)]
struct RangeAlloc {
    used: HashSet<u128>,
    /// Where the next search starts, so freed addresses are not reused at once (as host-local does).
    cursor: u128,
}

/// Pod IPs handed out per range, and which pod (by uid) holds which.
#[derive(Debug, Default)]
pub(crate) struct PodIpam {
    ranges: HashMap<Cidr, RangeAlloc>,
    by_uid: HashMap<String, Vec<(Cidr, u128)>>,
}

impl PodIpam {
    /// One address from each of `cidrs` for pod `uid` (the same ones again if it holds some already).
    pub(crate) fn allocate(&mut self, uid: &str, cidrs: &[Cidr]) -> Result<Vec<IpAddr>, String> {
        if let Some(held) = self.by_uid.get(uid) {
            return Ok(held.iter().map(|(c, o)| c.addr(*o)).collect());
        }
        let mut taken = Vec::new();
        for cidr in cidrs {
            let range = self.ranges.entry(*cidr).or_default();
            let offsets = cidr.offsets();
            let span = offsets.end - offsets.start;
            let start = range.cursor.clamp(offsets.start, offsets.end.saturating_sub(1).max(offsets.start));
            let found = (0..span.min(1 << 20))
                .map(|i| offsets.start + (start - offsets.start + i) % span.max(1))
                .find(|o| !range.used.contains(o));
            match found {
                Some(o) => {
                    range.used.insert(o);
                    range.cursor = o + 1;
                    taken.push((*cidr, o));
                }
                None => {
                    for (c, o) in taken {
                        if let Some(r) = self.ranges.get_mut(&c) {
                            r.used.remove(&o);
                        }
                    }
                    return Err(format!("no free pod address left in {}/{}", cidr.addr(0), cidr.prefix));
                }
            }
        }
        let ips = taken.iter().map(|(c, o)| c.addr(*o)).collect();
        self.by_uid.insert(uid.to_owned(), taken);
        Ok(ips)
    }

    /// Records the addresses a pod already has (a pod started by an earlier run of this process), so they are
    /// not handed out twice. Addresses outside `cidrs` are ignored.
    pub(crate) fn reserve(&mut self, uid: &str, cidrs: &[Cidr], ips: &[IpAddr]) {
        if self.by_uid.contains_key(uid) {
            return;
        }
        let mut held = Vec::new();
        for ip in ips {
            if let Some((c, o)) = cidrs.iter().find_map(|c| c.offset_of(*ip).map(|o| (*c, o)))
                && self.ranges.entry(c).or_default().used.insert(o)
            {
                held.push((c, o));
            }
        }
        if !held.is_empty() {
            self.by_uid.insert(uid.to_owned(), held);
        }
    }

    /// Frees what pod `uid` holds.
    pub(crate) fn release(&mut self, uid: &str) {
        for (c, o) in self.by_uid.remove(uid).unwrap_or_default() {
            if let Some(r) = self.ranges.get_mut(&c) {
                r.used.remove(&o);
            }
        }
    }

    /// How many pods hold addresses.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.by_uid.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_are_distinct() {
        assert_eq!(node_ip(0).to_string(), "10.200.0.1");
        assert_eq!(node_ip(249).to_string(), "10.200.0.250");
        assert_eq!(node_ip(250).to_string(), "10.200.1.1");
        let all: HashSet<_> = (0..crate::config::MAX_INDEX).map(node_ip).collect();
        assert_eq!(all.len(), crate::config::MAX_INDEX);
        assert_eq!(fake_pod_cidr(0), "10.201.0.0/24");
        assert_eq!(fake_pod_cidr(257), "10.202.1.0/24");
        let ranges: HashSet<_> = (0..5000).map(fake_pod_cidr).collect();
        assert_eq!(ranges.len(), 5000);
    }

    #[test]
    fn parses_cidrs() {
        let c = Cidr::parse("10.244.1.7/24").unwrap();
        assert_eq!(c.addr(2).to_string(), "10.244.1.2");
        assert_eq!(c.offsets(), 2..255);
        let c6 = Cidr::parse("fd00:10:244:1::/64").unwrap();
        assert_eq!(c6.addr(2).to_string(), "fd00:10:244:1::2");
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nonsense").is_none());
    }

    #[test]
    fn allocates_frees_and_reserves() {
        let c = Cidr::parse("10.244.1.0/29").unwrap(); // offsets 2..7: five addresses
        let mut ipam = PodIpam::default();
        let a = ipam.allocate("a", &[c]).unwrap();
        assert_eq!(a[0].to_string(), "10.244.1.2");
        assert_eq!(ipam.allocate("a", &[c]).unwrap(), a, "the same pod keeps its address");
        let b = ipam.allocate("b", &[c]).unwrap();
        assert_eq!(b[0].to_string(), "10.244.1.3");
        ipam.reserve("old", &[c], &["10.244.1.4".parse().unwrap()]);
        assert_eq!(ipam.allocate("d", &[c]).unwrap()[0].to_string(), "10.244.1.5");
        assert_eq!(ipam.allocate("e", &[c]).unwrap()[0].to_string(), "10.244.1.6");
        assert!(ipam.allocate("f", &[c]).unwrap_err().contains("no free pod address"));
        ipam.release("a");
        assert_eq!(ipam.allocate("f", &[c]).unwrap()[0].to_string(), "10.244.1.2", "freed addresses come back");
        assert_eq!(ipam.held(), 5);
        ipam.release("missing");
        assert_eq!(ipam.held(), 5);
    }

    #[test]
    fn dual_stack_gets_one_of_each() {
        let v4 = Cidr::parse("10.244.0.0/24").unwrap();
        let v6 = Cidr::parse("fd00::/64").unwrap();
        let ips = PodIpam::default().allocate("p", &[v4, v6]).unwrap();
        assert_eq!(ips.iter().map(|i| i.to_string()).collect::<Vec<_>>(), ["10.244.0.2", "fd00::2"]);
    }
}
