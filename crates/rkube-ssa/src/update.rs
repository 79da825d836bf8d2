//! managedFields for creates, updates and non-apply patches (upstream `FieldManager.UpdateNoErrors`): the
//! writer takes ownership of every field it added or changed, other managers lose those fields and any
//! removed ones, and the writer's Update entry gets the current time.

use std::sync::LazyLock;

use serde_json::Value;

use crate::compare::compare_normalized;
use crate::fieldset::FieldSet;
use crate::managed::{
    ManagedFieldsEntry, Managers, Operation, cap_update_managers, decode, decode_stored, identifier, is_reset,
    set_list, set_on,
};
use crate::path::field_path;
use crate::request::Request;
use crate::schema::Schema;

/// Upstream keeps at most this many Update managers; older ones merge into `ancient-changes`.
const MAX_UPDATE_MANAGERS: usize = 10;

/// Fields nobody owns: identity and server-set metadata (upstream's strip-meta manager).
pub(crate) fn strip_set() -> &'static FieldSet {
    static STRIP: LazyLock<FieldSet> = LazyLock::new(|| {
        FieldSet::from_paths(
            [
                &["apiVersion"][..],
                &["kind"],
                &["metadata"],
                &["metadata", "name"],
                &["metadata", "namespace"],
                &["metadata", "creationTimestamp"],
                &["metadata", "selfLink"],
                &["metadata", "uid"],
                &["metadata", "clusterName"],
                &["metadata", "generation"],
                &["metadata", "managedFields"],
                &["metadata", "resourceVersion"],
            ]
            .into_iter()
            .map(field_path),
        )
    });
    &STRIP
}

/// The object to store after a create (`live` = `None`), update or non-apply patch: `new` with
/// `metadata.managedFields` recomputed. Call it on the final object (after defaulting and the strategy's
/// preparation) so the writer owns exactly what it changed.
///
/// As upstream: a client's valid `managedFields` replace the live ones (a way to edit them); `[]` or `[{}]`
/// clears them; invalid or absent ones keep the live ones; subresource writes always keep the live ones.
/// An existing object without managedFields stays without (only an apply starts tracking it). If the
/// objects cannot be diffed (list items without keys), the live managedFields are kept.
pub fn update(live: Option<&Value>, new: &Value, req: &Request<'_>, schema: &dyn Schema) -> Value {
    update_owned(live, new.clone(), req, schema)
}

/// [`update`] taking the new object by value: the same result, without copying the object.
pub fn update_owned(live: Option<&Value>, mut new: Value, req: &Request<'_>, schema: &dyn Schema) -> Value {
    let new_mf = new.pointer("/metadata/managedFields");
    let live_mf = live.and_then(|l| l.pointer("/metadata/managedFields"));
    let managers = if !req.subresource.is_empty() {
        decode_stored(live_mf).unwrap_or_default()
    } else if is_reset(new_mf) {
        Managers::new()
    } else if new_mf.is_some() && new_mf == live_mf {
        // A client sending back the list it read (a read-modify-write): the stored list, as stored.
        decode_stored(live_mf).unwrap_or_default()
    } else {
        match decode(new_mf) {
            Ok(m) if !m.is_empty() => m,
            _ => decode_stored(live_mf).unwrap_or_default(),
        }
    };
    set_list(&mut new, None);
    let exists = live.and_then(|l| l.pointer("/metadata/uid")).and_then(Value::as_str).is_some_and(|u| !u.is_empty());
    if managers.is_empty() && exists {
        return new;
    }
    match run_update(live, &new, managers, req.manager, req, schema) {
        Ok(m) => set_on(&mut new, m),
        Err(_) => set_list(&mut new, live_mf.cloned()),
    }
    new
}

/// One Update by `manager` from `before` (`None`: the kind's empty object) to `after` over `managers`
/// (upstream's update chain below the skip-non-applied manager): diff, take the changed fields from
/// everyone, give them to the writer.
pub(crate) fn run_update(
    before: Option<&Value>,
    after: &Value,
    mut managers: Managers,
    manager: &str,
    req: &Request<'_>,
    schema: &dyn Schema,
) -> Result<Managers, String> {
    let manager = if manager.is_empty() { "unknown" } else { manager };
    let zero = schema.empty_object();
    let cmp = compare_normalized(before.unwrap_or(&zero), after, &zero, schema)?.filtered(req.reset_fields);
    let mut changed = cmp.added;
    changed.union_with(cmp.modified);
    for e in managers.values_mut() {
        e.remove_fields(&changed);
        e.remove_fields(&cmp.removed);
    }
    managers.retain(|_, e| !e.fields().is_empty());
    let mut own = changed;
    own.remove_all(strip_set());
    // The writer's entry (and time) only moves when it took fields; removing fields alone changes nothing.
    if !own.is_empty() {
        let key = identifier(manager, Operation::Update, req.api_version, req.subresource);
        if let Some(previous) = managers.remove(&key) {
            own.union_with(previous.into_fields());
        }
        let entry = ManagedFieldsEntry::new(
            manager.to_owned(),
            Operation::Update,
            req.api_version.to_owned(),
            req.subresource.to_owned(),
            Some(req.now.to_owned()),
            own,
        );
        managers.insert(key, entry);
    }
    cap_update_managers(&mut managers, MAX_UPDATE_MANAGERS);
    Ok(managers)
}
