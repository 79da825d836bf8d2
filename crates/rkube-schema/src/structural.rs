//! Structural-schema invariants (upstream's ValidateStructural): every specified node has a type, value
//! validations in allOf/anyOf/oneOf/not stay value validations, and root metadata only restricts names.

use rkube_apimachinery::Cause;
use serde_json::Value;

use crate::messages::{forbidden, invalid, required};
use crate::node::{Additional, Node};
use crate::path::{child, index, key};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

/// The structural errors of `root`, sorted by their text as upstream sorts them.
pub(crate) fn validate(root: &Node, p: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    invariants(root, Level::Root, p, &mut out);
    value_completeness(root, root, p, p, &mut out);
    out.sort_by_key(|c| format!("{}: {}", c.field, c.message));
    out
}

fn type_of(ty: &str) -> Value {
    Value::from(ty)
}

fn invariants(s: &Node, lvl: Level, p: &str, out: &mut Vec<Cause>) {
    if s.ty == "array" && s.items.is_none() {
        out.push(required(&child(p, "items"), "must be specified"));
    }
    if let Some(items) = &s.items {
        invariants(items, Level::Item, &child(p, "items"), out);
    }
    let props = child(p, "properties");
    for (k, v) in &s.properties {
        invariants(v, Level::Field, &key(&props, k), out);
    }
    if let Some(a) = &s.additional {
        if lvl == Level::Root {
            out.push(forbidden(&child(p, "additionalProperties"), "must not be used at the root"));
        }
        if let Additional::Schema(sub) = a {
            invariants(sub, Level::Field, &child(p, "additionalProperties"), out);
        }
    }

    if s.int_or_string && s.preserves_unknown() {
        let f = child(p, "x-kubernetes-preserve-unknown-fields");
        out.push(invalid(&f, &Value::Bool(true), "must be false if x-kubernetes-int-or-string is true"));
    }
    if s.int_or_string && s.embedded {
        let f = child(p, "x-kubernetes-embedded-resource");
        out.push(invalid(&f, &Value::Bool(true), "must be false if x-kubernetes-int-or-string is true"));
    }

    value_validation(s, is_int_or_string_any_of(&s.any_of), is_int_or_string_all_of(s), p, out);

    let check_metadata = lvl == Level::Root || s.embedded;
    let ty_path = child(p, "type");
    if s.embedded && s.ty != "object" {
        let detail = "must be object if x-kubernetes-embedded-resource is true";
        out.push(if s.ty.is_empty() { required(&ty_path, detail) } else { invalid(&ty_path, &type_of(&s.ty), detail) });
    } else if s.ty.is_empty() && !s.int_or_string && !s.preserves_unknown() {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        out.push(required(&ty_path, detail));
    }
    if s.embedded && s.additional.is_some() {
        out.push(forbidden(
            &child(p, "additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !s.ty.is_empty() && s.ty != "object" {
        out.push(invalid(&ty_path, &type_of(&s.ty), "must be object at the root"));
    }
    for meta in ["kind", "apiVersion"] {
        if let Some(m) = s.properties.get(meta)
            && check_metadata
            && m.ty != "string"
        {
            out.push(invalid(&child(&key(&props, meta), "type"), &type_of(&m.ty), "must be string"));
        }
    }
    if let Some(m) = s.properties.get("metadata") {
        metadata_invariants(m, check_metadata, lvl, &key(&props, "metadata"), out);
    }
    if s.embedded && !s.preserves_unknown() && s.properties.is_empty() {
        let detail =
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields";
        out.push(required(&props, detail));
    }
}

fn metadata_invariants(m: &Node, check_metadata: bool, lvl: Level, p: &str, out: &mut Vec<Cause>) {
    if check_metadata && m.ty != "object" {
        out.push(invalid(&child(p, "type"), &type_of(&m.ty), "must be object"));
    }
    if lvl == Level::Root {
        // Only `name` and `generateName` may be restricted; a type and a default (checked elsewhere) are tolerated.
        let mut rest = m.clone();
        let names = rest.properties.keys().all(|k| k == "name" || k == "generateName");
        if names && rest.properties.len() <= 2 {
            rest.properties.clear();
        }
        rest.ty.clear();
        rest.default = None;
        if rest != Node::default() {
            out.push(forbidden(
                p,
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
}

fn bare(ty: &str) -> Node {
    Node { ty: ty.to_owned(), ..Node::default() }
}

/// `anyOf: [{type: integer}, {type: string}]`, the one place int-or-string may name types in a junctor.
fn is_int_or_string_any_of(any_of: &[Node]) -> bool {
    any_of.len() == 2 && any_of[0] == bare("integer") && any_of[1] == bare("string")
}

fn is_int_or_string_all_of(s: &Node) -> bool {
    s.all_of.first().is_some_and(|first| is_int_or_string_any_of(&first.any_of))
}

/// The junctors and pattern of a node (upstream's ValueValidation part).
fn value_validation(v: &Node, skip_any_of: bool, skip_first_all_of_any_of: bool, p: &str, out: &mut Vec<Cause>) {
    if !skip_any_of {
        for (i, n) in v.any_of.iter().enumerate() {
            nested(n, false, &index(&child(p, "anyOf"), i), out);
        }
    }
    for (i, n) in v.all_of.iter().enumerate() {
        nested(n, skip_first_all_of_any_of && i == 0, &index(&child(p, "allOf"), i), out);
    }
    for (i, n) in v.one_of.iter().enumerate() {
        nested(n, false, &index(&child(p, "oneOf"), i), out);
    }
    if let Some(n) = &v.not {
        nested(n, false, &child(p, "not"), out);
    }
    if let Some(pat) = &v.pattern
        && let Err(e) = &pat.regex
    {
        let detail = format!("must be a valid regular expression, but isn't: {e}");
        out.push(invalid(&child(p, "pattern"), &Value::from(pat.source.as_str()), &detail));
    }
}

/// A schema inside allOf/anyOf/oneOf/not: it may only validate values, never specify structure.
fn nested(v: &Node, skip_any_of: bool, p: &str, out: &mut Vec<Cause>) {
    value_validation(v, skip_any_of, false, p, out);
    if let Some(items) = &v.items {
        nested(items, false, &child(p, "items"), out);
    }
    let props = child(p, "properties");
    for (k, f) in &v.properties {
        nested(f, false, &key(&props, k), out);
    }
    let structural = "must be empty to be structural";
    let undefined = "must be undefined to be structural";
    let not_true = "must be false to be structural";
    if !v.ty.is_empty() {
        out.push(forbidden(&child(p, "type"), structural));
    }
    if v.additional.is_some() {
        out.push(forbidden(&child(p, "additionalProperties"), undefined));
    }
    if v.default.is_some() {
        out.push(forbidden(&child(p, "default"), undefined));
    }
    if !v.title.is_empty() {
        out.push(forbidden(&child(p, "title"), structural));
    }
    if !v.description.is_empty() {
        out.push(forbidden(&child(p, "description"), structural));
    }
    if v.nullable {
        out.push(forbidden(&child(p, "nullable"), not_true));
    }
    if v.preserves_unknown() {
        out.push(forbidden(&child(p, "x-kubernetes-preserve-unknown-fields"), not_true));
    }
    if v.embedded {
        out.push(forbidden(&child(p, "x-kubernetes-embedded-resource"), not_true));
    }
    if v.int_or_string {
        out.push(forbidden(&child(p, "x-kubernetes-int-or-string"), not_true));
    }
    if !v.list_map_keys.is_empty() {
        out.push(forbidden(&child(p, "x-kubernetes-list-map-keys"), structural));
    }
    if v.list_type.is_some() {
        out.push(forbidden(&child(p, "x-kubernetes-list-type"), undefined));
    }
    if v.map_type.is_some() {
        out.push(forbidden(&child(p, "x-kubernetes-map-type"), undefined));
    }
    if v.validation_rules > 0 {
        out.push(forbidden(&child(p, "x-kubernetes-validations"), structural));
    }
    if v.properties.contains_key("metadata") {
        out.push(forbidden(&key(&props, "metadata"), "must not be specified in a nested context"));
    }
}

/// Every property or items a junctor validates must exist in the structural part beside it
/// (upstream checks this for the root node's junctors).
fn value_completeness(v: &Node, s: &Node, sp: &str, vp: &str, out: &mut Vec<Cause>) {
    if let Some(n) = &v.not {
        nested_completeness(n, Some(s), sp, &child(vp, "not"), out);
    }
    for (name, list) in [("allOf", &v.all_of), ("anyOf", &v.any_of), ("oneOf", &v.one_of)] {
        for (i, n) in list.iter().enumerate() {
            nested_completeness(n, Some(s), sp, &index(&child(vp, name), i), out);
        }
    }
}

fn nested_completeness(v: &Node, s: Option<&Node>, sp: &str, vp: &str, out: &mut Vec<Cause>) {
    let Some(s) = s else {
        out.push(required(sp, &format!("because it is defined in {vp}")));
        return;
    };
    value_completeness(v, s, sp, vp, out);
    if let Some(items) = &v.items {
        nested_completeness(items, s.items.as_deref(), &child(sp, "items"), &child(vp, "items"), out);
    }
    let (sprops, vprops) = (child(sp, "properties"), child(vp, "properties"));
    for (k, vf) in &v.properties {
        match s.properties.get(k) {
            Some(sf) => nested_completeness(vf, Some(sf), &key(&sprops, k), &key(&vprops, k), out),
            None => out.push(required(&key(&sprops, k), &format!("because it is defined in {}", key(&vprops, k)))),
        }
    }
}
