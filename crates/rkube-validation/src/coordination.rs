//! Leases (coordination.k8s.io/v1): duration and transitions, the coordinated-leader-election strategy.

use rkube_apimachinery::Cause;
use serde_json::Value;

use crate::errs::{forbidden, invalid, invalid_str, not_supported_str};
use crate::value::{get, opt_s};

/// Leases have no defaults.
pub fn default_lease(_obj: &mut Value) {}

/// Validates a Lease (create and update apply the same rules; `holderIdentity` is free-form upstream).
pub fn validate_lease(obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
    let Some(spec) = obj.get("spec") else { return Vec::new() };
    let mut errs = Vec::new();
    if let Some(d) = get(spec, "leaseDurationSeconds")
        && d.as_i64().is_some_and(|n| n <= 0)
    {
        errs.push(invalid("spec.leaseDurationSeconds", d, "must be greater than 0"));
    }
    if let Some(t) = get(spec, "leaseTransitions")
        && t.as_i64().is_some_and(|n| n < 0)
    {
        errs.push(invalid("spec.leaseTransitions", t, "must be greater than or equal to 0"));
    }
    let strategy = opt_s(spec, "strategy");
    if let Some(st) = strategy {
        if st.contains('/') {
            errs.extend(crate::names::qualified_name(st).iter().map(|m| invalid_str("spec.strategy.strategy", st, m)));
        } else if st != "OldestEmulationVersion" {
            errs.push(not_supported_str("spec.strategy.strategy", st, &["OldestEmulationVersion"]));
        }
    }
    if opt_s(spec, "preferredHolder").is_some_and(|p| !p.is_empty()) && strategy.is_none_or(str::is_empty) {
        errs.push(forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leases() {
        assert!(
            validate_lease(&json!({"spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40}}), None).is_empty()
        );
        let errs = validate_lease(&json!({"spec": {"leaseDurationSeconds": 0}}), None);
        assert_eq!(errs[0].field, "spec.leaseDurationSeconds");
        assert_eq!(errs[0].message, "Invalid value: 0: must be greater than 0");
    }
}
