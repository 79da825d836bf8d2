//! A value as a diff sees it, normalized lazily: the same answers as cloning the object, removing
//! `metadata.managedFields`, dropping nulls and filling in the kind's zero value (as the test oracle's
//! `tests::reference::normalized` does), but without copying anything. Creates and updates diff every write,
//! so the copies were a large share of the API server's CPU.

use serde_json::{Map, Value};

use crate::value;

/// Where a node sits, for the one place that hides a field: the root's `metadata.managedFields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pos {
    /// The object root of a normalized view.
    Root,
    /// The root's `metadata`: `managedFields` is hidden.
    Meta,
    /// Anywhere else (and every node of a plain view).
    Other,
}

/// One node of a (possibly) normalized value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'v> {
    /// The node's raw value.
    pub(crate) v: &'v Value,
    /// The zero value at this path, whose absent keys show up filled in.
    zero: Option<&'v Value>,
    /// Whether null members of objects are hidden.
    drop_nulls: bool,
    pos: Pos,
}

impl<'v> View<'v> {
    /// The value as it is.
    pub(crate) fn plain(v: &'v Value) -> Self {
        View { v, zero: None, drop_nulls: false, pos: Pos::Other }
    }

    /// The value as `normalized(&without_managed_fields(v), zero)` would return it.
    pub(crate) fn normalized(v: &'v Value, zero: &'v Value) -> Self {
        let drop_nulls = zero.as_object().is_some_and(|z| !z.is_empty());
        View { v, zero: Some(zero), drop_nulls, pos: Pos::Root }
    }

    /// Whether this node shows its raw value unchanged (so raw comparisons hold).
    fn is_plain(&self) -> bool {
        !self.drop_nulls && self.pos == Pos::Other && self.zero.is_none_or(|z| z.as_object().is_none_or(Map::is_empty))
    }

    fn zero_map(&self) -> Option<&'v Map<String, Value>> {
        self.zero.and_then(Value::as_object)
    }

    /// Whether a raw member of this object is shown.
    fn shows(&self, key: &str, child: &Value) -> bool {
        !((self.drop_nulls && child.is_null()) || (self.pos == Pos::Meta && key == "managedFields"))
    }

    fn child(&self, key: &str, child: &'v Value) -> View<'v> {
        let pos = if self.pos == Pos::Root && key == "metadata" { Pos::Meta } else { Pos::Other };
        let zero = self.zero_map().and_then(|z| z.get(key));
        View { v: child, zero, drop_nulls: self.drop_nulls, pos }
    }

    /// A list item.
    pub(crate) fn item(&self, item: &'v Value) -> View<'v> {
        View { v: item, zero: None, drop_nulls: self.drop_nulls, pos: Pos::Other }
    }

    /// The members of this object as shown, sorted by key; empty for non-objects.
    pub(crate) fn entries(&self, out: &mut Vec<(&'v String, View<'v>)>) {
        let Some(m) = self.v.as_object() else { return };
        let start = out.len();
        for (k, c) in m {
            if self.shows(k, c) {
                out.push((k, self.child(k, c)));
            }
        }
        if let Some(z) = self.zero_map() {
            let shown = out.len();
            for (k, zv) in z {
                if !out[start..shown].iter().any(|(s, _)| *s == k) {
                    out.push((k, View::plain(zv)));
                }
            }
        }
        out[start..].sort_by(|a, b| a.0.cmp(b.0));
    }

    /// Whether this is an object with no member shown.
    fn is_empty_map(&self, m: &Map<String, Value>) -> bool {
        self.zero_map().is_none_or(Map::is_empty) && !m.iter().any(|(k, c)| self.shows(k, c))
    }

    /// The value as shown, as an owned value (for the rare places that need one).
    pub(crate) fn materialize(&self) -> Value {
        match self.v {
            Value::Object(_) => {
                let mut entries = Vec::new();
                self.entries(&mut entries);
                Value::Object(entries.into_iter().map(|(k, c)| (k.clone(), c.materialize())).collect())
            }
            Value::Array(items) if self.drop_nulls => {
                Value::Array(items.iter().map(|i| self.item(i).materialize()).collect())
            }
            other => other.clone(),
        }
    }

    /// Whether null members are hidden at this node.
    pub(crate) fn hides_nulls(&self) -> bool {
        self.drop_nulls
    }
}

/// Upstream's "empty promotes to leaf": absent, null, or an empty object or list as shown.
pub(crate) fn is_empty_container(v: Option<View<'_>>) -> bool {
    match v {
        None => true,
        Some(view) => match view.v {
            Value::Null => true,
            Value::Object(m) => view.is_empty_map(m),
            Value::Array(a) => a.is_empty(),
            _ => false,
        },
    }
}

/// Whether both views show their values the same way, so that equal raw values show equal.
pub(crate) fn same_normalization(a: View<'_>, b: View<'_>) -> bool {
    a.drop_nulls == b.drop_nulls
        && a.pos == b.pos
        && match (a.zero, b.zero) {
            (None, None) => true,
            (Some(x), Some(y)) => std::ptr::eq(x, y),
            _ => false,
        }
}

/// `value::equal` of the values as shown.
pub(crate) fn equal(a: View<'_>, b: View<'_>) -> bool {
    if a.is_plain() && b.is_plain() {
        return value::equal(a.v, b.v);
    }
    // The same normalization of equal values gives equal values: the common case of an unchanged field.
    if same_normalization(a, b) && value::equal(a.v, b.v) {
        return true;
    }
    match (a.v, b.v) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(l, r)| equal(a.item(l), b.item(r)))
        }
        (Value::Object(_), Value::Object(_)) => {
            let (mut l, mut r) = (Vec::new(), Vec::new());
            a.entries(&mut l);
            b.entries(&mut r);
            l.len() == r.len() && l.into_iter().zip(r).all(|((lk, lv), (rk, rv))| lk == rk && equal(lv, rv))
        }
        _ => value::equal(a.v, b.v),
    }
}
