//! The proxy's one model: Services and EndpointSlices reduced to service ports and their endpoints
//! (upstream's `ServicePortMap`/`EndpointsMap`), the endpoint categorisation both backends share, and the
//! per-service fingerprints that tell a sync which services changed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label an EndpointSlice carries naming its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Upstream's default (and maximum) ClientIP affinity timeout.
const DEFAULT_AFFINITY_SECONDS: u32 = 10800;

/// A transport protocol of a service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// Lower-case name, as iptables, nft and the chain hashes spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }

    fn parse(s: Option<&str>) -> Option<Protocol> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

/// A service port's identity: `namespace/name:portName` plus protocol (upstream's `ServicePortName`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePortName {
    /// Namespace of the Service.
    pub namespace: String,
    /// Name of the Service.
    pub name: String,
    /// The port's name (may be empty for a single-port Service).
    pub port: String,
    /// The port's protocol.
    pub protocol: Protocol,
}

impl fmt::Display for ServicePortName {
    /// `ns/name:port`, or `ns/name` for an unnamed port, as upstream prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)?;
        if !self.port.is_empty() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// What the proxy needs of one service port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServicePort {
    /// The cluster IP.
    pub cluster_ip: Ipv4Addr,
    /// The service port.
    pub port: u16,
    /// The node port, 0 when none.
    pub node_port: u16,
    /// `spec.externalIPs`.
    pub external_ips: Vec<Ipv4Addr>,
    /// `status.loadBalancer.ingress[].ip` of a LoadBalancer Service.
    pub load_balancer_ips: Vec<Ipv4Addr>,
    /// `spec.loadBalancerSourceRanges` (CIDR strings).
    pub load_balancer_source_ranges: Vec<String>,
    /// ClientIP affinity timeout in seconds, when sessionAffinity is ClientIP.
    pub affinity_seconds: Option<u32>,
    /// `internalTrafficPolicy: Local`.
    pub internal_local: bool,
    /// `externalTrafficPolicy: Local` (only meaningful when externally accessible).
    pub external_local: bool,
}

impl ServicePort {
    /// Reachable from outside: NodePort, externalIPs or LoadBalancer IPs.
    pub fn externally_accessible(&self) -> bool {
        self.node_port != 0 || !self.external_ips.is_empty() || !self.load_balancer_ips.is_empty()
    }

    /// Upstream's `UsesClusterEndpoints`: external Local still needs them for short-circuiting.
    pub fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_local || self.externally_accessible()
    }

    /// Upstream's `UsesLocalEndpoints`.
    pub fn uses_local_endpoints(&self) -> bool {
        self.internal_local || (self.external_local && self.externally_accessible())
    }
}

/// One endpoint of a service port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// Pod (or external) address.
    pub ip: Ipv4Addr,
    /// Target port.
    pub port: u16,
    /// `conditions.ready` (unset counts as ready).
    pub ready: bool,
    /// `conditions.serving` (unset follows ready).
    pub serving: bool,
    /// `conditions.terminating`.
    pub terminating: bool,
    /// On this node (`nodeName` equals the proxy's hostname).
    pub local: bool,
}

impl fmt::Display for Endpoint {
    /// `ip:port`, the string upstream hashes into endpoint chain names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ip, self.port)
    }
}

/// The full snapshot both backends render: service ports and their endpoints, sorted for stable output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyState {
    /// Every proxied service port (headless and ExternalName Services are not proxied).
    pub services: BTreeMap<ServicePortName, ServicePort>,
    /// Endpoints per service port (sorted, deduplicated).
    pub endpoints: BTreeMap<ServicePortName, Vec<Endpoint>>,
}

/// The endpoints a service port uses, after upstream's `CategorizeEndpoints`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Categorized {
    /// Endpoints for Cluster policy (empty when the port does not use them).
    pub cluster: Vec<Endpoint>,
    /// Endpoints for Local policy (empty when the port does not use them).
    pub local: Vec<Endpoint>,
    /// Union of both: the endpoints that need their own chain.
    pub reachable: Vec<Endpoint>,
    /// The service has usable endpoints anywhere.
    pub has_endpoints: bool,
}

/// Ready endpoints, or when none is ready the serving-and-terminating ones (upstream falls back so that
/// connections drain during rollouts instead of being refused).
fn usable<'a>(eps: impl Iterator<Item = &'a Endpoint> + Clone) -> Vec<Endpoint> {
    let ready: Vec<Endpoint> = eps.clone().filter(|e| e.ready).cloned().collect();
    if !ready.is_empty() {
        return ready;
    }
    eps.filter(|e| e.serving && e.terminating).cloned().collect()
}

impl ProxyState {
    /// Builds the snapshot from the API objects; `hostname` marks local endpoints.
    pub fn build<'a>(
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
        hostname: &str,
    ) -> ProxyState {
        let mut state = ProxyState::default();
        for svc in services {
            add_service(&mut state, svc);
        }
        let mut eps: BTreeMap<ServicePortName, BTreeSet<Endpoint>> = BTreeMap::new();
        for slice in slices {
            add_slice(&mut eps, slice, hostname);
        }
        for (name, set) in eps {
            if state.services.contains_key(&name) {
                state.endpoints.insert(name, set.into_iter().collect());
            }
        }
        state
    }

    /// The endpoints of `name` (empty when none).
    pub fn endpoints_of(&self, name: &ServicePortName) -> &[Endpoint] {
        self.endpoints.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Upstream's `CategorizeEndpoints` (topology hints ignored).
    pub fn categorize(&self, name: &ServicePortName, svc: &ServicePort) -> Categorized {
        let all = self.endpoints_of(name);
        let cluster = if svc.uses_cluster_endpoints() { usable(all.iter()) } else { Vec::new() };
        let local = if svc.uses_local_endpoints() { usable(all.iter().filter(|e| e.local)) } else { Vec::new() };
        let mut reachable: BTreeSet<Endpoint> = cluster.iter().cloned().collect();
        reachable.extend(local.iter().cloned());
        let has_endpoints = !cluster.is_empty() || !local.is_empty() || !usable(all.iter()).is_empty();
        Categorized { cluster, local, reachable: reachable.into_iter().collect(), has_endpoints }
    }

    /// A fingerprint per service port over everything its rules depend on; a sync compares them to find
    /// the service ports that changed (upstream's change trackers).
    pub fn fingerprints(&self) -> BTreeMap<ServicePortName, u64> {
        self.services
            .iter()
            .map(|(name, svc)| {
                let mut h = DefaultHasher::new();
                svc.hash(&mut h);
                self.endpoints_of(name).hash(&mut h);
                (name.clone(), h.finish())
            })
            .collect()
    }

    /// Service ports whose fingerprint differs between `old` and `self`, plus added and removed ones.
    pub fn changed_since(&self, old: &BTreeMap<ServicePortName, u64>) -> BTreeSet<ServicePortName> {
        let new = self.fingerprints();
        let mut changed: BTreeSet<ServicePortName> =
            new.iter().filter(|(k, v)| old.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect();
        changed.extend(old.keys().filter(|k| !new.contains_key(*k)).cloned());
        changed
    }
}

fn add_service(state: &mut ProxyState, svc: &Service) {
    let (Some(ns), Some(name), Some(spec)) = (&svc.metadata.namespace, &svc.metadata.name, &svc.spec) else {
        return;
    };
    // Headless ("None") and ExternalName Services get no virtual IP, hence no rules.
    let Some(cluster_ip) = spec.cluster_ip.as_deref().and_then(|ip| ip.parse::<Ipv4Addr>().ok()) else {
        return;
    };
    let parse_ips = |v: Option<&Vec<String>>| -> Vec<Ipv4Addr> {
        v.map(|v| v.iter().filter_map(|s| s.parse().ok()).collect()).unwrap_or_default()
    };
    let is_lb = spec.type_.as_deref() == Some("LoadBalancer");
    let lb_ips: Vec<Ipv4Addr> = if is_lb {
        svc.status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .map(|ing| ing.iter().filter_map(|i| i.ip.as_deref()?.parse().ok()).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(DEFAULT_AFFINITY_SECONDS)
    });
    let externally_reachable_type = matches!(spec.type_.as_deref(), Some("NodePort") | Some("LoadBalancer"));
    for p in spec.ports.iter().flatten() {
        let Some(protocol) = Protocol::parse(p.protocol.as_deref()) else { continue };
        let Ok(port) = u16::try_from(p.port) else { continue };
        let node_port = if externally_reachable_type { p.node_port.and_then(|n| u16::try_from(n).ok()) } else { None };
        let key = ServicePortName {
            namespace: ns.clone(),
            name: name.clone(),
            port: p.name.clone().unwrap_or_default(),
            protocol,
        };
        state.services.insert(
            key,
            ServicePort {
                cluster_ip,
                port,
                node_port: node_port.unwrap_or(0),
                external_ips: parse_ips(spec.external_ips.as_ref()),
                load_balancer_ips: lb_ips.clone(),
                load_balancer_source_ranges: if is_lb {
                    spec.load_balancer_source_ranges.clone().unwrap_or_default()
                } else {
                    Vec::new()
                },
                affinity_seconds,
                internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
                external_local: spec.external_traffic_policy.as_deref() == Some("Local"),
            },
        );
    }
}

fn add_slice(eps: &mut BTreeMap<ServicePortName, BTreeSet<Endpoint>>, slice: &EndpointSlice, hostname: &str) {
    if slice.address_type != "IPv4" {
        return;
    }
    let Some(ns) = &slice.metadata.namespace else { return };
    let Some(svc) = slice.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)) else { return };
    for p in slice.ports.iter().flatten() {
        let (Some(protocol), Some(port)) =
            (Protocol::parse(p.protocol.as_deref()), p.port.and_then(|n| u16::try_from(n).ok()))
        else {
            continue;
        };
        let key = ServicePortName {
            namespace: ns.clone(),
            name: svc.clone(),
            port: p.name.clone().unwrap_or_default(),
            protocol,
        };
        let set = eps.entry(key).or_default();
        for ep in &slice.endpoints {
            let cond = ep.conditions.as_ref();
            let ready = cond.and_then(|c| c.ready).unwrap_or(true);
            let serving = cond.and_then(|c| c.serving).unwrap_or(ready);
            let terminating = cond.and_then(|c| c.terminating).unwrap_or(false);
            let local = ep.node_name.as_deref() == Some(hostname);
            for addr in &ep.addresses {
                if let Ok(ip) = addr.parse::<Ipv4Addr>() {
                    set.insert(Endpoint { ip, port, ready, serving, terminating, local });
                }
            }
        }
    }
}
