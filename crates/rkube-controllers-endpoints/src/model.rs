//! Facts about pods and services that both the Endpoints and the EndpointSlice controllers read alike
//! (upstream's `k8s.io/endpointslice/util`): which pods are published, their addresses per IP family,
//! the port a service port resolves to on a pod, hostnames for headless services, and which services a
//! pod change concerns.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The label upstream sets on the Endpoints and EndpointSlices of headless services.
pub(crate) const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// The annotation carrying the time of the change that led to the last write.
pub(crate) const TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// The service's selector, `None` when it has none (an empty selector is dropped by the API, as upstream's
/// `omitempty` does, so it selects nothing either).
pub(crate) fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec.as_ref()?.selector.as_ref().filter(|s| !s.is_empty())
}

/// Whether `labels` match the service's selector (services without one match nothing).
pub(crate) fn selects(svc: &Service, labels: Option<&BTreeMap<String, String>>) -> bool {
    let Some(sel) = selector(svc) else { return false };
    sel.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// `ExternalName` services get no endpoints.
pub(crate) fn is_external_name(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName")
}

/// The service's cluster IP, `""` when unset.
pub(crate) fn cluster_ip(svc: &Service) -> &str {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()).unwrap_or("")
}

/// Whether the service has a cluster IP (not headless, not unset).
pub(crate) fn is_service_ip_set(svc: &Service) -> bool {
    let ip = cluster_ip(svc);
    !ip.is_empty() && ip != "None"
}

/// `spec.publishNotReadyAddresses`.
pub(crate) fn publish_not_ready(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false)
}

/// The service's ports.
pub(crate) fn ports(svc: &Service) -> &[ServicePort] {
    svc.spec.as_ref().and_then(|s| s.ports.as_deref()).unwrap_or(&[])
}

/// The pod's `Ready` condition is True.
pub(crate) fn is_ready(pod: &Pod) -> bool {
    rkube_client::pods::is_ready(pod)
}

/// The pod's IPs (`status.podIPs`, or `status.podIP` when the list is missing).
pub(crate) fn pod_ips(pod: &Pod) -> Vec<&str> {
    let Some(st) = pod.status.as_ref() else { return Vec::new() };
    match st.pod_ips.as_deref() {
        Some(ips) if !ips.is_empty() => ips.iter().map(|i| i.ip.as_str()).collect(),
        _ => st.pod_ip.as_deref().filter(|ip| !ip.is_empty()).into_iter().collect(),
    }
}

/// Whether the pod belongs in Endpoints/EndpointSlices: not terminal, with an IP, and (unless
/// `include_terminating`) not being deleted.
pub(crate) fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if rkube_client::pods::is_terminal(pod) || pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// Whether the pod's hostname is published: it has one and its subdomain names this service.
pub(crate) fn should_set_hostname(pod: &Pod, svc: &Service) -> bool {
    let spec = pod.spec.as_ref();
    let hostname = spec.and_then(|s| s.hostname.as_deref()).unwrap_or("");
    let subdomain = spec.and_then(|s| s.subdomain.as_deref()).unwrap_or("");
    !hostname.is_empty()
        && Some(subdomain) == svc.metadata.name.as_deref()
        && pod.metadata.namespace == svc.metadata.namespace
}

/// The pod's hostname.
pub(crate) fn hostname(pod: &Pod) -> Option<String> {
    pod.spec.as_ref().and_then(|s| s.hostname.clone())
}

/// The pod's node, `""` when unscheduled.
pub(crate) fn node_name(pod: &Pod) -> &str {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("")
}

fn protocol(p: Option<&str>) -> &str {
    p.unwrap_or("TCP")
}

/// The port `svc_port` reaches on `pod`: a number as it is, a name looked up among the pod's container
/// ports of the same protocol (and those of restartable init containers, i.e. sidecars).
pub(crate) fn find_port(pod: &Pod, svc_port: &ServicePort) -> Option<i32> {
    let target = svc_port.target_port.clone().unwrap_or(IntOrString::Int(svc_port.port));
    let name = match target {
        IntOrString::Int(n) => return Some(n),
        IntOrString::String(s) => match s.parse::<i32>() {
            // The API server stores numeric strings as numbers; be lenient with old objects.
            Ok(n) => return Some(n),
            Err(_) => s,
        },
    };
    let proto = protocol(svc_port.protocol.as_deref());
    let spec = pod.spec.as_ref()?;
    let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(name.as_str()) && protocol(p.protocol.as_deref()) == proto)
        .map(|p| p.container_port)
}

/// Whether `ip` is an IPv6 address.
pub(crate) fn is_ipv6(ip: &str) -> bool {
    matches!(ip.parse::<IpAddr>(), Ok(IpAddr::V6(_)))
}

/// The IP family (`IPv4`/`IPv6`) the service's Endpoints publish: its first `ipFamilies` entry, else the
/// family of its cluster IP, else (headless on an old API server) the family of the pod's IP.
pub(crate) fn endpoints_family(svc: &Service, pod: &Pod) -> &'static str {
    let v6 = if let Some(first) = svc.spec.as_ref().and_then(|s| s.ip_families.as_ref()).and_then(|f| f.first()) {
        first == "IPv6"
    } else if is_service_ip_set(svc) {
        is_ipv6(cluster_ip(svc))
    } else {
        pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).is_some_and(is_ipv6)
    };
    if v6 { "IPv6" } else { "IPv4" }
}

/// The time of the pod's last readiness change (upstream's pod trigger time).
pub(crate) fn pod_trigger_time(pod: &Pod) -> Option<k8s_openapi::jiff::Timestamp> {
    let c = pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?;
    c.last_transition_time.as_ref().map(|t| t.0)
}

/// How a pod update concerns services: `(pod_changed, labels_changed)` as upstream's `podEndpointsChanged`
/// (a hostname/subdomain change counts as a label change: it can change which service publishes it).
pub(crate) fn pod_changes(old: &Pod, new: &Pod) -> (bool, bool) {
    let spec_names = |p: &Pod| {
        let s = p.spec.as_ref();
        (s.and_then(|s| s.hostname.clone()), s.and_then(|s| s.subdomain.clone()))
    };
    let labels_changed = old.metadata.labels != new.metadata.labels || spec_names(old) != spec_names(new);
    let pod_changed = old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        || is_ready(old) != is_ready(new)
        || pod_ips(old) != pod_ips(new);
    (pod_changed, labels_changed)
}

/// The names of the services (among `services` of the pod's namespace) a pod event must resync: for an
/// update with changed labels, the union of old and new memberships when the pod itself changed too, else
/// only the services it joined or left.
pub(crate) fn services_to_update<'a>(
    services: impl Iterator<Item = &'a Service> + Clone,
    old: Option<&Pod>,
    new: Option<&Pod>,
) -> BTreeSet<String> {
    let members = |pod: &Pod| -> BTreeSet<String> {
        services
            .clone()
            .filter(|s| selects(s, pod.metadata.labels.as_ref()))
            .filter_map(|s| s.metadata.name.clone())
            .collect()
    };
    match (old, new) {
        (None, Some(p)) | (Some(p), None) => members(p),
        (Some(old), Some(new)) => {
            if old.metadata.resource_version.is_some() && old.metadata.resource_version == new.metadata.resource_version
            {
                return BTreeSet::new();
            }
            let (pod_changed, labels_changed) = pod_changes(old, new);
            match (pod_changed, labels_changed) {
                (false, false) => BTreeSet::new(),
                (_, false) => members(new),
                (true, true) => members(new).union(&members(old)).cloned().collect(),
                (false, true) => members(new).symmetric_difference(&members(old)).cloned().collect(),
            }
        }
        (None, None) => BTreeSet::new(),
    }
}
