//! Subject alternative names: parsing `--tls-san`-style values and the API server's required set.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::error::{PkiError, Result};

/// One subject alternative name of a serving certificate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum San {
    /// A DNS name, lower-cased (certificate name matching is case-insensitive); may start with `*.`.
    Dns(String),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
}

impl San {
    /// Parses an IP address or a DNS name as given to `--tls-san`, rejecting what no client could match
    /// (URLs, ports, spaces, bad labels) with the reason.
    pub fn parse(value: &str) -> Result<San> {
        let invalid = |reason: &str| PkiError::InvalidSan { value: value.to_owned(), reason: reason.to_owned() };
        if let Ok(ip) = IpAddr::from_str(value) {
            return Ok(San::Ip(ip));
        }
        if value.is_empty() {
            return Err(invalid("it is empty"));
        }
        if value.contains("://") {
            return Err(invalid("give a host name or IP address, not a URL"));
        }
        if value.starts_with('[') || value.contains(':') {
            return Err(invalid("give a host name or IP address without brackets or a port"));
        }
        if value.len() > 253 {
            return Err(invalid("a DNS name has at most 253 characters"));
        }
        let name = value.to_ascii_lowercase();
        let (wildcard, rest) = match name.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, name.as_str()),
        };
        if rest.is_empty() {
            return Err(invalid("a wildcard needs a domain after `*.`"));
        }
        for label in rest.split('.') {
            if label.is_empty() {
                return Err(invalid("a DNS name has no empty labels (no leading, trailing or double dots)"));
            }
            if label.len() > 63 {
                return Err(invalid("a DNS label has at most 63 characters"));
            }
            if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(invalid(
                    "a DNS name holds only letters, digits, hyphens and dots (a `*.` prefix is the only wildcard)",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid("a DNS label neither starts nor ends with a hyphen"));
            }
        }
        // Wildcards over a single label (`*.com`) would be ignored by every TLS client anyway.
        if wildcard && !rest.contains('.') {
            return Err(invalid("a wildcard must cover a domain of at least two labels"));
        }
        Ok(San::Dns(name))
    }

    pub(crate) fn to_rcgen(&self) -> Result<rcgen::SanType> {
        Ok(match self {
            San::Ip(ip) => rcgen::SanType::IpAddress(*ip),
            San::Dns(name) => rcgen::SanType::DnsName(name.as_str().try_into().map_err(|_| PkiError::InvalidSan {
                value: name.clone(),
                reason: "not an IA5 (ASCII) string".to_owned(),
            })?),
        })
    }
}

impl FromStr for San {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<San> {
        San::parse(s)
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(name) => f.write_str(name),
            San::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl From<IpAddr> for San {
    fn from(ip: IpAddr) -> San {
        San::Ip(ip)
    }
}

/// The first host address of a service CIDR, which the `kubernetes` Service's ClusterIP takes
/// (`10.254.0.0/16` → `10.254.0.1`), as upstream's `--service-cluster-ip-range` does.
pub fn service_cidr_first_ip(cidr: &str) -> Result<IpAddr> {
    let invalid = |reason: &str| PkiError::InvalidServiceCidr { value: cidr.to_owned(), reason: reason.to_owned() };
    let (addr, prefix) = cidr.split_once('/').ok_or_else(|| invalid("expected ADDRESS/PREFIX, e.g. 10.254.0.0/16"))?;
    let addr = IpAddr::from_str(addr).map_err(|_| invalid("the address is not an IP address"))?;
    let prefix: u32 = prefix.parse().map_err(|_| invalid("the prefix length is not a number"))?;
    match addr {
        IpAddr::V4(v4) => {
            if prefix > 30 {
                return Err(invalid("an IPv4 service range needs a prefix of at most /30"));
            }
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            Ok(IpAddr::V4(Ipv4Addr::from((u32::from(v4) & mask) + 1)))
        }
        IpAddr::V6(v6) => {
            if prefix > 126 {
                return Err(invalid("an IPv6 service range needs a prefix of at most /126"));
            }
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            Ok(IpAddr::V6(Ipv6Addr::from((u128::from(v6) & mask) + 1)))
        }
    }
}

/// Appends `san` unless already present, keeping the order in which names were first asked for.
pub(crate) fn push_unique(sans: &mut Vec<San>, san: San) {
    if !sans.contains(&san) {
        sans.push(san);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ips_and_names() {
        assert_eq!(San::parse("10.0.0.1").expect("ip"), San::Ip("10.0.0.1".parse().expect("ip")));
        assert_eq!(San::parse("fd00::1").expect("ip6"), San::Ip("fd00::1".parse().expect("ip")));
        assert_eq!(San::parse("API.Example.com").expect("dns"), San::Dns("api.example.com".into()));
        assert_eq!(San::parse("*.example.com").expect("wild"), San::Dns("*.example.com".into()));
        assert_eq!(San::parse("node-1").expect("short"), San::Dns("node-1".into()));
    }

    #[test]
    fn rejects_what_no_client_could_match() {
        for bad in [
            "",
            "https://example.com",
            "example.com:6443",
            "[::1]",
            "exa mple.com",
            "-bad.com",
            "a..b",
            "trailing.",
            "*.com",
            "*",
            "foo.*.com",
            "under_score",
        ] {
            let err = San::parse(bad).expect_err(bad);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        assert!(San::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn first_service_ip() {
        let ip = |s: &str| -> IpAddr { s.parse().expect("ip") };
        assert_eq!(service_cidr_first_ip("10.254.0.0/16").expect("v4"), ip("10.254.0.1"));
        assert_eq!(service_cidr_first_ip("10.254.7.9/16").expect("unmasked"), ip("10.254.0.1"));
        assert_eq!(service_cidr_first_ip("10.0.0.0/0").expect("v4 /0"), ip("0.0.0.1"));
        assert_eq!(service_cidr_first_ip("fd00:10:96::/112").expect("v6"), ip("fd00:10:96::1"));
        for bad in ["10.254.0.0", "x/16", "10.0.0.0/33", "10.0.0.0/31", "10.0.0.0/a"] {
            assert!(service_cidr_first_ip(bad).is_err(), "{bad}");
        }
    }
}
