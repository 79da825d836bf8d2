//! An object's JSON with its resourceVersion, made from the bytes it is stored as. Upstream keeps
//! `metadata.resourceVersion` out of storage (it is the revision), so the stored bytes are the object's JSON but
//! for that one member; adding it is cheaper than serializing the object again. serde_json's `RawValue` carries
//! every other member through as it is, unparsed; only the two levels down to `metadata` are split into members.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

/// `stored` with `metadata.resourceVersion` set to `rv`, written as serde_json writes a `Value` (compact, members
/// in key order), so for bytes serde_json wrote the result is byte for byte the object's serialization. `None`
/// when `stored` is not an object with a `metadata` object, or already has a resourceVersion.
pub(crate) fn with_resource_version(stored: &[u8], rv: &str) -> Option<Vec<u8>> {
    let top: BTreeMap<String, &RawValue> = serde_json::from_slice(stored).ok()?;
    let meta_raw = top.get("metadata")?.get();
    let meta: BTreeMap<String, &RawValue> = serde_json::from_str(meta_raw).ok()?;
    if meta.contains_key("resourceVersion") {
        return None;
    }
    let rv = serde_json::to_string(rv).ok()?;
    let mut members: BTreeMap<&str, &str> = meta.iter().map(|(k, v)| (k.as_str(), v.get())).collect();
    members.insert("resourceVersion", &rv);
    let meta_json = object(meta_raw.len() + rv.len() + 20, members.into_iter());
    let top_json = object(
        stored.len() + rv.len() + 20,
        top.iter().map(|(k, v)| match k.as_str() {
            "metadata" => (k.as_str(), meta_json.as_str()),
            _ => (k.as_str(), v.get()),
        }),
    );
    Some(top_json.into_bytes())
}

/// `{"k":v,...}` from members already in key order, with the keys escaped as serde_json escapes them.
fn object<'a>(capacity: usize, members: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::with_capacity(capacity);
    out.push('{');
    for (i, (k, v)) in members.enumerate() {
        if i > 0 {
            out.push(',');
        }
        // A &str always serializes.
        out.push_str(&serde_json::to_string(k).unwrap_or_default());
        out.push(':');
        out.push_str(v);
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::with_resource_version;

    /// What the cache would otherwise serialize: the object with its resourceVersion.
    fn expected(mut v: Value, rv: &str) -> Vec<u8> {
        v["metadata"]["resourceVersion"] = json!(rv);
        serde_json::to_vec(&v).expect("serializes")
    }

    #[test]
    fn gives_the_bytes_serializing_the_object_would() {
        let objects = [
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "default", "uid": "u-1", "labels": {"a": "b"},
                    "managedFields": [{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}}}}}}]},
                "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m"}}}]},
                "status": {"phase": "Pending", "ratio": 1.5, "big": 12345678901234_i64, "neg": -3, "ok": true,
                    "none": null}}),
            // Keys that sort before and after resourceVersion, escapes and non-ASCII in keys and values.
            json!({"metadata": {"annotations": {"q\"uote": "line\nbreak", "ü": "☃"}, "uid": "x", "zz": []},
                "data": {"\u{1}": "\t"}}),
            json!({"kind": "Empty", "metadata": {}}),
            json!({"metadata": {"name": "only"}}),
        ];
        for v in objects {
            let stored = serde_json::to_vec(&v).expect("serializes");
            let got = with_resource_version(&stored, "42").expect("an object with metadata");
            assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected(v, "42")));
        }
    }

    #[test]
    fn declines_what_it_cannot_complete() {
        for bad in [
            &b"[]"[..],
            b"not json",
            b"{\"kind\":\"X\"}",
            b"{\"metadata\":[]}",
            b"{\"metadata\":{\"resourceVersion\":\"7\"}}",
        ] {
            assert_eq!(with_resource_version(bad, "1"), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    /// Bytes another writer stored with spaces or other key orders still give the same object.
    #[test]
    fn other_spellings_give_the_same_object() {
        let stored = br#"{ "spec" : {"b": 1, "a": [1, 2]}, "metadata" : { "uid": "u", "name": "n" } }"#;
        let got: Value = serde_json::from_slice(&with_resource_version(stored, "9").expect("completes")).expect("JSON");
        let mut want: Value = serde_json::from_slice(stored).expect("JSON");
        want["metadata"]["resourceVersion"] = json!("9");
        assert_eq!(got, want);
    }
}
