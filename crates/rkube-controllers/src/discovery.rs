//! API discovery for the controllers that act on every kind (namespace deletion, garbage collection):
//! which resources the server serves, with which verbs, and the kind → resource mapping that owner
//! references need.

use kube::Client;
use kube::core::gvk::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};

use crate::error::{Error, Result};

/// One served resource.
#[derive(Clone, Debug)]
pub(crate) struct Resource {
    /// Group, version, kind and plural, as kube-rs addresses it.
    pub(crate) ar: ApiResource,
    /// Whether objects live in namespaces.
    pub(crate) namespaced: bool,
    /// The verbs discovery lists.
    verbs: Vec<String>,
}

impl Resource {
    fn new(ar: ApiResource, caps: &ApiCapabilities) -> Resource {
        Resource { ar, namespaced: caps.scope == Scope::Namespaced, verbs: caps.operations.clone() }
    }

    /// Whether discovery lists `verb` for the resource.
    pub(crate) fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// `resource.group` as upstream prints it (`configmaps.` for the core group).
    pub(crate) fn display(&self) -> String {
        format!("{}.{}", self.ar.plural, self.ar.group)
    }
}

/// A snapshot of discovery.
pub(crate) struct Resources {
    discovery: Discovery,
}

impl Resources {
    /// Runs discovery against the server: aggregated discovery (two requests, `/api` and `/apis`), or
    /// where the server lacks it, the classic walk over every group version.
    pub(crate) async fn discover(client: &Client) -> Result<Resources> {
        let discovery = match Discovery::new(client.clone()).run_aggregated().await {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(error = %e, "aggregated discovery failed; walking the group versions");
                Discovery::new(client.clone()).run().await.map_err(Error::Discovery)?
            }
        };
        Ok(Resources { discovery })
    }

    /// Every group's resources at the group's preferred version (upstream's "server preferred resources").
    pub(crate) fn preferred(&self) -> Vec<Resource> {
        self.discovery
            .groups()
            .flat_map(|g| g.recommended_resources())
            .map(|(ar, caps)| Resource::new(ar, &caps))
            .collect()
    }

    /// The resource serving `kind` of `api_version`: that exact version, else the group's preferred one
    /// (owner references may name a version the server no longer prefers; objects are found by name and uid).
    pub(crate) fn resolve(&self, api_version: &str, kind: &str) -> Option<Resource> {
        let (group, version) = split_api_version(api_version);
        let gvk = GroupVersionKind::gvk(group, version, kind);
        if let Some((ar, caps)) = self.discovery.resolve_gvk(&gvk) {
            return Some(Resource::new(ar, &caps));
        }
        let (ar, caps) = self.discovery.get(group)?.recommended_kind(kind)?;
        Some(Resource::new(ar, &caps))
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_api_versions() {
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
        assert_eq!(split_api_version("v1"), ("", "v1"));
    }
}
