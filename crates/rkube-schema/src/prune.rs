//! Pruning: drops fields a structural schema does not specify, as upstream's pruning algorithm does.

use serde_json::Value;

use crate::node::Node;

/// TypeMeta and ObjectMeta: kept at the resource root and in embedded resources (metadata is validated elsewhere).
const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn is_meta(k: &str) -> bool {
    META_FIELDS.contains(&k)
}

fn join_key(parent: &str, k: &str) -> String {
    if parent.is_empty() { k.to_owned() } else { format!("{parent}.{k}") }
}

/// Prunes `x` against `s`; `is_root` treats the node as an embedded resource (upstream's isResourceRoot).
/// Returns the paths of removed fields, sorted (`spec.foo`, `spec.items[0].bar`).
pub(crate) fn prune_value(x: &mut Value, s: &Node, is_root: bool) -> Vec<String> {
    let mut unknown = Vec::new();
    prune(x, Some(s), is_root, "", &mut unknown);
    unknown.sort();
    unknown
}

fn prune(x: &mut Value, s: Option<&Node>, is_root: bool, parent: &str, unknown: &mut Vec<String>) {
    if let Some(s) = s
        && s.preserves_unknown()
    {
        skip_prune(x, s, is_root, parent, unknown);
        return;
    }
    match x {
        Value::Object(m) => {
            let Some(s) = s else {
                // No schema at all: every field is unknown.
                unknown.extend(m.keys().map(|k| join_key(parent, k)));
                m.clear();
                return;
            };
            let embedded = s.embedded || is_root;
            let mut drop = Vec::new();
            for (k, v) in m.iter_mut() {
                if embedded && is_meta(k) {
                    continue;
                }
                if let Some(p) = s.properties.get(k) {
                    prune(v, Some(p), false, &join_key(parent, k), unknown);
                } else if let Some(a) = &s.additional {
                    // `additionalProperties: true|false` has no schema: upstream prunes the values with none.
                    prune(v, a.schema(), false, &join_key(parent, k), unknown);
                } else {
                    if !is_meta(k) || !parent.is_empty() {
                        unknown.push(join_key(parent, k));
                    }
                    drop.push(k.clone());
                }
            }
            for k in drop {
                m.remove(&k);
            }
        }
        Value::Array(a) => {
            let items = s.and_then(|s| s.items.as_deref());
            for (i, v) in a.iter_mut().enumerate() {
                prune(v, items, false, &format!("{parent}[{i}]"), unknown);
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields` unknown fields stay, but specified ones are still pruned inside.
fn skip_prune(x: &mut Value, s: &Node, is_root: bool, parent: &str, unknown: &mut Vec<String>) {
    match x {
        Value::Object(m) => {
            let embedded = s.embedded || is_root;
            for (k, v) in m.iter_mut() {
                if embedded && is_meta(k) {
                    continue;
                }
                if let Some(p) = s.properties.get(k) {
                    prune(v, Some(p), false, &join_key(parent, k), unknown);
                } else if let Some(a) = &s.additional {
                    prune(v, a.schema(), false, &join_key(parent, k), unknown);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = s.items.as_deref() {
                for (i, v) in a.iter_mut().enumerate() {
                    skip_prune(v, items, false, &format!("{parent}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}
