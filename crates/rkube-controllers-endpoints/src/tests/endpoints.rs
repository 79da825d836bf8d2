//! Endpoints subsets: ready and not-ready addresses, terminating and terminal pods, named ports resolved
//! per pod, headless hostnames, publishNotReadyAddresses, repacking and truncation; pod-change routing.

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{named, pod, service, terminating};
use crate::model;
use crate::subsets::{self, desired_subsets, repack, truncate};

fn ips(l: &Option<Vec<EndpointAddress>>) -> Vec<String> {
    l.iter().flatten().map(|a| a.ip.clone()).collect()
}

fn port_numbers(s: &EndpointSubset) -> Vec<i32> {
    s.ports.iter().flatten().map(|p| p.port).collect()
}

#[test]
fn ready_and_not_ready_pods_split_and_terminating_ones_leave() {
    let svc = service(&[("http", 80, IntOrString::Int(8080))]);
    let mut done = pod("done", "10.1.0.4", true, 8080);
    if let Some(st) = done.status.as_mut() {
        st.phase = Some("Succeeded".into());
    }
    let mut no_ip = pod("noip", "", false, 8080);
    no_ip.status.as_mut().map(|s| (s.pod_ip = None, s.pod_ips = None));
    let pods = [
        pod("a", "10.1.0.2", true, 8080),
        pod("b", "10.1.0.1", false, 8080),
        terminating(pod("c", "10.1.0.3", true, 8080)),
        done,
        no_ip,
    ];
    let got = desired_subsets(&svc, &pods);
    assert_eq!(got.len(), 1);
    assert_eq!(ips(&got[0].addresses), ["10.1.0.2"]);
    assert_eq!(ips(&got[0].not_ready_addresses), ["10.1.0.1"]);
    let port = &got[0].ports.as_ref().unwrap()[0];
    assert_eq!((port.name.as_deref(), port.port, port.protocol.as_deref()), (Some("http"), 8080, Some("TCP")));
    let a = &got[0].addresses.as_ref().unwrap()[0];
    assert_eq!(a.node_name.as_deref(), Some("node-1"));
    let r = a.target_ref.as_ref().unwrap();
    assert_eq!((r.kind.as_deref(), r.name.as_deref(), r.uid.as_deref()), (Some("Pod"), Some("a"), Some("uid-a")));
    assert!(r.resource_version.is_none());
    assert!(a.hostname.is_none());
}

#[test]
fn publish_not_ready_makes_everything_ready_including_terminating() {
    let mut svc = service(&[("http", 80, IntOrString::Int(8080))]);
    svc.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
    let pods = [pod("a", "10.1.0.1", false, 8080), terminating(pod("b", "10.1.0.2", true, 8080))];
    let got = desired_subsets(&svc, &pods);
    assert_eq!(ips(&got[0].addresses), ["10.1.0.1", "10.1.0.2"]);
    assert!(got[0].not_ready_addresses.is_none());
}

#[test]
fn named_target_ports_resolve_per_pod_into_separate_subsets() {
    let svc = service(&[("http", 80, named("http"))]);
    let mut other_proto = pod("udp", "10.1.0.9", true, 9999);
    other_proto.spec.as_mut().unwrap().containers[0].ports.as_mut().unwrap()[0].protocol = Some("UDP".into());
    let pods = [pod("a", "10.1.0.1", true, 8080), pod("b", "10.1.0.2", true, 9090), other_proto];
    let got = desired_subsets(&svc, &pods);
    assert_eq!(got.len(), 2, "{got:?}");
    let mut by_port: Vec<(Vec<i32>, Vec<String>)> = got.iter().map(|s| (port_numbers(s), ips(&s.addresses))).collect();
    by_port.sort();
    assert_eq!(by_port, [(vec![8080], vec!["10.1.0.1".to_owned()]), (vec![9090], vec!["10.1.0.2".to_owned()])]);
}

#[test]
fn headless_services_publish_hostnames_and_may_have_no_ports() {
    let mut svc = service(&[]);
    svc.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    let mut named_pod = pod("a", "10.1.0.1", true, 80);
    let spec = named_pod.spec.as_mut().unwrap();
    spec.hostname = Some("host-a".into());
    spec.subdomain = Some("web".into());
    let mut elsewhere = pod("b", "10.1.0.2", true, 80);
    let spec = elsewhere.spec.as_mut().unwrap();
    spec.hostname = Some("host-b".into());
    spec.subdomain = Some("other".into());
    let got = desired_subsets(&svc, &[named_pod, elsewhere]);
    assert_eq!(got.len(), 1);
    assert!(got[0].ports.is_none());
    let addrs = got[0].addresses.as_ref().unwrap();
    assert_eq!(addrs[0].hostname.as_deref(), Some("host-a"));
    assert_eq!(addrs[1].hostname, None);
    // A service with a cluster IP and no ports publishes nothing.
    let plain = service(&[]);
    assert!(desired_subsets(&plain, &[pod("a", "10.1.0.1", true, 80)]).is_empty());
}

#[test]
fn repack_groups_addresses_by_port_sets_and_not_ready_wins() {
    let addr = |ip: &str| EndpointAddress { ip: ip.into(), ..EndpointAddress::default() };
    let port = |p: i32| EndpointPort { port: p, protocol: Some("TCP".into()), ..EndpointPort::default() };
    let ss = |ready: &[&str], not_ready: &[&str], p: i32| EndpointSubset {
        addresses: Some(ready.iter().map(|i| addr(i)).collect()),
        not_ready_addresses: Some(not_ready.iter().map(|i| addr(i)).collect()),
        ports: Some(vec![port(p)]),
    };
    let got = repack(vec![
        ss(&["1.1.1.1"], &[], 80),
        ss(&["1.1.1.1"], &[], 443),
        ss(&["2.2.2.2"], &[], 80),
        ss(&[], &["2.2.2.2"], 80),
    ]);
    // 1.1.1.1 serves 80 and 443, 2.2.2.2 (not ready: it was listed both ways) only 80.
    assert_eq!(got.len(), 2, "{got:?}");
    let only443 = got.iter().find(|s| port_numbers(s) == [443]).expect("a subset for 443");
    assert_eq!(ips(&only443.addresses), ["1.1.1.1"]);
    assert!(only443.not_ready_addresses.is_none());
    let with80 = got.iter().find(|s| port_numbers(s) == [80]).expect("a subset for 80");
    assert_eq!(ips(&with80.addresses), ["1.1.1.1"]);
    assert_eq!(ips(&with80.not_ready_addresses), ["2.2.2.2"]);
    // Addresses serving the same ports share one subset listing every port.
    let same = repack(vec![ss(&["1.1.1.1"], &[], 80), ss(&["1.1.1.1"], &[], 443)]);
    assert_eq!(same.len(), 1);
    assert_eq!(port_numbers(&same[0]), [80, 443]);
    assert!(subsets::subsets_equal(&got, &repack(got.clone())));
}

#[test]
fn truncation_keeps_ready_addresses_first() {
    let addr = |i: usize| EndpointAddress {
        ip: format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
        ..EndpointAddress::default()
    };
    let mut subsets = vec![EndpointSubset {
        addresses: Some((0..900).map(addr).collect()),
        not_ready_addresses: Some((900..1200).map(addr).collect()),
        ports: None,
    }];
    assert!(truncate(&mut subsets));
    assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 900);
    assert_eq!(subsets[0].not_ready_addresses.as_ref().unwrap().len(), 100);
    let mut small = vec![EndpointSubset { addresses: Some((0..10).map(addr).collect()), ..EndpointSubset::default() }];
    assert!(!truncate(&mut small));
}

#[test]
fn pod_changes_route_to_old_and_new_services() {
    let web = service(&[]);
    let mut api = service(&[]);
    api.metadata.name = Some("api".into());
    api.spec.as_mut().unwrap().selector = Some([("app".to_owned(), "api".to_owned())].into());
    let services = [web, api];
    let old = pod("a", "10.1.0.1", true, 80);
    let mut relabelled = old.clone();
    relabelled.metadata.resource_version = Some("2".into());
    relabelled.metadata.labels = Some([("app".to_owned(), "api".to_owned())].into());
    let got = model::services_to_update(services.iter(), Some(&old), Some(&relabelled));
    assert_eq!(got.into_iter().collect::<Vec<_>>(), ["api", "web"]);
    let mut unready = old.clone();
    unready.metadata.resource_version = Some("3".into());
    unready.status.as_mut().unwrap().conditions = None;
    assert_eq!(model::services_to_update(services.iter(), Some(&old), Some(&unready)).len(), 1);
    let mut annotated = old.clone();
    annotated.metadata.resource_version = Some("4".into());
    annotated.metadata.annotations = Some([("k".to_owned(), "v".to_owned())].into());
    assert!(model::services_to_update(services.iter(), Some(&old), Some(&annotated)).is_empty());
    assert_eq!(model::services_to_update(services.iter(), None, Some(&old)).len(), 1);
}
