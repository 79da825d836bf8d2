//! NodeName: a pod that names a node fits only there.

use super::Status;
use crate::cache::NodeInfo;
use crate::podinfo::PodInfo;

pub(crate) const NAME: &str = "NodeName";
const REASON: &str = "node(s) didn't match the requested node name";

pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    match pod.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        Some(n) if !n.is_empty() && n != node.name => Err(Status::unresolvable(NAME, REASON)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::node;
    use crate::podinfo::tests::pod;
    use serde_json::json;

    #[test]
    fn only_the_named_node_fits() {
        let p = pod(json!({"metadata": {"name": "a"}, "spec": {"nodeName": "n1", "containers": [{"name": "c"}]}}));
        assert!(filter(&p, &node("n1", json!({}), json!({}))).is_ok());
        let err = filter(&p, &node("n2", json!({}), json!({}))).unwrap_err();
        assert_eq!(err.reasons, vec![REASON]);
        assert!(filter(&pod(json!({"metadata": {"name": "b"}})), &node("n2", json!({}), json!({}))).is_ok());
    }
}
