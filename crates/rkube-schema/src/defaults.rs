//! Defaulting of custom objects from schema `default`s, and the CRD-time check that every default is valid and pruned.

use rkube_apimachinery::Cause;
use serde_json::Value;

use crate::messages::{self, Errors};
use crate::node::Node;
use crate::path::{child, key};
use crate::{prune, validate};

fn is_non_nullable_null(x: &Value, s: Option<&Node>) -> bool {
    x.is_null() && s.is_some_and(|s| !s.nullable)
}

fn field_schema<'a>(s: Option<&'a Node>, k: &str) -> Option<&'a Node> {
    let s = s?;
    s.properties.get(k).or_else(|| s.additional.as_ref().and_then(|a| a.schema()))
}

/// Removes nulls where the schema allows no null and has no default to put there instead
/// (upstream's PruneNonNullableNullsWithoutDefaults, which runs right before defaulting).
pub(crate) fn prune_nulls(x: &mut Value, s: Option<&Node>) {
    match x {
        Value::Object(m) => {
            m.retain(|k, v| {
                let sub = field_schema(s, k);
                let drop = v.is_null() && sub.is_some_and(|sub| !sub.nullable && sub.default.is_none());
                if !drop {
                    prune_nulls(v, sub);
                }
                !drop
            });
        }
        Value::Array(a) => {
            let items = s.and_then(|s| s.items.as_deref());
            for v in a {
                prune_nulls(v, items);
            }
        }
        _ => {}
    }
}

/// Sets missing (or non-nullable null) fields to their schema defaults, then recurses, so that a defaulted
/// object gets its own nested defaults too; array items and map values are defaulted the same way.
pub(crate) fn apply(x: &mut Value, s: Option<&Node>) {
    let Some(s) = s else { return };
    match x {
        Value::Object(m) => {
            for (k, prop) in &s.properties {
                let Some(d) = &prop.default else { continue };
                if m.get(k).is_none_or(|v| is_non_nullable_null(v, Some(prop))) {
                    m.insert(k.clone(), d.clone());
                }
            }
            for (k, v) in m.iter_mut() {
                if let Some(prop) = s.properties.get(k) {
                    apply(v, Some(prop));
                } else if let Some(a) = &s.additional {
                    let sub = a.schema();
                    if is_non_nullable_null(v, sub)
                        && let Some(d) = sub.and_then(|sub| sub.default.as_ref())
                    {
                        *v = d.clone();
                    }
                    apply(v, sub);
                }
            }
        }
        Value::Array(a) => {
            let items = s.items.as_deref();
            for v in a {
                if is_non_nullable_null(v, items)
                    && let Some(d) = items.and_then(|i| i.default.as_ref())
                {
                    *v = d.clone();
                }
                apply(v, items);
            }
        }
        _ => {}
    }
}

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Checks every `default` reachable through properties and items (defaults under additionalProperties are
/// not followed, as upstream): it must survive pruning unchanged and validate against its own schema.
/// Defaults inside TypeMeta/ObjectMeta of embedded resources are not checked (upstream validates them as metadata).
pub(crate) fn validate_defaults(root: &Node, p: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    walk(root, p, true, false, &mut out);
    out
}

fn walk(s: &Node, p: &str, is_root: bool, inside_meta: bool, out: &mut Vec<Cause>) {
    let embedded = s.embedded || is_root;
    let inside_meta = inside_meta && !embedded;
    if let Some(d) = &s.default
        && !inside_meta
    {
        let at = child(p, "default");
        let mut pruned = d.clone();
        prune::prune_value(&mut pruned, s, embedded);
        if pruned != *d {
            out.push(messages::invalid(&at, d, "must not have unknown fields"));
        }
        let mut errs = Errors::default();
        validate::check(s, d, "", &at, &mut errs);
        out.extend(errs.0);
    }
    if let Some(items) = &s.items {
        walk(items, &child(p, "items"), false, inside_meta, out);
    }
    let props = child(p, "properties");
    for (k, sub) in &s.properties {
        let sub_meta = inside_meta || (embedded && META_FIELDS.contains(&k.as_str()));
        walk(sub, &key(&props, k), false, sub_meta, out);
    }
}
