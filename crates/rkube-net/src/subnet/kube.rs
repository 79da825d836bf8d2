//! The kube subnet manager (flannel's `--kube-subnet-mgr`, as k3s runs it): the node's subnet is its
//! `spec.podCIDR` (given by the controller manager's IPAM); what peers need is published as flannel's Node
//! annotations, and peers are found by watching Nodes.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use tokio::sync::mpsc;

use super::{SubnetError, SubnetManager};
use crate::cidr::Ipv4Net;
use crate::config::NetConfig;
use crate::lease::{Lease, LeaseAttrs, LeaseEvent};

/// flannel's annotation prefix (`flannel.alpha.coreos.com/backend-type` and so on).
pub const ANNOTATION_PREFIX: &str = "flannel.alpha.coreos.com";

/// Leases from the Node API.
pub struct KubeSubnetManager {
    nodes: Api<Node>,
    node_name: String,
    config: NetConfig,
}

fn kube_err(context: impl Into<String>) -> impl FnOnce(kube::Error) -> SubnetError {
    let context = context.into();
    move |source| SubnetError::Kube { context, source }
}

fn ann(name: &str) -> String {
    format!("{ANNOTATION_PREFIX}/{name}")
}

/// The annotations flannel's kube manager puts on its node for `attrs`.
pub(crate) fn annotations(attrs: &LeaseAttrs) -> BTreeMap<String, String> {
    BTreeMap::from([
        (ann("backend-type"), attrs.backend_type.clone()),
        (ann("backend-data"), attrs.backend_data.to_string()),
        (ann("public-ip"), attrs.public_ip.to_string()),
        (ann("kube-subnet-manager"), "true".to_string()),
    ])
}

/// A peer's lease from its Node, when it has a podCIDR and flannel's annotations.
pub(crate) fn lease_of(node: &Node) -> Option<Lease> {
    let cidr = node.spec.as_ref()?.pod_cidr.as_deref()?;
    let subnet: Ipv4Net = cidr.parse().ok()?;
    let a = node.metadata.annotations.as_ref()?;
    let public_ip: Ipv4Addr = a.get(&ann("public-ip"))?.parse().ok()?;
    let backend_type = a.get(&ann("backend-type"))?.clone();
    let backend_data = a.get(&ann("backend-data")).and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
    Some(Lease {
        subnet,
        attrs: LeaseAttrs { public_ip, public_ipv6: None, backend_type, backend_data },
        expiration: None,
    })
}

/// Whether the node IPAM's pool is used up: every `/SubnetLen` range of Network (the IPAM controller hands out
/// all of them, the first included) is some node's podCIDR. The message names the values and the fixes.
pub(crate) fn exhausted(config: &NetConfig, held: &[Ipv4Net]) -> Option<String> {
    let bits = u32::from(config.subnet_len.saturating_sub(config.network.prefix()));
    let capacity = 1u64.checked_shl(bits).unwrap_or(u64::MAX);
    let distinct: std::collections::HashSet<&Ipv4Net> =
        held.iter().filter(|s| s.prefix() == config.subnet_len).collect();
    (distinct.len() as u64 >= capacity).then(|| {
        format!(
            "network {} is exhausted: all {capacity} /{} node ranges are assigned to nodes; widen --cluster-cidr, raise --node-cidr-mask-size, or delete nodes that are gone",
            config.network, config.subnet_len
        )
    })
}

impl KubeSubnetManager {
    /// A manager for node `node_name` with the cluster's network config (flannel's `net-conf.json`).
    pub fn new(client: kube::Client, node_name: &str, config: NetConfig) -> Self {
        Self { nodes: Api::all(client), node_name: node_name.to_string(), config }
    }
}

#[async_trait::async_trait]
impl SubnetManager for KubeSubnetManager {
    async fn network_config(&self) -> Result<NetConfig, SubnetError> {
        Ok(self.config.clone())
    }

    async fn acquire(&self, config: &NetConfig, attrs: &LeaseAttrs) -> Result<Lease, SubnetError> {
        let name = &self.node_name;
        let node = self.nodes.get(name).await.map_err(kube_err(format!("reading node {name}")))?;
        let Some(cidr) = node.spec.as_ref().and_then(|s| s.pod_cidr.clone()) else {
            // The IPAM controller leaves a node without a range when every range is taken: say so and stop,
            // rather than wait for a range that may never come.
            let all = self.nodes.list(&Default::default()).await.map_err(kube_err("listing nodes"))?;
            let held: Vec<Ipv4Net> = all
                .items
                .iter()
                .filter_map(|n| n.spec.as_ref()?.pod_cidr.as_deref()?.parse().ok())
                .filter(|s: &Ipv4Net| config.network.contains_net(s))
                .collect();
            if let Some(e) = exhausted(config, &held) {
                return Err(SubnetError::Other(format!("node {name} has no spec.podCIDR: {e}")));
            }
            return Err(SubnetError::NotYet(format!(
                "node {name} has no spec.podCIDR yet; the controller manager's node IPAM assigns it (retrying)"
            )));
        };
        let subnet: Ipv4Net = cidr.parse().map_err(|e| SubnetError::Other(format!("node {name} spec.podCIDR {e}")))?;
        if !config.network.contains_net(&subnet) {
            return Err(SubnetError::Other(format!(
                "node {name} spec.podCIDR {subnet} is outside the pod network {}; make the cluster CIDR and Network agree",
                config.network
            )));
        }
        let want = annotations(attrs);
        let have = node.metadata.annotations.unwrap_or_default();
        if want.iter().any(|(k, v)| have.get(k) != Some(v)) {
            let patch = serde_json::json!({"metadata": {"annotations": want}});
            self.nodes
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(kube_err(format!("annotating node {name}")))?;
        }
        Ok(Lease { subnet, attrs: attrs.clone(), expiration: None })
    }

    async fn renew(&self, lease: &Lease) -> Result<Lease, SubnetError> {
        Ok(lease.clone())
    }

    async fn watch(&self, own: &Lease, events: mpsc::Sender<LeaseEvent>) -> Result<(), SubnetError> {
        let mut by_node: HashMap<String, Lease> = HashMap::new();
        let mut listing: HashMap<String, Lease> = HashMap::new();
        let mut stream = watcher(self.nodes.clone(), watcher::Config::default()).boxed();
        while let Some(ev) = stream.next().await {
            let ev = ev.map_err(|e| SubnetError::Other(format!("watching nodes: {e}")))?;
            let mut out = Vec::new();
            match ev {
                watcher::Event::Init => listing.clear(),
                watcher::Event::InitApply(n) => {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    if let Some(l) = lease_of(&n).filter(|l| l.subnet != own.subnet && name != self.node_name) {
                        listing.insert(name, l);
                    }
                }
                watcher::Event::InitDone => {
                    by_node = std::mem::take(&mut listing);
                    out.push(LeaseEvent::Snapshot(by_node.values().cloned().collect()));
                }
                watcher::Event::Apply(n) => {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    match lease_of(&n).filter(|l| l.subnet != own.subnet && name != self.node_name) {
                        Some(l) if by_node.get(&name) != Some(&l) => {
                            if let Some(old) = by_node.insert(name, l.clone()).filter(|o| o.subnet != l.subnet) {
                                out.push(LeaseEvent::Removed(old.subnet));
                            }
                            out.push(LeaseEvent::Added(l));
                        }
                        Some(_) => {}
                        None => out.extend(by_node.remove(&name).map(|o| LeaseEvent::Removed(o.subnet))),
                    }
                }
                watcher::Event::Delete(n) => {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    out.extend(by_node.remove(&name).map(|o| LeaseEvent::Removed(o.subnet)));
                }
            }
            for e in out {
                if events.send(e).await.is_err() {
                    return Ok(());
                }
            }
        }
        Err(SubnetError::Other("the node watch ended".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhausted_pool_is_named() {
        let c = NetConfig::parse(r#"{"Network":"10.10.0.0/26","SubnetLen":28}"#).unwrap();
        let nets: Vec<Ipv4Net> =
            ["10.10.0.0/28", "10.10.0.16/28", "10.10.0.32/28"].iter().map(|s| s.parse().unwrap()).collect();
        assert!(exhausted(&c, &nets).is_none(), "one range is still free");
        let mut all = nets.clone();
        all.push("10.10.0.48/28".parse().unwrap());
        let e = exhausted(&c, &all).unwrap();
        assert!(e.contains("network 10.10.0.0/26 is exhausted: all 4 /28 node ranges"), "{e}");
        assert!(e.contains("widen --cluster-cidr"), "{e}");
        all[3] = all[0];
        assert!(exhausted(&c, &all).is_none(), "the same range twice counts once");
    }

    #[test]
    fn node_annotations_round_trip() {
        let attrs = LeaseAttrs {
            public_ip: "10.0.0.3".parse().unwrap(),
            public_ipv6: None,
            backend_type: "vxlan".into(),
            backend_data: serde_json::json!({"VNI": 1, "VtepMAC": "aa:bb:cc:dd:ee:01"}),
        };
        let a = annotations(&attrs);
        assert_eq!(a["flannel.alpha.coreos.com/backend-data"], r#"{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01"}"#);
        assert_eq!(a["flannel.alpha.coreos.com/kube-subnet-manager"], "true");
        assert_eq!(a["flannel.alpha.coreos.com/public-ip"], "10.0.0.3");
        let mut node = Node::default();
        node.metadata.annotations = Some(a);
        assert!(lease_of(&node).is_none(), "no podCIDR, no lease");
        node.spec =
            Some(k8s_openapi::api::core::v1::NodeSpec { pod_cidr: Some("172.30.3.0/24".into()), ..Default::default() });
        let l = lease_of(&node).unwrap();
        assert_eq!(l.subnet.to_string(), "172.30.3.0/24");
        assert_eq!(l.attrs, attrs);
    }
}
