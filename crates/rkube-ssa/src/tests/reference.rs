//! The diff and update as they were before the lazily normalized walk (clone, strip managedFields,
//! normalize, compare, set operations by copy): the reference the fast paths must match exactly.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::fieldset::FieldSet;
use crate::managed::{
    ManagedFieldsEntry, Managers, Operation, cap_update_managers, decode, identifier, is_reset, set_list, set_on,
};
use crate::path::{FieldPath, PathElement, path_string};
use crate::request::Request;
use crate::schema::{Kind, ListType, MapType, Schema, is_empty_container, item_element, kind};
use crate::typed::without_managed_fields;
use crate::update::strip_set;
use crate::value;

const MAX_UPDATE_MANAGERS: usize = 10;

/// What changed from one object to another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Comparison {
    pub(super) added: FieldSet,
    pub(super) modified: FieldSet,
    pub(super) removed: FieldSet,
}

impl Comparison {
    /// Without the fields a strategy resets (and everything below them).
    pub(super) fn filtered(self, reset: Option<&FieldSet>) -> Comparison {
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
    pub(super) fn changed(&self) -> FieldSet {
        self.modified.union(&self.added)
    }
}

/// Compares `lhs` (before) with `rhs` (after); items without their keys are errors, as upstream reports them.
pub(super) fn compare(lhs: &Value, rhs: &Value, schema: &dyn Schema) -> Result<Comparison, String> {
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

pub(super) fn update(live: Option<&Value>, new: &Value, req: &Request<'_>, schema: &dyn Schema) -> Value {
    let new_mf = new.pointer("/metadata/managedFields");
    let live_mf = live.and_then(|l| l.pointer("/metadata/managedFields"));
    let managers = if !req.subresource.is_empty() {
        decode(live_mf).unwrap_or_default()
    } else if is_reset(new_mf) {
        Managers::new()
    } else {
        match decode(new_mf) {
            Ok(m) if !m.is_empty() => m,
            _ => decode(live_mf).unwrap_or_default(),
        }
    };
    let mut out = new.clone();
    set_list(&mut out, None);
    let exists = live.and_then(|l| l.pointer("/metadata/uid")).and_then(Value::as_str).is_some_and(|u| !u.is_empty());
    if managers.is_empty() && exists {
        return out;
    }
    let zero = schema.empty_object();
    match run_update(live.unwrap_or(&zero), &out, managers, req.manager, req, schema) {
        Ok(m) => set_on(&mut out, m),
        Err(_) => set_list(&mut out, live_mf.cloned()),
    }
    out
}

/// One Update by `manager` from `before` to `after` over `managers` (upstream's update chain below the
/// skip-non-applied manager): diff, take the changed fields from everyone, give them to the writer.
fn run_update(
    before: &Value,
    after: &Value,
    mut managers: Managers,
    manager: &str,
    req: &Request<'_>,
    schema: &dyn Schema,
) -> Result<Managers, String> {
    let manager = if manager.is_empty() { "unknown" } else { manager };
    let zero = schema.empty_object();
    let lhs = normalized(&without_managed_fields(before), &zero);
    let rhs = normalized(&without_managed_fields(after), &zero);
    let cmp = compare(&lhs, &rhs, schema)?.filtered(req.reset_fields);
    let changed = cmp.changed();
    for e in managers.values_mut() {
        let kept = e.fields().difference(&changed).difference(&cmp.removed);
        *e.fields_mut() = kept;
    }
    managers.retain(|_, e| !e.fields().is_empty());
    let own = changed.difference(strip_set());
    // The writer's entry (and time) only moves when it took fields; removing fields alone changes nothing.
    if !own.is_empty() {
        let key = identifier(manager, Operation::Update, req.api_version, req.subresource);
        let fields = match managers.get(&key) {
            Some(previous) => own.union(previous.fields()),
            None => own,
        };
        let entry = ManagedFieldsEntry::new(
            manager.to_owned(),
            Operation::Update,
            req.api_version.to_owned(),
            req.subresource.to_owned(),
            Some(req.now.to_owned()),
            fields,
        );
        managers.insert(key, entry);
    }
    cap_update_managers(&mut managers, MAX_UPDATE_MANAGERS);
    Ok(managers)
}

/// `v` as upstream's typed object holds it, so that diffs see the same fields: for a typed kind (one with a
/// non-empty zero value) nulls are dropped, as Go's decoding drops them for optional fields, and the zero
/// value is filled in where absent (an omitted `spec.template.metadata` is an empty struct upstream).
pub(super) fn normalized(v: &Value, zero: &Value) -> Value {
    let mut out = v.clone();
    if zero.as_object().is_some_and(|z| !z.is_empty()) {
        drop_nulls(&mut out);
    }
    fill(&mut out, zero);
    out
}

fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

fn fill(v: &mut Value, zero: &Value) {
    if let (Value::Object(m), Value::Object(z)) = (v, zero) {
        for (k, zv) in z {
            match m.get_mut(k) {
                Some(existing) => fill(existing, zv),
                None => {
                    m.insert(k.clone(), zv.clone());
                }
            }
        }
    }
}
