//! Group, version and kind, and the URL and naming conventions derived from them.

use serde_json::{Value, json};

/// A group, version and kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Gvk {
    /// API group, empty for core.
    pub(crate) group: String,
    /// Version.
    pub(crate) version: String,
    /// Kind.
    pub(crate) kind: String,
}

impl Gvk {
    /// Builds one from its parts.
    pub(crate) fn new(group: &str, version: &str, kind: &str) -> Self {
        Self { group: group.to_owned(), version: version.to_owned(), kind: kind.to_owned() }
    }

    /// Splits an `apiVersion` (`v1`, `apps/v1`) and pairs it with a kind.
    pub(crate) fn from_api_version(api_version: &str, kind: &str) -> Self {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        Self::new(group, version, kind)
    }

    /// The `x-kubernetes-group-version-kind` form.
    pub(crate) fn to_json(&self) -> Value {
        json!({"group": self.group, "kind": self.kind, "version": self.version})
    }
}

/// The path of a group-version's document under `/openapi/v3/`: `api/v1` or `apis/<group>/<version>`.
pub(crate) fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// Parses a document path back into group and version.
pub(crate) fn parse_gv_path(path: &str) -> Option<(String, String)> {
    let path = path.trim_matches('/');
    if let Some(version) = path.strip_prefix("api/") {
        return (!version.is_empty() && !version.contains('/')).then(|| (String::new(), version.to_owned()));
    }
    let rest = path.strip_prefix("apis/")?;
    let (group, version) = rest.split_once('/')?;
    (!group.is_empty() && !version.is_empty() && !version.contains('/')).then(|| (group.to_owned(), version.to_owned()))
}

/// Upstream's operation-id and tag prefix of a group: `Core`, `Apps`, `RbacAuthorization`, `StableExampleCom`.
pub(crate) fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".to_owned();
    }
    group.strip_suffix(".k8s.io").unwrap_or(group).split(['.', '-']).map(capitalize).collect()
}

/// Upstream's tag of a group-version: `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
pub(crate) fn tag(group: &str, version: &str) -> String {
    let camel = group_camel(group);
    let mut chars = camel.chars();
    let lower: String = chars.next().map(|c| c.to_ascii_lowercase()).into_iter().chain(chars).collect();
    format!("{lower}_{version}")
}

/// Upper-cases the first character.
pub(crate) fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(chars).collect()
}

/// Upstream's definition-name prefix of a custom resource group: `stable.example.com` → `com.example.stable`.
pub(crate) fn reverse_group(group: &str) -> String {
    group.split('.').rev().collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(gv_path("", "v1"), "api/v1");
        assert_eq!(gv_path("apps", "v1"), "apis/apps/v1");
        assert_eq!(parse_gv_path("apis/apps/v1"), Some(("apps".into(), "v1".into())));
        assert_eq!(parse_gv_path("/api/v1"), Some((String::new(), "v1".into())));
        assert_eq!(parse_gv_path("apis/apps"), None);
        assert_eq!(group_camel("rbac.authorization.k8s.io"), "RbacAuthorization");
        assert_eq!(tag("rbac.authorization.k8s.io", "v1"), "rbacAuthorization_v1");
        assert_eq!(tag("", "v1"), "core_v1");
        assert_eq!(reverse_group("stable.example.com"), "com.example.stable");
        assert_eq!(Gvk::from_api_version("apps/v1", "Deployment"), Gvk::new("apps", "v1", "Deployment"));
    }
}
