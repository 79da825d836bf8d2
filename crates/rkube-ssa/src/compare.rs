//! The diff of two objects as sets of added, modified and removed fields (upstream `TypedValue.Compare`).
//! Leaves (scalars, atomic lists and maps, empty containers) are compared by value; a map or list that
//! appears or disappears is itself added or removed, besides everything below it.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::fieldset::FieldSet;
use crate::path::{FieldPath, PathElement, path_string};
use crate::schema::{Kind, ListType, MapType, Schema, is_empty_container, item_element, kind};
use crate::value;

/// What changed from one object to another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Comparison {
    pub(crate) added: FieldSet,
    pub(crate) modified: FieldSet,
    pub(crate) removed: FieldSet,
}

impl Comparison {
    /// Without the fields a strategy resets (and everything below them).
    pub(crate) fn filtered(self, reset: Option<&FieldSet>) -> Comparison {
        match reset {
            None => self,
            Some(r) => Comparison {
                added: self.added.recursive_difference(r),
                modified: self.modified.recursive_difference(r),
                removed: self.removed.recursive_difference(r),
            },
        }
    }

    /// Fields that are new or have a new value.
    pub(crate) fn changed(&self) -> FieldSet {
        self.modified.union(&self.added)
    }
}

/// Compares `lhs` (before) with `rhs` (after); items without their keys are errors, as upstream reports them.
pub(crate) fn compare(lhs: &Value, rhs: &Value, schema: &dyn Schema) -> Result<Comparison, String> {
    let mut w = Walker { schema, cmp: Comparison::default(), errors: Vec::new() };
    w.walk(&mut Vec::new(), Some(lhs), Some(rhs));
    if w.errors.is_empty() { Ok(w.cmp) } else { Err(w.errors.join("\n")) }
}

struct Walker<'s> {
    schema: &'s dyn Schema,
    cmp: Comparison,
    errors: Vec<String>,
}

impl Walker<'_> {
    fn leaf(&mut self, path: &FieldPath, lhs: Option<&Value>, rhs: Option<&Value>) {
        match (lhs, rhs) {
            (None, _) => self.cmp.added.insert(path),
            (_, None) => self.cmp.removed.insert(path),
            (Some(l), Some(r)) if !value::equal(l, r) => self.cmp.modified.insert(path),
            _ => {}
        }
    }

    /// After the children of a map or list: the container itself appeared or disappeared.
    fn container(&mut self, path: &FieldPath, lhs: Option<&Value>, rhs: Option<&Value>) {
        if lhs.is_none() {
            self.cmp.added.insert(path);
        } else if rhs.is_none() {
            self.cmp.removed.insert(path);
        }
    }

    fn walk(&mut self, path: &mut FieldPath, lhs: Option<&Value>, rhs: Option<&Value>) {
        // Null takes the other side's kind, as upstream's nil-typed values do.
        let k = match (lhs.and_then(kind), rhs.and_then(kind)) {
            (Some(a), Some(b)) if a != b => {
                self.leaf(path, lhs, rhs);
                return;
            }
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => Kind::Scalar,
        };
        match k {
            Kind::Scalar => self.leaf(path, lhs, rhs),
            Kind::Map => {
                if self.schema.map_type(path) == MapType::Atomic || (is_empty_container(lhs) && is_empty_container(rhs))
                {
                    self.leaf(path, lhs, rhs);
                    return;
                }
                let l = lhs.and_then(Value::as_object);
                let r = rhs.and_then(Value::as_object);
                let mut keys: Vec<&String> = l.into_iter().chain(r).flat_map(|m| m.keys()).collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    path.push(PathElement::Field(key.clone()));
                    self.walk(path, l.and_then(|m| m.get(key)), r.and_then(|m| m.get(key)));
                    path.pop();
                }
                self.container(path, lhs, rhs);
            }
            Kind::List => {
                let lt = self.schema.list_type(path);
                if lt == ListType::Atomic || (is_empty_container(lhs) && is_empty_container(rhs)) {
                    self.leaf(path, lhs, rhs);
                    return;
                }
                self.items(path, &lt, lhs.and_then(Value::as_array), rhs.and_then(Value::as_array));
                self.container(path, lhs, rhs);
            }
        }
    }

    /// Items grouped by path element, in first-seen order (lhs first).
    fn index<'v>(
        &mut self,
        path: &FieldPath,
        lt: &ListType,
        items: Option<&'v Vec<Value>>,
        groups: &mut Groups<'v>,
        lhs: bool,
    ) {
        for (i, item) in items.into_iter().flatten().enumerate() {
            match item_element(self.schema, path, lt, item) {
                Err(e) => self.errors.push(format!("{}: element {i}: {e}", path_string(path))),
                Ok(pe) => {
                    if !groups.by_pe.contains_key(&pe) {
                        groups.order.push(pe.clone());
                    }
                    let entry = groups.by_pe.entry(pe).or_default();
                    if lhs { entry.0.push(item) } else { entry.1.push(item) }
                }
            }
        }
    }

    fn items(&mut self, path: &mut FieldPath, lt: &ListType, lhs: Option<&Vec<Value>>, rhs: Option<&Vec<Value>>) {
        let mut groups = Groups::default();
        self.index(path, lt, lhs, &mut groups, true);
        self.index(path, lt, rhs, &mut groups, false);
        for pe in groups.order {
            let Some((l, r)) = groups.by_pe.get(&pe) else { continue };
            path.push(pe);
            match (l.len(), r.len()) {
                // The normal case: one item on each side at most.
                (0..=1, 0..=1) => self.walk(path, l.first().copied(), r.first().copied()),
                // Duplicates on both sides are compared as one atomic value.
                (2.., 2..) => {
                    if l.len() != r.len() || l.iter().zip(r).any(|(a, b)| !value::equal(a, b)) {
                        self.cmp.modified.insert(path);
                    }
                }
                // Duplicates resolved: the new single item is added, the duplicate marker removed.
                (2.., _) => {
                    if let Some(first) = r.first() {
                        self.walk(path, None, Some(first));
                    }
                    self.cmp.removed.insert(path);
                }
                // New duplicates: the old single item is removed, the duplicate marker added.
                (_, _) => {
                    if let Some(first) = l.first() {
                        self.walk(path, Some(first), None);
                    }
                    self.cmp.added.insert(path);
                }
            }
            path.pop();
        }
    }
}

/// List items by path element: (lhs items, rhs items), plus the order elements were first seen in.
#[derive(Default)]
struct Groups<'v> {
    by_pe: BTreeMap<PathElement, (Vec<&'v Value>, Vec<&'v Value>)>,
    order: Vec<PathElement>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::BuiltinSchema;
    use serde_json::json;

    fn show(s: &FieldSet) -> String {
        s.to_fields_v1_string()
    }

    #[test]
    fn added_containers_are_members_at_every_level() {
        let schema = BuiltinSchema::for_kind("v1", "Pod");
        let before = json!({"spec": {"containers": null}});
        let after = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i", "resources": {}}]}});
        let c = compare(&before, &after, &schema).expect("compares");
        assert_eq!(
            show(&c.added),
            r#"{"f:metadata":{".":{},"f:labels":{".":{},"f:a":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:image":{},"f:name":{},"f:resources":{}}}}}"#
        );
        assert!(c.modified.is_empty() && c.removed.is_empty());
    }

    #[test]
    fn modified_and_removed() {
        let schema = BuiltinSchema::for_kind("apps/v1", "Deployment");
        let before = json!({"spec": {"replicas": 1, "paused": true, "selector": {"matchLabels": {"a": "1"}}}});
        let after = json!({"spec": {"replicas": 2, "selector": {"matchLabels": {"a": "2"}}}});
        let c = compare(&before, &after, &schema).expect("compares");
        assert_eq!(show(&c.modified), r#"{"f:spec":{"f:replicas":{},"f:selector":{}}}"#);
        assert_eq!(show(&c.removed), r#"{"f:spec":{"f:paused":{}}}"#);
        assert!(c.added.is_empty());
    }

    #[test]
    fn items_without_keys_are_errors() {
        let schema = BuiltinSchema::for_kind("v1", "Pod");
        let err =
            compare(&json!({}), &json!({"spec": {"containers": [{"image": "x"}]}}), &schema).expect_err("no name");
        assert!(err.starts_with(".spec.containers: element 0: associative list with keys"), "{err}");
    }
}
