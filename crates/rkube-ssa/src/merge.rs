//! Merging an applied configuration into the live object (upstream `TypedValue.Merge` with "keep right"):
//! maps merge key by key, associative lists item by item (keeping live-only items where they were and the
//! applied items in the applied order), and scalars, atomic lists and atomic maps take the applied value.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value};

use crate::path::{FieldPath, PathElement};
use crate::schema::{Kind, ListType, MapType, Schema, is_empty_container, item_element, kind};

/// The value a duplicated live item merges as: upstream does not merge duplicates with the applied item.
static NULL: Value = Value::Null;

/// `rhs` merged into `lhs`. Items whose keys cannot be computed are kept as they are (the applied
/// configuration is validated before merging, and upstream tolerates such items in live objects).
pub(crate) fn merge(lhs: &Value, rhs: &Value, schema: &dyn Schema) -> Value {
    merge_at(&mut Vec::new(), Some(lhs), Some(rhs), schema).unwrap_or(Value::Null)
}

fn merge_at(path: &mut FieldPath, lhs: Option<&Value>, rhs: Option<&Value>, schema: &dyn Schema) -> Option<Value> {
    let (l, r) = match (lhs, rhs) {
        (_, None) => return lhs.cloned(),
        (None, Some(r)) => return Some(r.clone()),
        (Some(l), Some(r)) => (l, r),
    };
    let k = match (kind(l), kind(r)) {
        (Some(a), Some(b)) if a != b => return Some(r.clone()),
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => return Some(r.clone()),
    };
    match k {
        Kind::Scalar => Some(r.clone()),
        Kind::Map => {
            if schema.map_type(path) == MapType::Atomic || (is_empty_container(Some(l)) && is_empty_container(Some(r)))
            {
                return Some(r.clone());
            }
            let lm = l.as_object();
            let rm = r.as_object();
            let keys: BTreeSet<&String> = lm.into_iter().chain(rm).flat_map(|m| m.keys()).collect();
            let mut out = Map::new();
            for key in keys {
                path.push(PathElement::Field(key.clone()));
                if let Some(v) = merge_at(path, lm.and_then(|m| m.get(key)), rm.and_then(|m| m.get(key)), schema) {
                    out.insert(key.clone(), v);
                }
                path.pop();
            }
            Some(Value::Object(out))
        }
        Kind::List => {
            let lt = schema.list_type(path);
            if lt == ListType::Atomic || (is_empty_container(Some(l)) && is_empty_container(Some(r))) {
                return Some(r.clone());
            }
            let empty = Vec::new();
            let la = l.as_array().unwrap_or(&empty);
            let ra = r.as_array().unwrap_or(&empty);
            Some(Value::Array(merge_items(path, &lt, la, ra, schema)))
        }
    }
}

/// Items with their path elements; items without one (invalid) are kept aside.
fn elements<'v>(
    path: &FieldPath,
    lt: &ListType,
    items: &'v [Value],
    schema: &dyn Schema,
) -> Vec<(Option<PathElement>, &'v Value)> {
    items.iter().map(|i| (item_element(schema, path, lt, i).ok(), i)).collect()
}

/// Upstream's list merge order: walk both lists; a live item shared with the applied list waits until the
/// applied list reaches it (unless it is the next shared one), live-only items stay in place.
fn merge_items(path: &mut FieldPath, lt: &ListType, la: &[Value], ra: &[Value], schema: &dyn Schema) -> Vec<Value> {
    let lhs = elements(path, lt, la, schema);
    let rhs = elements(path, lt, ra, schema);
    let mut observed_lhs: BTreeMap<&PathElement, &Value> = BTreeMap::new();
    for (pe, v) in &lhs {
        if let Some(pe) = pe {
            let dup = observed_lhs.contains_key(pe);
            observed_lhs.insert(pe, if dup { &NULL } else { v });
        }
    }
    let observed_rhs: BTreeMap<&PathElement, &Value> =
        rhs.iter().filter_map(|(pe, v)| pe.as_ref().map(|p| (p, *v))).collect();
    let mut shared: VecDeque<&PathElement> =
        rhs.iter().filter_map(|(pe, _)| pe.as_ref()).filter(|p| observed_lhs.contains_key(p)).collect();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(la.len().max(ra.len()));
    let item = |path: &mut FieldPath, pe: &PathElement, l: Option<&Value>, r: Option<&Value>, out: &mut Vec<Value>| {
        path.push(pe.clone());
        if let Some(v) = merge_at(path, l, r, schema) {
            out.push(v);
        }
        path.pop();
    };
    let (mut li, mut ri) = (0, 0);
    while li < lhs.len() || ri < rhs.len() {
        if li < lhs.len() && ri < rhs.len() {
            match (&lhs[li].0, &rhs[ri].0) {
                (Some(lp), Some(rp)) if lp == rp => {
                    merged_rhs.insert(lp);
                    item(path, lp, observed_lhs.get(lp).copied(), observed_rhs.get(rp).copied(), &mut out);
                    li += 1;
                    ri += 1;
                    next_shared = shared.pop_front();
                    continue;
                }
                (Some(lp), _) if observed_rhs.contains_key(lp) && next_shared.is_some_and(|n| n != lp) => {
                    li += 1;
                    continue;
                }
                _ => {}
            }
        }
        if li < lhs.len() {
            match &lhs[li].0 {
                None => {
                    out.push(lhs[li].1.clone());
                    li += 1;
                    continue;
                }
                Some(lp) if !observed_rhs.contains_key(lp) => {
                    item(path, lp, Some(lhs[li].1), None, &mut out);
                    li += 1;
                    continue;
                }
                Some(lp) if merged_rhs.contains(lp) => li += 1,
                Some(_) => {}
            }
        }
        if ri < rhs.len() {
            match &rhs[ri].0 {
                None => out.push(rhs[ri].1.clone()),
                Some(rp) => {
                    merged_rhs.insert(rp);
                    item(path, rp, observed_lhs.get(rp).copied(), Some(rhs[ri].1), &mut out);
                    if next_shared == Some(rp) {
                        next_shared = shared.pop_front();
                    }
                }
            }
            ri += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::BuiltinSchema;
    use serde_json::json;

    #[test]
    fn maps_merge_and_atomic_values_replace() {
        let schema = BuiltinSchema::for_kind("apps/v1", "Deployment");
        let live = json!({"spec": {"replicas": 1, "paused": true, "selector": {"matchLabels": {"a": "1", "b": "2"}}}});
        let applied = json!({"spec": {"replicas": 3, "selector": {"matchLabels": {"a": "1"}}}});
        assert_eq!(
            merge(&live, &applied, &schema),
            json!({"spec": {"replicas": 3, "paused": true, "selector": {"matchLabels": {"a": "1"}}}})
        );
    }

    #[test]
    fn associative_lists_merge_by_key_and_keep_order() {
        let schema = BuiltinSchema::for_kind("v1", "Pod");
        let live = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "args": ["x", "y"]},
            {"name": "side", "image": "s"},
            {"name": "b", "image": "b:1"}
        ]}});
        let applied = json!({"spec": {"containers": [{"name": "b", "image": "b:2"}, {"name": "a", "args": ["z"]}, {"name": "new", "image": "n"}]}});
        let got = merge(&live, &applied, &schema);
        assert_eq!(
            got,
            json!({"spec": {"containers": [
                {"name": "side", "image": "s"},
                {"name": "b", "image": "b:2"},
                {"name": "a", "image": "a:1", "args": ["z"]},
                {"name": "new", "image": "n"}
            ]}})
        );
    }

    #[test]
    fn null_applied_map_keeps_live_content() {
        let schema = BuiltinSchema::for_kind("v1", "ConfigMap");
        assert_eq!(merge(&json!({"data": {"a": "1"}}), &json!({"data": null}), &schema), json!({"data": {"a": "1"}}));
        assert_eq!(
            merge(&json!({"data": {"a": "1"}}), &json!({"data": {"b": "2"}}), &schema),
            json!({"data": {"a": "1", "b": "2"}})
        );
    }
}
