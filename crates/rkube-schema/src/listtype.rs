//! Uniqueness of `x-kubernetes-list-type: set` elements and `map` keys (upstream's listtype validation).

use rkube_apimachinery::Cause;
use serde_json::{Map, Value};

use crate::messages::{duplicate, invalid};
use crate::node::Node;
use crate::path::{child, index, key};

/// Checks every list under the object `obj` described by `s`; `p` is the object's field path.
pub(crate) fn validate(s: &Node, obj: &Map<String, Value>, p: &str, out: &mut Vec<Cause>) {
    if let Some(a) = s.additional.as_ref().and_then(|a| a.schema()) {
        for (k, v) in obj {
            value(a, v, &key(p, k), out);
        }
    }
    for (k, v) in obj {
        if let Some(sub) = s.properties.get(k) {
            value(sub, v, &child(p, k), out);
        }
    }
}

fn value(s: &Node, v: &Value, p: &str, out: &mut Vec<Cause>) {
    match v {
        Value::Array(a) => array(s, a, p, out),
        Value::Object(m) => validate(s, m, p, out),
        _ => {}
    }
}

fn array(s: &Node, a: &[Value], p: &str, out: &mut Vec<Cause>) {
    match s.list_type.as_deref() {
        Some("set") => {
            for i in non_unique(a) {
                out.push(duplicate(&index(p, i), &a[i]));
            }
        }
        Some("map") => list_map(s, a, p, out),
        _ => {}
    }
    if let Some(items) = &s.items {
        for (i, v) in a.iter().enumerate() {
            value(items, v, &index(p, i), out);
        }
    }
}

/// The index of the second appearance of every repeated element (later repeats are not reported again).
fn non_unique(a: &[Value]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, x) in a.iter().enumerate() {
        let seen = a[..i].iter().filter(|y| *y == x).count();
        if seen == 1 {
            out.push(i);
        }
    }
    out
}

fn list_map(s: &Node, a: &[Value], p: &str, out: &mut Vec<Cause>) {
    for (i, x) in a.iter().enumerate() {
        if !x.is_null() && !x.is_object() {
            out.push(invalid(&index(p, i), x, "must be an object for an array of list-type map"));
            return;
        }
    }
    // An item's key: the key fields it has (a null item, or missing fields, count as "unspecified").
    let keys: Vec<Map<String, Value>> = a
        .iter()
        .map(|x| {
            let mut k = Map::new();
            if let Some(o) = x.as_object() {
                for f in &s.list_map_keys {
                    if let Some(v) = o.get(f) {
                        k.insert(f.clone(), v.clone());
                    }
                }
            }
            k
        })
        .collect();
    let keys: Vec<Value> = keys.into_iter().map(Value::Object).collect();
    for i in non_unique(&keys) {
        out.push(duplicate(&index(p, i), &keys[i]));
    }
}
