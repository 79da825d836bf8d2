//! The metadata of EndpointSlices a controller makes for a Service: `generateName` `<service>-`, the
//! reserved labels (`kubernetes.io/service-name`, `endpointslice.kubernetes.io/managed-by`,
//! `service.kubernetes.io/headless`) on top of the service's own labels, and the controller reference.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::model::{self, HEADLESS_LABEL};

/// `kubernetes.io/service-name`.
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// `endpointslice.kubernetes.io/managed-by`.
pub(crate) const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The EndpointSlice controller's `managed-by` value.
pub(crate) const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";

fn is_reserved(key: &str) -> bool {
    key == SERVICE_NAME_LABEL || key == MANAGED_BY_LABEL || key == HEADLESS_LABEL
}

/// The `generateName` of a service's slices: `<name>-` unless that is too long for a name.
pub(crate) fn prefix(name: &str) -> String {
    if name.len() < 253 { format!("{name}-") } else { name.to_owned() }
}

/// The labels a slice of `svc` should carry, and whether the non-reserved ones differ from `current`'s.
pub(crate) fn slice_labels(
    current: Option<&BTreeMap<String, String>>,
    svc: &Service,
    controller: &str,
) -> (BTreeMap<String, String>, bool) {
    let cur: BTreeMap<&String, &String> =
        current.iter().flat_map(|l| l.iter()).filter(|(k, _)| !is_reserved(k)).collect();
    let mut labels: BTreeMap<String, String> = svc
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| !is_reserved(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let changed = cur.len() != labels.len() || labels.iter().any(|(k, v)| cur.get(k) != Some(&v));
    if !model::is_service_ip_set(svc) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(SERVICE_NAME_LABEL.into(), svc.metadata.name.clone().unwrap_or_default());
    labels.insert(MANAGED_BY_LABEL.into(), controller.into());
    (labels, changed)
}

/// Whether `slice` is controlled by the service `svc` (by uid).
pub(crate) fn owned_by(slice: &EndpointSlice, svc: &Service) -> bool {
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| Some(&o.uid) == svc.metadata.uid.as_ref() && o.kind == "Service" && o.api_version == "v1")
}

/// A new, empty slice of `svc` for `ports` and `address_type`.
pub(crate) fn new_slice(
    svc: &Service,
    ports: Vec<EndpointPort>,
    address_type: &str,
    controller: &str,
) -> EndpointSlice {
    let (labels, _) = slice_labels(None, svc, controller);
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(prefix(svc.metadata.name.as_deref().unwrap_or(""))),
            namespace: svc.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![rkube_client::pods::controller_ref(svc)]),
            ..ObjectMeta::default()
        },
        address_type: address_type.into(),
        endpoints: Vec::new(),
        ports: Some(ports),
    }
}

/// Whether `existing` is the same empty placeholder as `placeholder` (same namespace, labels, owners,
/// address type, no endpoints or ports): nothing to redo.
pub(crate) fn same_placeholder(existing: &EndpointSlice, placeholder: &EndpointSlice) -> bool {
    existing.metadata.namespace == placeholder.metadata.namespace
        && existing.metadata.labels.clone().unwrap_or_default()
            == placeholder.metadata.labels.clone().unwrap_or_default()
        && existing.metadata.owner_references == placeholder.metadata.owner_references
        && existing.address_type == placeholder.address_type
        && existing.endpoints.is_empty()
        && existing.ports.as_ref().is_none_or(Vec::is_empty)
}
