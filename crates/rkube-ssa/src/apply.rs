//! Server-side apply (upstream's default field manager chain around `merge.Updater.Apply`): merge the
//! applied configuration into the live object, prune what the applier dropped and nobody else owns,
//! detect conflicts with other owners, and record the applier's Apply entry.

use serde_json::{Map, Value};

use crate::compare::compare_normalized;
use crate::conflicts::{Conflict, Conflicts};
use crate::error::ApplyError;
use crate::fieldset::FieldSet;
use crate::last_applied;
use crate::managed::{ManagedFieldsEntry, Managers, Operation, decode, identifier, set_on};
use crate::merge::merge;
use crate::remove::remove_items;
use crate::request::Request;
use crate::schema::Schema;
use crate::typed::{ensure_named_fields_are_members, fieldset, validate, without_managed_fields};
use crate::update::{run_update, strip_set};
use crate::value;

/// Upstream's name for the manager that takes the fields of an object first applied without managedFields.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// Applies `applied` (the request body, already parsed from YAML/JSON) over `live` (`None` creates) for
/// `req.manager`, taking conflicting fields from their owners when `force` is set. Returns the object to
/// store (to be defaulted and validated by the caller) with its managedFields; when nothing but managedFields
/// changed, that is the live object.
///
/// As upstream: `apiVersion`/`kind` must match the endpoint, the body must not carry managedFields, an
/// object without managedFields first gets a `before-first-apply` owner for its existing fields, and for
/// the `kubectl` manager conflicts with fields matching the last-applied annotation are taken over (the
/// client-side to server-side apply upgrade) and that annotation is kept in sync.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    force: bool,
    req: &Request<'_>,
    schema: &dyn Schema,
) -> Result<Value, ApplyError> {
    check_type(applied, req)?;
    let managers = decode(live.and_then(|l| l.pointer("/metadata/managedFields")))
        .map_err(|e| ApplyError::Internal(format!("failed to decode managed fields: {e}")))?;
    let (mut obj, managers) = match apply_inner(live, applied, force, managers.clone(), req, schema) {
        Err(ApplyError::Conflict(conflicts)) if req.manager == "kubectl" => {
            let Some(allowed) = live.and_then(|l| last_applied::allowed_conflicts(l, req, schema)) else {
                return Err(ApplyError::Conflict(conflicts));
            };
            let remaining: Vec<Conflict> = conflicts.0.into_iter().filter(|c| !allowed.has(&c.path)).collect();
            if !remaining.is_empty() {
                return Err(ApplyError::Conflict(Conflicts(remaining)));
            }
            apply_inner(live, applied, true, managers, req, schema)?
        }
        other => other?,
    };
    if req.manager == "kubectl" && last_applied::has(&obj) {
        last_applied::set(&mut obj, applied);
    }
    set_on(&mut obj, managers);
    Ok(obj)
}

/// Upstream's version check: the applied object must be of the endpoint's group, version and kind.
fn check_type(applied: &Value, req: &Request<'_>) -> Result<(), ApplyError> {
    let api_version = applied.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = applied.get("kind").and_then(Value::as_str).unwrap_or_default();
    if api_version == req.api_version && kind == req.kind {
        return Ok(());
    }
    Err(ApplyError::BadRequest(format!("invalid object type: {}", gvk(api_version, kind))))
}

/// A GroupVersionKind as Go prints it: `apps/v1, Kind=Deployment`, `/v1, Kind=Pod`.
fn gvk(api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    format!("{group}/{version}, Kind={kind}")
}

/// The apply below the last-applied handling: before-first-apply, merge, prune, conflicts, ownership.
fn apply_inner(
    live: Option<&Value>,
    applied: &Value,
    force: bool,
    mut managers: Managers,
    req: &Request<'_>,
    schema: &dyn Schema,
) -> Result<(Value, Managers), ApplyError> {
    let zero = schema.empty_object();
    let live_obj = live.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    if managers.is_empty() {
        // Fields set before anyone applied belong to someone, so that dropping them takes a conflict.
        managers = run_update(None, &live_obj, managers, BEFORE_FIRST_APPLY, req, schema)
            .map_err(|e| ApplyError::Internal(format!("failed to create manager for existing fields: {e}")))?;
    }
    if applied.pointer("/metadata/managedFields").is_some_and(|m| !m.is_null()) {
        return Err(ApplyError::BadRequest("metadata.managedFields must be nil".to_owned()));
    }
    validate(applied, schema, false).map_err(|e| {
        ApplyError::Internal(format!("failed to create typed patch object ({}): {e}", describe(applied)))
    })?;

    // Upstream names a manager-less writer `unknown` (the API server requires fieldManager for apply anyway).
    let manager = if req.manager.is_empty() { "unknown" } else { req.manager };
    let key = identifier(manager, Operation::Apply, "", req.subresource);
    let last = managers.get(&key).cloned();
    let mut fields = fieldset(applied, schema);
    if let Some(r) = req.reset_fields {
        fields = fields.recursive_difference(r);
    }
    let entry = ManagedFieldsEntry::new(
        manager.to_owned(),
        Operation::Apply,
        req.api_version.to_owned(),
        req.subresource.to_owned(),
        last.as_ref().and_then(|l| l.time.clone()),
        fields,
    );
    managers.insert(key.clone(), entry);
    let mut merged = merge(&live_obj, applied, schema);
    if let Some(last) = &last {
        merged = prune(&merged, &managers, last.fields(), schema);
    }

    let cmp = compare_normalized(&live_obj, &merged, &zero, schema)
        .map_err(|e| ApplyError::Internal(format!("failed to compare objects: {e}")))?
        .filtered(req.reset_fields);
    let changed = cmp.changed();
    let mut conflicts = Vec::new();
    for (k, e) in &managers {
        if *k == key {
            continue;
        }
        for path in e.fields().intersection(&changed).paths() {
            conflicts.push(Conflict {
                manager: e.manager.clone(),
                operation: e.operation,
                api_version: e.api_version.clone(),
                subresource: e.subresource.clone(),
                path,
            });
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(ApplyError::Conflict(Conflicts(conflicts)));
    }
    for (k, e) in managers.iter_mut() {
        if *k != key {
            e.remove_fields(&changed);
            e.remove_fields(&cmp.removed);
        }
    }
    managers.retain(|_, e| !e.fields().is_empty());
    if let Some(e) = managers.get_mut(&key) {
        e.remove_fields(strip_set());
    }
    managers.retain(|_, e| !e.fields().is_empty());

    // Upstream only stamps the applier's time when the object changed; a no-op apply keeps the live object.
    if value::equal(&live_obj, &merged) {
        return Ok((without_managed_fields(&live_obj), managers));
    }
    if let Some(e) = managers.get_mut(&key) {
        e.time = Some(req.now.to_owned());
    }
    Ok((merged, managers))
}

/// `namespace/name; group/version, Kind=kind` of the applied object, as upstream's errors name it.
fn describe(applied: &Value) -> String {
    let meta =
        |f: &str| applied.pointer(&format!("/metadata/{f}")).and_then(Value::as_str).unwrap_or_default().to_owned();
    let api_version = applied.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = applied.get("kind").and_then(Value::as_str).unwrap_or_default();
    format!("{}/{}; {}", meta("namespace"), meta("name"), gvk(api_version, kind))
}

/// Removes from `merged` what the applier owned last time (`last`), no longer applies, and nobody else
/// owns (upstream `prune` with `addBackOwnedItems` and `addBackDanglingItems`).
fn prune(merged: &Value, managers: &Managers, last: &FieldSet, schema: &dyn Schema) -> Value {
    if last.is_empty() {
        return merged.clone();
    }
    let named = |s: &FieldSet| ensure_named_fields_are_members(s, schema);
    let last = named(last);
    // First remove everything the applier owned last time...
    let pruned = remove_items(merged, &last, schema);
    // ...then keep removed only what no manager (the applier's new configuration included) owns...
    let owned = managers.values().fold(FieldSet::new(), |acc, e| acc.union(e.fields()));
    let merged_set = named(&fieldset(merged, schema));
    let pruned_set = named(&fieldset(&pruned, schema));
    let pruned = remove_items(merged, &merged_set.difference(&pruned_set.union(&named(&owned))), schema);
    // ...and of that only what the applier owned, so fields other writers set but nobody owns survive.
    let pruned_set = named(&fieldset(&pruned, schema));
    remove_items(merged, &merged_set.difference(&pruned_set).intersection(&last), schema)
}
