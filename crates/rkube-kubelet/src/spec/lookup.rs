//! Reads, through the API, the objects a container's env refers to: its ConfigMaps and Secrets, the
//! Services of the pod's namespace (for service links) and `default/kubernetes`.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use kube::api::{Api, ListParams};

use super::{ConfigError, EnvSources};

/// The ConfigMaps and Secrets the container's `envFrom` and `valueFrom` name.
pub(crate) fn referenced_names(container: &Container) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut config_maps = BTreeSet::new();
    let mut secrets = BTreeSet::new();
    for from in container.env_from.iter().flatten() {
        config_maps.extend(from.config_map_ref.as_ref().map(|r| r.name.clone()));
        secrets.extend(from.secret_ref.as_ref().map(|r| r.name.clone()));
    }
    for var in container.env.iter().flatten() {
        let from = var.value_from.as_ref();
        config_maps.extend(from.and_then(|f| f.config_map_key_ref.as_ref()).map(|r| r.name.clone()));
        secrets.extend(from.and_then(|f| f.secret_key_ref.as_ref()).map(|r| r.name.clone()));
    }
    (config_maps, secrets)
}

/// Everything `resolve_env` needs for `container`, read from the API (a missing object is recorded as
/// such: whether that is an error depends on `optional`).
pub(crate) async fn env_sources(
    client: &kube::Client,
    pod: &Pod,
    container: &Container,
) -> Result<EnvSources, ConfigError> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let (cm_names, secret_names) = referenced_names(container);
    let mut sources = EnvSources::default();

    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    for name in cm_names {
        let cm = config_maps
            .get_opt(&name)
            .await
            .map_err(|e| ConfigError::Invalid(format!("couldn't get configMap {ns}/{name}: {e}")))?;
        sources.config_maps.insert(name, cm);
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    for name in secret_names {
        let secret = secrets
            .get_opt(&name)
            .await
            .map_err(|e| ConfigError::Invalid(format!("couldn't get secret {ns}/{name}: {e}")))?;
        sources.secrets.insert(name, secret);
    }

    let services_failed = |e: kube::Error| {
        tracing::debug!("listing services for env vars: {e}");
        ConfigError::Invalid("failed to list services when setting up env vars".to_owned())
    };
    if pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true) {
        let list = Api::<Service>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .map_err(services_failed)?;
        sources.services.extend(list.items);
    }
    if ns != "default" || sources.services.is_empty() {
        let kubernetes = Api::<Service>::namespaced(client.clone(), "default")
            .get_opt("kubernetes")
            .await
            .map_err(services_failed)?;
        sources.services.extend(kubernetes);
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_from_env_from_and_value_from() {
        let c: Container = serde_json::from_value(json!({
            "name": "a",
            "envFrom": [{"configMapRef": {"name": "cm1"}}, {"secretRef": {"name": "s1"}, "prefix": "S_"}],
            "env": [
                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm2", "key": "k"}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "k"}}},
                {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "D", "value": "x"}
            ]
        }))
        .unwrap();
        let (cms, secrets) = referenced_names(&c);
        assert_eq!(cms.into_iter().collect::<Vec<_>>(), ["cm1", "cm2"]);
        assert_eq!(secrets.into_iter().collect::<Vec<_>>(), ["s1"]);
    }
}
