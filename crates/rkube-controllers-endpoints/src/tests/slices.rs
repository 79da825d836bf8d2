//! EndpointSlices: endpoint conditions, zone and hostname, labels, packing at 100 per slice, and the
//! minimal-churn plan (in-place updates, recycling, the placeholder).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{named, pod, service, terminating};
use crate::slices::desired::{endpoint_key, endpoint_ports, pod_to_endpoint, ports_key};
use crate::slices::naming::CONTROLLER_NAME;
use crate::slices::reconcile::{Desired, Group, Plan, plan};

fn desired(svc: &Service, pods: &[Pod]) -> Desired {
    let mut d = Desired::new();
    let groups = d.entry("IPv4").or_default();
    for p in pods {
        let ports = endpoint_ports(svc, p);
        let g = groups.entry(ports_key(&ports)).or_insert_with(|| Group { ports: ports.clone(), ..Group::default() });
        let ep = pod_to_endpoint(p, None, svc, "IPv4");
        g.endpoints.insert(endpoint_key(&ep), ep);
    }
    d
}

/// Applies a plan the way the API server would, naming created slices.
fn apply(existing: &[EndpointSlice], p: Plan, next: &mut usize) -> Vec<EndpointSlice> {
    let mut by_name: BTreeMap<String, EndpointSlice> =
        existing.iter().map(|s| (s.metadata.name.clone().unwrap(), s.clone())).collect();
    for s in &p.delete {
        by_name.remove(s.metadata.name.as_deref().unwrap());
    }
    for s in p.update {
        by_name.insert(s.metadata.name.clone().unwrap(), s);
    }
    for mut s in p.create {
        *next += 1;
        s.metadata.name = Some(format!("web-{next}"));
        by_name.insert(s.metadata.name.clone().unwrap(), s);
    }
    by_name.into_values().collect()
}

fn pods(n: usize) -> Vec<Pod> {
    (0..n).map(|i| pod(&format!("p{i:03}"), &format!("10.1.{}.{}", i / 250, i % 250 + 1), true, 8080)).collect()
}

#[test]
fn conditions_follow_readiness_and_termination() {
    let svc = service(&[("http", 80, IntOrString::Int(8080))]);
    let cond = |p: &Pod, svc: &Service| {
        let c = pod_to_endpoint(p, None, svc, "IPv4").conditions.unwrap();
        (c.ready.unwrap(), c.serving.unwrap(), c.terminating.unwrap())
    };
    assert_eq!(cond(&pod("a", "10.1.0.1", true, 80), &svc), (true, true, false));
    assert_eq!(cond(&pod("a", "10.1.0.1", false, 80), &svc), (false, false, false));
    assert_eq!(cond(&terminating(pod("a", "10.1.0.1", true, 80)), &svc), (false, true, true));
    assert_eq!(cond(&terminating(pod("a", "10.1.0.1", false, 80)), &svc), (false, false, true));
    let mut publish = svc.clone();
    publish.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
    assert_eq!(cond(&terminating(pod("a", "10.1.0.1", false, 80)), &publish), (true, false, true));
}

#[test]
fn endpoints_carry_node_zone_target_hostname_and_resolved_ports() {
    let mut svc = service(&[("http", 80, named("http"))]);
    svc.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    let mut p = pod("a", "10.1.0.1", true, 9090);
    p.spec.as_mut().unwrap().hostname = Some("h".into());
    p.spec.as_mut().unwrap().subdomain = Some("web".into());
    let mut node = Node::default();
    node.metadata.labels = Some([("topology.kubernetes.io/zone".to_owned(), "z1".to_owned())].into());
    let ep = pod_to_endpoint(&p, Some(&node), &svc, "IPv4");
    assert_eq!(ep.addresses, ["10.1.0.1"]);
    assert_eq!(
        (ep.node_name.as_deref(), ep.zone.as_deref(), ep.hostname.as_deref()),
        (Some("node-1"), Some("z1"), Some("h"))
    );
    assert_eq!(ep.target_ref.unwrap().name.as_deref(), Some("a"));
    assert!(pod_to_endpoint(&p, None, &svc, "IPv6").addresses.is_empty());
    assert!(pod_to_endpoint(&p, Some(&node), &svc, "IPv4").hints.is_none());
    svc.spec.as_mut().unwrap().traffic_distribution = Some("PreferClose".into());
    let hints = pod_to_endpoint(&p, Some(&node), &svc, "IPv4").hints.unwrap().for_zones.unwrap();
    assert_eq!(hints[0].name, "z1");
    let ports = endpoint_ports(&svc, &p);
    assert_eq!(
        (ports[0].name.as_deref(), ports[0].port, ports[0].protocol.as_deref()),
        (Some("http"), Some(9090), Some("TCP"))
    );
}

#[test]
fn slices_hold_at_most_100_and_carry_the_reserved_labels() {
    let svc = service(&[("http", 80, IntOrString::Int(8080))]);
    let p = plan(&svc, desired(&svc, &pods(250)), &[], 100, CONTROLLER_NAME);
    assert_eq!(p.create.len(), 3);
    assert!(p.update.is_empty() && p.delete.is_empty());
    let mut sizes: Vec<usize> = p.create.iter().map(|s| s.endpoints.len()).collect();
    sizes.sort();
    assert_eq!(sizes, [50, 100, 100]);
    let s = &p.create[0];
    let labels = s.metadata.labels.as_ref().unwrap();
    assert_eq!(labels.get("kubernetes.io/service-name").map(String::as_str), Some("web"));
    assert_eq!(labels.get("endpointslice.kubernetes.io/managed-by").map(String::as_str), Some(CONTROLLER_NAME));
    assert!(!labels.contains_key("service.kubernetes.io/headless"));
    assert_eq!(s.metadata.generate_name.as_deref(), Some("web-"));
    let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str(), owner.controller),
        ("Service", "web", "svc-uid", Some(true))
    );
    assert_eq!(s.address_type, "IPv4");
}

#[test]
fn changes_update_slices_in_place_with_few_writes() {
    let svc = service(&[("http", 80, IntOrString::Int(8080))]);
    let mut next = 0;
    let mut all = pods(150);
    let slices = apply(&[], plan(&svc, desired(&svc, &all), &[], 100, CONTROLLER_NAME), &mut next);
    assert_eq!(slices.len(), 2);
    // Nothing changed: nothing to write.
    let p = plan(&svc, desired(&svc, &all), &slices, 100, CONTROLLER_NAME);
    assert!(p.create.is_empty() && p.update.is_empty() && p.delete.is_empty(), "{p:?}");
    // One pod turns unready: exactly one slice is updated.
    all[0].status.as_mut().unwrap().conditions = None;
    let p = plan(&svc, desired(&svc, &all), &slices, 100, CONTROLLER_NAME);
    assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 0));
    let slices = apply(&slices, p, &mut next);
    // One pod added: fits in the slice with room, no new slice.
    all.push(pod("zz", "10.9.9.9", true, 8080));
    let p = plan(&svc, desired(&svc, &all), &slices, 100, CONTROLLER_NAME);
    assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 0));
    let slices = apply(&slices, p, &mut next);
    assert_eq!(slices.iter().map(|s| s.endpoints.len()).sum::<usize>(), 151);
    // All pods gone: one slice is kept as the empty placeholder, the other deleted.
    let p = plan(&svc, desired(&svc, &[]), &slices, 100, CONTROLLER_NAME);
    assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 1), "{p:?}");
    let slices = apply(&slices, p, &mut next);
    assert_eq!(slices.len(), 1);
    assert!(slices[0].endpoints.is_empty());
    // And the placeholder is stable.
    let p = plan(&svc, desired(&svc, &[]), &slices, 100, CONTROLLER_NAME);
    assert!(p.create.is_empty() && p.update.is_empty() && p.delete.is_empty(), "{p:?}");
    // Pods come back: the placeholder is reused rather than deleted and re-created.
    let p = plan(&svc, desired(&svc, &all[..3]), &slices, 100, CONTROLLER_NAME);
    assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 0), "{p:?}");
    assert_eq!(p.update[0].endpoints.len(), 3);
    assert_eq!(p.update[0].metadata.name, slices[0].metadata.name);
}

#[test]
fn slices_of_another_service_incarnation_or_label_changes_are_handled() {
    let svc = service(&[("http", 80, IntOrString::Int(8080))]);
    let all = pods(3);
    let mut next = 0;
    let slices = apply(&[], plan(&svc, desired(&svc, &all), &[], 100, CONTROLLER_NAME), &mut next);
    // Service labels changed: the slice is relabelled in place.
    let mut labelled = svc.clone();
    labelled.metadata.labels = Some([("team".to_owned(), "a".to_owned())].into());
    let p = plan(&labelled, desired(&labelled, &all), &slices, 100, CONTROLLER_NAME);
    assert_eq!((p.create.len(), p.update.len()), (0, 1));
    assert_eq!(p.update[0].metadata.labels.as_ref().unwrap().get("team").map(String::as_str), Some("a"));
    // A new service of the same name: the old incarnation's slices are not reused.
    let mut reborn = svc.clone();
    reborn.metadata.uid = Some("other".into());
    let p = plan(&reborn, desired(&reborn, &all), &slices, 100, CONTROLLER_NAME);
    assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (1, 0, 1));
}

#[test]
fn dual_stack_services_get_a_slice_per_family() {
    use crate::slices::desired::address_types;
    use k8s_openapi::api::core::v1::PodIP;
    let mut svc = service(&[("http", 80, IntOrString::Int(8080))]);
    svc.spec.as_mut().unwrap().ip_families = Some(vec!["IPv4".into(), "IPv6".into()]);
    assert_eq!(address_types(&svc).into_iter().collect::<Vec<_>>(), ["IPv4", "IPv6"]);
    let mut p = pod("a", "10.1.0.1", true, 8080);
    p.status.as_mut().unwrap().pod_ips = Some(vec![PodIP { ip: "10.1.0.1".into() }, PodIP { ip: "fd00:0::1".into() }]);
    assert_eq!(pod_to_endpoint(&p, None, &svc, "IPv6").addresses, ["fd00::1"]);
    assert_eq!(pod_to_endpoint(&p, None, &svc, "IPv4").addresses, ["10.1.0.1"]);
    // Single-stack services (and old objects without families) stay single-stack; headless ones get both.
    let single = service(&[]);
    assert_eq!(address_types(&single).into_iter().collect::<Vec<_>>(), ["IPv4"]);
    let mut old_headless = service(&[]);
    let spec = old_headless.spec.as_mut().unwrap();
    spec.ip_families = None;
    spec.cluster_ip = Some("None".into());
    assert_eq!(address_types(&old_headless).len(), 2);
}
