//! The bench's view of a pod: only what it measures (name, node, phase) and what a watch needs to resume
//! (resourceVersion). The bench shares the 2 cores with the server it measures; decoding every watched pod
//! event (three per pod) into a full `Pod`, managedFields included, took CPU the server then did not get.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Deserializer, Serialize};

/// A pod as the bench watches it.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub(super) struct PodLite {
    #[serde(deserialize_with = "lite_meta")]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: SpecLite,
    #[serde(default)]
    status: StatusLite,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct SpecLite {
    #[serde(rename = "nodeName", default)]
    node_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct StatusLite {
    #[serde(default)]
    phase: Option<String>,
}

/// Reads only the name, namespace and resourceVersion of `metadata`, skipping the rest (managedFields above all).
fn lite_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    #[derive(Deserialize)]
    struct Lite {
        name: Option<String>,
        namespace: Option<String>,
        #[serde(rename = "resourceVersion")]
        resource_version: Option<String>,
    }
    let l = Lite::deserialize(d)?;
    Ok(ObjectMeta {
        name: l.name,
        namespace: l.namespace,
        resource_version: l.resource_version,
        ..ObjectMeta::default()
    })
}

impl PodLite {
    pub(super) fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    pub(super) fn bound(&self) -> bool {
        self.spec.node_name.as_deref().is_some_and(|n| !n.is_empty())
    }

    pub(super) fn running(&self) -> bool {
        self.bound() && self.status.phase.as_deref() == Some("Running")
    }
}

impl kube::Resource for PodLite {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::PodLite;

    #[test]
    fn reads_what_the_bench_measures_from_a_full_pod() {
        let full = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p-1", "namespace": "sched", "resourceVersion": "42", "uid": "u",
                "managedFields": [{"manager": "m", "operation": "Update", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"nodeName": "n-3", "containers": [{"name": "c", "image": "pause"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        });
        let p: PodLite = serde_json::from_value(full).expect("decodes");
        assert_eq!((p.name(), p.bound(), p.running()), ("p-1", true, true));
        assert_eq!(kube::ResourceExt::resource_version(&p).as_deref(), Some("42"));
        let pending: PodLite = serde_json::from_value(serde_json::json!({"metadata": {"name": "q"}})).expect("decodes");
        assert_eq!((pending.name(), pending.bound(), pending.running()), ("q", false, false));
    }
}
