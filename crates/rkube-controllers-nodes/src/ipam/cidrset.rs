//! The cluster CIDR cut into equal per-node blocks, as upstream's `cidrset.CidrSet`: a bitmap of used
//! blocks, allocation from a rotating next candidate (so a just-released block is not handed out again at
//! once while others are free), and occupy/release of any CIDR inside the cluster range. IPv4 only.

use std::fmt;
use std::net::Ipv4Addr;

/// An IPv4 network (`addr` has no host bits set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Ipv4Cidr {
    addr: u32,
    prefix: u8,
}

/// Why a CIDR could not be parsed, occupied or allocated.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CidrError {
    /// Not of the form `a.b.c.d/n` (IPv6 ranges are refused here: node IPAM is IPv4 only).
    #[error("invalid CIDR {0:?} (node IPAM supports IPv4 ranges only)")]
    Parse(String),
    /// The node mask is shorter than the cluster prefix, or the two differ by more than 16 bits.
    #[error("{0}")]
    Mask(String),
    /// Every block is in use (upstream's wording).
    #[error("CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range")]
    Exhausted,
    /// The CIDR lies outside the cluster range.
    #[error("cidr {cidr} is out the range of cluster cidr {cluster}")]
    OutOfRange {
        /// The CIDR given.
        cidr: Ipv4Cidr,
        /// The cluster range.
        cluster: Ipv4Cidr,
    },
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) }
}

impl Ipv4Cidr {
    /// Parses `a.b.c.d/n`; host bits are cleared, as Go's `net.ParseCIDR` returns the network.
    pub(crate) fn parse(s: &str) -> Result<Ipv4Cidr, CidrError> {
        let err = || CidrError::Parse(s.to_owned());
        let (ip, len) = s.trim().split_once('/').ok_or_else(err)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| err())?;
        let prefix: u8 = len.parse().map_err(|_| err())?;
        if prefix > 32 {
            return Err(err());
        }
        Ok(Ipv4Cidr { addr: u32::from(ip) & mask(prefix), prefix })
    }

    fn last(self) -> u32 {
        self.addr | !mask(self.prefix)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.addr), self.prefix)
    }
}

/// The blocks of one cluster CIDR and which of them are in use.
#[derive(Debug)]
pub(crate) struct CidrSet {
    cluster: Ipv4Cidr,
    node_prefix: u8,
    used: Vec<bool>,
    allocated: usize,
    next_candidate: usize,
}

impl CidrSet {
    /// Blocks of `/node_prefix` inside `cluster`.
    pub(crate) fn new(cluster: Ipv4Cidr, node_prefix: u8) -> Result<CidrSet, CidrError> {
        if node_prefix < cluster.prefix || node_prefix > 32 {
            return Err(CidrError::Mask(format!(
                "node CIDR mask size /{node_prefix} must lie between the cluster prefix /{} and /32",
                cluster.prefix
            )));
        }
        let bits = node_prefix - cluster.prefix;
        if bits > 16 {
            return Err(CidrError::Mask(
                "CIDRSet doesn't support cluster and node CIDR mask sizes differing by more than 16".to_owned(),
            ));
        }
        Ok(CidrSet { cluster, node_prefix, used: vec![false; 1 << bits], allocated: 0, next_candidate: 0 })
    }

    fn block(&self, index: usize) -> Ipv4Cidr {
        let size = 1u64 << (32 - u32::from(self.node_prefix));
        // `index` < 2^16 and the blocks fit in the cluster range, so this stays inside u32.
        let offset = u32::try_from(index as u64 * size).unwrap_or(u32::MAX);
        Ipv4Cidr { addr: self.cluster.addr.wrapping_add(offset), prefix: self.node_prefix }
    }

    /// How many blocks there are in all.
    pub(crate) fn capacity(&self) -> usize {
        self.used.len()
    }

    /// How many blocks are in use.
    pub(crate) fn in_use(&self) -> usize {
        self.allocated
    }

    /// The next free block, searching from after the last one handed out.
    pub(crate) fn allocate_next(&mut self) -> Result<Ipv4Cidr, CidrError> {
        let n = self.used.len();
        for i in 0..n {
            let candidate = (self.next_candidate + i) % n;
            if !self.used[candidate] {
                self.used[candidate] = true;
                self.allocated += 1;
                self.next_candidate = (candidate + 1) % n;
                return Ok(self.block(candidate));
            }
        }
        Err(CidrError::Exhausted)
    }

    /// The block indices `cidr` covers (a CIDR larger than a block covers several, a smaller one its block).
    fn indices(&self, cidr: Ipv4Cidr) -> Result<std::ops::RangeInclusive<usize>, CidrError> {
        let out = || CidrError::OutOfRange { cidr, cluster: self.cluster };
        if cidr.prefix < self.cluster.prefix {
            // Larger than the cluster: it covers everything only if it contains it.
            if self.cluster.addr & mask(cidr.prefix) != cidr.addr {
                return Err(out());
            }
            return Ok(0..=self.used.len() - 1);
        }
        if cidr.addr & mask(self.cluster.prefix) != self.cluster.addr {
            return Err(out());
        }
        let shift = 32 - u32::from(self.node_prefix);
        let first = ((cidr.addr - self.cluster.addr) >> shift) as usize;
        let last = ((cidr.last() - self.cluster.addr) >> shift) as usize;
        Ok(first..=last.min(self.used.len() - 1))
    }

    /// Marks every block `cidr` covers as used (ranges already on nodes, set before this controller ran).
    pub(crate) fn occupy(&mut self, cidr: Ipv4Cidr) -> Result<(), CidrError> {
        for i in self.indices(cidr)? {
            if !self.used[i] {
                self.used[i] = true;
                self.allocated += 1;
            }
        }
        Ok(())
    }

    /// Marks every block `cidr` covers as free.
    pub(crate) fn release(&mut self, cidr: Ipv4Cidr) -> Result<(), CidrError> {
        for i in self.indices(cidr)? {
            if self.used[i] {
                self.used[i] = false;
                self.allocated -= 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        Ipv4Cidr::parse(s).unwrap()
    }

    #[test]
    fn parses_and_prints_networks() {
        assert_eq!(cidr("172.30.5.7/16").to_string(), "172.30.0.0/16");
        assert!(Ipv4Cidr::parse("fd00::/64").is_err());
        assert!(Ipv4Cidr::parse("10.0.0.0/33").is_err());
        assert!(Ipv4Cidr::parse("10.0.0.0").is_err());
    }

    #[test]
    fn allocates_distinct_blocks_then_reports_exhaustion() {
        let mut set = CidrSet::new(cidr("10.99.0.0/23"), 24).unwrap();
        assert_eq!(set.capacity(), 2);
        assert_eq!(set.allocate_next().unwrap().to_string(), "10.99.0.0/24");
        assert_eq!(set.allocate_next().unwrap().to_string(), "10.99.1.0/24");
        let err = set.allocate_next().unwrap_err();
        assert_eq!(
            err.to_string(),
            "CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range"
        );
        set.release(cidr("10.99.0.0/24")).unwrap();
        assert_eq!(set.in_use(), 1);
        assert_eq!(set.allocate_next().unwrap().to_string(), "10.99.0.0/24");
    }

    #[test]
    fn the_next_candidate_rotates_past_released_blocks() {
        let mut set = CidrSet::new(cidr("172.30.0.0/16"), 24).unwrap();
        let a = set.allocate_next().unwrap();
        let b = set.allocate_next().unwrap();
        assert_eq!(b.to_string(), "172.30.1.0/24");
        set.release(a).unwrap();
        assert_eq!(set.allocate_next().unwrap().to_string(), "172.30.2.0/24");
    }

    #[test]
    fn occupied_blocks_are_skipped_and_out_of_range_refused() {
        let mut set = CidrSet::new(cidr("172.30.0.0/16"), 24).unwrap();
        set.occupy(cidr("172.30.0.0/24")).unwrap();
        set.occupy(cidr("172.30.2.0/23")).unwrap(); // two blocks
        assert_eq!(set.in_use(), 3);
        assert_eq!(set.allocate_next().unwrap().to_string(), "172.30.1.0/24");
        assert_eq!(set.allocate_next().unwrap().to_string(), "172.30.4.0/24");
        set.occupy(cidr("172.30.9.128/25")).unwrap(); // inside one block
        assert_eq!(set.in_use(), 6);
        let err = set.occupy(cidr("10.0.0.0/24")).unwrap_err();
        assert_eq!(err.to_string(), "cidr 10.0.0.0/24 is out the range of cluster cidr 172.30.0.0/16");
        assert!(CidrSet::new(cidr("10.0.0.0/8"), 30).is_err());
        assert!(CidrSet::new(cidr("10.0.0.0/24"), 16).is_err());
    }
}
