//! Mirroring: a user's Endpoints become one slice per address type and port set, ready flags and labels
//! copied, invalid addresses counted, and an unchanged slice is left alone.

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints};

use crate::mirroring::reconcile::{CONTROLLER_NAME, desired, plan};

fn user_endpoints() -> Endpoints {
    let addr = |ip: &str| EndpointAddress { ip: ip.into(), ..EndpointAddress::default() };
    let mut ep = Endpoints::default();
    ep.metadata.name = Some("ext".into());
    ep.metadata.namespace = Some("ns".into());
    ep.metadata.uid = Some("ep-uid".into());
    ep.metadata.labels = Some([("team".to_owned(), "a".to_owned())].into());
    ep.metadata.annotations = Some(
        [
            ("note".to_owned(), "x".to_owned()),
            ("endpoints.kubernetes.io/last-change-trigger-time".to_owned(), "t".to_owned()),
        ]
        .into(),
    );
    ep.subsets = Some(vec![EndpointSubset {
        addresses: Some(vec![addr("192.0.2.1"), addr("2001:db8::1"), addr("not-an-ip")]),
        not_ready_addresses: Some(vec![addr("192.0.2.2")]),
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: 80,
            protocol: Some("TCP".into()),
            ..EndpointPort::default()
        }]),
    }]);
    ep
}

#[test]
fn endpoints_are_mirrored_per_address_type_with_labels_and_annotations() {
    let ep = user_endpoints();
    let m = desired(&ep);
    assert_eq!((m.invalid, m.skipped), (1, 1));
    let p = plan(&ep, m, &[]);
    assert_eq!(p.create.len(), 2);
    let v4 = p.create.iter().find(|s| s.address_type == "IPv4").expect("an IPv4 slice");
    assert_eq!(v4.endpoints.len(), 2);
    let ready: Vec<(String, bool)> = v4
        .endpoints
        .iter()
        .map(|e| (e.addresses[0].clone(), e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false)))
        .collect();
    assert!(ready.contains(&("192.0.2.1".to_owned(), true)) && ready.contains(&("192.0.2.2".to_owned(), false)));
    let labels = v4.metadata.labels.as_ref().expect("labels");
    assert_eq!(labels.get("endpointslice.kubernetes.io/managed-by").map(String::as_str), Some(CONTROLLER_NAME));
    assert_eq!(labels.get("kubernetes.io/service-name").map(String::as_str), Some("ext"));
    assert_eq!(labels.get("team").map(String::as_str), Some("a"));
    let annotations = v4.metadata.annotations.as_ref().expect("annotations");
    assert_eq!(annotations.len(), 1);
    assert_eq!(v4.metadata.owner_references.as_ref().expect("owner")[0].kind, "Endpoints");
    assert_eq!(v4.ports.as_ref().expect("ports")[0].port, Some(80));

    // Already mirrored: nothing to do; changed: the slice is updated in place.
    let mut existing = p.create.clone();
    for (i, s) in existing.iter_mut().enumerate() {
        s.metadata.name = Some(format!("ext-{i}"));
    }
    assert!(plan(&ep, desired(&ep), &existing).create.is_empty());
    let again = plan(&ep, desired(&ep), &existing);
    assert!(again.update.is_empty() && again.delete.is_empty());
    let mut changed = ep.clone();
    changed.subsets.as_mut().expect("subsets")[0].addresses = None;
    let p = plan(&changed, desired(&changed), &existing);
    assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 1), "{p:?}");
}
