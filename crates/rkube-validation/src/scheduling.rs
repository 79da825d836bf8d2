//! PriorityClasses (scheduling.k8s.io/v1): preemption policy default, the reserved `system-` names and the
//! user-definable value ceiling, immutable value.

use rkube_apimachinery::Cause;
use serde_json::Value;

use crate::errs::{forbidden, invalid};
use crate::value::{child_or_root, int, opt_s};

/// The largest value a user-defined PriorityClass may have.
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i64 = 1_000_000_000;
const SYSTEM: &[(&str, i64)] = &[("system-cluster-critical", 2_000_000_000), ("system-node-critical", 2_000_001_000)];

/// Defaults a PriorityClass: `preemptionPolicy` PreemptLowerPriority.
pub fn default_priority_class(obj: &mut Value) {
    if let Some(o) = child_or_root(obj) {
        crate::value::set_default_str(o, "preemptionPolicy", "PreemptLowerPriority");
    }
}

/// Validates a PriorityClass on create or update.
pub fn validate_priority_class(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut errs = Vec::new();
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let value = int(obj, "value").unwrap_or(0);
    let global = obj.get("globalDefault").and_then(Value::as_bool).unwrap_or(false);
    if let Some(old) = old {
        if value != int(old, "value").unwrap_or(0) {
            errs.push(forbidden("value", "may not be changed in an update."));
        }
        if !crate::podspec::same(obj.get("preemptionPolicy"), old.get("preemptionPolicy")) {
            errs.push(invalid(
                "preemptionPolicy",
                obj.get("preemptionPolicy").unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
        return errs;
    }
    if name.starts_with("system-") {
        let known = match SYSTEM.iter().find(|(n, _)| *n == name) {
            None => Err(format!("{name} is not a known system priority class")),
            Some((_, v)) if *v != value => Err(format!("value of {name} PriorityClass must be {v}")),
            Some(_) if global => Err(format!("globalDefault of {name} PriorityClass must be false")),
            Some(_) => Ok(()),
        };
        if let Err(e) = known {
            errs.push(forbidden(
                "metadata.name",
                &format!("priority class names with 'system-' prefix are reserved for system use only. error: {e}"),
            ));
        }
    } else if value > HIGHEST_USER_DEFINABLE_PRIORITY {
        errs.push(forbidden(
            "value",
            &format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
        ));
    }
    if let Some(pp) = opt_s(obj, "preemptionPolicy") {
        errs.extend(crate::podspec::validate_preemption_policy(pp, "preemptionPolicy"));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn priority_classes() {
        let mut pc = json!({"metadata": {"name": "high"}, "value": 1000});
        default_priority_class(&mut pc);
        assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
        assert!(validate_priority_class(&pc, None).is_empty());
        let sys = json!({"metadata": {"name": "system-mine"}, "value": 1});
        assert_eq!(
            validate_priority_class(&sys, None)[0].message,
            "Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"
        );
        let big = json!({"metadata": {"name": "big"}, "value": 2_000_000_000});
        assert_eq!(
            validate_priority_class(&big, None)[0].message,
            "Forbidden: maximum allowed value of a user defined priority is 1000000000"
        );
        let mut changed = pc.clone();
        changed["value"] = json!(5);
        assert_eq!(
            validate_priority_class(&changed, Some(&pc))[0].message,
            "Forbidden: may not be changed in an update."
        );
    }
}
