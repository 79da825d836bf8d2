//! `fieldValidation` (Strict, Warn, Ignore): unknown fields in a request body are refused with upstream's
//! `strict decoding error`, or dropped with a `Warning` header, or dropped silently — never stored, since
//! upstream's typed decoding would not keep them either.

use std::sync::Mutex;

use rkube_apimachinery::ApiError;
use serde_json::Value;

/// The `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop them and warn (upstream's default).
    #[default]
    Warn,
    /// Refuse the request (kubectl's default since 1.27: `--validate=strict`).
    Strict,
}

impl Mode {
    /// Parses the query value.
    pub fn parse(v: Option<&str>) -> Result<Mode, ApiError> {
        match v {
            None | Some("") | Some("Warn") => Ok(Mode::Warn),
            Some("Strict") => Ok(Mode::Strict),
            Some("Ignore") => Ok(Mode::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// Warnings collected while handling one request, sent back as `Warning: 299 - "..."` headers.
#[derive(Debug, Default)]
pub struct Warnings(Mutex<Vec<String>>);

impl Warnings {
    /// Adds one warning (once: a write retried after a conflict checks its body again, and upstream's
    /// warning recorder drops repeats too).
    pub fn push(&self, w: String) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !all.contains(&w) {
            all.push(w);
        }
    }
    /// All warnings so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Checks `obj` for unknown fields under `mode`, removing them unless the request is refused.
pub fn check(
    docs: &rkube_openapi::Documents,
    mode: Mode,
    obj: &mut Value,
    warnings: &Warnings,
) -> Result<(), ApiError> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_owned();
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
    let unknown = docs.unknown_fields(&api_version, &kind, obj);
    if unknown.is_empty() {
        return Ok(());
    }
    if mode == Mode::Strict {
        let msg = rkube_openapi::strict_decoding_error(&unknown).unwrap_or_default();
        return Err(ApiError::bad_request(msg));
    }
    for path in &unknown {
        remove_path(obj, path);
        if mode == Mode::Warn {
            warnings.push(rkube_openapi::unknown_field_message(path));
        }
    }
    Ok(())
}

/// Removes the field at a strict-decoding path such as `spec.containers[0].imagee`.
fn remove_path(obj: &mut Value, path: &str) {
    let mut segs: Vec<(String, Vec<usize>)> = Vec::new();
    for part in path.split('.') {
        let mut name = part;
        let mut idx = Vec::new();
        while let Some(open) = name.rfind('[') {
            let Some(i) = name[open + 1..].strip_suffix(']').and_then(|n| n.parse().ok()) else { break };
            idx.insert(0, i);
            name = &name[..open];
        }
        segs.push((name.to_owned(), idx));
    }
    let Some((last, last_idx)) = segs.pop() else { return };
    let mut cur = obj;
    for (name, idx) in segs {
        let Some(next) = cur.get_mut(&name) else { return };
        cur = next;
        for i in idx {
            let Some(next) = cur.get_mut(i) else { return };
            cur = next;
        }
    }
    if last_idx.is_empty()
        && let Some(o) = cur.as_object_mut()
    {
        o.remove(&last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn removes_nested_paths() {
        let mut v = json!({"spec": {"containers": [{"name": "a", "imagee": "x"}], "foo": 1}});
        remove_path(&mut v, "spec.containers[0].imagee");
        remove_path(&mut v, "spec.foo");
        assert_eq!(v, json!({"spec": {"containers": [{"name": "a"}]}}));
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::parse(Some("Strict")).expect("strict"), Mode::Strict);
        assert_eq!(Mode::parse(None).expect("default"), Mode::Warn);
        assert_eq!(Mode::parse(Some("bogus")).expect_err("bad").code, 400);
    }
}
