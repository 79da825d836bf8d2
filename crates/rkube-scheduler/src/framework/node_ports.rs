//! NodePorts: a host port (protocol and host IP aware, `0.0.0.0` meaning every address) can be used by one
//! pod per node.

use super::Status;
use crate::cache::NodeInfo;
use crate::podinfo::{HostPort, PodInfo};

pub(crate) const NAME: &str = "NodePorts";
const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

fn conflicts(a: &HostPort, b: &HostPort) -> bool {
    a.port == b.port && a.protocol == b.protocol && (a.ip == b.ip || a.ip == "0.0.0.0" || b.ip == "0.0.0.0")
}

pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    if pod.host_ports.iter().any(|want| node.used_ports.iter().any(|used| conflicts(want, used))) {
        return Err(Status::unschedulable(NAME, REASON));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::node;
    use crate::podinfo::tests::pod;
    use serde_json::json;

    fn with_port(name: &str, port: serde_json::Value) -> std::sync::Arc<PodInfo> {
        pod(json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "ports": [port]}]}}))
    }

    #[test]
    fn host_ports_clash_by_port_protocol_and_ip() {
        let mut n = node("n", json!({}), json!({}));
        n.add_pod(with_port("a", json!({"containerPort": 1, "hostPort": 80, "hostIP": "10.0.0.1"})));
        let same = with_port("b", json!({"containerPort": 1, "hostPort": 80, "hostIP": "10.0.0.1"}));
        assert_eq!(filter(&same, &n).unwrap_err().reasons, vec![REASON]);
        let any_ip = with_port("c", json!({"containerPort": 1, "hostPort": 80}));
        assert!(filter(&any_ip, &n).is_err());
        let other_ip = with_port("d", json!({"containerPort": 1, "hostPort": 80, "hostIP": "10.0.0.2"}));
        assert!(filter(&other_ip, &n).is_ok());
        let udp = with_port("e", json!({"containerPort": 1, "hostPort": 80, "protocol": "UDP"}));
        assert!(filter(&udp, &n).is_ok());
        let other_port = with_port("f", json!({"containerPort": 1, "hostPort": 81}));
        assert!(filter(&other_port, &n).is_ok());
    }
}
