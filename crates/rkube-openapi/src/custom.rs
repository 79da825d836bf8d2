//! Custom resources (CRDs) in the documents: one served version, read from a CRD, with its definitions.
//!
//! Paths come from the same builder as the built-ins' (`ops.rs`).

use serde_json::{Map, Value, json};

use crate::defs::{self, V2_REF};
use crate::error::{Error, Result};
use crate::gvk::{Gvk, reverse_group};
use crate::model::Model;
use crate::ops::ResourceDesc;
use crate::types::OBJECT_META;

/// Verbs of every custom resource.
const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// One served version of a custom resource.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomResource {
    /// API group (`stable.example.com`).
    pub group: String,
    /// Version (`v1`).
    pub version: String,
    /// Kind (`CronTab`).
    pub kind: String,
    /// Kind of its lists (`CronTabList`).
    pub list_kind: String,
    /// Plural name in URLs (`crontabs`).
    pub plural: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// The version's `openAPIV3Schema`; `None` keeps every field.
    pub schema: Option<Value>,
    /// Whether it has the `status` subresource.
    pub status: bool,
    /// Whether it has the `scale` subresource.
    pub scale: bool,
}

impl CustomResource {
    /// A custom resource without subresources, whose lists are `<kind>List`.
    pub fn new(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool, schema: Value) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            list_kind: format!("{kind}List"),
            plural: plural.to_owned(),
            namespaced,
            schema: Some(schema),
            status: false,
            scale: false,
        }
    }

    /// The served versions of an `apiextensions.k8s.io/v1` CustomResourceDefinition.
    pub fn from_crd(crd: &Value) -> Result<Vec<Self>> {
        let spec = crd.get("spec").ok_or_else(|| Error::InvalidCrd("no spec".into()))?;
        let text = |v: &Value, field: &str| -> Result<String> {
            v.get(field)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| Error::InvalidCrd(format!("no {field}")))
        };
        let group = text(spec, "group")?;
        let names = spec.get("names").ok_or_else(|| Error::InvalidCrd("no spec.names".into()))?;
        let kind = text(names, "kind")?;
        let plural = text(names, "plural")?;
        let list_kind = text(names, "listKind").unwrap_or_else(|_| format!("{kind}List"));
        let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
        let versions =
            spec.get("versions").and_then(Value::as_array).ok_or_else(|| Error::InvalidCrd("no versions".into()))?;
        let mut out = Vec::new();
        for v in versions {
            if v.get("served").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let subresources = v.get("subresources");
            out.push(Self {
                group: group.clone(),
                version: text(v, "name")?,
                kind: kind.clone(),
                list_kind: list_kind.clone(),
                plural: plural.clone(),
                namespaced,
                schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                status: subresources.and_then(|s| s.get("status")).is_some(),
                scale: subresources.and_then(|s| s.get("scale")).is_some(),
            });
        }
        Ok(out)
    }

    /// Group, version and kind.
    pub(crate) fn gvk(&self) -> Gvk {
        Gvk::new(&self.group, &self.version, &self.kind)
    }

    /// Upstream's definition name: the group reversed, then version and kind (`com.example.stable.v1.CronTab`).
    pub(crate) fn definition_name(&self, kind: &str) -> String {
        format!("{}.{}.{kind}", reverse_group(&self.group), self.version)
    }

    /// The definition (Swagger 2.0 references): the user's schema with `apiVersion`, `kind` and a typed
    /// `metadata`, as upstream publishes it.
    pub(crate) fn definition(&self) -> Result<Value> {
        let mut schema = match &self.schema {
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                return Err(Error::InvalidSchema {
                    group: self.group.clone(),
                    version: self.version.clone(),
                    kind: self.kind.clone(),
                });
            }
            // No schema: every field is kept.
            None => Map::from_iter([("x-kubernetes-preserve-unknown-fields".to_owned(), json!(true))]),
        };
        schema.entry("type").or_insert_with(|| json!("object"));
        let props = schema.entry("properties").or_insert_with(|| json!({}));
        if let Some(props) = props.as_object_mut() {
            props.insert(
                "apiVersion".into(),
                json!({"description": "APIVersion defines the versioned schema of this representation of an object.", "type": "string"}),
            );
            props.insert(
                "kind".into(),
                json!({"description": "Kind is a string value representing the REST resource this object represents.", "type": "string"}),
            );
            props.insert(
                "metadata".into(),
                json!({"$ref": format!("{V2_REF}{OBJECT_META}"), "description": "Standard object's metadata."}),
            );
        }
        defs::mark_kind(&mut schema, &[self.gvk()]);
        Ok(Value::Object(schema))
    }
}

impl Model {
    /// Adds a custom resource's definitions and paths.
    pub(crate) fn add_custom(&mut self, cr: &CustomResource) -> Result<()> {
        let gvk = cr.gvk();
        let name = cr.definition_name(&cr.kind);
        let list_name = cr.definition_name(&cr.list_kind);
        let list_gvk = Gvk::new(&cr.group, &cr.version, &cr.list_kind);
        self.defs.schemas.insert(name.clone(), cr.definition()?);
        self.defs.schemas.insert(list_name.clone(), defs::list_schema(&list_gvk, &cr.kind, &name));
        self.defs.kinds.insert(gvk.clone(), name.clone());
        self.defs.kinds.insert(list_gvk, list_name.clone());
        let mut subresources = Vec::new();
        if cr.scale {
            subresources.push("scale".to_owned());
        }
        if cr.status {
            subresources.push("status".to_owned());
        }
        self.resources.push(ResourceDesc {
            gvk,
            plural: cr.plural.clone(),
            namespaced: cr.namespaced,
            verbs: VERBS.iter().map(|v| (*v).to_owned()).collect(),
            subresources,
            definition: name,
            list_definition: Some(list_name),
            builtin: false,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_crd() {
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "spec": {
                "group": "stable.example.com",
                "scope": "Namespaced",
                "names": {"kind": "CronTab", "plural": "crontabs", "listKind": "CronTabList"},
                "versions": [
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}}},
                    {"name": "v0", "served": false, "storage": false},
                ],
            },
        });
        let crs = CustomResource::from_crd(&crd).expect("crd");
        assert_eq!(crs.len(), 1);
        assert!(crs[0].status && !crs[0].scale && crs[0].namespaced);
        assert_eq!(crs[0].definition_name("CronTab"), "com.example.stable.v1.CronTab");
        let def = crs[0].definition().expect("definition");
        assert_eq!(def["properties"]["metadata"]["$ref"], format!("{V2_REF}{OBJECT_META}"));
        assert_eq!(def["x-kubernetes-group-version-kind"][0]["kind"], "CronTab");
        assert!(CustomResource::from_crd(&json!({"spec": {}})).is_err());
    }
}
