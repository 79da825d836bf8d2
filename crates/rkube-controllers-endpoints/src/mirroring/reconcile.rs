//! EndpointSlice mirroring as a pure plan (upstream's mirroring reconciler): the addresses of a
//! user-written Endpoints object, grouped by address type and ports, become one slice per group (up to 1000
//! addresses per subset); the slice copies the Endpoints' labels and annotations.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::model::TRIGGER_TIME_ANNOTATION;
use crate::slices::desired::{EndpointKey, PortsKey, endpoint_changed, endpoint_key, ports_key};
use crate::slices::naming::{MANAGED_BY_LABEL, SERVICE_NAME_LABEL, prefix};
use crate::slices::reconcile::Plan;

/// The mirroring controller's `managed-by` value.
pub(crate) const CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
/// Most addresses mirrored per Endpoints subset (upstream's `--mirroring-max-endpoints-per-subset`).
pub(crate) const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

type GroupKey = (&'static str, PortsKey);

/// What mirroring an Endpoints object wants, and what it had to leave out.
#[derive(Default)]
pub(crate) struct Mirror {
    groups: BTreeMap<GroupKey, (Vec<EndpointPort>, BTreeMap<EndpointKey, Endpoint>)>,
    /// Addresses that are not IPs.
    pub(crate) invalid: usize,
    /// Addresses left out, invalid ones included.
    pub(crate) skipped: usize,
}

fn address_to_endpoint(a: &EndpointAddress, ready: bool) -> Option<(&'static str, Endpoint)> {
    let ip: IpAddr = a.ip.parse().ok()?;
    let ep = Endpoint {
        addresses: vec![ip.to_string()],
        conditions: Some(EndpointConditions { ready: Some(ready), ..EndpointConditions::default() }),
        target_ref: a.target_ref.clone(),
        node_name: a.node_name.clone(),
        hostname: a.hostname.clone().filter(|h| !h.is_empty()),
        ..Endpoint::default()
    };
    Some((if ip.is_ipv6() { "IPv6" } else { "IPv4" }, ep))
}

/// The slices' content for `ep`.
pub(crate) fn desired(ep: &Endpoints) -> Mirror {
    let mut m = Mirror::default();
    for ss in ep.subsets.iter().flatten() {
        let ports: Vec<EndpointPort> = ss
            .ports
            .iter()
            .flatten()
            .map(|p| EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(p.port),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let key = ports_key(&ports);
        let addrs = ss.addresses.iter().flatten().map(|a| (a, true));
        let addrs: Vec<(&EndpointAddress, bool)> =
            addrs.chain(ss.not_ready_addresses.iter().flatten().map(|a| (a, false))).collect();
        let mut added = 0;
        for (a, ready) in &addrs {
            if added >= MAX_ENDPOINTS_PER_SUBSET {
                break;
            }
            match address_to_endpoint(a, *ready) {
                Some((t, e)) => {
                    let g = m.groups.entry((t, key.clone())).or_insert_with(|| (ports.clone(), BTreeMap::new()));
                    g.1.insert(endpoint_key(&e), e);
                    added += 1;
                }
                None => m.invalid += 1,
            }
        }
        m.skipped += addrs.len() - added;
    }
    m
}

fn mirrored_annotations(ep: &Endpoints) -> BTreeMap<String, String> {
    let mut a = ep.metadata.annotations.clone().unwrap_or_default();
    a.remove(TRIGGER_TIME_ANNOTATION);
    a.remove(LAST_APPLIED);
    a
}

fn new_slice(ep: &Endpoints, ports: Vec<EndpointPort>, address_type: &str, name: Option<String>) -> EndpointSlice {
    let mut labels = ep.metadata.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), ep.metadata.name.clone().unwrap_or_default());
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "Endpoints".into(),
        name: ep.metadata.name.clone().unwrap_or_default(),
        uid: ep.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let annotations = mirrored_annotations(ep);
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: name.is_none().then(|| prefix(ep.metadata.name.as_deref().unwrap_or(""))),
            name,
            namespace: ep.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        address_type: address_type.into(),
        endpoints: Vec::new(),
        ports: Some(ports),
    }
}

/// Whether `slice` already holds exactly `want` with the Endpoints' labels and annotations.
fn up_to_date(ep: &Endpoints, slice: &EndpointSlice, want: &BTreeMap<EndpointKey, Endpoint>) -> bool {
    let mut labels = slice.metadata.labels.clone().unwrap_or_default();
    labels.remove(SERVICE_NAME_LABEL);
    labels.remove(MANAGED_BY_LABEL);
    if labels != ep.metadata.labels.clone().unwrap_or_default()
        || slice.metadata.annotations.clone().unwrap_or_default() != mirrored_annotations(ep)
        || slice.endpoints.len() != want.len()
    {
        return false;
    }
    slice.endpoints.iter().all(|e| want.get(&endpoint_key(e)).is_some_and(|w| !endpoint_changed(w, e)))
}

/// Plans the mirrored slices of `ep` given the existing ones.
pub(crate) fn plan(ep: &Endpoints, mirror: Mirror, existing: &[EndpointSlice]) -> Plan {
    let mut out = Plan::default();
    let mut by_key: BTreeMap<GroupKey, Vec<&EndpointSlice>> = BTreeMap::new();
    for s in existing {
        let t: &'static str = if s.address_type == "IPv6" { "IPv6" } else { "IPv4" };
        by_key.entry((t, ports_key(s.ports.as_deref().unwrap_or(&[])))).or_default().push(s);
    }
    for (key, (ports, want)) in mirror.groups {
        let slices = by_key.remove(&key).unwrap_or_default();
        let mut slices = slices.into_iter();
        let first = slices.next();
        out.delete.extend(slices.cloned());
        if let Some(f) = first
            && up_to_date(ep, f, &want)
        {
            continue;
        }
        let mut s = new_slice(ep, ports, key.0, first.and_then(|f| f.metadata.name.clone()));
        if let Some(f) = first {
            s.metadata.resource_version = f.metadata.resource_version.clone();
        }
        s.endpoints = want.into_values().take(MAX_ENDPOINTS_PER_SUBSET).collect();
        if s.metadata.name.is_some() { out.update.push(s) } else { out.create.push(s) }
    }
    out.delete.extend(by_key.into_values().flatten().cloned());
    // Recycle slices about to be deleted instead of creating new ones.
    let mut i = 0;
    while i < out.delete.len() && !out.create.is_empty() {
        if let Some(pos) = out.create.iter().rposition(|c| c.address_type == out.delete[i].address_type) {
            let doomed = out.delete.remove(i);
            let mut fresh = out.create.remove(pos);
            fresh.metadata.name = doomed.metadata.name;
            fresh.metadata.resource_version = doomed.metadata.resource_version;
            out.update.push(fresh);
        } else {
            i += 1;
        }
    }
    out
}
