//! The client-side apply annotation (`kubectl.kubernetes.io/last-applied-configuration`) during server-side
//! apply by `kubectl`: fields it still describes may be taken over without conflict (upgrading from
//! client-side apply), and it is rewritten to the new configuration so both kinds of apply keep agreeing.

use serde_json::{Map, Value};

use crate::compare::compare;
use crate::fieldset::FieldSet;
use crate::gojson;
use crate::request::Request;
use crate::schema::Schema;
use crate::typed::{fieldset, validate};

/// The annotation kubectl's client-side apply keeps.
pub(crate) const ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Upstream's limit on the total size of an object's annotations (keys plus values).
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

fn annotation(obj: &Value) -> Option<&str> {
    obj.get("metadata")?.get("annotations")?.get(ANNOTATION)?.as_str()
}

/// Whether the object carries a non-empty last-applied annotation.
pub(crate) fn has(obj: &Value) -> bool {
    annotation(obj).is_some_and(|s| !s.is_empty())
}

/// The fields a conflicting `kubectl` apply may take over: those the last-applied configuration sets to
/// the value the live object still has. `None` when there is no usable annotation.
pub(crate) fn allowed_conflicts(live: &Value, req: &Request<'_>, schema: &dyn Schema) -> Option<FieldSet> {
    let text = annotation(live).filter(|s| !s.is_empty())?;
    let last: Value = serde_json::from_str(text).ok()?;
    if last.get("apiVersion").and_then(Value::as_str) != Some(req.api_version) {
        return None;
    }
    validate(&last, schema, false).ok()?;
    validate(live, schema, false).ok()?;
    let cmp = compare(&last, live, schema).ok()?;
    Some(fieldset(&last, schema).difference(&cmp.modified).difference(&cmp.added).difference(&cmp.removed))
}

/// Sets the annotation to `applied` without the annotation itself, encoded as kubectl encodes it (Go JSON
/// with a trailing newline); dropped when it would push the annotations past upstream's size limit.
pub(crate) fn set(obj: &mut Value, applied: &Value) {
    let mut config = applied.clone();
    if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut) {
        let now_empty = meta.get_mut("annotations").and_then(Value::as_object_mut).is_some_and(|a| {
            a.remove(ANNOTATION);
            a.is_empty()
        });
        if now_empty {
            meta.remove("annotations");
        }
    }
    let mut text = gojson::to_string(&config);
    text.push('\n');
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    let annotations = meta.entry("annotations").or_insert_with(|| Value::Object(Map::new()));
    let Some(annotations) = annotations.as_object_mut() else { return };
    annotations.insert(ANNOTATION.to_owned(), Value::String(text));
    let size: usize = annotations.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum();
    if size > TOTAL_ANNOTATION_SIZE_LIMIT {
        annotations.remove(ANNOTATION);
    }
}
