//! The subsets of a selector service's Endpoints object, as upstream's Endpoints controller computes them:
//! one address per published pod (ready or not ready), ports resolved per pod, repacked into the canonical
//! layout (addresses grouped by the exact set of ports they serve), and capped at 1000 addresses.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, ObjectReference, Pod, Service};

use crate::model;

/// Most addresses an Endpoints object holds; beyond it the object is truncated and annotated.
pub(crate) const MAX_CAPACITY: usize = 1000;
/// The annotation marking truncated Endpoints, and its value.
pub(crate) const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";
pub(crate) const TRUNCATED: &str = "truncated";

/// The address of `pod` for `svc` in the service's IP family, `None` when the pod has no IP of it.
pub(crate) fn pod_address(svc: &Service, pod: &Pod) -> Option<EndpointAddress> {
    let v6 = model::endpoints_family(svc, pod) == "IPv6";
    let ip = model::pod_ips(pod).into_iter().find(|ip| model::is_ipv6(ip) == v6)?;
    Some(EndpointAddress {
        ip: ip.to_owned(),
        node_name: Some(model::node_name(pod).to_owned()),
        hostname: if model::should_set_hostname(pod, svc) { model::hostname(pod) } else { None },
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..ObjectReference::default()
        }),
    })
}

/// The repacked subsets `svc` should have given the pods its selector matches.
pub(crate) fn desired_subsets<'a>(svc: &Service, pods: impl IntoIterator<Item = &'a Pod>) -> Vec<EndpointSubset> {
    let tolerate_unready = model::publish_not_ready(svc);
    let headless_without_ports = model::ports(svc).is_empty() && model::cluster_ip(svc) == "None";
    let mut subsets = Vec::new();
    for pod in pods {
        if !model::should_pod_be_in_endpoints(pod, tolerate_unready) {
            continue;
        }
        let Some(addr) = pod_address(svc, pod) else { continue };
        let ready = tolerate_unready || model::is_ready(pod);
        let mut add = |ports: Vec<EndpointPort>| {
            let (r, nr) = if ready { (vec![addr.clone()], vec![]) } else { (vec![], vec![addr.clone()]) };
            subsets.push(EndpointSubset { addresses: Some(r), not_ready_addresses: Some(nr), ports: Some(ports) });
        };
        if model::ports(svc).is_empty() {
            if headless_without_ports {
                add(Vec::new());
            }
            continue;
        }
        for sp in model::ports(svc) {
            let Some(port) = model::find_port(pod, sp) else { continue };
            add(vec![EndpointPort {
                name: sp.name.clone().filter(|n| !n.is_empty()),
                port,
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            }]);
        }
    }
    repack(subsets)
}

/// A port as a sortable map key (the sentinel `None` stands for "no ports").
type PortKey = Option<(String, i32, String, Option<String>)>;
/// An address's identity: IP and target UID, as upstream dedups.
type AddrKey = (String, String);

fn port_key(p: &EndpointPort) -> PortKey {
    Some((p.name.clone().unwrap_or_default(), p.port, p.protocol.clone().unwrap_or_default(), p.app_protocol.clone()))
}

fn addr_key(a: &EndpointAddress) -> AddrKey {
    (a.ip.clone(), a.target_ref.as_ref().and_then(|r| r.uid.clone()).unwrap_or_default())
}

/// Upstream's `RepackSubsets`: expand to (port, address, ready) facts — not-ready wins over ready for the
/// same address and port — then group addresses by the identical set of ports they serve. The order is
/// canonical (sorted), so equal inputs give equal outputs.
pub(crate) fn repack(subsets: Vec<EndpointSubset>) -> Vec<EndpointSubset> {
    let mut all: BTreeMap<AddrKey, EndpointAddress> = BTreeMap::new();
    let mut by_port: BTreeMap<PortKey, (Option<EndpointPort>, BTreeMap<AddrKey, bool>)> = BTreeMap::new();
    for ss in subsets {
        let ports: Vec<Option<EndpointPort>> = match ss.ports.as_deref() {
            Some(p) if !p.is_empty() => p.iter().cloned().map(Some).collect(),
            _ => vec![None],
        };
        let addrs = ss.addresses.iter().flatten().map(|a| (a, true));
        let addrs = addrs.chain(ss.not_ready_addresses.iter().flatten().map(|a| (a, false)));
        for (a, ready) in addrs {
            let k = addr_key(a);
            all.entry(k.clone()).or_insert_with(|| a.clone());
            for p in &ports {
                let entry =
                    by_port.entry(p.as_ref().and_then(port_key)).or_insert_with(|| (p.clone(), BTreeMap::new()));
                let was = entry.1.entry(k.clone()).or_insert(ready);
                *was = *was && ready;
            }
        }
    }
    let mut groups: BTreeMap<Vec<(AddrKey, bool)>, Vec<EndpointPort>> = BTreeMap::new();
    for (_, (port, addrs)) in by_port {
        let key: Vec<(AddrKey, bool)> = addrs.into_iter().collect();
        let ports = groups.entry(key).or_default();
        ports.extend(port);
    }
    groups
        .into_iter()
        .map(|(addrs, ports)| {
            let pick = |want: bool| -> Option<Vec<EndpointAddress>> {
                let v: Vec<EndpointAddress> =
                    addrs.iter().filter(|(_, r)| *r == want).filter_map(|(k, _)| all.get(k).cloned()).collect();
                (!v.is_empty()).then_some(v)
            };
            EndpointSubset {
                addresses: pick(true),
                not_ready_addresses: pick(false),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect()
}

/// Upstream's `truncateEndpoints`: past [`MAX_CAPACITY`] addresses, keep ready addresses first, shared out
/// over the subsets in proportion to their size (rounded up). Returns whether anything was cut.
pub(crate) fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let ready: usize = subsets.iter().map(|s| s.addresses.as_ref().map_or(0, Vec::len)).sum();
    let not_ready: usize = subsets.iter().map(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len)).sum();
    if ready + not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = ready > MAX_CAPACITY;
    let (max, total) = if truncate_ready { (MAX_CAPACITY, ready) } else { (MAX_CAPACITY - ready, not_ready) };
    let mut can_add = max;
    for ss in subsets.iter_mut() {
        let list = if truncate_ready { &mut ss.addresses } else { &mut ss.not_ready_addresses };
        let n = list.as_ref().map_or(0, Vec::len);
        let share = (n * max).div_ceil(total.max(1)).min(can_add);
        if let Some(l) = list.as_mut() {
            l.truncate(share);
        }
        can_add -= list.as_ref().map_or(0, Vec::len);
        if truncate_ready {
            ss.not_ready_addresses = None;
        }
    }
    true
}

/// Whether two subset lists are equal, ignoring the target references' resourceVersions and the
/// difference between a missing and an empty list.
pub(crate) fn subsets_equal(a: &[EndpointSubset], b: &[EndpointSubset]) -> bool {
    fn norm(s: &[EndpointSubset]) -> Vec<EndpointSubset> {
        let addrs = |l: &Option<Vec<EndpointAddress>>| {
            let v: Vec<EndpointAddress> = l
                .iter()
                .flatten()
                .map(|a| {
                    let mut a = a.clone();
                    if let Some(r) = a.target_ref.as_mut() {
                        r.resource_version = None;
                    }
                    a
                })
                .collect();
            (!v.is_empty()).then_some(v)
        };
        s.iter()
            .map(|ss| EndpointSubset {
                addresses: addrs(&ss.addresses),
                not_ready_addresses: addrs(&ss.not_ready_addresses),
                ports: ss.ports.clone().filter(|p| !p.is_empty()),
            })
            .collect()
    }
    norm(a) == norm(b)
}
