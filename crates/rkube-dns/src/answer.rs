//! The record logic of CoreDNS's kubernetes plugin (`pods insecure`, wildcards off) over an [`Index`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::index::{Endpoint, Index, Port, Svc, SvcKind};

/// The schema version CoreDNS reports at `dns-version.<zone>` (the Kubernetes DNS specification's).
const SCHEMA_VERSION: &str = "1.1.0";

/// What to do with one question.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Answered from the index.
    Local(Reply),
    /// Not ours (outside the zone, or a reverse name we do not know): ask the upstreams.
    Forward,
}

/// A local answer: the rcode and sections (the SOA goes to the authority section of negative answers).
#[derive(Debug, Default)]
pub(crate) struct Reply {
    pub(crate) rcode: ResponseCode,
    pub(crate) answers: Vec<Record>,
    pub(crate) additionals: Vec<Record>,
    pub(crate) authority: Vec<Record>,
}

/// The zone and TTL answers are built with.
pub(crate) struct Zone {
    /// Lowercase, without the trailing dot (`cluster.local`).
    pub(crate) domain: String,
    pub(crate) ttl: u32,
}

impl Zone {
    fn fqdn(&self, rel: &str) -> Name {
        let text = if rel.is_empty() { format!("{}.", self.domain) } else { format!("{rel}.{}.", self.domain) };
        // Every label here came from a parsed query name or a Kubernetes object name (DNS-1123), so it parses;
        // the root name is a harmless fallback that never carries data.
        Name::from_ascii(text).unwrap_or_else(|_| Name::root())
    }

    fn soa(&self, serial: u32) -> Record {
        let soa = SOA::new(self.fqdn("ns.dns"), self.fqdn("hostmaster"), serial, 7200, 1800, 86400, self.ttl);
        Record::from_rdata(self.fqdn(""), self.ttl, RData::SOA(soa))
    }

    fn record(&self, name: &Name, data: RData) -> Record {
        Record::from_rdata(name.clone(), self.ttl, data)
    }

    fn address(&self, name: &Name, ip: IpAddr) -> Record {
        match ip {
            IpAddr::V4(v4) => self.record(name, RData::A(A(v4))),
            IpAddr::V6(v6) => self.record(name, RData::AAAA(AAAA(v6))),
        }
    }
}

fn family_matches(ip: &IpAddr, qtype: RecordType) -> bool {
    matches!((ip, qtype), (IpAddr::V4(_), RecordType::A) | (IpAddr::V6(_), RecordType::AAAA))
}

fn is_address(qtype: RecordType) -> bool {
    matches!(qtype, RecordType::A | RecordType::AAAA)
}

/// Answers `qname`/`qtype` from the index, or says to forward it.
pub(crate) fn answer(index: &Index, zone: &Zone, qname: &Name, qtype: RecordType) -> Outcome {
    let lower = qname.to_lowercase().to_ascii();
    let name = lower.trim_end_matches('.');
    if qtype == RecordType::PTR && is_reverse(name) {
        return reverse(index, zone, qname);
    }
    let rel = if name == zone.domain {
        ""
    } else if let Some(rel) = name.strip_suffix(&zone.domain).and_then(|r| r.strip_suffix('.')) {
        rel
    } else {
        return Outcome::Forward;
    };
    let labels: Vec<&str> = if rel.is_empty() { Vec::new() } else { rel.split('.').collect() };
    let mut q = Query { index, zone, qname, qtype, reply: Reply::default() };
    let found = match labels.as_slice() {
        [] => q.apex(),
        ["dns-version"] => {
            if qtype == RecordType::TXT {
                let r = zone.record(qname, RData::TXT(TXT::new(vec![SCHEMA_VERSION.into()])));
                q.reply.answers.push(r);
            }
            true
        }
        ["svc"] | ["pod"] => true,
        [ns, "svc"] | [ns, "pod"] => index.namespace_exists(ns),
        [svc, ns, "svc"] => q.service(ns, svc),
        [ep, svc, ns, "svc"] => q.endpoint(ns, svc, ep),
        [port, proto, svc, ns, "svc"] => q.port(ns, svc, port, proto),
        [ip, _ns, "pod"] => q.pod(ip),
        _ => false,
    };
    let mut reply = q.reply;
    if !found {
        reply.rcode = ResponseCode::NXDomain;
    }
    if reply.answers.is_empty() {
        reply.authority.push(zone.soa(index.serial()));
    }
    Outcome::Local(reply)
}

fn is_reverse(name: &str) -> bool {
    name.ends_with("in-addr.arpa") || name.ends_with("ip6.arpa")
}

/// PTR for service cluster IPs and headless endpoints; anything else falls through to the upstreams, as the
/// kube-dns Corefile's `fallthrough in-addr.arpa ip6.arpa` does.
fn reverse(index: &Index, zone: &Zone, qname: &Name) -> Outcome {
    let Some(ip) = qname.parse_arpa_name().ok().filter(|n| n.prefix_len() == n.max_prefix_len()).map(|n| n.addr())
    else {
        return Outcome::Forward;
    };
    let names = index.reverse(ip);
    if names.is_empty() {
        return Outcome::Forward;
    }
    let answers = names.iter().map(|n| zone.record(qname, RData::PTR(PTR(zone.fqdn(&format!("{n}.svc")))))).collect();
    Outcome::Local(Reply { answers, ..Reply::default() })
}

struct Query<'a> {
    index: &'a Index,
    zone: &'a Zone,
    qname: &'a Name,
    qtype: RecordType,
    reply: Reply,
}

impl Query<'_> {
    fn apex(&mut self) -> bool {
        match self.qtype {
            RecordType::SOA => self.reply.answers.push(self.zone.soa(self.index.serial())),
            RecordType::NS => {
                let ns = self.zone.fqdn("ns.dns");
                self.reply.answers.push(self.zone.record(self.qname, RData::NS(NS(ns))));
            }
            _ => {}
        }
        true
    }

    fn add_addresses<'e>(&mut self, ips: impl IntoIterator<Item = &'e IpAddr>) {
        for ip in ips {
            if family_matches(ip, self.qtype) {
                let r = self.zone.address(self.qname, *ip);
                self.reply.answers.push(r);
            }
        }
    }

    fn add_srv(&mut self, ports: &[(u16, Name)], targets: Vec<(Name, IpAddr)>) {
        // CoreDNS spreads weight 100 evenly over the records of one priority.
        let weight = u16::try_from(100 / ports.len().max(1)).unwrap_or(100);
        for (port, target) in ports {
            self.reply
                .answers
                .push(self.zone.record(self.qname, RData::SRV(SRV::new(0, weight, *port, target.clone()))));
        }
        for (name, ip) in targets {
            let r = self.zone.address(&name, ip);
            if !self.reply.additionals.contains(&r) {
                self.reply.additionals.push(r);
            }
        }
    }

    fn service(&mut self, ns: &str, name: &str) -> bool {
        let Some(svc) = self.index.service(ns, name) else { return false };
        self.serve(ns, name, svc, None)
    }

    /// Records for a service, its ports filtered by `port` (name, proto) for `_port._proto` names.
    fn serve(&mut self, ns: &str, name: &str, svc: &Svc, port: Option<(&str, &str)>) -> bool {
        let wanted = |p: &&Port| port.is_none_or(|(n, pr)| p.name == n && p.proto == pr);
        let svc_name = self.zone.fqdn(&format!("{name}.{ns}.svc"));
        match &svc.kind {
            SvcKind::External(target) => {
                let Ok(target) = Name::from_ascii(format!("{target}.")) else { return true };
                match self.qtype {
                    RecordType::SRV => {
                        let ports: Vec<_> = svc.ports.iter().filter(wanted).map(|p| (p.port, target.clone())).collect();
                        self.add_srv(&ports, Vec::new());
                    }
                    RecordType::A | RecordType::AAAA | RecordType::CNAME | RecordType::ANY => {
                        self.reply.answers.push(self.zone.record(self.qname, RData::CNAME(CNAME(target))));
                    }
                    _ => {}
                }
                port.is_none() || svc.ports.iter().any(|p| wanted(&p))
            }
            SvcKind::ClusterIp(ips) => {
                let ports: Vec<&Port> = svc.ports.iter().filter(wanted).collect();
                if port.is_some() && ports.is_empty() {
                    return false;
                }
                match self.qtype {
                    RecordType::A | RecordType::AAAA => self.add_addresses(ips),
                    RecordType::SRV => {
                        let srv: Vec<_> = ports.iter().map(|p| (p.port, svc_name.clone())).collect();
                        let targets = ips.iter().map(|ip| (svc_name.clone(), *ip)).collect();
                        self.add_srv(&srv, targets);
                    }
                    _ => {}
                }
                true
            }
            SvcKind::Headless => {
                let eps = self.index.endpoints(ns, name);
                let matching: Vec<(&Endpoint, Vec<&Port>)> =
                    eps.iter().map(|(e, ps)| (*e, ps.iter().filter(wanted).collect::<Vec<_>>())).collect();
                // CoreDNS has no records for a headless service without ready endpoints: NXDOMAIN.
                if matching.iter().all(|(_, ps)| port.is_some() && ps.is_empty()) {
                    return false;
                }
                match self.qtype {
                    RecordType::A | RecordType::AAAA => {
                        let ips: Vec<IpAddr> = matching.iter().map(|(e, _)| e.ip).collect();
                        self.add_addresses(&ips);
                    }
                    RecordType::SRV => {
                        let mut srv = Vec::new();
                        let mut targets = Vec::new();
                        for (e, ps) in &matching {
                            let target = self.zone.fqdn(&format!("{}.{name}.{ns}.svc", e.label()));
                            srv.extend(ps.iter().map(|p| (p.port, target.clone())));
                            targets.push((target, e.ip));
                        }
                        self.add_srv(&srv, targets);
                    }
                    _ => {}
                }
                true
            }
        }
    }

    fn endpoint(&mut self, ns: &str, svc: &str, label: &str) -> bool {
        match self.index.service(ns, svc) {
            None | Some(Svc { kind: SvcKind::External(_), .. }) => return false,
            Some(_) => {}
        }
        let ips: Vec<IpAddr> =
            self.index.endpoints(ns, svc).iter().filter(|(e, _)| e.label() == label).map(|(e, _)| e.ip).collect();
        if ips.is_empty() {
            return false;
        }
        if is_address(self.qtype) {
            self.add_addresses(&ips);
        }
        true
    }

    fn port(&mut self, ns: &str, svc_name: &str, port: &str, proto: &str) -> bool {
        let (Some(port), Some(proto)) = (port.strip_prefix('_'), proto.strip_prefix('_')) else { return false };
        let Some(svc) = self.index.service(ns, svc_name) else { return false };
        self.serve(ns, svc_name, svc, Some((port, proto)))
    }

    /// `pods insecure`: any well-formed dashed IP answers with itself, in any namespace.
    fn pod(&mut self, label: &str) -> bool {
        let ip = if label.contains("--") || label.matches('-').count() > 3 {
            label.replace('-', ":").parse::<Ipv6Addr>().map(IpAddr::V6)
        } else {
            label.replace('-', ".").parse::<Ipv4Addr>().map(IpAddr::V4)
        };
        let Ok(ip) = ip else { return false };
        self.add_addresses(&[ip]);
        true
    }
}
