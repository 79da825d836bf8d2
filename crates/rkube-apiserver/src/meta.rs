//! Object metadata rules shared by every kind: name formats, generateName, uid, timestamps,
//! and the fields clients may not set.

use rkube_apimachinery::Cause;
use serde_json::{Map, Value, json};

/// Which name format a kind requires, with upstream's explanation texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain (most kinds).
    Subdomain,
    /// RFC 1123 label (namespaces).
    Label,
    /// RFC 1035 label (services).
    Rfc1035,
    /// Path segment only (RBAC objects, events may use anything but `/` and `%`).
    PathSegment,
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const RFC1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

/// Checks `name` against the rule; the causes are reported at `field`.
pub fn validate_name(rule: NameRule, name: &str, field: &str) -> Vec<Cause> {
    let v = json!(name);
    let mut causes = Vec::new();
    match rule {
        NameRule::Subdomain => {
            if name.len() > 253 {
                causes.push(Cause::invalid(field, &v, "must be no more than 253 characters"));
            }
            if !name.split('.').all(is_label) {
                causes.push(Cause::invalid(field, &v, SUBDOMAIN_MSG));
            }
        }
        NameRule::Label => {
            if name.len() > 63 {
                causes.push(Cause::invalid(field, &v, "must be no more than 63 characters"));
            }
            if !is_label(name) {
                causes.push(Cause::invalid(field, &v, LABEL_MSG));
            }
        }
        NameRule::Rfc1035 => {
            if name.len() > 63 {
                causes.push(Cause::invalid(field, &v, "must be no more than 63 characters"));
            }
            if !is_label(name) || !name.as_bytes()[0].is_ascii_lowercase() {
                causes.push(Cause::invalid(field, &v, RFC1035_MSG));
            }
        }
        NameRule::PathSegment => {
            if name == "." || name == ".." {
                causes.push(Cause::invalid(field, &v, &format!("may not be '{name}'")));
            }
            for bad in ["/", "%"] {
                if name.contains(bad) {
                    causes.push(Cause::invalid(field, &v, &format!("may not contain '{bad}'")));
                }
            }
        }
    }
    causes
}

/// The metadata object of `obj`, created if missing (callers only pass JSON objects; anything else is replaced).
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let root = obj.as_object_mut().expect("made an object above");
    let m = root.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut().expect("made an object above")
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// The object's labels as a sorted map.
pub fn labels(obj: &Value) -> std::collections::BTreeMap<String, String> {
    obj.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect())
        .unwrap_or_default()
}

/// A fresh name from `generateName`: the prefix plus five characters from upstream's alphabet.
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut prefix = prefix.to_owned();
    // Upstream keeps generated names within 63 characters by trimming the prefix.
    if prefix.len() > 58 {
        prefix.truncate(58);
    }
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let suffix: String = bytes.iter().take(5).map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
    format!("{prefix}{suffix}")
}

/// A new object uid.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Now, as the API writes timestamps (`2024-05-01T10:00:00Z`).
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Now with microseconds (`MicroTime`, used by leases and events.k8s.io).
pub fn now_micro() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        assert!(validate_name(NameRule::Subdomain, "a.b-c", "metadata.name").is_empty());
        let c = validate_name(NameRule::Subdomain, "Bad_Name", "metadata.name");
        assert_eq!(c.len(), 1);
        assert!(c[0].message.starts_with("Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"));
        assert!(!validate_name(NameRule::Label, "a.b", "metadata.name").is_empty());
        assert!(!validate_name(NameRule::Rfc1035, "1abc", "metadata.name").is_empty());
        assert!(validate_name(NameRule::PathSegment, "system:admin", "metadata.name").is_empty());
        assert!(!validate_name(NameRule::PathSegment, "a/b", "metadata.name").is_empty());
    }

    #[test]
    fn generated_names_keep_the_prefix() {
        let n = generate_name("web-");
        assert!(n.starts_with("web-") && n.len() == 9);
        assert!(validate_name(NameRule::Subdomain, &n, "metadata.name").is_empty());
    }
}
