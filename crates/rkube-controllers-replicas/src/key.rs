//! Object keys, the unit of work of every queue here, and the helpers the change handlers share.

use std::fmt::{self, Display};

use kube::{Resource, ResourceExt};

/// A namespaced object's name, the unit of work of every queue here.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ObjKey {
    /// The namespace.
    pub(crate) ns: String,
    /// The name.
    pub(crate) name: String,
}

impl ObjKey {
    /// The key of `obj`.
    pub(crate) fn of<K: Resource>(obj: &K) -> ObjKey {
        ObjKey {
            ns: obj.meta().namespace.clone().unwrap_or_default(),
            name: obj.meta().name.clone().unwrap_or_default(),
        }
    }
}

impl Display for ObjKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ns, self.name)
    }
}

/// The name of an object for logs.
pub(crate) fn name_of<K: Resource>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Whether an update shows the same version twice (a replayed or duplicated event), which upstream's
/// update handlers ignore.
pub(crate) fn same_version<K: Resource>(old: &K, new: &K) -> bool {
    old.meta().resource_version == new.meta().resource_version
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn pod(ns: &str, name: &str, rv: Option<&str>) -> Pod {
        let mut p = Pod::default();
        p.metadata.namespace = Some(ns.into());
        p.metadata.name = Some(name.into());
        p.metadata.resource_version = rv.map(Into::into);
        p
    }

    #[test]
    fn keys_and_versions() {
        let a = pod("ns", "x", Some("1"));
        assert_eq!(ObjKey::of(&a).to_string(), "ns/x");
        assert_eq!(name_of(&a), "ns/x");
        assert!(same_version(&a, &pod("ns", "x", Some("1"))));
        assert!(!same_version(&a, &pod("ns", "x", Some("2"))));
    }
}
