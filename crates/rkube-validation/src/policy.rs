//! PodDisruptionBudgets (policy/v1): minAvailable xor maxUnavailable, int-or-percent values, the selector,
//! and the unhealthy-pod eviction policy.

use rkube_apimachinery::Cause;
use serde_json::Value;

use crate::errs::{invalid_int, invalid_raw, json_text, not_supported_str};
use crate::intstr::IntOrString;
use crate::value::{get, opt_s};

/// PodDisruptionBudgets have no defaults in policy/v1.
pub fn default_pod_disruption_budget(_obj: &mut Value) {}

fn int_or_percent(v: Option<&Value>, f: &str, errs: &mut Vec<Cause>) {
    let Some(v) = v.and_then(IntOrString::from_value) else { return };
    match &v {
        IntOrString::Str(s) => errs.extend(crate::names::percent(s).iter().map(|m| invalid_raw(f, &v.go_debug(), m))),
        IntOrString::Int(i) if *i < 0 => errs.push(invalid_int(f, *i, "must be greater than or equal to 0")),
        IntOrString::Int(_) => {}
    }
    if v.percent().is_some_and(|p| p > 100) {
        errs.push(invalid_raw(f, &v.go_debug(), "must not be greater than 100%"));
    }
}

/// Validates a PodDisruptionBudget.
pub fn validate_pod_disruption_budget(obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
    let Some(spec) = obj.get("spec") else { return Vec::new() };
    let mut errs = Vec::new();
    let (min, max) = (get(spec, "minAvailable"), get(spec, "maxUnavailable"));
    if min.is_some() && max.is_some() {
        errs.push(invalid_raw("spec", &json_text(spec), "minAvailable and maxUnavailable cannot be both set"));
    }
    int_or_percent(min, "spec.minAvailable", &mut errs);
    int_or_percent(max, "spec.maxUnavailable", &mut errs);
    errs.extend(crate::selector::validate_selector(get(spec, "selector"), "spec.selector", false));
    if let Some(p) = opt_s(spec, "unhealthyPodEvictionPolicy")
        && p != "IfHealthyBudget"
        && p != "AlwaysAllow"
    {
        errs.push(not_supported_str("spec.unhealthyPodEvictionPolicy", p, &["AlwaysAllow", "IfHealthyBudget"]));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn budgets() {
        assert!(
            validate_pod_disruption_budget(
                &json!({"spec": {"minAvailable": "50%", "selector": {"matchLabels": {"a": "b"}}}}),
                None
            )
            .is_empty()
        );
        let both = validate_pod_disruption_budget(&json!({"spec": {"minAvailable": 1, "maxUnavailable": 1}}), None);
        assert_eq!(both[0].field, "spec");
        assert!(both[0].message.ends_with(": minAvailable and maxUnavailable cannot be both set"));
        let pct = validate_pod_disruption_budget(&json!({"spec": {"maxUnavailable": "150%"}}), None);
        assert_eq!(
            pct[0].message,
            "Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%"
        );
    }
}
