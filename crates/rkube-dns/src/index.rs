//! The in-memory view of Services and EndpointSlices that every query is answered from (no API calls).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label an EndpointSlice names its Service with.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// What a Service resolves to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SvcKind {
    /// A virtual IP service: its cluster IPs (both families for dual-stack).
    ClusterIp(Vec<IpAddr>),
    /// `clusterIP: None`: names resolve to the ready endpoints.
    Headless,
    /// `type: ExternalName`: a CNAME to this (lowercase, without the trailing dot) name.
    External(String),
}

/// A named (or unnamed) port of a Service or an EndpointSlice.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Port {
    /// Lowercase port name; empty for an unnamed port.
    pub(crate) name: String,
    /// Lowercase protocol: tcp, udp or sctp.
    pub(crate) proto: String,
    pub(crate) port: u16,
}

/// One Service as DNS sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Svc {
    pub(crate) kind: SvcKind,
    pub(crate) ports: Vec<Port>,
}

/// A ready endpoint address.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Endpoint {
    pub(crate) ip: IpAddr,
    /// `endpoints[].hostname` (set for pods with hostname + subdomain), lowercase.
    pub(crate) hostname: Option<String>,
}

impl Endpoint {
    /// The endpoint's DNS label, as CoreDNS names it: its hostname, else its IP with `.`/`:` turned to `-`.
    pub(crate) fn label(&self) -> String {
        match &self.hostname {
            Some(h) => h.clone(),
            None => self.ip.to_string().replace(['.', ':'], "-"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Slice {
    service: String,
    endpoints: Vec<Endpoint>,
    ports: Vec<Port>,
}

/// Services and EndpointSlices keyed by namespace and name.
#[derive(Debug, Default)]
pub struct Index {
    services: HashMap<(String, String), Svc>,
    slices: HashMap<(String, String), Slice>,
    /// (namespace, service) → the names of its slices.
    by_service: HashMap<(String, String), BTreeSet<String>>,
    /// Services per namespace: a namespace "exists" for DNS while it has one.
    namespaces: HashMap<String, usize>,
    /// Bumped on every change; the SOA serial.
    serial: u32,
}

fn key(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<(String, String)> {
    Some((meta.namespace.clone()?.to_ascii_lowercase(), meta.name.clone()?.to_ascii_lowercase()))
}

fn service_of(s: &Service) -> Svc {
    let spec = s.spec.clone().unwrap_or_default();
    let ports = spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            Some(Port {
                name: p.name.unwrap_or_default().to_ascii_lowercase(),
                proto: p.protocol.unwrap_or_else(|| "TCP".into()).to_ascii_lowercase(),
                port: u16::try_from(p.port).ok()?,
            })
        })
        .collect();
    let kind = if spec.type_.as_deref() == Some("ExternalName") {
        SvcKind::External(spec.external_name.unwrap_or_default().trim_end_matches('.').to_ascii_lowercase())
    } else if spec.cluster_ip.as_deref() == Some("None") {
        SvcKind::Headless
    } else {
        let mut ips: Vec<IpAddr> =
            spec.cluster_ips.unwrap_or_default().iter().filter_map(|ip| ip.parse().ok()).collect();
        if ips.is_empty() {
            ips.extend(spec.cluster_ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok()));
        }
        SvcKind::ClusterIp(ips)
    };
    Svc { kind, ports }
}

fn slice_of(s: &EndpointSlice) -> Option<Slice> {
    let service = s.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?.to_ascii_lowercase();
    let endpoints = s
        .endpoints
        .iter()
        // An unset `ready` means ready (the API's contract); serving-but-terminating endpoints are not.
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .flat_map(|e| {
            let hostname = e.hostname.as_ref().map(|h| h.to_ascii_lowercase());
            e.addresses.iter().filter_map(move |a| Some(Endpoint { ip: a.parse().ok()?, hostname: hostname.clone() }))
        })
        .collect();
    let ports = s
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(Port {
                name: p.name.clone().unwrap_or_default().to_ascii_lowercase(),
                proto: p.protocol.clone().unwrap_or_else(|| "TCP".into()).to_ascii_lowercase(),
                port: u16::try_from(p.port?).ok()?,
            })
        })
        .collect();
    Some(Slice { service, endpoints, ports })
}

impl Index {
    /// Adds or replaces a Service.
    pub fn apply_service(&mut self, s: &Service) {
        let Some(k) = key(&s.metadata) else { return };
        let svc = service_of(s);
        if self.services.get(&k) == Some(&svc) {
            return;
        }
        if self.services.insert(k.clone(), svc).is_none() {
            *self.namespaces.entry(k.0).or_default() += 1;
        }
        self.bump();
    }

    /// Removes a Service.
    pub fn delete_service(&mut self, s: &Service) {
        let Some(k) = key(&s.metadata) else { return };
        if self.services.remove(&k).is_some() {
            if let Some(n) = self.namespaces.get_mut(&k.0) {
                *n -= 1;
                if *n == 0 {
                    self.namespaces.remove(&k.0);
                }
            }
            self.bump();
        }
    }

    /// Adds or replaces an EndpointSlice.
    pub fn apply_slice(&mut self, s: &EndpointSlice) {
        let Some(k) = key(&s.metadata) else { return };
        let Some(slice) = slice_of(s) else { return self.delete_slice(s) };
        if self.slices.get(&k) == Some(&slice) {
            return;
        }
        self.unlink(&k);
        self.by_service.entry((k.0.clone(), slice.service.clone())).or_default().insert(k.1.clone());
        self.slices.insert(k, slice);
        self.bump();
    }

    /// Removes an EndpointSlice.
    pub fn delete_slice(&mut self, s: &EndpointSlice) {
        let Some(k) = key(&s.metadata) else { return };
        if self.unlink(&k) {
            self.bump();
        }
    }

    /// Replaces every Service (a watch's initial list or relist).
    pub fn replace_services(&mut self, all: &[Service]) {
        self.services.clear();
        self.namespaces.clear();
        for s in all {
            self.apply_service(s);
        }
        self.bump();
    }

    /// Replaces every EndpointSlice (a watch's initial list or relist).
    pub fn replace_slices(&mut self, all: &[EndpointSlice]) {
        self.slices.clear();
        self.by_service.clear();
        for s in all {
            self.apply_slice(s);
        }
        self.bump();
    }

    fn unlink(&mut self, k: &(String, String)) -> bool {
        let Some(old) = self.slices.remove(k) else { return false };
        let sk = (k.0.clone(), old.service);
        if let Some(set) = self.by_service.get_mut(&sk) {
            set.remove(&k.1);
            if set.is_empty() {
                self.by_service.remove(&sk);
            }
        }
        true
    }

    fn bump(&mut self) {
        self.serial = self.serial.wrapping_add(1);
    }

    /// The SOA serial: changes whenever the index does.
    pub(crate) fn serial(&self) -> u32 {
        self.serial
    }

    pub(crate) fn service(&self, ns: &str, name: &str) -> Option<&Svc> {
        self.services.get(&(ns.to_owned(), name.to_owned()))
    }

    pub(crate) fn namespace_exists(&self, ns: &str) -> bool {
        self.namespaces.contains_key(ns)
    }

    /// The ready endpoints of a service with the ports of the slice they came from, deduplicated by IP.
    pub(crate) fn endpoints(&self, ns: &str, service: &str) -> Vec<(&Endpoint, &[Port])> {
        let mut seen = BTreeSet::new();
        let Some(names) = self.by_service.get(&(ns.to_owned(), service.to_owned())) else { return Vec::new() };
        names
            .iter()
            .filter_map(|n| self.slices.get(&(ns.to_owned(), n.clone())))
            .flat_map(|s| s.endpoints.iter().map(move |e| (e, s.ports.as_slice())))
            .filter(|(e, _)| seen.insert(e.ip))
            .collect()
    }

    /// Names pointing at `ip`: services with it as a cluster IP, then ready endpoints of headless services
    /// (as `label.service.ns`). A scan: PTR queries are rare and the index stays simple.
    pub(crate) fn reverse(&self, ip: IpAddr) -> Vec<String> {
        let mut out: Vec<String> = self
            .services
            .iter()
            .filter(|(_, s)| matches!(&s.kind, SvcKind::ClusterIp(ips) if ips.contains(&ip)))
            .map(|((ns, name), _)| format!("{name}.{ns}"))
            .collect();
        for ((ns, _), s) in &self.slices {
            let headless = matches!(self.service(ns, &s.service), Some(Svc { kind: SvcKind::Headless, .. }));
            if headless {
                out.extend(
                    s.endpoints.iter().filter(|e| e.ip == ip).map(|e| format!("{}.{}.{ns}", e.label(), s.service)),
                );
            }
        }
        out.sort();
        out.dedup();
        out
    }
}
