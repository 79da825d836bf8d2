//! The root CA publisher: a `kube-root-ca.crt` ConfigMap in every active namespace whose `ca.crt` is the
//! cluster CA, put back when changed or deleted (upstream's `root-ca-cert-publisher`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::per_namespace::{self, Ensure};
use rkube_client::api::{is_already_exists, is_namespace_terminating, is_not_found};

/// The ConfigMap's name.
pub(crate) const NAME: &str = "kube-root-ca.crt";
/// The annotation upstream sets on it.
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
/// Upstream's description.
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

struct Publisher {
    ca_pem: String,
}

impl Publisher {
    fn data(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("ca.crt".to_owned(), self.ca_pem.clone())])
    }

    /// The ConfigMap as it should be, from what exists (`None`: create it). `None` back: it is right.
    fn desired(&self, existing: Option<&ConfigMap>) -> Option<ConfigMap> {
        let data = self.data();
        match existing {
            None => Some(ConfigMap {
                metadata: ObjectMeta {
                    name: Some(NAME.to_owned()),
                    annotations: Some(BTreeMap::from([(DESCRIPTION_ANNOTATION.to_owned(), DESCRIPTION.to_owned())])),
                    ..ObjectMeta::default()
                },
                data: Some(data),
                ..ConfigMap::default()
            }),
            Some(cm) => {
                let described = cm
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
                    .is_some_and(|d| !d.is_empty());
                if cm.data.as_ref() == Some(&data) && cm.binary_data.is_none() && described {
                    return None;
                }
                let mut fixed = cm.clone();
                fixed.data = Some(data);
                fixed.binary_data = None;
                fixed
                    .metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(DESCRIPTION_ANNOTATION.to_owned(), DESCRIPTION.to_owned());
                Some(fixed)
            }
        }
    }
}

impl Ensure for Publisher {
    async fn ensure(&self, client: &Client, namespace: &str) -> Result<()> {
        let api = Api::<ConfigMap>::namespaced(client.clone(), namespace);
        let existing =
            api.get_opt(NAME).await.map_err(|e| Error::api(format!("reading configmap {namespace}/{NAME}"), e))?;
        let Some(wanted) = self.desired(existing.as_ref()) else { return Ok(()) };
        let result = match existing {
            None => api.create(&PostParams::default(), &wanted).await.map(|_| ()),
            // The replace carries the resourceVersion read: a concurrent change is a 409, retried.
            Some(_) => api.replace(NAME, &PostParams::default(), &wanted).await.map(|_| ()),
        };
        match result {
            Ok(()) => {
                tracing::info!(%namespace, "published {NAME}");
                Ok(())
            }
            Err(e) if is_already_exists(&e) || is_not_found(&e) || is_namespace_terminating(&e) => Ok(()),
            Err(e) => Err(Error::api(format!("writing configmap {namespace}/{NAME}"), e)),
        }
    }
}

/// Runs until `stop` is set, publishing `ca_pem`.
pub(crate) async fn run(client: Client, ca_pem: String, stop: watch::Receiver<bool>) -> Result<()> {
    per_namespace::run::<ConfigMap, _>("root-ca-cert-publisher", client, NAME, Publisher { ca_pem }, stop).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_repairs_and_leaves_alone() {
        let p = Publisher { ca_pem: "PEM".into() };
        let created = p.desired(None).expect("create");
        assert_eq!(created.data.as_ref().and_then(|d| d.get("ca.crt")).map(String::as_str), Some("PEM"));
        assert!(p.desired(Some(&created)).is_none(), "a correct configmap is left alone");
        let mut tampered = created.clone();
        tampered.data =
            Some(BTreeMap::from([("ca.crt".to_owned(), "OTHER".to_owned()), ("x".to_owned(), "y".to_owned())]));
        tampered.metadata.resource_version = Some("7".into());
        let fixed = p.desired(Some(&tampered)).expect("repair");
        assert_eq!(fixed.data, created.data);
        assert_eq!(fixed.metadata.resource_version.as_deref(), Some("7"), "the update is a compare-and-swap");
    }
}
