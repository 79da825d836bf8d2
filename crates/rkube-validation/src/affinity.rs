//! Scheduling constraints in a pod spec: node and pod (anti-)affinity, tolerations, topology spread, and
//! node selector terms (shared with PersistentVolume node affinity).

use std::collections::BTreeSet;

use rkube_apimachinery::Cause;
use serde_json::{Value, json};

use crate::errs::{child, duplicate, forbidden, idx, invalid_int, invalid_str, not_supported_str, required};
use crate::names::{dns1123_label, dns1123_subdomain, label_value};
use crate::selector::{validate_label_name, validate_selector};
use crate::value::{arr, get, int, opt_s, s, str_list};

/// `ValidateNodeSelectorRequirement`.
fn validate_node_requirement(rq: &Value, allow_invalid_values: bool, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let values = str_list(rq, "values");
    match s(rq, "operator") {
        "In" | "NotIn" => {
            if values.is_empty() {
                errs.push(required(&child(f, "values"), "must be specified when `operator` is 'In' or 'NotIn'"));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                errs.push(forbidden(
                    &child(f, "values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        "Gt" | "Lt" => {
            if values.len() != 1 {
                errs.push(required(
                    &child(f, "values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                ));
            }
        }
        op => errs.push(invalid_str(&child(f, "operator"), op, "not a valid selector operator")),
    }
    errs.extend(validate_label_name(s(rq, "key"), &child(f, "key")));
    if !allow_invalid_values {
        for (i, v) in values.iter().enumerate() {
            errs.extend(label_value(v).iter().map(|m| invalid_str(&idx(&child(f, "values"), i), v, m)));
        }
    }
    errs
}

fn validate_node_field_requirement(rq: &Value, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let values = str_list(rq, "values");
    match s(rq, "operator") {
        "In" | "NotIn" => {
            if values.len() != 1 {
                errs.push(required(
                    &child(f, "values"),
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                ));
            }
        }
        op => errs.push(invalid_str(&child(f, "operator"), op, "not a valid selector operator")),
    }
    if s(rq, "key") != "metadata.name" {
        errs.push(invalid_str(&child(f, "key"), s(rq, "key"), "not a valid field selector key"));
    } else {
        for (i, v) in values.iter().enumerate() {
            errs.extend(dns1123_subdomain(v).iter().map(|m| invalid_str(&idx(&child(f, "values"), i), v, m)));
        }
    }
    errs
}

/// `ValidateNodeSelectorTerm`.
fn validate_node_selector_term(term: &Value, allow_invalid_values: bool, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    for (j, rq) in arr(term, "matchExpressions").iter().enumerate() {
        errs.extend(validate_node_requirement(rq, allow_invalid_values, &idx(&child(f, "matchExpressions"), j)));
    }
    for (j, rq) in arr(term, "matchFields").iter().enumerate() {
        errs.extend(validate_node_field_requirement(rq, &idx(&child(f, "matchFields"), j)));
    }
    errs
}

/// `ValidateNodeSelector`: at least one term.
pub(crate) fn validate_node_selector(ns: &Value, f: &str) -> Vec<Cause> {
    let terms_path = child(f, "nodeSelectorTerms");
    let terms = arr(ns, "nodeSelectorTerms");
    if terms.is_empty() {
        return vec![required(&terms_path, "must have at least one node selector term")];
    }
    terms.iter().enumerate().flat_map(|(i, t)| validate_node_selector_term(t, false, &idx(&terms_path, i))).collect()
}

fn validate_weight(w: &Value, f: &str) -> Option<Cause> {
    let weight = int(w, "weight").unwrap_or(0);
    (!(1..=100).contains(&weight)).then(|| invalid_int(&child(f, "weight"), weight, "must be in the range 1-100"))
}

fn validate_pod_affinity_term(term: &Value, f: &str) -> Vec<Cause> {
    let mut errs = validate_selector(get(term, "labelSelector"), &child(f, "labelSelector"), false);
    errs.extend(validate_selector(get(term, "namespaceSelector"), &child(f, "namespaceSelector"), false));
    for ns in str_list(term, "namespaces") {
        errs.extend(dns1123_label(ns).iter().map(|m| invalid_str(&child(f, "namespace"), ns, m)));
    }
    for k in ["matchLabelKeys", "mismatchLabelKeys"] {
        let keys = str_list(term, k);
        if keys.is_empty() {
            continue;
        }
        if get(term, "labelSelector").is_none() {
            errs.push(forbidden(&child(f, k), "must not be specified when labelSelector is not set"));
            continue;
        }
        for (i, key) in keys.iter().enumerate() {
            errs.extend(validate_label_name(key, &idx(&child(f, k), i)));
        }
    }
    let mismatch: BTreeSet<&str> = str_list(term, "mismatchLabelKeys").into_iter().collect();
    for (i, k) in str_list(term, "matchLabelKeys").iter().enumerate() {
        if mismatch.contains(k) {
            errs.push(invalid_str(
                &idx(&child(f, "matchLabelKeys"), i),
                k,
                "exists in both matchLabelKeys and mismatchLabelKeys",
            ));
        }
    }
    let topology = s(term, "topologyKey");
    if topology.is_empty() {
        errs.push(required(&child(f, "topologyKey"), "can not be empty"));
    }
    errs.extend(validate_label_name(topology, &child(f, "topologyKey")));
    errs
}

fn validate_pod_affinity(pa: &Value, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let req = child(f, "requiredDuringSchedulingIgnoredDuringExecution");
    for (i, t) in arr(pa, "requiredDuringSchedulingIgnoredDuringExecution").iter().enumerate() {
        errs.extend(validate_pod_affinity_term(t, &idx(&req, i)));
    }
    let pref = child(f, "preferredDuringSchedulingIgnoredDuringExecution");
    for (i, t) in arr(pa, "preferredDuringSchedulingIgnoredDuringExecution").iter().enumerate() {
        let p = idx(&pref, i);
        errs.extend(validate_weight(t, &p));
        let term = get(t, "podAffinityTerm").cloned().unwrap_or_else(|| json!({}));
        errs.extend(validate_pod_affinity_term(&term, &child(&p, "podAffinityTerm")));
    }
    errs
}

/// `validateAffinity`.
pub(crate) fn validate_affinity(a: Option<&Value>, f: &str) -> Vec<Cause> {
    let Some(a) = a else { return Vec::new() };
    let mut errs = Vec::new();
    if let Some(na) = get(a, "nodeAffinity") {
        let np = child(f, "nodeAffinity");
        if let Some(r) = get(na, "requiredDuringSchedulingIgnoredDuringExecution") {
            errs.extend(validate_node_selector(r, &child(&np, "requiredDuringSchedulingIgnoredDuringExecution")));
        }
        let pref = child(&np, "preferredDuringSchedulingIgnoredDuringExecution");
        for (i, t) in arr(na, "preferredDuringSchedulingIgnoredDuringExecution").iter().enumerate() {
            let p = idx(&pref, i);
            errs.extend(validate_weight(t, &p));
            // Preferred terms tolerate invalid label values (they may still match on small clusters).
            let pref_term = get(t, "preference").cloned().unwrap_or_else(|| json!({}));
            errs.extend(validate_node_selector_term(&pref_term, true, &child(&p, "preference")));
        }
    }
    if let Some(pa) = get(a, "podAffinity") {
        errs.extend(validate_pod_affinity(pa, &child(f, "podAffinity")));
    }
    if let Some(pa) = get(a, "podAntiAffinity") {
        errs.extend(validate_pod_affinity(pa, &child(f, "podAntiAffinity")));
    }
    errs
}

/// `validateTaintEffect` (tolerations may leave it empty; taints may not).
pub(crate) fn validate_taint_effect(effect: &str, allow_empty: bool, f: &str) -> Vec<Cause> {
    if !allow_empty && effect.is_empty() {
        return vec![required(f, "")];
    }
    match effect {
        "NoSchedule" | "PreferNoSchedule" | "NoExecute" => Vec::new(),
        other => vec![not_supported_str(f, other, &["NoSchedule", "PreferNoSchedule", "NoExecute"])],
    }
}

/// `ValidateTolerations`.
pub(crate) fn validate_tolerations(list: &[Value], f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let p = idx(f, i);
        let key = s(t, "key");
        let op = s(t, "operator");
        let effect = s(t, "effect");
        let value = s(t, "value");
        if !key.is_empty() {
            errs.extend(validate_label_name(key, &child(&p, "key")));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(invalid_str(
                &child(&p, "operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if get(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            errs.push(invalid_str(
                &child(&p, "effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = label_value(value);
                if !msgs.is_empty() {
                    errs.push(invalid_str(&child(&p, "operator"), value, &msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(invalid_str(
                        &child(&p, "operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(not_supported_str(&child(&p, "operator"), other, &["Equal", "Exists"])),
        }
        if !effect.is_empty() {
            errs.extend(validate_taint_effect(effect, true, &child(&p, "effect")));
        }
    }
    errs
}

/// `validateTopologySpreadConstraints`.
pub(crate) fn validate_topology_spread(list: &[Value], f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let p = idx(f, i);
        let skew = int(c, "maxSkew").unwrap_or(0);
        if skew <= 0 {
            errs.push(invalid_int(&child(&p, "maxSkew"), skew, "must be greater than zero"));
        }
        let key = s(c, "topologyKey");
        if key.is_empty() {
            errs.push(required(&child(&p, "topologyKey"), "can not be empty"));
        }
        let action = s(c, "whenUnsatisfiable");
        if action != "DoNotSchedule" && action != "ScheduleAnyway" {
            errs.push(not_supported_str(&child(&p, "whenUnsatisfiable"), action, &["DoNotSchedule", "ScheduleAnyway"]));
        }
        if list[i + 1..].iter().any(|o| s(o, "topologyKey") == key && s(o, "whenUnsatisfiable") == action) {
            errs.push(duplicate(
                &child(&p, "{topologyKey, whenUnsatisfiable}"),
                &json!(format!("{{{key}, {action}}}")),
            ));
        }
        if let Some(md) = int(c, "minDomains") {
            if md <= 0 {
                errs.push(invalid_int(&child(&p, "minDomains"), md, "must be greater than zero"));
            }
            if action != "DoNotSchedule" {
                errs.push(invalid_int(
                    &child(&p, "minDomains"),
                    md,
                    &format!("can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}"),
                ));
            }
        }
        for k in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if let Some(v) = opt_s(c, k)
                && v != "Honor"
                && v != "Ignore"
            {
                errs.push(not_supported_str(&child(&p, k), v, &["Honor", "Ignore"]));
            }
        }
        let keys = str_list(c, "matchLabelKeys");
        if !keys.is_empty() {
            let sel = get(c, "labelSelector");
            if sel.is_none() {
                errs.push(forbidden(
                    &child(&p, "matchLabelKeys"),
                    "must not be specified when labelSelector is not set",
                ));
            }
            let mut in_selector: BTreeSet<String> =
                crate::value::str_map(sel.and_then(|s| s.get("matchLabels"))).into_keys().collect();
            in_selector.extend(
                sel.map(|s| arr(s, "matchExpressions"))
                    .unwrap_or_default()
                    .iter()
                    .map(|e| crate::value::s(e, "key").to_owned()),
            );
            for (j, k) in keys.iter().enumerate() {
                let kp = idx(&child(&p, "matchLabelKeys"), j);
                errs.extend(validate_label_name(k, &kp));
                if in_selector.contains(*k as &str) {
                    errs.push(invalid_str(&kp, k, "exists in both matchLabelKeys and labelSelector"));
                }
            }
        }
        errs.extend(validate_selector(get(c, "labelSelector"), &child(&p, "labelSelector"), false));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations() {
        let list = vec![
            json!({"key": "a", "operator": "Equal", "value": "b", "effect": "NoSchedule"}),
            json!({"operator": "Equal", "value": "x"}),
            json!({"key": "k", "operator": "Bogus"}),
            json!({"key": "k", "effect": "Sometimes"}),
            json!({"key": "k", "tolerationSeconds": 10, "effect": "NoSchedule"}),
        ];
        let msgs: Vec<String> = validate_tolerations(&list, "spec.tolerations")
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            msgs,
            vec![
                "spec.tolerations[1].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                "spec.tolerations[2].operator: Unsupported value: \"Bogus\": supported values: \"Equal\", \"Exists\"",
                "spec.tolerations[3].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
                "spec.tolerations[4].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
            ]
        );
    }

    #[test]
    fn node_affinity() {
        let a = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In"}]}]}}});
        let errs = validate_affinity(Some(&a), "spec.affinity");
        assert_eq!(
            errs[0].field,
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values"
        );
        assert_eq!(errs[0].message, "Required value: must be specified when `operator` is 'In' or 'NotIn'");
    }
}
