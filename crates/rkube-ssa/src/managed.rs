//! `metadata.managedFields` in and out: the managers and the fields each owns, keyed by upstream's manager
//! identifier (the entry's JSON without time and fields, and without apiVersion for appliers), decoded with
//! upstream's checks, encoded in upstream's order, and capped at ten update managers.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::fieldset::FieldSet;
use crate::gojson;
use crate::rfc3339::unix_seconds;

/// The operation a managedFields entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update and non-apply patches.
    Update,
}

impl Operation {
    /// `Apply` or `Update`, as written in the entry.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One decoded `managedFields` entry.
#[derive(Debug, Clone)]
pub struct ManagedFieldsEntry {
    /// The field manager's name (`kubectl`, `kube-controller-manager`, ...).
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The API version the fields are expressed in.
    pub api_version: String,
    /// The subresource the write went to (`status`), or empty.
    pub subresource: String,
    /// When the manager last changed the object (RFC 3339, seconds), if recorded.
    pub time: Option<String>,
    /// The fields the manager owns (private so that every change goes through a method that forgets
    /// `encoded`).
    fields: FieldSet,
    /// `fieldsV1` exactly as decoded, while `fields` is unchanged: most writes leave most entries alone
    /// (another manager's fields, a lease renewal's own), and encoding every set anew was a third of tracking them.
    encoded: Option<Value>,
}

// Equal entries own equal fields; whether one still holds its stored encoding is not part of what it says.
impl PartialEq for ManagedFieldsEntry {
    fn eq(&self, other: &Self) -> bool {
        (&self.manager, self.operation, &self.api_version, &self.subresource, &self.time, &self.fields)
            == (&other.manager, other.operation, &other.api_version, &other.subresource, &other.time, &other.fields)
    }
}

impl Eq for ManagedFieldsEntry {}

impl ManagedFieldsEntry {
    /// Upstream's manager identifier: the entry without time and fields, and without apiVersion for appliers
    /// (so an applier keeps its identity across versions), as Go's JSON encoding writes it.
    pub(crate) fn key(&self) -> String {
        identifier(&self.manager, self.operation, &self.api_version, &self.subresource)
    }

    /// A new entry (encoded when it is written out).
    pub(crate) fn new(
        manager: String,
        operation: Operation,
        api_version: String,
        subresource: String,
        time: Option<String>,
        fields: FieldSet,
    ) -> Self {
        ManagedFieldsEntry { manager, operation, api_version, subresource, time, fields, encoded: None }
    }

    /// The fields the manager owns.
    pub fn fields(&self) -> &FieldSet {
        &self.fields
    }

    /// The fields, to change them: the entry is encoded anew.
    pub(crate) fn fields_mut(&mut self) -> &mut FieldSet {
        self.encoded = None;
        &mut self.fields
    }

    /// Takes `other`'s paths out of the fields; the entry keeps its encoding when it held none of them.
    pub(crate) fn remove_fields(&mut self, other: &FieldSet) {
        if self.fields.remove_all(other) {
            self.encoded = None;
        }
    }

    /// The fields, taken out of the entry.
    pub(crate) fn into_fields(self) -> FieldSet {
        self.fields
    }

    fn into_value(self) -> Value {
        let mut m = Map::new();
        if !self.manager.is_empty() {
            m.insert("manager".into(), json!(self.manager));
        }
        m.insert("operation".into(), json!(self.operation.as_str()));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        let fields = match self.encoded {
            Some(v) => v,
            None => self.fields.to_fields_v1(),
        };
        m.insert("fieldsV1".into(), fields);
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }
}

/// The managers of an object, by identifier.
pub(crate) type Managers = BTreeMap<String, ManagedFieldsEntry>;

/// Upstream's `BuildManagerIdentifier`: `{"manager":"kubectl","operation":"Update","apiVersion":"apps/v1"}`.
pub(crate) fn identifier(manager: &str, op: Operation, api_version: &str, subresource: &str) -> String {
    let mut out = String::from("{");
    let mut fields: Vec<(&str, &str)> = Vec::with_capacity(4);
    if !manager.is_empty() {
        fields.push(("manager", manager));
    }
    fields.push(("operation", op.as_str()));
    if op == Operation::Update && !api_version.is_empty() {
        fields.push(("apiVersion", api_version));
    }
    if !subresource.is_empty() {
        fields.push(("subresource", subresource));
    }
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        gojson::write_string(&mut out, k);
        out.push(':');
        gojson::write_string(&mut out, v);
    }
    out.push('}');
    out
}

fn str_field<'v>(e: &'v Map<String, Value>, name: &str, i: usize) -> Result<&'v str, String> {
    match e.get(name) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("managed fields entry {i}: {name} must be a string, got {other}")),
    }
}

fn decode_entry(v: &Value, i: usize, keep: bool) -> Result<ManagedFieldsEntry, String> {
    let Value::Object(e) = v else {
        return Err(format!("managed fields entry {i} is not an object"));
    };
    let operation = match str_field(e, "operation", i)? {
        "Apply" => Operation::Apply,
        "Update" => Operation::Update,
        _ => return Err("operation must be `Apply` or `Update`".to_owned()),
    };
    let api_version = str_field(e, "apiVersion", i)?;
    if api_version.is_empty() {
        return Err("apiVersion must not be empty".to_owned());
    }
    match str_field(e, "fieldsType", i)? {
        "FieldsV1" => {}
        "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
        other => return Err(format!("invalid fieldsType {} in managed fields entry {i}", gojson::go_quote(other))),
    }
    let (fields, encoded) = match e.get("fieldsV1") {
        None | Some(Value::Null) => (FieldSet::new(), None),
        Some(f) => {
            let set = FieldSet::from_fields_v1(f)
                .map_err(|err| format!("error decoding versioned set from entry {i}: {err}"))?;
            (set, keep.then(|| f.clone()))
        }
    };
    let time = match e.get("time") {
        Some(Value::String(t)) => Some(t.clone()),
        _ => None,
    };
    Ok(ManagedFieldsEntry {
        manager: str_field(e, "manager", i)?.to_owned(),
        operation,
        api_version: api_version.to_owned(),
        subresource: str_field(e, "subresource", i)?.to_owned(),
        time,
        fields,
        encoded,
    })
}

/// Decodes a `managedFields` list with upstream's checks; a later entry with the same identifier wins.
pub(crate) fn decode(list: Option<&Value>) -> Result<Managers, String> {
    decode_list(list, false)
}

/// [`decode`] for the stored object's list, which this server encoded: each entry keeps its `fieldsV1` and
/// is written out as it was unless its fields change (a client's list may spell a set differently, and is
/// encoded anew as upstream does).
pub(crate) fn decode_stored(list: Option<&Value>) -> Result<Managers, String> {
    decode_list(list, true)
}

fn decode_list(list: Option<&Value>, keep: bool) -> Result<Managers, String> {
    let mut out = Managers::new();
    match list {
        None | Some(Value::Null) => {}
        Some(Value::Array(entries)) => {
            for (i, v) in entries.iter().enumerate() {
                let e = decode_entry(v, i, keep)?;
                out.insert(e.key(), e);
            }
        }
        Some(other) => return Err(format!("managedFields must be a list, got {other}")),
    }
    Ok(out)
}

/// The entries of an object's `metadata.managedFields`, in stored order, checked as upstream decodes them.
pub fn managed_fields(obj: &Value) -> Result<Vec<ManagedFieldsEntry>, String> {
    match obj.pointer("/metadata/managedFields") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(entries)) => entries.iter().enumerate().map(|(i, v)| decode_entry(v, i, false)).collect(),
        Some(other) => Err(format!("managedFields must be a list, got {other}")),
    }
}

/// The `managedFields` list in upstream's order: appliers first, then by time, manager, apiVersion and
/// subresource. `None` when there are no managers (the field is then removed).
pub(crate) fn encode(m: Managers) -> Option<Value> {
    if m.is_empty() {
        return None;
    }
    let mut entries: Vec<ManagedFieldsEntry> = m.into_values().collect();
    entries.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| unix_seconds(p.time.as_deref()).cmp(&unix_seconds(q.time.as_deref())))
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
    Some(Value::Array(entries.into_iter().map(ManagedFieldsEntry::into_value).collect()))
}

/// Writes (or removes) `metadata.managedFields` on an object.
pub(crate) fn set_on(obj: &mut Value, m: Managers) {
    set_list(obj, encode(m));
}

/// Sets `metadata.managedFields` to `list`, or removes it for `None`.
pub(crate) fn set_list(obj: &mut Value, list: Option<Value>) {
    let Some(root) = obj.as_object_mut() else { return };
    match list {
        Some(l) => {
            let meta = root.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
            if let Some(meta) = meta.as_object_mut() {
                meta.insert("managedFields".into(), l);
            }
        }
        None => {
            if let Some(meta) = root.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
        }
    }
}

/// Whether a client asked to reset managedFields: an empty list or a single empty entry.
pub(crate) fn is_reset(list: Option<&Value>) -> bool {
    match list {
        Some(Value::Array(entries)) => match entries.as_slice() {
            [] => true,
            [Value::Object(e)] => e.iter().all(|(k, v)| match k.as_str() {
                "manager" | "operation" | "apiVersion" | "fieldsType" | "subresource" => {
                    v.is_null() || v.as_str() == Some("")
                }
                "time" | "fieldsV1" => v.is_null(),
                // Unknown fields are dropped by upstream's decoding, so they do not count.
                _ => true,
            }),
            _ => false,
        },
        _ => false,
    }
}

/// Upstream's cap on update managers: past `max`, the oldest are merged into an `ancient-changes`
/// manager per API version.
pub(crate) fn cap_update_managers(m: &mut Managers, max: usize) {
    let mut updaters: Vec<String> =
        m.iter().filter(|(_, e)| e.operation == Operation::Update).map(|(k, _)| k.clone()).collect();
    if updaters.len() <= max {
        return;
    }
    updaters.sort_by(|a, b| {
        let t = |k: &String| unix_seconds(m.get(k).and_then(|e| e.time.as_deref()));
        t(a).cmp(&t(b)).then_with(|| a.cmp(b))
    });
    let mut first_by_version: BTreeMap<String, String> = BTreeMap::new();
    let mut length = updaters.len();
    for key in updaters {
        if length <= max {
            break;
        }
        let Some(entry) = m.get(&key).cloned() else { continue };
        let version = entry.api_version.clone();
        let Some(first) = first_by_version.get(&version).cloned() else {
            first_by_version.insert(version, key);
            continue;
        };
        let bucket = identifier("ancient-changes", Operation::Update, &version, "");
        if !m.contains_key(&bucket)
            && let Some(mut f) = m.remove(&first)
        {
            f.manager = "ancient-changes".to_owned();
            f.subresource.clear();
            m.insert(bucket.clone(), f);
        }
        if let Some(b) = m.get_mut(&bucket) {
            let merged = entry.fields.union(&b.fields);
            *b.fields_mut() = merged;
            // The bucket takes the time of the newer update merged into it.
            b.time = entry.time.clone();
        }
        m.remove(&key);
        length -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(manager: &str, op: Operation, time: &str) -> ManagedFieldsEntry {
        ManagedFieldsEntry::new(
            manager.into(),
            op,
            "v1".into(),
            String::new(),
            Some(time.into()),
            FieldSet::from_fields_v1_str(&format!(r#"{{"f:data":{{"f:{manager}":{{}}}}}}"#)).expect("parses"),
        )
    }

    #[test]
    fn identifiers_match_upstream() {
        assert_eq!(
            identifier("kubectl", Operation::Apply, "apps/v1", ""),
            r#"{"manager":"kubectl","operation":"Apply"}"#
        );
        assert_eq!(
            identifier("kcm", Operation::Update, "apps/v1", "status"),
            r#"{"manager":"kcm","operation":"Update","apiVersion":"apps/v1","subresource":"status"}"#
        );
    }

    #[test]
    fn encode_orders_appliers_first_then_by_time() {
        let mut m = Managers::new();
        for e in [
            entry("b", Operation::Update, "2024-01-01T00:00:02Z"),
            entry("a", Operation::Update, "2024-01-01T00:00:03Z"),
            entry("z", Operation::Apply, "2024-01-01T00:00:09Z"),
        ] {
            m.insert(e.key(), e);
        }
        let list = encode(m.clone()).expect("entries");
        let names: Vec<&str> = list.as_array().into_iter().flatten().filter_map(|e| e["manager"].as_str()).collect();
        assert_eq!(names, ["z", "b", "a"]);
        let back = decode(Some(&list)).expect("decodes");
        // An entry holding its stored encoding is the same entry.
        assert_eq!(decode_stored(Some(&list)).expect("decodes"), back);
        assert_eq!(back, m);
    }

    #[test]
    fn decode_rejects_like_upstream() {
        assert_eq!(
            decode(Some(&json!([{"operation": "Patch", "apiVersion": "v1"}]))),
            Err("operation must be `Apply` or `Update`".to_owned())
        );
        assert_eq!(decode(Some(&json!([{"operation": "Apply"}]))), Err("apiVersion must not be empty".to_owned()));
        assert_eq!(
            decode(Some(&json!([{"operation": "Apply", "apiVersion": "v1"}]))),
            Err("missing fieldsType in managed fields entry 0".to_owned())
        );
        assert!(is_reset(Some(&json!([]))) && is_reset(Some(&json!([{}]))) && !is_reset(Some(&json!(null))));
        assert!(!is_reset(Some(&json!([{"manager": "x"}]))));
    }

    #[test]
    fn caps_update_managers_into_ancient_changes() {
        let mut m = Managers::new();
        for i in 0..12 {
            let e = entry(&format!("m{i:02}"), Operation::Update, &format!("2024-01-01T00:00:{i:02}Z"));
            m.insert(e.key(), e);
        }
        cap_update_managers(&mut m, 10);
        assert_eq!(m.len(), 10);
        let bucket = &m[&identifier("ancient-changes", Operation::Update, "v1", "")];
        assert_eq!(bucket.fields().to_fields_v1_string(), r#"{"f:data":{"f:m00":{},"f:m01":{},"f:m02":{}}}"#);
        assert_eq!(bucket.time.as_deref(), Some("2024-01-01T00:00:02Z"));
    }
}
