//! IP addresses and CIDRs as upstream checks them, with its messages; also the "special" addresses endpoints
//! may not use.

use std::net::IpAddr;

use rkube_apimachinery::Cause;

use crate::errs::invalid_str;

const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
const CIDR_MSG: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// Parses an address the way Go's `ParseIPSloppy` does: IPv4 octets may carry leading zeros (read as decimal).
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    let octets: Vec<&str> = s.split('.').collect();
    if octets.len() != 4 || octets.iter().any(|o| o.is_empty() || o.len() > 3 || !o.bytes().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let mut b = [0u8; 4];
    for (i, o) in octets.iter().enumerate() {
        b[i] = o.parse::<u8>().ok()?;
    }
    Some(IpAddr::from(b))
}

/// Whether `s` is an IPv6 address.
pub(crate) fn is_ipv6(s: &str) -> bool {
    matches!(parse_ip(s), Some(IpAddr::V6(_)))
}

/// `IsValidIP` (legacy form: leading zeros and non-canonical text tolerated, as 1.33 does without StrictIPCIDRValidation).
pub(crate) fn validate_ip(f: &str, s: &str) -> Vec<Cause> {
    if parse_ip(s).is_some() { Vec::new() } else { vec![invalid_str(f, s, IP_MSG)] }
}

/// An IPv4 address only.
pub(crate) fn validate_ipv4(f: &str, s: &str) -> Vec<Cause> {
    match parse_ip(s) {
        Some(IpAddr::V4(_)) => Vec::new(),
        _ => vec![invalid_str(f, s, "must be a valid IPv4 address")],
    }
}

/// An IPv6 address only.
pub(crate) fn validate_ipv6(f: &str, s: &str) -> Vec<Cause> {
    match parse_ip(s) {
        Some(IpAddr::V6(_)) => Vec::new(),
        _ => vec![invalid_str(f, s, "must be a valid IPv6 address")],
    }
}

/// Parses `a.b.c.d/n` or `x::/n` (host bits may be set, as Go's `ParseCIDR` allows).
pub(crate) fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip = parse_ip(ip)?;
    if bits.is_empty() || !bits.bytes().all(|c| c.is_ascii_digit()) || bits.len() > 3 {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

/// `IsValidCIDR` (legacy form).
pub(crate) fn validate_cidr(f: &str, s: &str) -> Vec<Cause> {
    if parse_cidr(s).is_some() { Vec::new() } else { vec![invalid_str(f, s, CIDR_MSG)] }
}

/// `ValidateNonSpecialIP`: endpoints may not point at unspecified, loopback or link-local addresses.
pub(crate) fn validate_non_special_ip(f: &str, s: &str) -> Vec<Cause> {
    let Some(ip) = parse_ip(s) else {
        return vec![invalid_str(f, s, "must be a valid IP address")];
    };
    let mut errs = Vec::new();
    if ip.is_unspecified() {
        errs.push(invalid_str(f, s, &format!("may not be unspecified ({s})")));
    }
    if ip.is_loopback() {
        errs.push(invalid_str(f, s, "may not be in the loopback range (127.0.0.0/8, ::1/128)"));
    }
    let link_local_unicast = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local_unicast {
        errs.push(invalid_str(f, s, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"));
    }
    let link_local_multicast = match ip {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => (v6.segments()[0] & 0xff0f) == 0xff02,
    };
    if link_local_multicast {
        errs.push(invalid_str(f, s, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(validate_ip("x", "10.0.0.1").is_empty());
        assert!(validate_ip("x", "010.0.0.1").is_empty());
        assert_eq!(validate_ip("x", "10.0.0.256")[0].message, format!("Invalid value: \"10.0.0.256\": {IP_MSG}"));
        assert!(validate_cidr("x", "10.244.1.0/24").is_empty());
        assert_eq!(validate_cidr("x", "10.244.1.0/33").len(), 1);
        assert_eq!(validate_non_special_ip("x", "127.0.0.1").len(), 1);
        assert!(validate_non_special_ip("x", "10.1.2.3").is_empty());
    }
}
