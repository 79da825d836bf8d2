//! The per-node checks CRD validation makes on `openAPIV3Schema` beyond structurality (upstream's
//! ValidateCustomResourceDefinitionOpenAPISchema): supported keywords and types, defaults, list and map types.

use rkube_apimachinery::Cause;
use serde_json::Value;

use crate::messages::{forbidden, invalid, not_supported, required};
use crate::node::{Additional, Node};
use crate::path::{child, index, key};

const TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];
const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// What the walk knows about where it is (upstream's specStandardValidator).
#[derive(Clone)]
struct Ctx {
    /// Why defaults are forbidden here, if they are.
    defaults_forbidden: Option<String>,
    inside_meta: bool,
}

/// All checks for the tree under `root`, whose path is `p`.
pub(crate) fn check(root: &Node, p: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    if root.nullable {
        out.push(forbidden(&child(p, "nullable"), "nullable cannot be true at the root"));
    }
    walk(root, p, &Ctx { defaults_forbidden: None, inside_meta: false }, true, &mut out);
    out
}

fn strings(v: &[&str]) -> Vec<Value> {
    v.iter().map(|s| Value::from(*s)).collect()
}

fn keywords(s: &Node, p: &str, cx: &Ctx, out: &mut Vec<Cause>) {
    if !s.ty.is_empty() && !TYPES.contains(&s.ty.as_str()) {
        out.push(not_supported(&child(p, "type"), &Value::from(s.ty.as_str()), &strings(&TYPES)));
    }
    if s.default.is_some()
        && let Some(why) = &cx.defaults_forbidden
    {
        out.push(forbidden(&child(p, "default"), &format!("must not be set {why}")));
    }
    for k in &s.unsupported {
        out.push(forbidden(&child(p, k), &format!("{k} is not supported")));
    }
    if s.ty == "null" {
        out.push(forbidden(&child(p, "type"), "type cannot be set to null, use nullable as an alternative"));
    }
    if s.items_is_array {
        out.push(forbidden(&child(p, "items"), "items must be a schema object and not an array"));
    }
    if cx.inside_meta && s.embedded {
        out.push(forbidden(&child(p, "x-kubernetes-embedded-resource"), "must not be used inside of resource meta"));
    }
}

fn walk(s: &Node, p: &str, cx: &Ctx, is_root: bool, out: &mut Vec<Cause>) {
    keywords(s, p, cx, out);
    if s.unique_items {
        out.push(forbidden(
            &child(p, "uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    if let Some(a) = &s.additional {
        // Properties are for structs, additionalProperties for maps; `additionalProperties: true` alone is tolerated.
        if !s.properties.is_empty() && !matches!(a, Additional::Allows(true)) {
            out.push(forbidden(
                &child(p, "additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        if let Additional::Schema(sub) = a {
            let mut sub_cx = cx.clone();
            if cx.inside_meta {
                sub_cx.defaults_forbidden = Some("inside additionalProperties applying to object metadata".to_owned());
            }
            walk(sub, &child(p, "additionalProperties"), &sub_cx, false, out);
        }
    }
    let props = child(p, "properties");
    for (k, sub) in &s.properties {
        let mut sub_cx = cx.clone();
        if (is_root || s.embedded) && META_FIELDS.contains(&k.as_str()) {
            sub_cx.inside_meta = true;
            if is_root {
                sub_cx.defaults_forbidden = Some(format!("in top-level {k}"));
            }
        }
        walk(sub, &key(&props, k), &sub_cx, false, out);
    }
    if let Some(n) = &s.not {
        walk(n, &child(p, "not"), cx, false, out);
    }
    for (name, list) in [("allOf", &s.all_of), ("oneOf", &s.one_of), ("anyOf", &s.any_of)] {
        for (i, n) in list.iter().enumerate() {
            walk(n, &index(&child(p, name), i), cx, false, out);
        }
    }
    if let Some(items) = &s.items {
        walk(items, &child(p, "items"), cx, false, out);
    }
    if s.preserve_unknown == Some(false) {
        out.push(invalid(
            &child(p, "x-kubernetes-preserve-unknown-fields"),
            &Value::Bool(false),
            "must be true or undefined",
        ));
    }
    map_and_list_types(s, p, out);
}

fn map_and_list_types(s: &Node, p: &str, out: &mut Vec<Cause>) {
    let ty_path = child(p, "type");
    let must_be = |ty: &str, detail: &str| {
        if s.ty.is_empty() { required(&ty_path, detail) } else { invalid(&ty_path, &Value::from(ty), detail) }
    };
    if let Some(mt) = &s.map_type {
        if s.ty != "object" {
            out.push(must_be(&s.ty, "must be object if x-kubernetes-map-type is specified"));
        }
        if mt != "atomic" && mt != "granular" {
            out.push(not_supported(
                &child(p, "x-kubernetes-map-type"),
                &Value::from(mt.as_str()),
                &strings(&["atomic", "granular"]),
            ));
        }
    }
    let Some(lt) = &s.list_type else {
        if !s.list_map_keys.is_empty() {
            out.push(required(
                &child(p, "x-kubernetes-list-type"),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            ));
        }
        return;
    };
    let items_path = child(p, "items");
    if s.ty != "array" {
        out.push(must_be(&s.ty, "must be array if x-kubernetes-list-type is specified"));
    } else if lt == "set"
        && let Some(is) = &s.items
    {
        // Set elements are compared whole, so they must be atomic themselves.
        let detail = "must be atomic as item of a list with x-kubernetes-list-type=set";
        let list_type = is.list_type.as_deref().map_or(Value::Null, Value::from);
        if is.ty == "array" && is.list_type.as_deref().is_some_and(|t| t != "atomic") {
            out.push(invalid(&child(&items_path, "x-kubernetes-list-type"), &list_type, detail));
        }
        if is.ty == "object" && is.map_type.as_deref() != Some("atomic") {
            out.push(invalid(&child(&items_path, "x-kubernetes-map-type"), &list_type, detail));
        }
    }
    if !["atomic", "set", "map"].contains(&lt.as_str()) {
        out.push(not_supported(
            &child(p, "x-kubernetes-list-type"),
            &Value::from(lt.as_str()),
            &strings(&["atomic", "set", "map"]),
        ));
    }
    if !s.list_map_keys.is_empty() && lt != "map" {
        out.push(invalid(
            &child(p, "x-kubernetes-list-type"),
            &Value::from(lt.as_str()),
            "must be map if x-kubernetes-list-map-keys is non-empty",
        ));
    }
    if lt == "map" {
        list_map(s, p, out);
    }
    if (lt == "set" || lt == "map")
        && let Some(is) = &s.items
        && is.nullable
    {
        out.push(forbidden(
            &child(&items_path, "nullable"),
            &format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
        ));
    }
}

fn list_map(s: &Node, p: &str, out: &mut Vec<Cause>) {
    let keys_path = child(p, "x-kubernetes-list-map-keys");
    let items_path = child(p, "items");
    if s.list_map_keys.is_empty() {
        out.push(required(&keys_path, "must not be empty if x-kubernetes-list-type is map"));
    }
    let Some(is) = &s.items else {
        if !s.items_is_array {
            out.push(required(&items_path, "must have a schema if x-kubernetes-list-type is map"));
        }
        return;
    };
    if is.ty != "object" {
        let detail = "must be object if parent array's x-kubernetes-list-type is map";
        out.push(invalid(&child(&items_path, "type"), &Value::from(is.ty.as_str()), detail));
        return;
    }
    let keys_value = Value::from(s.list_map_keys.clone());
    let item_props = child(&items_path, "properties");
    for (i, k) in s.list_map_keys.iter().enumerate() {
        match is.properties.get(k) {
            Some(prop) => {
                if prop.ty == "array" || prop.ty == "object" {
                    let detail = "must be a scalar type if parent array's x-kubernetes-list-type is map";
                    out.push(invalid(&child(&key(&item_props, k), "type"), &Value::from(is.ty.as_str()), detail));
                }
                // A key that may be missing must be defaulted, or two items could share "no key".
                if !is.required.contains(k) && prop.default.is_none() {
                    let detail = "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property";
                    out.push(required(&child(&key(&item_props, k), "default"), detail));
                }
                if prop.nullable {
                    let detail = "this property is in x-kubernetes-list-map-keys, so it cannot be nullable";
                    out.push(forbidden(&child(&key(&item_props, k), "nullable"), detail));
                }
            }
            None => out.push(invalid(&keys_path, &keys_value, "entries must all be names of item properties")),
        }
        if s.list_map_keys[..i].contains(k) {
            out.push(invalid(&keys_path, &keys_value, "must not contain duplicate entries"));
        }
    }
}
