//! Upstream's EndpointSlice reconciler as a pure plan: given a service, its desired endpoints (grouped by
//! address type and resolved ports) and its existing slices, which slices to create, update and delete for
//! the fewest writes — endpoints are updated in place, emptied slices are recycled instead of deleted and
//! re-created, new endpoints fill slices already being written before new slices are made, and a service
//! with no endpoints keeps one empty placeholder slice per address type.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};

use super::desired::{EndpointKey, PortsKey, endpoint_changed, endpoint_key, ports_key};
use super::naming::{new_slice, owned_by, same_placeholder, slice_labels};

/// Endpoints wanted for one address type and one set of ports.
#[derive(Default)]
pub(crate) struct Group {
    /// The resolved ports.
    pub(crate) ports: Vec<EndpointPort>,
    /// The endpoints, by identity.
    pub(crate) endpoints: BTreeMap<EndpointKey, Endpoint>,
}

/// Desired state: address type → ports key → endpoints.
pub(crate) type Desired = BTreeMap<&'static str, BTreeMap<PortsKey, Group>>;

/// The writes a sync makes.
#[derive(Default, Debug)]
pub(crate) struct Plan {
    pub(crate) create: Vec<EndpointSlice>,
    pub(crate) update: Vec<EndpointSlice>,
    pub(crate) delete: Vec<EndpointSlice>,
}

/// Plans the slices of `svc`. `existing` are the slices labelled as this controller's for the service.
pub(crate) fn plan(
    svc: &Service,
    mut desired: Desired,
    existing: &[EndpointSlice],
    max: usize,
    controller: &str,
) -> Plan {
    let mut out = Plan::default();
    let mut by_type: BTreeMap<&'static str, Vec<&EndpointSlice>> = BTreeMap::new();
    for s in existing {
        match desired.keys().find(|t| **t == s.address_type) {
            Some(t) => by_type.entry(*t).or_default().push(s),
            None => out.delete.push(s.clone()),
        }
    }
    for (address_type, groups) in std::mem::take(&mut desired) {
        let slices = by_type.remove(address_type).unwrap_or_default();
        let p = plan_address_type(svc, address_type, groups, &slices, max, controller);
        out.create.extend(p.create);
        out.update.extend(p.update);
        out.delete.extend(p.delete);
    }
    out
}

fn plan_address_type(
    svc: &Service,
    address_type: &'static str,
    groups: BTreeMap<PortsKey, Group>,
    existing: &[&EndpointSlice],
    max: usize,
    controller: &str,
) -> Plan {
    let mut out = Plan::default();
    let mut existing_by_ports: BTreeMap<PortsKey, Vec<&EndpointSlice>> = BTreeMap::new();
    for s in existing {
        if owned_by(s, svc) {
            existing_by_ports.entry(ports_key(s.ports.as_deref().unwrap_or(&[]))).or_default().push(s);
        } else {
            out.delete.push((*s).clone());
        }
    }
    for (key, group) in groups {
        let slices = existing_by_ports.remove(&key).unwrap_or_default();
        let p = plan_ports(svc, address_type, group, &slices, max, controller);
        out.create.extend(p.create);
        out.update.extend(p.update);
        out.delete.extend(p.delete);
    }
    // Port sets no longer wanted.
    out.delete.extend(existing_by_ports.into_values().flatten().cloned());

    // A service with nothing to publish keeps one empty slice.
    if existing.len() == out.delete.len() && out.create.is_empty() {
        let placeholder = new_slice(svc, Vec::new(), address_type, controller);
        if out.delete.len() == 1 && same_placeholder(&out.delete[0], &placeholder) {
            out.delete.clear();
        } else {
            out.create.push(placeholder);
        }
    }
    recycle(svc, &mut out);
    out
}

/// Turns creates into updates of slices that would otherwise be deleted (same address type, owned by the
/// service), as upstream's `finalize`.
fn recycle(svc: &Service, out: &mut Plan) {
    let mut i = 0;
    while i < out.delete.len() && !out.create.is_empty() {
        let doomed = &out.delete[i];
        let Some(mut fresh) = out.create.pop() else { break };
        if doomed.address_type == fresh.address_type && owned_by(doomed, svc) {
            let doomed = out.delete.remove(i);
            fresh.metadata.name = doomed.metadata.name;
            fresh.metadata.resource_version = doomed.metadata.resource_version;
            fresh.metadata.uid = doomed.metadata.uid;
            out.update.push(fresh);
        } else {
            out.create.push(fresh);
            i += 1;
        }
    }
}

fn plan_ports(
    svc: &Service,
    address_type: &str,
    mut group: Group,
    existing: &[&EndpointSlice],
    max: usize,
    controller: &str,
) -> Plan {
    let mut out = Plan::default();
    let mut updated: Vec<EndpointSlice> = Vec::new();
    let mut unchanged: Vec<EndpointSlice> = Vec::new();

    // 1. Keep wanted endpoints where they are (refreshed), drop unwanted ones.
    for s in existing {
        let mut kept = Vec::new();
        let mut changed = false;
        for ep in &s.endpoints {
            if let Some(want) = group.endpoints.remove(&endpoint_key(ep)) {
                changed |= endpoint_changed(&want, ep);
                kept.push(want);
            }
        }
        let (labels, labels_changed) = slice_labels(s.metadata.labels.as_ref(), svc, controller);
        if changed || kept.len() != s.endpoints.len() {
            if kept.is_empty() {
                out.delete.push((*s).clone());
            } else {
                let mut s = (*s).clone();
                s.endpoints = kept;
                s.metadata.labels = Some(labels);
                updated.push(s);
            }
        } else if labels_changed {
            let mut s = (*s).clone();
            s.metadata.labels = Some(labels);
            updated.push(s);
        } else {
            unchanged.push((*s).clone());
        }
    }

    let mut left: Vec<Endpoint> = std::mem::take(&mut group.endpoints).into_values().collect();
    left.reverse(); // popped from the end, in key order

    // 2. Fill the slices being written anyway, fullest first.
    if !left.is_empty() && !updated.is_empty() {
        updated.sort_by_key(|s| std::cmp::Reverse(s.endpoints.len()));
        for s in &mut updated {
            while s.endpoints.len() < max {
                let Some(ep) = left.pop() else { break };
                s.endpoints.push(ep);
            }
        }
    }

    // 3. Fit the rest in the unchanged slice closest to full, else new slices.
    while !left.is_empty() {
        let mut target = None;
        if left.len() < max {
            let mut closest = max;
            for (i, s) in unchanged.iter().enumerate() {
                let room = max as isize - (left.len() + s.endpoints.len()) as isize;
                if room >= 0 && (room as usize) < closest {
                    closest = room as usize;
                    target = Some(i);
                }
            }
        }
        let mut slice = match target {
            Some(i) => unchanged.remove(i),
            None => new_slice(svc, group.ports.clone(), address_type, controller),
        };
        while slice.endpoints.len() < max {
            let Some(ep) = left.pop() else { break };
            slice.endpoints.push(ep);
        }
        if slice.metadata.name.is_some() {
            updated.push(slice);
        } else {
            out.create.push(slice);
        }
    }
    out.update = updated;
    out
}
