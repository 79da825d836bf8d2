//! ConfigMaps and Secrets: key syntax, the 1 MiB total, base64 values, secret types and their required keys,
//! `stringData` folded into `data` (the v1 conversion), and `immutable: true`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rkube_apimachinery::Cause;
use serde_json::{Value, json};

use crate::errs::{forbidden, invalid, invalid_str, key, required, too_long};
use crate::names::config_map_key;
use crate::value::{child_mut, get, s, set_default_str};

/// The most data a ConfigMap or Secret may hold (`core.MaxSecretSize`).
pub const MAX_SIZE: usize = 1024 * 1024;

fn immutable(v: &Value) -> bool {
    v.get("immutable").and_then(Value::as_bool) == Some(true)
}

/// The v1 decoder's base64 check, with Go's error wording.
fn decode(v: &str) -> Result<Vec<u8>, String> {
    STANDARD.decode(v).map_err(|e| match e {
        base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => {
            format!("illegal base64 data at input byte {at}")
        }
        base64::DecodeError::InvalidLength(at) => format!("illegal base64 data at input byte {at}"),
        base64::DecodeError::InvalidPadding => format!("illegal base64 data at input byte {}", v.len()),
    })
}

/// ConfigMaps have no defaults that show in JSON (an empty `data` map is omitted); nothing to do.
pub fn default_config_map(_obj: &mut Value) {}

/// Validates a ConfigMap on create or update.
pub fn validate_config_map(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut errs = Vec::new();
    if let Some(old) = old
        && immutable(old)
    {
        if !immutable(obj) {
            errs.push(forbidden("immutable", "field is immutable when `immutable` is set"));
        }
        for k in ["data", "binaryData"] {
            if !crate::podspec::same(get(obj, k), get(old, k)) {
                errs.push(forbidden(k, "field is immutable when `immutable` is set"));
            }
        }
    }
    let data = crate::value::obj(obj, "data");
    let binary = crate::value::obj(obj, "binaryData");
    let mut total = 0;
    for (k, v) in data.into_iter().flatten() {
        let p = key("data", k);
        errs.extend(config_map_key(k).iter().map(|m| invalid_str(&p, k, m)));
        if binary.is_some_and(|b| b.contains_key(k)) {
            errs.push(invalid_str(&p, k, "duplicate of key present in binaryData"));
        }
        total += v.as_str().map_or(0, str::len);
    }
    for (k, v) in binary.into_iter().flatten() {
        let p = key("binaryData", k);
        errs.extend(config_map_key(k).iter().map(|m| invalid_str(&p, k, m)));
        match v.as_str().map(decode) {
            Some(Ok(bytes)) => total += bytes.len(),
            Some(Err(e)) => errs.push(invalid_str(&p, "<binary data>", &e)),
            None => {}
        }
    }
    if total > MAX_SIZE {
        // Upstream reports the size at the object root (an empty path).
        errs.push(too_long("", MAX_SIZE));
    }
    errs
}

/// Defaults a Secret: type Opaque, and `stringData` merged into `data` (base64) as the v1 conversion does.
pub fn default_secret(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else { return };
    set_default_str(o, "type", "Opaque");
    let string_data = o.remove("stringData");
    if let Some(sd) = string_data.as_ref().and_then(Value::as_object).filter(|m| !m.is_empty()) {
        let data = child_mut(obj, "data");
        if let Some(data) = data {
            for (k, v) in sd {
                if let Some(v) = v.as_str() {
                    data.insert(k.clone(), json!(STANDARD.encode(v)));
                }
            }
        }
    }
}

/// Validates a Secret on create or update.
pub fn validate_secret(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut errs = Vec::new();
    if let Some(old) = old {
        if s(obj, "type") != s(old, "type") {
            errs.push(invalid("type", obj.get("type").unwrap_or(&json!("")), "field is immutable"));
        }
        if immutable(old) {
            if !immutable(obj) {
                errs.push(forbidden("immutable", "field is immutable when `immutable` is set"));
            }
            if !crate::podspec::same(get(obj, "data"), get(old, "data")) {
                errs.push(forbidden("data", "field is immutable when `immutable` is set"));
            }
        }
    }
    let mut total = 0;
    let mut decoded = std::collections::BTreeMap::new();
    for (k, v) in crate::value::obj(obj, "data").into_iter().flatten() {
        let p = key("data", k);
        errs.extend(config_map_key(k).iter().map(|m| invalid_str(&p, k, m)));
        match v.as_str().map(decode) {
            Some(Ok(bytes)) => {
                total += bytes.len();
                decoded.insert(k.as_str(), bytes);
            }
            Some(Err(e)) => errs.push(invalid_str(&p, "<secret contents redacted>", &e)),
            None => {
                decoded.insert(k.as_str(), Vec::new());
            }
        }
    }
    if total > MAX_SIZE {
        errs.push(too_long("data", MAX_SIZE));
    }
    let has = |k: &str| decoded.contains_key(k);
    match s(obj, "type") {
        "kubernetes.io/service-account-token" => {
            let name = obj
                .pointer("/metadata/annotations/kubernetes.io~1service-account.name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if name.is_empty() {
                errs.push(required("metadata.annotations[kubernetes.io/service-account.name]", ""));
            }
        }
        t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let k = if t == "kubernetes.io/dockercfg" { ".dockercfg" } else { ".dockerconfigjson" };
            match decoded.get(k) {
                None => errs.push(required(&key("data", k), "")),
                Some(bytes) => {
                    if let Err(e) = serde_json::from_slice::<serde_json::Map<String, Value>>(bytes) {
                        errs.push(invalid_str(
                            &key("data", k),
                            "<secret contents redacted>",
                            &go_json_error(&e, bytes),
                        ));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(required("data[username]", ""));
            errs.push(required("data[password]", ""));
        }
        "kubernetes.io/ssh-auth" if decoded.get("ssh-privatekey").is_none_or(Vec::is_empty) => {
            errs.push(required("data[ssh-privatekey]", ""));
        }
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !has(k) {
                    errs.push(required(&key("data", k), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

/// Go's `encoding/json` wording for the common errors.
fn go_json_error(e: &serde_json::Error, bytes: &[u8]) -> String {
    if bytes.iter().all(u8::is_ascii_whitespace) || e.is_eof() {
        return "unexpected end of JSON input".to_owned();
    }
    let first = bytes.iter().find(|c| !c.is_ascii_whitespace()).copied().unwrap_or(b' ');
    if first != b'{'
        && first != b'['
        && first != b'"'
        && !first.is_ascii_digit()
        && !matches!(first, b't' | b'f' | b'n' | b'-')
    {
        return format!("invalid character '{}' looking for beginning of value", first as char);
    }
    if first != b'{' {
        return "json: cannot unmarshal non-object into Go value of type map[string]interface {}".to_owned();
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(c: &[Cause]) -> Vec<String> {
        c.iter().map(|c| format!("{}: {}", c.field, c.message)).collect()
    }

    #[test]
    fn config_maps() {
        let cm = json!({"data": {"ok.key": "v", "bad key": "v"}});
        assert_eq!(
            msgs(&validate_config_map(&cm, None)),
            vec![
                "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
            ]
        );
        let big = json!({"data": {"a": "x".repeat(MAX_SIZE + 1)}});
        assert_eq!(msgs(&validate_config_map(&big, None)), vec![": Too long: may not be more than 1048576 bytes"]);
        let old = json!({"immutable": true, "data": {"a": "1"}});
        let new = json!({"immutable": true, "data": {"a": "2"}});
        assert_eq!(
            msgs(&validate_config_map(&new, Some(&old))),
            vec!["data: Forbidden: field is immutable when `immutable` is set"]
        );
    }

    #[test]
    fn secrets() {
        let mut sec = json!({"stringData": {"user": "admin"}, "data": {"pw": "c2VjcmV0"}});
        default_secret(&mut sec);
        assert_eq!(sec, json!({"type": "Opaque", "data": {"pw": "c2VjcmV0", "user": "YWRtaW4="}}));
        assert!(validate_secret(&sec, None).is_empty());
        let tls = json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
        assert_eq!(msgs(&validate_secret(&tls, None)), vec!["data[tls.key]: Required value"]);
        let bad = json!({"type": "Opaque", "data": {"a": "not base64!"}});
        assert_eq!(
            msgs(&validate_secret(&bad, None)),
            vec!["data[a]: Invalid value: \"<secret contents redacted>\": illegal base64 data at input byte 3"]
        );
        let docker =
            json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": STANDARD.encode("x")}});
        assert_eq!(
            msgs(&validate_secret(&docker, None)),
            vec![
                "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": invalid character 'x' looking for beginning of value"
            ]
        );
        let changed = json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA==", "tls.key": "eA=="}});
        assert_eq!(
            msgs(&validate_secret(&changed, Some(&sec))),
            vec!["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
        );
    }
}
