//! The description of one served resource, built-in or custom: names, scope, subresources and storage prefix.

use std::sync::Arc;

use rkube_apimachinery::catalogue::ResourceInfo;

/// One served resource (owned, so custom resources can be added at run time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group; empty for core.
    pub group: String,
    /// Version served.
    pub version: String,
    /// Plural name.
    pub resource: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Verbs.
    pub verbs: Vec<String>,
    /// Short names.
    pub short_names: Vec<String>,
    /// Categories.
    pub categories: Vec<String>,
    /// Subresources.
    pub subresources: Vec<String>,
    /// Key segment under the store prefix; empty for resources that are never stored.
    pub storage: String,
    /// For custom resources: the CRD version's `additionalPrinterColumns` (`None` for built-ins).
    pub printer_columns: Option<serde_json::Value>,
    /// For custom resources with a scale subresource: (specReplicasPath, statusReplicasPath, labelSelectorPath).
    pub scale_paths: Option<(String, String, Option<String>)>,
}

impl ResourceDef {
    /// From the built-in catalogue.
    pub fn builtin(r: &ResourceInfo) -> Arc<ResourceDef> {
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        Arc::new(ResourceDef {
            group: r.group.to_owned(),
            version: r.version.to_owned(),
            resource: r.resource.to_owned(),
            singular: r.singular.to_owned(),
            kind: r.kind.to_owned(),
            namespaced: r.namespaced,
            verbs: strings(r.verbs),
            short_names: strings(r.short_names),
            categories: strings(r.categories),
            subresources: strings(r.subresources),
            storage: r.storage.to_owned(),
            printer_columns: None,
            scale_paths: None,
        })
    }

    /// A built-in resource by group and plural name (v1 of the group); panics only for a name not in the catalogue,
    /// which is a programming error caught by the tests.
    pub fn builtin_named(group: &str, resource: &str) -> Arc<ResourceDef> {
        match rkube_apimachinery::catalogue::BUILTIN.iter().find(|r| r.group == group && r.resource == resource) {
            Some(r) => ResourceDef::builtin(r),
            None => panic!("{resource}.{group} is not in the built-in catalogue"),
        }
    }

    /// `group/version` or `version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Whether the resource has a `status` subresource (then the main resource ignores status changes).
    pub fn has_status(&self) -> bool {
        self.subresources.iter().any(|s| s == "status")
    }

    /// Whether objects are kept in the store (false for the create-only review resources).
    pub fn is_stored_resource(&self) -> bool {
        !self.storage.is_empty()
    }

    /// Whether the verb is served.
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}
