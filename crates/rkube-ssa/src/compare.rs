//! The diff of two objects as sets of added, modified and removed fields (upstream `TypedValue.Compare`).
//! Leaves (scalars, atomic lists and maps, empty containers) are compared by value; a map or list that
//! appears or disappears is itself added or removed, besides everything below it.
//!
//! The walk builds the result sets level by level (no per-path insertion from the root) and reads the
//! objects through [`View`]s, so diffing normalized objects copies neither of them.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::fieldset::FieldSet;
use crate::path::{FieldPath, PathElement, path_string};
use crate::schema::{Kind, ListType, MapType, Schema, item_element, kind};
use crate::view::{self, View, is_empty_container};

/// What changed from one object to another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Comparison {
    pub(crate) added: FieldSet,
    pub(crate) modified: FieldSet,
    pub(crate) removed: FieldSet,
}

impl Comparison {
    /// Without the fields a strategy resets (and everything below them).
    pub(crate) fn filtered(mut self, reset: Option<&FieldSet>) -> Comparison {
        if let Some(r) = reset {
            self.added.remove_recursively(r);
            self.modified.remove_recursively(r);
            self.removed.remove_recursively(r);
        }
        self
    }

    /// Fields that are new or have a new value.
    pub(crate) fn changed(&self) -> FieldSet {
        self.modified.union(&self.added)
    }
}

/// Compares `lhs` (before) with `rhs` (after); items without their keys are errors, as upstream reports them.
pub(crate) fn compare(lhs: &Value, rhs: &Value, schema: &dyn Schema) -> Result<Comparison, String> {
    compare_views(View::plain(lhs), View::plain(rhs), schema)
}

/// [`compare`] of `normalized(&without_managed_fields(x), zero)` for both objects, without making them.
pub(crate) fn compare_normalized(
    lhs: &Value,
    rhs: &Value,
    zero: &Value,
    schema: &dyn Schema,
) -> Result<Comparison, String> {
    compare_views(View::normalized(lhs, zero), View::normalized(rhs, zero), schema)
}

fn compare_views(lhs: View<'_>, rhs: View<'_>, schema: &dyn Schema) -> Result<Comparison, String> {
    let mut w = Walker { schema, errors: Vec::new() };
    let mut cmp = Comparison::default();
    // The root itself is no field: only what is below it counts.
    w.node(&mut Vec::new(), Some(lhs), Some(rhs), &mut cmp);
    if w.errors.is_empty() { Ok(cmp) } else { Err(w.errors.join("\n")) }
}

/// How a node itself changed (besides what changed below it).
#[derive(Default)]
struct Marks {
    added: bool,
    modified: bool,
    removed: bool,
}

impl Marks {
    fn leaf(lhs: Option<View<'_>>, rhs: Option<View<'_>>) -> Marks {
        match (lhs, rhs) {
            (None, _) => Marks { added: true, ..Marks::default() },
            (_, None) => Marks { removed: true, ..Marks::default() },
            (Some(l), Some(r)) => Marks { modified: !view::equal(l, r), ..Marks::default() },
        }
    }

    /// After the children of a map or list: the container itself appeared or disappeared.
    fn container(lhs: Option<View<'_>>, rhs: Option<View<'_>>) -> Marks {
        Marks { added: lhs.is_none(), removed: lhs.is_some() && rhs.is_none(), modified: false }
    }
}

/// Records a child's marks and the changes below it in its parent's comparison.
fn record(parent: &mut Comparison, pe: PathElement, marks: Marks, below: Comparison) {
    let mut slots: [(&mut FieldSet, bool, FieldSet); 3] = [
        (&mut parent.added, marks.added, below.added),
        (&mut parent.modified, marks.modified, below.modified),
        (&mut parent.removed, marks.removed, below.removed),
    ];
    let uses = slots.iter().map(|(_, m, b)| usize::from(*m) + usize::from(!b.is_empty())).sum::<usize>();
    if uses == 0 {
        return;
    }
    let mut left = uses;
    let mut pe = Some(pe);
    // The element is cloned for all uses but the last, which takes it.
    let mut next = || {
        left -= 1;
        if left == 0 { pe.take() } else { pe.clone() }
    };
    for (set, member, sub) in &mut slots {
        if *member && let Some(e) = next() {
            set.members.insert(e);
        }
        if !sub.is_empty()
            && let Some(e) = next()
        {
            set.children.insert(e, std::mem::take(sub));
        }
    }
}

struct Walker<'s> {
    schema: &'s dyn Schema,
    errors: Vec<String>,
}

impl Walker<'_> {
    /// Walks the node at `path` into `below` (changes under it, relative to it); returns its own marks.
    fn node(
        &mut self,
        path: &mut FieldPath,
        lhs: Option<View<'_>>,
        rhs: Option<View<'_>>,
        below: &mut Comparison,
    ) -> Marks {
        // Null takes the other side's kind, as upstream's nil-typed values do.
        let k = match (lhs.and_then(|v| kind(v.v)), rhs.and_then(|v| kind(v.v))) {
            (Some(a), Some(b)) if a != b => return Marks::leaf(lhs, rhs),
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => Kind::Scalar,
        };
        match k {
            Kind::Scalar => Marks::leaf(lhs, rhs),
            Kind::Map => {
                if self.schema.map_type(path) == MapType::Atomic || (is_empty_container(lhs) && is_empty_container(rhs))
                {
                    return Marks::leaf(lhs, rhs);
                }
                self.map(path, lhs, rhs, below);
                Marks::container(lhs, rhs)
            }
            Kind::List => {
                let lt = self.schema.list_type(path);
                if lt == ListType::Atomic || (is_empty_container(lhs) && is_empty_container(rhs)) {
                    return Marks::leaf(lhs, rhs);
                }
                self.items(path, &lt, lhs, rhs, below);
                Marks::container(lhs, rhs)
            }
        }
    }

    /// Walks the child at `pe` and records it in `out`.
    fn child(
        &mut self,
        path: &mut FieldPath,
        pe: PathElement,
        lhs: Option<View<'_>>,
        rhs: Option<View<'_>>,
        out: &mut Comparison,
    ) {
        path.push(pe);
        // An unchanged map or list (most of an update) has no changes below it; only the errors remain.
        if let (Some(l), Some(r)) = (lhs, rhs)
            && matches!(l.v, Value::Object(_) | Value::Array(_))
            && view::same_normalization(l, r)
            && crate::value::equal(l.v, r.v)
        {
            self.errors_of_unchanged(path, l);
            path.pop();
            return;
        }
        let mut below = Comparison::default();
        let marks = self.node(path, lhs, rhs, &mut below);
        if let Some(pe) = path.pop() {
            record(out, pe, marks, below);
        }
    }

    /// The errors `node` reports for a subtree compared with an equal copy of itself: the same walk, each
    /// list's item errors once per side, without building any sets.
    fn errors_of_unchanged(&mut self, path: &mut FieldPath, v: View<'_>) {
        match v.v {
            Value::Object(_) => {
                // Only list items can be errors: a map without lists below it has none.
                if !has_list(v.v) || self.schema.map_type(path) == MapType::Atomic || is_empty_container(Some(v)) {
                    return;
                }
                let mut entries = Vec::new();
                v.entries(&mut entries);
                for (k, c) in entries.into_iter().filter(|(_, c)| has_list(c.v)) {
                    path.push(PathElement::Field(k.clone()));
                    self.errors_of_unchanged(path, c);
                    path.pop();
                }
            }
            Value::Array(items) => {
                let lt = self.schema.list_type(path);
                if lt == ListType::Atomic || items.is_empty() {
                    return;
                }
                let mut errors = Vec::new();
                let mut groups = Groups::default();
                for (i, item) in items.iter().enumerate() {
                    let item = v.item(item);
                    match self.element(path, &lt, item) {
                        Err(e) => errors.push(format!("{}: element {i}: {e}", path_string(path))),
                        Ok(pe) => groups.slot(pe).1.push(item),
                    }
                }
                self.errors.extend(errors.iter().cloned());
                self.errors.extend(errors);
                for (pe, items, _) in groups.order {
                    // Duplicated items are compared as a whole, so nothing below them is walked.
                    if let [item] = items.as_slice() {
                        path.push(pe);
                        self.errors_of_unchanged(path, *item);
                        path.pop();
                    }
                }
            }
            _ => {}
        }
    }

    fn map(&mut self, path: &mut FieldPath, lhs: Option<View<'_>>, rhs: Option<View<'_>>, out: &mut Comparison) {
        let (mut l, mut r) = (Vec::new(), Vec::new());
        if let Some(v) = lhs {
            v.entries(&mut l);
        }
        if let Some(v) = rhs {
            v.entries(&mut r);
        }
        // Both sides are sorted by key: merge them.
        let (mut i, mut j) = (0, 0);
        while i < l.len() || j < r.len() {
            let (key, lv, rv) = match (l.get(i), r.get(j)) {
                (Some((lk, lv)), Some((rk, rv))) => match lk.cmp(rk) {
                    std::cmp::Ordering::Less => {
                        i += 1;
                        (*lk, Some(*lv), None)
                    }
                    std::cmp::Ordering::Greater => {
                        j += 1;
                        (*rk, None, Some(*rv))
                    }
                    std::cmp::Ordering::Equal => {
                        i += 1;
                        j += 1;
                        (*lk, Some(*lv), Some(*rv))
                    }
                },
                (Some((lk, lv)), None) => {
                    i += 1;
                    (*lk, Some(*lv), None)
                }
                (None, Some((rk, rv))) => {
                    j += 1;
                    (*rk, None, Some(*rv))
                }
                (None, None) => break,
            };
            self.child(path, PathElement::Field(key.clone()), lv, rv, out);
        }
    }

    /// The path element of a list item as shown (nulls hidden in its key fields).
    fn element(&self, path: &FieldPath, lt: &ListType, item: View<'_>) -> Result<PathElement, String> {
        // Rare: a key field that normalization changes (null, or a container holding nulls).
        if let (ListType::Map(keys), Value::Object(m)) = (lt, item.v)
            && item.hides_nulls()
            && keys.iter().any(|k| m.get(k).is_some_and(|x| x.is_null() || x.is_object() || x.is_array()))
        {
            return item_element(self.schema, path, lt, &item.materialize());
        }
        item_element(self.schema, path, lt, item.v)
    }

    /// Items grouped by path element, in first-seen order (lhs first).
    fn index<'v>(
        &mut self,
        path: &FieldPath,
        lt: &ListType,
        list: Option<View<'v>>,
        groups: &mut Groups<'v>,
        lhs: bool,
    ) {
        let Some(list) = list else { return };
        let Value::Array(items) = list.v else { return };
        for (i, item) in items.iter().enumerate() {
            let item = list.item(item);
            match self.element(path, lt, item) {
                Err(e) => self.errors.push(format!("{}: element {i}: {e}", path_string(path))),
                Ok(pe) => {
                    let g = groups.slot(pe);
                    if lhs { g.1.push(item) } else { g.2.push(item) }
                }
            }
        }
    }

    fn items(
        &mut self,
        path: &mut FieldPath,
        lt: &ListType,
        lhs: Option<View<'_>>,
        rhs: Option<View<'_>>,
        out: &mut Comparison,
    ) {
        let mut groups = Groups::default();
        self.index(path, lt, lhs, &mut groups, true);
        self.index(path, lt, rhs, &mut groups, false);
        for (pe, l, r) in groups.order {
            match (l.len(), r.len()) {
                // The normal case: one item on each side at most.
                (0..=1, 0..=1) => self.child(path, pe, l.first().copied(), r.first().copied(), out),
                // Duplicates on both sides are compared as one atomic value.
                (2.., 2..) => {
                    let modified = l.len() != r.len() || l.iter().zip(&r).any(|(a, b)| !view::equal(*a, *b));
                    record(out, pe, Marks { modified, ..Marks::default() }, Comparison::default());
                }
                // Duplicates resolved: the new single item is added, the duplicate marker removed.
                (2.., _) => {
                    path.push(pe);
                    let mut below = Comparison::default();
                    let mut marks = match r.first() {
                        Some(first) => self.node(path, None, Some(*first), &mut below),
                        None => Marks::default(),
                    };
                    marks.removed = true;
                    if let Some(pe) = path.pop() {
                        record(out, pe, marks, below);
                    }
                }
                // New duplicates: the old single item is removed, the duplicate marker added.
                (_, _) => {
                    path.push(pe);
                    let mut below = Comparison::default();
                    let mut marks = match l.first() {
                        Some(first) => self.node(path, Some(*first), None, &mut below),
                        None => Marks::default(),
                    };
                    marks.added = true;
                    if let Some(pe) = path.pop() {
                        record(out, pe, marks, below);
                    }
                }
            }
        }
    }
}

/// Whether a list appears anywhere in `v`.
fn has_list(v: &Value) -> bool {
    match v {
        Value::Array(_) => true,
        Value::Object(m) => m.values().any(has_list),
        _ => false,
    }
}

/// List items by path element, in the order elements were first seen in: (element, lhs items, rhs items).
#[derive(Default)]
struct Groups<'v> {
    order: Vec<(PathElement, Vec<View<'v>>, Vec<View<'v>>)>,
    /// Positions in `order`, once the list is long enough for a linear search to cost more.
    by_pe: BTreeMap<PathElement, usize>,
}

/// Lists up to this many distinct elements are searched linearly.
const LINEAR_GROUPS: usize = 16;

impl<'v> Groups<'v> {
    fn slot(&mut self, pe: PathElement) -> &mut (PathElement, Vec<View<'v>>, Vec<View<'v>>) {
        let found = if self.order.len() <= LINEAR_GROUPS {
            self.order.iter().position(|g| g.0 == pe)
        } else {
            if self.by_pe.is_empty() {
                self.by_pe = self.order.iter().enumerate().map(|(i, g)| (g.0.clone(), i)).collect();
            }
            self.by_pe.get(&pe).copied()
        };
        let i = match found {
            Some(i) => i,
            None => {
                if !self.by_pe.is_empty() {
                    self.by_pe.insert(pe.clone(), self.order.len());
                }
                self.order.push((pe, Vec::new(), Vec::new()));
                self.order.len() - 1
            }
        };
        &mut self.order[i]
    }
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
