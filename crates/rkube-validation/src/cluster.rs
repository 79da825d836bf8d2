//! Cluster-scoped core kinds and service accounts: Namespace (name label, phase, finalizers), ServiceAccount,
//! and Node (podCIDR/podCIDRs, taints, capacity, what may change on update).

use std::collections::{BTreeMap, BTreeSet};

use rkube_apimachinery::Cause;
use serde_json::{Value, json};

use crate::errs::{child, duplicate, duplicate_raw, forbidden, go_strings, idx, invalid_raw, invalid_str};
use crate::names::qualified_name;
use crate::value::{arr, child_mut, get, s, set_default_str, str_list};

/// Defaults a Namespace: the `kubernetes.io/metadata.name` label and phase Active.
pub fn default_namespace(obj: &mut Value) {
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
    if !name.is_empty()
        && let Some(meta) = child_mut(obj, "metadata")
        && let Some(labels) = child_mut_in(meta, "labels")
    {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    if let Some(st) = child_mut(obj, "status") {
        set_default_str(st, "phase", "Active");
    }
}

fn child_mut_in<'a>(
    m: &'a mut serde_json::Map<String, Value>,
    k: &str,
) -> Option<&'a mut serde_json::Map<String, Value>> {
    let slot = m.entry(k.to_owned()).or_insert_with(|| json!({}));
    if slot.is_null() {
        *slot = json!({});
    }
    slot.as_object_mut()
}

/// `validateFinalizerName`: a qualified name, and without a domain one of the standard finalizers.
pub(crate) fn validate_finalizer_name(name: &str, f: &str) -> Vec<Cause> {
    let mut errs: Vec<Cause> = qualified_name(name).iter().map(|m| invalid_str(f, name, m)).collect();
    if !name.contains('/') && !["kubernetes", "orphan", "foregroundDeletion"].contains(&name) {
        errs.push(invalid_str(f, name, "name is neither a standard finalizer name nor is it fully qualified"));
    }
    errs
}

/// Validates a Namespace (its `spec.finalizers`; upstream reports them without an index).
pub fn validate_namespace(obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    str_list(spec, "finalizers").iter().flat_map(|f| validate_finalizer_name(f, "spec.finalizers")).collect()
}

/// ServiceAccounts have no defaults.
pub fn default_service_account(_obj: &mut Value) {}

/// ServiceAccounts have nothing beyond metadata to validate.
pub fn validate_service_account(_obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
    Vec::new()
}

/// Defaults a Node: `podCIDR` and `podCIDRs` kept in step (the v1 conversion), allocatable = capacity when
/// absent, canonical quantities.
pub fn default_node(obj: &mut Value) {
    if let Some(spec) = child_mut(obj, "spec") {
        let first = spec.get("podCIDRs").and_then(Value::as_array).and_then(|a| a.first()).cloned();
        match first {
            Some(c) => {
                spec.insert("podCIDR".into(), c);
            }
            None => {
                if let Some(c) =
                    spec.get("podCIDR").and_then(Value::as_str).filter(|c| !c.is_empty()).map(str::to_owned)
                {
                    spec.insert("podCIDRs".into(), json!([c]));
                }
            }
        }
    }
    if let Some(st) = obj.get_mut("status").and_then(Value::as_object_mut) {
        crate::quantity::canonicalize_list(st.get_mut("capacity"));
        crate::quantity::canonicalize_list(st.get_mut("allocatable"));
        if st.get("allocatable").is_none_or(Value::is_null)
            && let Some(cap) = st.get("capacity").filter(|c| c.is_object()).cloned()
        {
            st.insert("allocatable".into(), cap);
        }
    }
}

fn validate_taints(spec: &Value) -> Vec<Cause> {
    let mut errs = Vec::new();
    let mut seen: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    // Upstream reports taints under `metadata.taints`.
    let f = "metadata.taints";
    for (i, t) in arr(spec, "taints").iter().enumerate() {
        let p = idx(f, i);
        let k = s(t, "key");
        errs.extend(crate::selector::validate_label_name(k, &child(&p, "key")));
        let v = s(t, "value");
        let msgs = crate::names::label_value(v);
        if !msgs.is_empty() {
            errs.push(invalid_str(&child(&p, "value"), v, &msgs.join(";")));
        }
        let effect = s(t, "effect");
        errs.extend(crate::affinity::validate_taint_effect(effect, false, &child(&p, "effect")));
        if seen.get(effect).is_some_and(|keys| keys.contains(k)) {
            let added = if get(t, "timeAdded").is_some() { "<time>" } else { "(*v1.Time)(nil)" };
            let raw = format!("core.Taint{{Key:{k:?}, Value:{v:?}, Effect:{effect:?}, TimeAdded:{added}}}");
            let mut d = duplicate_raw(&p, &raw);
            d.message.push_str(": taints must be unique by key and effect pair");
            errs.push(d);
            continue;
        }
        seen.entry(effect).or_default().insert(k);
    }
    errs
}

/// Validates a Node on create or update.
pub fn validate_node(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let empty = json!({});
    let spec = obj.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let mut errs = validate_taints(spec);
    if let Some(st) = get(obj, "status") {
        for list in ["capacity", "allocatable"] {
            for (k, v) in crate::value::obj(st, list).into_iter().flatten() {
                let p = format!("status.{list}.{k}");
                if let Some(q) = crate::resources::parse_quantity(v, &p, &mut errs) {
                    errs.extend(crate::resources::validate_quantity_value(k, &q, &p));
                }
            }
        }
    }
    let cidrs = str_list(spec, "podCIDRs");
    if old.is_none() && !cidrs.is_empty() {
        for (i, c) in cidrs.iter().enumerate() {
            errs.extend(crate::ip::validate_cidr(&idx("spec.podCIDRs", i), c));
        }
        if cidrs.len() > 1 {
            let dual = cidrs.len() == 2
                && crate::ip::parse_cidr(cidrs[0]).map(|c| c.0.is_ipv6())
                    != crate::ip::parse_cidr(cidrs[1]).map(|c| c.0.is_ipv6());
            if !dual {
                errs.push(invalid_raw(
                    "spec.podCIDRs",
                    &go_strings(&cidrs),
                    "may specify no more than one CIDR for each IP family",
                ));
            }
            let mut seen = BTreeSet::new();
            for (i, c) in cidrs.iter().enumerate() {
                if !seen.insert(*c) {
                    errs.push(duplicate(&idx("spec.podCIDRs", i), &json!(c)));
                }
            }
        }
    }
    if let Some(old) = old {
        let old_spec = old.get("spec").unwrap_or(&empty);
        let old_cidrs = str_list(old_spec, "podCIDRs");
        if !old_cidrs.is_empty() && old_cidrs != cidrs {
            errs.push(forbidden("spec.podCIDRs", "node updates may not change podCIDR except from \"\" to valid"));
        }
        let old_provider = s(old_spec, "providerID");
        if !old_provider.is_empty() && old_provider != s(spec, "providerID") {
            errs.push(forbidden("spec.providerID", "node updates may not change providerID except from \"\" to valid"));
        }
        if s(spec, "externalID") != s(old_spec, "externalID") {
            errs.push(forbidden("spec.externalID", "may not be updated"));
        }
        let mut seen = BTreeSet::new();
        for (i, a) in obj
            .pointer("/status/addresses")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if !seen.insert((s(a, "type"), s(a, "address"))) {
                errs.push(duplicate_raw(
                    &idx("status.addresses", i),
                    &format!("core.NodeAddress{{Type:{:?}, Address:{:?}}}", s(a, "type"), s(a, "address")),
                ));
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

    #[test]
    fn namespaces() {
        let mut ns = json!({"metadata": {"name": "dev"}});
        default_namespace(&mut ns);
        assert_eq!(
            ns,
            json!({"metadata": {"name": "dev", "labels": {"kubernetes.io/metadata.name": "dev"}}, "status": {"phase": "Active"}})
        );
        assert!(validate_namespace(&json!({"spec": {"finalizers": ["kubernetes", "example.com/x"]}}), None).is_empty());
        assert_eq!(
            msgs(&validate_namespace(&json!({"spec": {"finalizers": ["custom"]}}), None)),
            vec![
                "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
            ]
        );
    }

    #[test]
    fn nodes() {
        let mut node = json!({"spec": {"podCIDR": "10.244.1.0/24", "taints": [{"key": "k", "effect": "NoSchedule"}, {"key": "k", "effect": "NoSchedule"}, {"key": "x", "effect": "Bad"}]},
            "status": {"capacity": {"cpu": "2", "memory": "4096Mi"}}});
        default_node(&mut node);
        assert_eq!(node["spec"]["podCIDRs"], json!(["10.244.1.0/24"]));
        assert_eq!(node["status"]["allocatable"], json!({"cpu": "2", "memory": "4Gi"}));
        let m = msgs(&validate_node(&node, None));
        assert_eq!(
            m,
            vec![
                "metadata.taints[1]: Duplicate value: core.Taint{Key:\"k\", Value:\"\", Effect:\"NoSchedule\", TimeAdded:(*v1.Time)(nil)}: taints must be unique by key and effect pair",
                "metadata.taints[2].effect: Unsupported value: \"Bad\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
            ]
        );
        let mut changed = node.clone();
        changed["spec"]["podCIDRs"] = json!(["10.244.2.0/24"]);
        changed["spec"]["taints"] = json!([]);
        assert_eq!(
            msgs(&validate_node(&changed, Some(&node))),
            vec!["spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"]
        );
    }
}
