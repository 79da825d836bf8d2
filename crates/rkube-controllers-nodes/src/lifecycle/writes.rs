//! The node lifecycle controller's writes: taint swaps (read, edit, patch guarded by `resourceVersion`,
//! retried on conflicts, as upstream's `AddOrUpdateTaintOnNode`/`RemoveTaintOffNode`), node status through
//! the status subresource, and the labels upstream keeps in step.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rkube_client::api::{is_conflict, is_not_found};
use rkube_client::{Error, Result};
use serde_json::json;

use super::taints;

const RETRIES: usize = 5;

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Adds `add` and removes `del` on node `name`; `Ok(false)` when there was nothing to change (or the node
/// is gone).
pub(crate) async fn swap_taints(api: &Api<Node>, name: &str, add: &[Taint], del: &[Taint]) -> Result<bool> {
    for _ in 0..RETRIES {
        let node = match api.get(name).await {
            Ok(n) => n,
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(Error::api(format!("getting node {name}"), e)),
        };
        let Some(new) = taints::swap(taints::of(&node), add, del, &now()) else { return Ok(false) };
        // A merge patch replaces the whole list; the resourceVersion makes it apply only to the list we edited.
        let patch = json!({"metadata": {"resourceVersion": node.resource_version()}, "spec": {"taints": new}});
        match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => return Ok(true),
            Err(e) if is_conflict(&e) => continue,
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(Error::api(format!("updating the taints of node {name}"), e)),
        }
    }
    Err(Error::Conflict(format!("updating the taints of node {name}")))
}

/// Writes `node`'s status (its `resourceVersion` guards the write).
pub(crate) async fn write_status(api: &Api<Node>, node: &Node) -> Result<Node> {
    let name = node.name_any();
    api.replace_status(&name, &PostParams::default(), node)
        .await
        .map_err(|e| Error::api(format!("updating the status of node {name}"), e))
}

/// The beta labels upstream keeps equal to their GA label (`reconcileNodeLabels`): (primary, secondary).
const MIRRORED_LABELS: [(&str, &str); 2] =
    [("kubernetes.io/os", "beta.kubernetes.io/os"), ("kubernetes.io/arch", "beta.kubernetes.io/arch")];

/// The secondary labels to set so that they match their primary ones.
pub(crate) fn labels_to_mirror(node: &Node) -> BTreeMap<String, String> {
    let Some(labels) = node.metadata.labels.as_ref() else { return BTreeMap::new() };
    MIRRORED_LABELS
        .iter()
        .filter_map(|(primary, secondary)| {
            let value = labels.get(*primary)?;
            (labels.get(*secondary) != Some(value)).then(|| ((*secondary).to_owned(), value.clone()))
        })
        .collect()
}

/// Sets `labels` on node `name` (a merge patch: other labels stay).
pub(crate) async fn set_labels(api: &Api<Node>, name: &str, labels: &BTreeMap<String, String>) -> Result<()> {
    let patch = json!({"metadata": {"labels": labels}});
    match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::api(format!("updating the labels of node {name}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beta_os_and_arch_labels_follow_the_ga_ones() {
        let mut node = Node::default();
        assert!(labels_to_mirror(&node).is_empty());
        node.metadata.labels = Some(
            [("kubernetes.io/os", "linux"), ("kubernetes.io/arch", "amd64"), ("beta.kubernetes.io/arch", "amd64")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        );
        let want: BTreeMap<String, String> = [("beta.kubernetes.io/os".to_owned(), "linux".to_owned())].into();
        assert_eq!(labels_to_mirror(&node), want);
    }
}
