//! Strategic-merge and server-side-apply markers that k8s-openapi's schemas lack, added from a table.
//!
//! The markers are `x-kubernetes-patch-strategy`, `-patch-merge-key`, `-list-type`, `-list-map-keys` and
//! `-map-type`. Upstream's OpenAPI generator reads them from Go struct tags and comment markers;
//! k8s-openapi keeps them only as merge code, not in its schemas. `table.rs` is generated from the same
//! Go sources by `tools/gen_patch_meta.py`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

mod table;

/// The markers of one field of one definition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldMeta {
    /// Definition name, e.g. `io.k8s.api.core.v1.PodSpec`.
    pub(crate) definition: &'static str,
    /// JSON field name.
    pub(crate) field: &'static str,
    /// `x-kubernetes-patch-strategy` (`merge`, `merge,retainKeys`, `retainKeys`).
    pub(crate) patch_strategy: Option<&'static str>,
    /// `x-kubernetes-patch-merge-key`.
    pub(crate) merge_key: Option<&'static str>,
    /// `x-kubernetes-list-type` (`atomic`, `set`, `map`).
    pub(crate) list_type: Option<&'static str>,
    /// `x-kubernetes-list-map-keys`.
    pub(crate) list_map_keys: &'static [&'static str],
    /// `x-kubernetes-map-type` (`atomic`, `granular`).
    pub(crate) map_type: Option<&'static str>,
}

/// Short constructor, so each generated row fits on one line.
const fn f(
    definition: &'static str,
    field: &'static str,
    patch_strategy: Option<&'static str>,
    merge_key: Option<&'static str>,
    list_type: Option<&'static str>,
    list_map_keys: &'static [&'static str],
    map_type: Option<&'static str>,
) -> FieldMeta {
    FieldMeta { definition, field, patch_strategy, merge_key, list_type, list_map_keys, map_type }
}

/// The markers of one field, if it has any.
#[cfg(test)]
pub(crate) fn field_meta(definition: &str, field: &str) -> Option<&'static FieldMeta> {
    table::FIELDS.iter().find(|m| m.definition == definition && m.field == field)
}

/// Adds the markers of the table to the definitions present in `defs` (schemas keyed by definition name).
pub(crate) fn apply(defs: &mut BTreeMap<String, Value>) {
    for meta in table::FIELDS {
        let Some(prop) = defs
            .get_mut(meta.definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(meta.field))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if let Some(s) = meta.patch_strategy {
            prop.insert("x-kubernetes-patch-strategy".into(), json!(s));
        }
        if let Some(k) = meta.merge_key {
            prop.insert("x-kubernetes-patch-merge-key".into(), json!(k));
        }
        if let Some(t) = meta.list_type {
            prop.insert("x-kubernetes-list-type".into(), json!(t));
        }
        if !meta.list_map_keys.is_empty() {
            prop.insert("x-kubernetes-list-map-keys".into(), json!(meta.list_map_keys));
        }
        if let Some(t) = meta.map_type {
            prop.insert("x-kubernetes-map-type".into(), json!(t));
        }
    }
    for name in table::ATOMIC_STRUCTS {
        if let Some(def) = defs.get_mut(*name).and_then(Value::as_object_mut) {
            def.insert("x-kubernetes-map-type".into(), json!("atomic"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_fields() {
        let c = field_meta("io.k8s.api.core.v1.PodSpec", "containers").expect("containers");
        assert_eq!((c.patch_strategy, c.merge_key, c.list_type), (Some("merge"), Some("name"), Some("map")));
        let p = field_meta("io.k8s.api.core.v1.Container", "ports").expect("ports");
        assert_eq!(p.merge_key, Some("containerPort"));
        assert_eq!(p.list_map_keys, &["containerPort", "protocol"]);
        let v = field_meta("io.k8s.api.core.v1.PodSpec", "volumes").expect("volumes");
        assert_eq!(v.patch_strategy, Some("merge,retainKeys"));
        let m = field_meta("io.k8s.api.core.v1.Container", "volumeMounts").expect("volumeMounts");
        assert_eq!(m.merge_key, Some("mountPath"));
        let o = field_meta("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "ownerReferences").expect("owners");
        assert_eq!((o.merge_key, o.list_type), (Some("uid"), Some("map")));
        let s = field_meta("io.k8s.api.core.v1.ServiceSpec", "selector").expect("selector");
        assert_eq!(s.map_type, Some("atomic"));
        assert!(table::ATOMIC_STRUCTS.contains(&"io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"));
    }
}
