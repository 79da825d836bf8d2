//! The API objects that route pods' DNS to their own node: the `kube-dns` Service in `kube-system` (no
//! selector, `internalTrafficPolicy: Local`, at the agent's first `--cluster-dns` address) and one EndpointSlice
//! per node (`kube-dns-<node>`) holding that node's address. The EndpointSlice controller only touches slices
//! labelled with its own `managed-by` value, so ours are left alone.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Api;
use kube::api::{DeleteParams, PostParams};

/// Namespace of the DNS Service.
pub(super) const NAMESPACE: &str = "kube-system";
/// Name of the DNS Service (the name every distribution uses).
pub(super) const SERVICE: &str = "kube-dns";
/// Our `endpointslice.kubernetes.io/managed-by` value.
pub(super) const MANAGED_BY: &str = "rkube-agent.rkube.io";
/// The port CoreDNS serves its metrics on.
pub(super) const METRICS_PORT: u16 = 9153;

/// What went wrong talking to the API about the DNS objects.
pub(super) type ApiResult<T> = std::result::Result<T, String>;

fn ports() -> [(&'static str, u16, &'static str); 3] {
    [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", METRICS_PORT, "TCP")]
}

/// The `kube-dns` Service at `cluster_ip`.
pub(super) fn service(cluster_ip: IpAddr) -> Service {
    let labels = BTreeMap::from([
        ("k8s-app".to_owned(), "kube-dns".to_owned()),
        ("kubernetes.io/cluster-service".to_owned(), "true".to_owned()),
        ("kubernetes.io/name".to_owned(), "CoreDNS".to_owned()),
    ]);
    Service {
        metadata: ObjectMeta {
            name: Some(SERVICE.into()),
            namespace: Some(NAMESPACE.into()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some(cluster_ip.to_string()),
            internal_traffic_policy: Some("Local".into()),
            ports: Some(
                ports()
                    .iter()
                    .map(|(name, port, proto)| ServicePort {
                        name: Some((*name).into()),
                        port: i32::from(*port),
                        protocol: Some((*proto).into()),
                        target_port: Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i32::from(
                            *port,
                        ))),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The node's slice name.
pub(super) fn slice_name(node: &str) -> String {
    format!("{SERVICE}-{node}")
}

/// The node's slice: its address, ready, on `node`, owned by the Service `owner` (collected with it).
pub(super) fn slice(node: &str, ip: IpAddr, owner: &Service) -> EndpointSlice {
    let labels = BTreeMap::from([
        ("kubernetes.io/service-name".to_owned(), SERVICE.to_owned()),
        ("endpointslice.kubernetes.io/managed-by".to_owned(), MANAGED_BY.to_owned()),
    ]);
    let owner_ref = owner.metadata.uid.clone().map(|uid| OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: SERVICE.into(),
        uid,
        ..OwnerReference::default()
    });
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(slice_name(node)),
            namespace: Some(NAMESPACE.into()),
            labels: Some(labels),
            owner_references: owner_ref.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        address_type: if ip.is_ipv4() { "IPv4" } else { "IPv6" }.into(),
        endpoints: vec![Endpoint {
            addresses: vec![ip.to_string()],
            conditions: Some(EndpointConditions { ready: Some(true), serving: Some(true), terminating: Some(false) }),
            node_name: Some(node.into()),
            ..Endpoint::default()
        }],
        ports: Some(
            ports()
                .iter()
                .map(|(name, port, proto)| EndpointPort {
                    name: Some((*name).into()),
                    port: Some(i32::from(*port)),
                    protocol: Some((*proto).into()),
                    ..EndpointPort::default()
                })
                .collect(),
        ),
    }
}

/// Makes sure the `kube-dns` Service exists (creating it if absent; another node may win the race) and returns
/// it. One at another address is kept, with a warning: pods' resolv.conf names `cluster_ip`.
pub(super) async fn ensure_service(client: &kube::Client, cluster_ip: IpAddr) -> ApiResult<Service> {
    let api: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let existing = api.get_opt(SERVICE).await.map_err(|e| format!("reading service {NAMESPACE}/{SERVICE}: {e}"))?;
    let svc = match existing {
        Some(s) => s,
        None => match api.create(&PostParams::default(), &service(cluster_ip)).await {
            Ok(s) => {
                tracing::info!(clusterIP = %cluster_ip, "created service {NAMESPACE}/{SERVICE}");
                s
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                api.get(SERVICE).await.map_err(|e| format!("reading service {NAMESPACE}/{SERVICE}: {e}"))?
            }
            Err(e) => {
                return Err(format!(
                    "creating service {NAMESPACE}/{SERVICE} at {cluster_ip} (the first --cluster-dns address; it must \
                     be a free address of the service range): {e}"
                ));
            }
        },
    };
    let have = svc.spec.as_ref().and_then(|s| s.cluster_ip.clone()).unwrap_or_default();
    if have != cluster_ip.to_string() {
        tracing::warn!(
            clusterIP = %have, cluster_dns = %cluster_ip,
            "service {NAMESPACE}/{SERVICE} exists at another address than --cluster-dns: pods will not reach the DNS"
        );
    }
    Ok(svc)
}

/// Whether `have` already says what `want` says (so no write is needed).
fn same(have: &EndpointSlice, want: &EndpointSlice) -> bool {
    let labels_ok = want
        .metadata
        .labels
        .iter()
        .flatten()
        .all(|(k, v)| have.metadata.labels.as_ref().and_then(|l| l.get(k)) == Some(v));
    labels_ok
        && have.address_type == want.address_type
        && have.endpoints == want.endpoints
        && have.ports == want.ports
        && have.metadata.owner_references == want.metadata.owner_references
}

/// Creates or corrects this node's slice; writes only when it is missing or differs.
pub(super) async fn ensure_slice(client: &kube::Client, want: &EndpointSlice) -> ApiResult<()> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    let name = want.metadata.name.clone().unwrap_or_default();
    let what = || format!("endpointslice {NAMESPACE}/{name}");
    match api.get_opt(&name).await.map_err(|e| format!("reading {}: {e}", what()))? {
        None => {
            api.create(&PostParams::default(), want).await.map_err(|e| format!("creating {}: {e}", what()))?;
            tracing::info!("created {}", what());
        }
        Some(have) if same(&have, want) => {}
        Some(have) => {
            let mut next = want.clone();
            next.metadata.resource_version = have.metadata.resource_version;
            api.replace(&name, &PostParams::default(), &next).await.map_err(|e| format!("updating {}: {e}", what()))?;
            tracing::info!("corrected {}", what());
        }
    }
    Ok(())
}

/// Deletes this node's slice (the agent stops: its DNS no longer answers).
pub(super) async fn delete_slice(client: &kube::Client, node: &str) {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    match api.delete(&slice_name(node), &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => tracing::warn!(error = %e, "deleting endpointslice {NAMESPACE}/{}", slice_name(node)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_and_slice_route_dns_to_the_node() {
        let mut svc = service("10.254.0.2".parse().unwrap());
        let spec = svc.spec.clone().unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.254.0.2"));
        assert_eq!(spec.internal_traffic_policy.as_deref(), Some("Local"));
        assert!(spec.selector.is_none());
        let ports: Vec<_> = spec.ports.unwrap().iter().map(|p| (p.name.clone().unwrap(), p.port)).collect();
        assert_eq!(ports, vec![("dns".into(), 53), ("dns-tcp".into(), 53), ("metrics".into(), 9153)]);
        svc.metadata.uid = Some("u1".into());
        let sl = slice("node-a", "192.168.7.2".parse().unwrap(), &svc);
        assert_eq!(sl.metadata.name.as_deref(), Some("kube-dns-node-a"));
        assert_eq!(sl.address_type, "IPv4");
        assert_eq!(sl.endpoints[0].node_name.as_deref(), Some("node-a"));
        assert_eq!(sl.endpoints[0].addresses, vec!["192.168.7.2".to_string()]);
        let labels = sl.metadata.labels.clone().unwrap();
        assert_eq!(labels["kubernetes.io/service-name"], "kube-dns");
        assert_ne!(labels["endpointslice.kubernetes.io/managed-by"], "endpointslice-controller.k8s.io");
        assert_eq!(sl.metadata.owner_references.as_ref().unwrap()[0].uid, "u1");
        let mut have = sl.clone();
        have.metadata.labels.as_mut().unwrap().insert("extra".into(), "x".into());
        assert!(same(&have, &sl));
        have.endpoints[0].addresses = vec!["192.168.7.3".into()];
        assert!(!same(&have, &sl));
    }
}
