//! LimitRanges and ResourceQuotas: container limit defaults from max/default/min, resource names and
//! quantities, min ≤ default ≤ max, quota scopes (immutable on update).

use std::collections::{BTreeMap, BTreeSet};

use rkube_apimachinery::Cause;
use serde_json::{Map, Value, json};

use crate::errs::{child, duplicate, forbidden, go_strings, idx, invalid_raw, invalid_str, key, required};
use crate::quantity::{Quantity, canonicalize_list};
use crate::resources::{
    overcommit_allowed, parse_quantity, validate_container_resource_name, validate_quantity_value,
    validate_quota_resource_name, validate_resource_name,
};
use crate::value::{arr, child_mut, s, str_list};

const LIMIT_LISTS: [&str; 5] = ["max", "min", "default", "defaultRequest", "maxLimitRequestRatio"];

/// Defaults a LimitRange: for `Container` items, default limits from max and default requests from the default
/// limits or min (`SetDefaults_LimitRangeItem`), then canonical quantities.
pub fn default_limit_range(obj: &mut Value) {
    let Some(spec) = child_mut(obj, "spec") else { return };
    let Some(items) = spec.get_mut("limits").and_then(Value::as_array_mut) else { return };
    for item in items.iter_mut().filter_map(Value::as_object_mut) {
        for k in LIMIT_LISTS {
            canonicalize_list(item.get_mut(k));
        }
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        let list =
            |item: &Map<String, Value>, k: &str| item.get(k).and_then(Value::as_object).cloned().unwrap_or_default();
        let (max, min) = (list(item, "max"), list(item, "min"));
        let mut default = list(item, "default");
        for (k, v) in max {
            default.entry(k).or_insert(v);
        }
        let mut request = list(item, "defaultRequest");
        for (k, v) in default.iter().chain(min.iter()) {
            request.entry(k.clone()).or_insert_with(|| v.clone());
        }
        item.insert("default".into(), Value::Object(default));
        item.insert("defaultRequest".into(), Value::Object(request));
    }
}

fn limit_type_name(t: &str, f: &str) -> Vec<Cause> {
    let errs: Vec<Cause> = crate::names::qualified_name(t).iter().map(|m| invalid_str(f, t, m)).collect();
    if !errs.is_empty() {
        return errs;
    }
    if !t.contains('/') && !["Pod", "Container", "PersistentVolumeClaim"].contains(&t) {
        return vec![invalid_str(f, t, "must be a standard limit type or fully qualified")];
    }
    errs
}

/// Validates a LimitRange.
pub fn validate_limit_range(obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let mut types = BTreeSet::new();
    for (i, item) in arr(spec, "limits").iter().enumerate() {
        let p = idx("spec.limits", i);
        let t = s(item, "type");
        errs.extend(limit_type_name(t, &child(&p, "type")));
        if !types.insert(t) {
            errs.push(duplicate(&child(&p, "type"), &json!(t)));
        }
        let mut lists: BTreeMap<&str, BTreeMap<String, Quantity>> = BTreeMap::new();
        for k in LIMIT_LISTS {
            if t == "Pod" && (k == "default" || k == "defaultRequest") {
                if item.get(k).and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
                    errs.push(forbidden(&child(&p, k), "may not be specified when `type` is 'Pod'"));
                }
                continue;
            }
            for (name, v) in item.get(k).and_then(Value::as_object).into_iter().flatten() {
                let np = key(&child(&p, k), name);
                errs.extend(if t == "Pod" || t == "Container" {
                    validate_container_resource_name(name, &np)
                } else {
                    validate_resource_name(name, &np)
                });
                if let Some(q) = parse_quantity(v, &np, &mut errs) {
                    lists.entry(k).or_default().insert(name.clone(), q);
                }
            }
        }
        if t == "PersistentVolumeClaim"
            && !lists.get("min").is_some_and(|m| m.contains_key("storage"))
            && !lists.get("max").is_some_and(|m| m.contains_key("storage"))
        {
            errs.push(required(
                &child(&p, "limits"),
                "either minimum or maximum storage value is required, but neither was provided",
            ));
        }
        let names: BTreeSet<String> = lists.values().flat_map(|m| m.keys().cloned()).collect();
        for k in names {
            let get = |l: &str| lists.get(l).and_then(|m| m.get(&k));
            let (min, max, def, req, ratio) =
                (get("min"), get("max"), get("default"), get("defaultRequest"), get("maxLimitRequestRatio"));
            let c = |q: &Quantity| q.canonical();
            if let (Some(a), Some(b)) = (min, max)
                && a > b
            {
                errs.push(invalid_str(
                    &key(&child(&p, "min"), &k),
                    &c(a),
                    &format!("min value {} is greater than max value {}", c(a), c(b)),
                ));
            }
            if let (Some(r), Some(m)) = (req, min)
                && m > r
            {
                errs.push(invalid_str(
                    &key(&child(&p, "defaultRequest"), &k),
                    &c(r),
                    &format!("min value {} is greater than default request value {}", c(m), c(r)),
                ));
            }
            if let (Some(r), Some(m)) = (req, max)
                && r > m
            {
                errs.push(invalid_str(
                    &key(&child(&p, "defaultRequest"), &k),
                    &c(r),
                    &format!("default request value {} is greater than max value {}", c(r), c(m)),
                ));
            }
            if let (Some(r), Some(d)) = (req, def)
                && r > d
            {
                errs.push(invalid_str(
                    &key(&child(&p, "defaultRequest"), &k),
                    &c(r),
                    &format!("default request value {} is greater than default limit value {}", c(r), c(d)),
                ));
            }
            if let (Some(d), Some(m)) = (def, min)
                && m > d
            {
                errs.push(invalid_str(
                    &key(&child(&p, "default"), &k),
                    &c(m),
                    &format!("min value {} is greater than default value {}", c(m), c(d)),
                ));
            }
            if let (Some(d), Some(m)) = (def, max)
                && d > m
            {
                errs.push(invalid_str(
                    &key(&child(&p, "default"), &k),
                    &c(m),
                    &format!("default value {} is greater than max value {}", c(d), c(m)),
                ));
            }
            if let Some(r) = ratio
                && r.as_f64() < 1.0
            {
                errs.push(invalid_str(
                    &key(&child(&p, "maxLimitRequestRatio"), &k),
                    &c(r),
                    &format!("ratio {} is less than 1", c(r)),
                ));
            }
            if let (Some(r), Some(lo), Some(hi)) = (ratio, min, max) {
                let limit = hi.as_f64() / lo.as_f64();
                if r.as_f64() > limit {
                    errs.push(invalid_str(
                        &key(&child(&p, "maxLimitRequestRatio"), &k),
                        &c(r),
                        &format!("ratio {} is greater than max/min = {limit:.6}", c(r)),
                    ));
                }
            }
            if !overcommit_allowed(&k)
                && let (Some(d), Some(r)) = (def, req)
                && d != r
            {
                errs.push(invalid_str(
                    &key(&child(&p, "defaultRequest"), &k),
                    &c(r),
                    &format!("default value {} must equal to defaultRequest value {} in {k}", c(d), c(r)),
                ));
            }
        }
    }
    errs
}

/// Defaults a ResourceQuota: canonical quantities.
pub fn default_resource_quota(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec") {
        canonicalize_list(spec.get_mut("hard"));
    }
    if let Some(st) = obj.get_mut("status") {
        canonicalize_list(st.get_mut("hard"));
        canonicalize_list(st.get_mut("used"));
    }
}

const SCOPES: &[&str] = &[
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
    "VolumeAttributesClass",
];

fn validate_hard(list: Option<&Value>, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    for (k, v) in list.and_then(Value::as_object).into_iter().flatten() {
        let p = key(f, k);
        errs.extend(validate_quota_resource_name(k, &p));
        if let Some(q) = parse_quantity(v, &p, &mut errs) {
            errs.extend(validate_quantity_value(k, &q, &p));
        }
    }
    errs
}

/// Validates a ResourceQuota; on update its scopes may not change.
pub fn validate_resource_quota(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let empty = json!({});
    let spec = obj.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let mut errs = validate_hard(spec.get("hard"), "spec.hard");
    let scopes = str_list(spec, "scopes");
    for scope in &scopes {
        if !SCOPES.contains(scope) {
            errs.push(invalid_raw(
                "spec.scopes",
                &go_strings(&scopes).replace("[]string", "[]core.ResourceQuotaScope"),
                "unsupported scope",
            ));
        }
    }
    let set: BTreeSet<&str> = scopes.iter().copied().collect();
    if (set.contains("BestEffort") && set.contains("NotBestEffort"))
        || (set.contains("Terminating") && set.contains("NotTerminating"))
    {
        errs.push(invalid_raw(
            "spec.scopes",
            &go_strings(&scopes).replace("[]string", "[]core.ResourceQuotaScope"),
            "conflicting scopes",
        ));
    }
    if let Some(sel) = spec.get("scopeSelector") {
        for e in arr(sel, "matchExpressions") {
            let p = "spec.scopeSelector.matchExpressions";
            let name = s(e, "scopeName");
            if !SCOPES.contains(&name) {
                errs.push(invalid_str(&child(p, "scopeName"), name, "unsupported scope"));
            }
            let values = str_list(e, "values");
            match s(e, "operator") {
                "In" | "NotIn" if values.is_empty() => {
                    errs.push(required(
                        &child(p, "values"),
                        "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
                    ));
                }
                "In" | "NotIn" => {}
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    errs.push(invalid_raw(
                        &child(p, "values"),
                        &go_strings(&values),
                        "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
                    ));
                }
                "Exists" | "DoesNotExist" => {}
                op => errs.push(invalid_str(&child(p, "operator"), op, "not a valid selector operator")),
            }
        }
    }
    if let Some(st) = obj.get("status") {
        errs.extend(validate_hard(st.get("hard"), "status.hard"));
        errs.extend(validate_hard(st.get("used"), "status.used"));
    }
    if let Some(old) = old {
        let old_scopes: BTreeSet<&str> =
            old.get("spec").map(|s| str_list(s, "scopes")).unwrap_or_default().into_iter().collect();
        if old_scopes != set {
            errs.push(invalid_raw(
                "spec.scopes",
                &go_strings(&scopes).replace("[]string", "[]core.ResourceQuotaScope"),
                "field is immutable",
            ));
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
    fn limit_ranges() {
        let mut lr =
            json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]}});
        default_limit_range(&mut lr);
        assert_eq!(lr["spec"]["limits"][0]["default"], json!({"cpu": "2"}));
        assert_eq!(lr["spec"]["limits"][0]["defaultRequest"], json!({"cpu": "2", "memory": "64Mi"}));
        assert!(validate_limit_range(&lr, None).is_empty(), "{:?}", validate_limit_range(&lr, None));
        let bad = json!({"spec": {"limits": [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}});
        assert_eq!(
            msgs(&validate_limit_range(&bad, None)),
            vec!["spec.limits[0].min[cpu]: Invalid value: \"2\": min value 2 is greater than max value 1"]
        );
    }

    #[test]
    fn quotas() {
        let mut rq = json!({"spec": {"hard": {"pods": "10", "requests.cpu": "1000m", "count/deployments.apps": "5"}}});
        default_resource_quota(&mut rq);
        assert_eq!(rq["spec"]["hard"]["requests.cpu"], "1");
        assert!(validate_resource_quota(&rq, None).is_empty(), "{:?}", validate_resource_quota(&rq, None));
        let bad = json!({"spec": {"hard": {"pods": "1.5", "bogus": "1", "cpu": "x"}}});
        let m = msgs(&validate_resource_quota(&bad, None));
        assert!(m.contains(&"spec.hard[pods]: Invalid value: \"1500m\": must be an integer".to_owned()), "{m:?}");
        assert!(
            m.contains(
                &"spec.hard[bogus]: Invalid value: \"bogus\": must be a standard resource type or fully qualified"
                    .to_owned()
            ),
            "{m:?}"
        );
        assert!(
            m.iter().any(|x| x.starts_with("spec.hard[cpu]: Invalid value: \"x\": quantities must match")),
            "{m:?}"
        );
    }
}
