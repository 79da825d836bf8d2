//! CustomResourceDefinitions (apiextensions.k8s.io/v1): defaults (singular, listKind, conversion None, stored
//! versions) and the main spec rules (group with a dot, name `<plural>.<group>`, names as DNS-1035 labels, scope,
//! exactly one storage version, a schema per version with an object root), plus what may not change.

use std::collections::BTreeSet;

use rkube_apimachinery::Cause;
use serde_json::{Value, json};

use crate::errs::{child, forbidden, idx, invalid, invalid_raw, invalid_str, json_text, not_supported_str, required};
use crate::names::{dns1035_label, dns1123_subdomain};
use crate::value::{arr, child_mut, get, s};

/// Defaults a CRD: `names.singular` from the kind, `names.listKind` = kind + "List", conversion strategy None,
/// webhook service port 443, and `status.storedVersions` from the storage version.
pub fn default_custom_resource_definition(obj: &mut Value) {
    let storage = arr(obj.get("spec").unwrap_or(&Value::Null), "versions")
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .map(|v| s(v, "name").to_owned());
    if let Some(spec) = child_mut(obj, "spec") {
        if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
            let kind = names.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
            if names.get("singular").and_then(Value::as_str).is_none_or(str::is_empty) {
                names.insert("singular".into(), json!(kind.to_lowercase()));
            }
            if names.get("listKind").and_then(Value::as_str).is_none_or(str::is_empty) && !kind.is_empty() {
                names.insert("listKind".into(), json!(format!("{kind}List")));
            }
        }
        crate::value::set_default(spec, "conversion", json!({"strategy": "None"}));
        if let Some(svc) = spec
            .get_mut("conversion")
            .and_then(|c| c.pointer_mut("/webhook/clientConfig/service"))
            .and_then(Value::as_object_mut)
        {
            crate::value::set_default(svc, "port", json!(443));
        }
    }
    if let Some(storage) = storage
        && let Some(st) = child_mut(obj, "status")
        && st.get("storedVersions").and_then(Value::as_array).is_none_or(Vec::is_empty)
    {
        st.insert("storedVersions".into(), json!([storage]));
    }
}

fn validate_names(names: &Value, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let join = |m: Vec<String>| m.join(",");
    for k in ["plural", "singular"] {
        let v = s(names, k);
        if !v.is_empty() && !dns1035_label(v).is_empty() {
            errs.push(invalid_str(&child(f, k), v, &join(dns1035_label(v))));
        }
    }
    for k in ["kind", "listKind"] {
        let v = s(names, k);
        let m = dns1035_label(&v.to_lowercase());
        if !v.is_empty() && !m.is_empty() {
            errs.push(invalid_str(
                &child(f, k),
                v,
                &format!("may have mixed case, but should otherwise match: {}", join(m)),
            ));
        }
    }
    for (i, sn) in arr(names, "shortNames").iter().enumerate() {
        let sn = sn.as_str().unwrap_or_default();
        let m = dns1035_label(sn);
        if !m.is_empty() {
            errs.push(invalid_str(&idx(&child(f, "shortNames"), i), sn, &join(m)));
        }
    }
    if !s(names, "kind").is_empty() && s(names, "kind") == s(names, "listKind") {
        errs.push(invalid_str(&child(f, "listKind"), s(names, "listKind"), "kind and listKind may not be the same"));
    }
    for (i, c) in arr(names, "categories").iter().enumerate() {
        let c = c.as_str().unwrap_or_default();
        let m = dns1035_label(c);
        if !m.is_empty() {
            errs.push(invalid_str(&idx(&child(f, "categories"), i), c, &join(m)));
        }
    }
    errs
}

/// Validates a CRD on create or update.
pub fn validate_custom_resource_definition(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let empty = json!({});
    let spec = obj.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let names = spec.get("names").unwrap_or(&Value::Null);
    let mut errs = Vec::new();
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let group = s(spec, "group");
    if name != format!("{}.{group}", s(names, "plural")) {
        errs.push(invalid_str("metadata.name", name, "must be spec.names.plural+\".\"+spec.group"));
    }
    if group.is_empty() {
        errs.push(required("spec.group", ""));
    } else if !dns1123_subdomain(group).is_empty() {
        errs.push(invalid_str("spec.group", group, &dns1123_subdomain(group).join(",")));
    } else if group.split('.').count() < 2 {
        errs.push(invalid_str("spec.group", group, "should be a domain with at least one dot"));
    }
    match s(spec, "scope") {
        "" => errs.push(required("spec.scope", "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(not_supported_str("spec.scope", other, &["Cluster", "Namespaced"])),
    }
    let versions = arr(spec, "versions");
    let raw_versions = json_text(spec.get("versions").unwrap_or(&json!([])));
    let mut storage = 0;
    let mut seen = BTreeSet::new();
    let mut unique = true;
    for (i, v) in versions.iter().enumerate() {
        let p = idx("spec.versions", i);
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage += 1;
        }
        let vn = s(v, "name");
        unique &= seen.insert(vn);
        let m = dns1035_label(vn);
        if !m.is_empty() {
            errs.push(invalid_str(&child(&p, "name"), vn, &m.join(",")));
        }
        let schema_path = child(&child(&p, "schema"), "openAPIV3Schema");
        match v.pointer("/schema/openAPIV3Schema").filter(|s| !s.is_null()) {
            None if old.is_none() => errs.push(required(&schema_path, "schemas are required")),
            None => {}
            Some(root) => match s(root, "type") {
                "" => errs.push(required(&child(&schema_path, "type"), "must not be empty at the root")),
                "object" => {}
                t => errs.push(invalid_str(&child(&schema_path, "type"), t, "must be object at the root")),
            },
        }
    }
    if !unique {
        errs.push(invalid_raw("spec.versions", &raw_versions, "must contain unique version names"));
    }
    if storage != 1 {
        errs.push(invalid_raw(
            "spec.versions",
            &raw_versions,
            "must have exactly one version marked as storage version",
        ));
    }
    for k in ["plural", "singular", "kind", "listKind"] {
        if s(names, k).is_empty() {
            errs.push(required(&child("spec.names", k), ""));
        }
    }
    errs.extend(validate_names(names, "spec.names"));
    if let Some(conv) = get(spec, "conversion") {
        match s(conv, "strategy") {
            "" => errs.push(required("spec.conversion.strategy", "")),
            "None" => {
                if get(conv, "webhook").is_some() {
                    errs.push(forbidden(
                        "spec.conversion.webhookClientConfig",
                        "should not be set when strategy is not set to Webhook",
                    ));
                }
            }
            "Webhook" => {
                let cc = conv.pointer("/webhook/clientConfig").filter(|c| !c.is_null());
                match cc {
                    None => errs.push(required(
                        "spec.conversion.webhookClientConfig",
                        "required when strategy is set to Webhook",
                    )),
                    Some(cc) if get(cc, "url").is_some() == get(cc, "service").is_some() => {
                        errs.push(required(
                            "spec.conversion.webhookClientConfig",
                            "exactly one of url or service is required",
                        ));
                    }
                    Some(_) => {}
                }
            }
            other => errs.push(not_supported_str("spec.conversion.strategy", other, &["None", "Webhook"])),
        }
    }
    if let Some(old) = old {
        let old_spec = old.get("spec").unwrap_or(&empty);
        let established = arr(old.get("status").unwrap_or(&Value::Null), "conditions")
            .iter()
            .any(|c| s(c, "type") == "Established" && s(c, "status") == "True");
        let mut immutable = vec![
            ("spec.group", spec.get("group"), old_spec.get("group")),
            ("spec.names.plural", names.get("plural"), old_spec.pointer("/names/plural")),
        ];
        if established {
            immutable.insert(0, ("spec.names.kind", names.get("kind"), old_spec.pointer("/names/kind")));
            immutable.insert(0, ("spec.scope", spec.get("scope"), old_spec.get("scope")));
        }
        for (f, new, was) in immutable {
            if !crate::podspec::same(new, was) {
                errs.push(invalid(f, new.unwrap_or(&Value::Null), "field is immutable"));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(c: &[Cause]) -> Vec<String> {
        c.iter().map(|c| format!("{}: {}", c.field, c.message)).collect()
    }

    fn crd() -> Value {
        json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    }

    #[test]
    fn defaults_and_valid() {
        let mut c = crd();
        default_custom_resource_definition(&mut c);
        assert_eq!(
            c["spec"]["names"],
            json!({"plural": "widgets", "kind": "Widget", "singular": "widget", "listKind": "WidgetList"})
        );
        assert_eq!(c["spec"]["conversion"], json!({"strategy": "None"}));
        assert_eq!(c["status"]["storedVersions"], json!(["v1"]));
        assert!(
            validate_custom_resource_definition(&c, None).is_empty(),
            "{:?}",
            validate_custom_resource_definition(&c, None)
        );
    }

    #[test]
    fn errors() {
        let mut c = crd();
        c["metadata"]["name"] = json!("widgets");
        c["spec"]["group"] = json!("example");
        c["spec"]["versions"][0]["storage"] = json!(false);
        c["spec"]["versions"][0].as_object_mut().map(|v| v.remove("schema"));
        default_custom_resource_definition(&mut c);
        let m = msgs(&validate_custom_resource_definition(&c, None));
        assert_eq!(m[0], "metadata.name: Invalid value: \"widgets\": must be spec.names.plural+\".\"+spec.group");
        assert_eq!(m[1], "spec.group: Invalid value: \"example\": should be a domain with at least one dot");
        assert_eq!(m[2], "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required");
        assert!(
            m[3].starts_with("spec.versions: Invalid value: ")
                && m[3].ends_with("must have exactly one version marked as storage version"),
            "{m:?}"
        );
    }
}
