//! The schema definitions of the built-in kinds, generated from k8s-openapi and shaped like upstream's.
//!
//! Definitions are kept in Swagger 2.0 form (`$ref: "#/definitions/<name>"`); `v3.rs` converts them.
//! Shaping means: the kind's `x-kubernetes-group-version-kind`, a `<Kind>List` definition per listable
//! kind, upstream's forms of `IntOrString`, `Quantity` and the apiextensions `JSON*` types, and the list
//! and patch markers of `patch_meta`.

use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::gvk::Gvk;
use crate::{patch_meta, types};

/// Prefix of references between Swagger 2.0 definitions.
pub(crate) const V2_REF: &str = "#/definitions/";

/// Definition names whose k8s-openapi schema differs in form from upstream's.
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
/// `Quantity`: a string on the wire (upstream's v2 says `string`, v3 `string` or `number`).
pub(crate) const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
/// apiextensions types that hold any JSON value; upstream gives them no type.
const ANY_JSON: &[&str] = &[
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
];

/// One kind to generate: its group, version and kind, and whether it has a `<Kind>List`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    /// The kind.
    pub(crate) gvk: Gvk,
    /// Whether to add a list definition.
    pub(crate) listable: bool,
}

/// Definitions in Swagger 2.0 form and the definition name of each kind.
#[derive(Debug, Clone, Default)]
pub(crate) struct Definitions {
    /// Schemas by definition name.
    pub(crate) schemas: BTreeMap<String, Value>,
    /// Definition name by kind (kinds and their lists).
    pub(crate) kinds: BTreeMap<Gvk, String>,
}

impl Definitions {
    /// The schema of a kind.
    pub(crate) fn kind_schema(&self, gvk: &Gvk) -> Option<&Value> {
        self.kinds.get(gvk).and_then(|name| self.schemas.get(name))
    }
}

/// Generates the definitions of the wanted kinds (kinds without a k8s-openapi type are skipped; a test
/// checks that every catalogue kind has one) and of the meta types operations use.
pub(crate) fn build(wanted: &[Wanted]) -> Definitions {
    // No transforms: the schemas are reshaped here, differently for v2 and v3.
    let mut generator = SchemaSettings::draft07()
        .with(|s| {
            s.transforms.clear();
            s.meta_schema = None;
        })
        .into_generator();
    let mut kinds = BTreeMap::new();
    let mut lists = Vec::new();
    for w in wanted {
        let Some(t) = types::kind_type(&w.gvk.group, &w.gvk.version, &w.gvk.kind) else { continue };
        let reference = (t.schema)(&mut generator);
        let Some(name) = reference.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(V2_REF)) else {
            continue;
        };
        kinds.insert(w.gvk.clone(), name.to_owned());
        if w.listable {
            lists.push((w.gvk.clone(), name.to_owned()));
        }
    }
    for meta in types::META {
        meta(&mut generator);
    }
    let mut schemas: BTreeMap<String, Value> = generator.take_definitions(false).into_iter().collect();
    normalize_special(&mut schemas);
    for (gvk, name) in &kinds {
        if let Some(def) = schemas.get_mut(name).and_then(Value::as_object_mut) {
            mark_kind(def, std::slice::from_ref(gvk));
        }
    }
    for (gvk, name) in lists {
        let list_name = format!("{name}List");
        let list_gvk = Gvk::new(&gvk.group, &gvk.version, &format!("{}List", gvk.kind));
        schemas.insert(list_name.clone(), list_schema(&list_gvk, &gvk.kind, &name));
        kinds.insert(list_gvk, list_name);
    }
    patch_meta::apply(&mut schemas);
    Definitions { schemas, kinds }
}

/// Sets a kind's `x-kubernetes-group-version-kind` and drops `metadata` from `required`: k8s-openapi
/// requires it because its Rust field is not optional, upstream's schema does not.
pub(crate) fn mark_kind(def: &mut Map<String, Value>, gvks: &[Gvk]) {
    def.insert("x-kubernetes-group-version-kind".into(), Value::Array(gvks.iter().map(Gvk::to_json).collect()));
    if let Some(required) = def.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|r| r != "metadata");
        if required.is_empty() {
            def.remove("required");
        }
    }
}

/// The schema of list kind `list` whose items are `kind` objects of definition `item`.
pub(crate) fn list_schema(list: &Gvk, kind: &str, item: &str) -> Value {
    json!({
        "description": format!("{} is a list of {kind} objects.", list.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object.",
                "type": "string",
            },
            "items": {
                "description": format!("List of {kind} objects."),
                "type": "array",
                "items": {"$ref": format!("{V2_REF}{item}")},
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents.",
                "type": "string",
            },
            "metadata": {
                "$ref": format!("{V2_REF}{}", types::LIST_META),
                "description": "Standard list metadata.",
            },
        },
        "x-kubernetes-group-version-kind": [list.to_json()],
    })
}

/// Replaces k8s-openapi's forms of the int-or-string and any-JSON types with upstream's v2 forms.
fn normalize_special(schemas: &mut BTreeMap<String, Value>) {
    let description = |s: &Value| s.get("description").cloned().unwrap_or(Value::Null);
    if let Some(s) = schemas.get_mut(INT_OR_STRING) {
        *s = json!({"description": description(s), "type": "string", "format": "int-or-string"});
    }
    if let Some(s) = schemas.get_mut(QUANTITY) {
        *s = json!({"description": description(s), "type": "string"});
    }
    for name in ANY_JSON {
        if let Some(s) = schemas.get_mut(*name) {
            *s = json!({"description": description(s)});
        }
    }
}

/// Sets the group-version-kinds of the meta kinds every group-version shares (`DeleteOptions`,
/// `WatchEvent`), as upstream lists them once per served group-version.
pub(crate) fn mark_shared_meta(schemas: &mut BTreeMap<String, Value>, group_versions: &[(String, String)]) {
    for (name, kind) in [(types::DELETE_OPTIONS, "DeleteOptions"), (types::WATCH_EVENT, "WatchEvent")] {
        if let Some(def) = schemas.get_mut(name).and_then(Value::as_object_mut) {
            let gvks: Vec<Gvk> = group_versions.iter().map(|(g, v)| Gvk::new(g, v, kind)).collect();
            def.insert("x-kubernetes-group-version-kind".into(), Value::Array(gvks.iter().map(Gvk::to_json).collect()));
        }
    }
    if let Some(def) = schemas.get_mut(types::STATUS).and_then(Value::as_object_mut) {
        def.insert("x-kubernetes-group-version-kind".into(), json!([Gvk::new("", "v1", "Status").to_json()]));
    }
}

/// Calls `f` with every `$ref` target name (under `prefix`) found anywhere in `schema`.
pub(crate) fn for_each_ref(schema: &Value, prefix: &str, f: &mut impl FnMut(&str)) {
    match schema {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.strip_prefix(prefix) {
                            f(name);
                        }
                    }
                    _ => for_each_ref(v, prefix, f),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| for_each_ref(v, prefix, f)),
        _ => {}
    }
}

/// The names of `roots` and of every definition they reach through references, in name order.
pub(crate) fn closure<'a>(
    schemas: &BTreeMap<String, Value>,
    roots: impl IntoIterator<Item = &'a str>,
) -> std::collections::BTreeSet<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut todo: Vec<String> = roots.into_iter().map(str::to_owned).collect();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(s) = schemas.get(&name) {
            for_each_ref(s, V2_REF, &mut |r| {
                if !seen.contains(r) {
                    todo.push(r.to_owned());
                }
            });
        }
    }
    seen
}
