//! Chain names exactly as upstream derives them: iptables' `KUBE-SVC-`/`KUBE-SEP-`… prefixes on the first 16
//! base32 characters of sha256(`ns/svc:port` + protocol [+ `ip:port`]), and nftables' readable
//! `service-HASH8-ns/svc/proto/port` names.

use data_encoding::BASE32;
use sha2::{Digest, Sha256};

use crate::model::{Endpoint, ServicePortName};

/// nftables' maximum object-name length minus upstream's longest prefix (`knftables.NameLengthMax` is 256).
const NFT_BASE_MAX: usize = 256 - 16;

fn b32_sha256(s: &str) -> String {
    BASE32.encode(&Sha256::digest(s.as_bytes()))
}

/// Upstream's `portProtoHash`: 16 base32 characters of sha256(`ns/svc:port` + protocol).
pub fn port_proto_hash(name: &ServicePortName) -> String {
    let mut h = b32_sha256(&format!("{}{}", name, name.protocol.as_str()));
    h.truncate(16);
    h
}

/// iptables chain names of one service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IptChains {
    /// `KUBE-SVC-…`: Cluster-policy dispatch.
    pub svc: String,
    /// `KUBE-SVL-…`: Local-policy dispatch.
    pub svl: String,
    /// `KUBE-EXT-…`: external destinations.
    pub ext: String,
    /// `KUBE-FW-…`: loadBalancerSourceRanges firewall.
    pub fw: String,
}

impl IptChains {
    /// The chain names of `name`.
    pub fn of(name: &ServicePortName) -> IptChains {
        let h = port_proto_hash(name);
        IptChains {
            svc: format!("KUBE-SVC-{h}"),
            svl: format!("KUBE-SVL-{h}"),
            ext: format!("KUBE-EXT-{h}"),
            fw: format!("KUBE-FW-{h}"),
        }
    }
}

/// Upstream's `servicePortEndpointChainName`: `KUBE-SEP-` + 16 base32 characters of
/// sha256(`ns/svc:port` + protocol + `ip:port`).
pub fn ipt_endpoint_chain(name: &ServicePortName, ep: &Endpoint) -> String {
    let h = b32_sha256(&format!("{}{}{}", name, name.protocol.as_str(), ep));
    format!("KUBE-SEP-{}", &h[..16])
}

/// Upstream's `hashAndTruncate`: 8 base32 characters of the name's sha256, a dash, the name.
fn hash_and_truncate(name: &str) -> String {
    let mut out = format!("{}-{}", &b32_sha256(name)[..8], name);
    if out.len() > NFT_BASE_MAX {
        out.truncate(NFT_BASE_MAX - 3);
        out.push_str("...");
    }
    out
}

/// Upstream's `servicePortChainNameBase`, e.g. `ULMVA6XW-ns1/svc1/tcp/p80`.
pub fn nft_service_base(name: &ServicePortName) -> String {
    hash_and_truncate(&format!("{}/{}/{}/{}", name.namespace, name.name, name.protocol.as_str(), name.port))
}

/// Upstream's `servicePortEndpointChainNameBase`, e.g. `5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80`.
pub fn nft_endpoint_base(name: &ServicePortName, ep: &Endpoint) -> String {
    hash_and_truncate(&format!(
        "{}/{}/{}/{}__{}/{}",
        name.namespace,
        name.name,
        name.protocol.as_str(),
        name.port,
        ep.ip,
        ep.port
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    fn spn(ns: &str, n: &str, port: &str, protocol: Protocol) -> ServicePortName {
        ServicePortName { namespace: ns.into(), name: n.into(), port: port.into(), protocol }
    }

    fn ep(ip: &str, port: u16) -> Endpoint {
        Endpoint { ip: ip.parse().unwrap(), port, ready: true, serving: true, terminating: false, local: false }
    }

    /// Names that appear verbatim in upstream's proxier tests and on every cluster (kube-dns).
    #[test]
    fn hashes_match_upstream() {
        assert_eq!(
            IptChains::of(&spn("kube-system", "kube-dns", "dns", Protocol::Udp)).svc,
            "KUBE-SVC-TCOU7JCQXEZGVUNU"
        );
        assert_eq!(IptChains::of(&spn("ns1", "svc1", "p80", Protocol::Tcp)).svc, "KUBE-SVC-XPGD46QRK7WJZT7O");
        assert_eq!(
            ipt_endpoint_chain(&spn("ns1", "svc1", "p80", Protocol::Tcp), &ep("10.180.0.1", 80)),
            "KUBE-SEP-SXIVWICOYRO3J4NJ"
        );
        assert_eq!(nft_service_base(&spn("ns1", "svc1", "p80", Protocol::Tcp)), "ULMVA6XW-ns1/svc1/tcp/p80");
        assert_eq!(
            nft_endpoint_base(&spn("ns1", "svc1", "p80", Protocol::Tcp), &ep("10.180.0.1", 80)),
            "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
        );
    }
}
