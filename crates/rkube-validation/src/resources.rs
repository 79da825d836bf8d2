//! Resource names and quantities (`ResourceRequirements`, quota `hard`, limit ranges, node capacity): which names
//! are standard, which must be integers, and requests ≤ limits, as upstream's core validation checks them.

use rkube_apimachinery::Cause;
use serde_json::Value;

use crate::errs::{child, invalid_str, key, required};
use crate::names::qualified_name;
use crate::quantity::{Quantity, QuantityError};

const STANDARD_CONTAINER: &[&str] = &["cpu", "memory", "ephemeral-storage"];
const STANDARD: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
    "storage",
    "requests.storage",
];
const STANDARD_QUOTA: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];
const INTEGER: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

/// `hugepages-<size>`.
pub(crate) fn is_huge_pages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_quota_huge_pages(name: &str) -> bool {
    name.starts_with("requests.hugepages-") || name.starts_with("limits.hugepages-")
}

/// A name without a domain, or in `kubernetes.io/`.
pub(crate) fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// An extended resource (`example.com/gpu`).
pub(crate) fn is_extended(name: &str) -> bool {
    !is_native(name) && !name.starts_with("requests.") && qualified_name(&format!("requests.{name}")).is_empty()
}

/// Resources that may have requests below limits.
pub(crate) fn overcommit_allowed(name: &str) -> bool {
    is_native(name) && !is_huge_pages(name)
}

fn is_integer_resource(name: &str) -> bool {
    INTEGER.contains(&name) || is_extended(name)
}

/// `validateResourceName`: a qualified name; without a domain it must be a standard resource.
pub(crate) fn validate_resource_name(name: &str, f: &str) -> Vec<Cause> {
    let errs: Vec<Cause> = qualified_name(name).iter().map(|m| invalid_str(f, name, m)).collect();
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') && !STANDARD.contains(&name) && !is_huge_pages(name) && !is_quota_huge_pages(name) {
        return vec![invalid_str(f, name, "must be a standard resource type or fully qualified")];
    }
    errs
}

/// `validateContainerResourceName`.
pub(crate) fn validate_container_resource_name(name: &str, f: &str) -> Vec<Cause> {
    let mut errs = validate_resource_name(name, f);
    if !name.contains('/') {
        if !(STANDARD_CONTAINER.contains(&name) || is_huge_pages(name)) {
            errs.push(invalid_str(f, name, "must be a standard resource for containers"));
        }
    } else if !is_native(name) && !is_extended(name) {
        errs.push(invalid_str(f, name, "doesn't follow extended resource name standard"));
    }
    errs
}

/// `ValidateResourceQuotaResourceName`.
pub(crate) fn validate_quota_resource_name(name: &str, f: &str) -> Vec<Cause> {
    let mut errs = validate_resource_name(name, f);
    if !name.contains('/') && !STANDARD_QUOTA.contains(&name) && !is_quota_huge_pages(name) && !is_huge_pages(name) {
        errs.push(invalid_str(f, name, "must be a standard resource for quota"));
    }
    errs
}

/// Parses a quantity field, reporting an unparsable one the way the decoder would refuse it.
pub(crate) fn parse_quantity(v: &Value, f: &str, errs: &mut Vec<Cause>) -> Option<Quantity> {
    match Quantity::from_value(v) {
        Ok(q) => Some(q),
        Err(e) => {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            errs.push(invalid_str(f, &text, &quantity_error_text(&e)));
            None
        }
    }
}

fn quantity_error_text(e: &QuantityError) -> String {
    e.to_string()
}

/// `ValidateResourceQuantityValue`: non-negative, and whole for integer resources.
pub(crate) fn validate_quantity_value(name: &str, q: &Quantity, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    if q.is_negative() {
        errs.push(invalid_str(f, &q.canonical(), "must be greater than or equal to 0"));
    }
    if is_integer_resource(name) && !q.is_integer() {
        errs.push(invalid_str(f, &q.canonical(), "must be an integer"));
    }
    errs
}

/// Container (and overhead) `ResourceRequirements`: names, quantities, requests ≤ limits, hugepages rules.
pub(crate) fn validate_requirements(req: Option<&Value>, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let Some(req) = req.filter(|v| v.is_object()) else { return errs };
    let lim_path = child(f, "limits");
    let req_path = child(f, "requests");
    let mut limits = Vec::new();
    let mut lim_cpu_mem = false;
    let mut req_cpu_mem = false;
    let mut huge = false;
    if let Some(m) = req.get("limits").and_then(Value::as_object) {
        for (name, v) in m {
            let p = key(&lim_path, name);
            errs.extend(validate_container_resource_name(name, &p));
            if let Some(q) = parse_quantity(v, &p, &mut errs) {
                errs.extend(validate_quantity_value(name, &q, &p));
                limits.push((name.clone(), q));
            }
            huge |= is_huge_pages(name);
            lim_cpu_mem |= name == "cpu" || name == "memory";
        }
    }
    if let Some(m) = req.get("requests").and_then(Value::as_object) {
        for (name, v) in m {
            let p = key(&req_path, name);
            errs.extend(validate_container_resource_name(name, &p));
            let Some(q) = parse_quantity(v, &p, &mut errs) else { continue };
            errs.extend(validate_quantity_value(name, &q, &p));
            match limits.iter().find(|(n, _)| n == name) {
                Some((_, lim)) => {
                    if &q != lim && !overcommit_allowed(name) {
                        errs.push(invalid_str(
                            &req_path,
                            &q.canonical(),
                            &format!("must be equal to {name} limit of {}", lim.canonical()),
                        ));
                    } else if &q > lim {
                        errs.push(invalid_str(
                            &req_path,
                            &q.canonical(),
                            &format!("must be less than or equal to {name} limit of {}", lim.canonical()),
                        ));
                    }
                }
                None if !overcommit_allowed(name) => {
                    errs.push(required(&lim_path, "Limit must be set for non overcommitable resources"));
                }
                None => {}
            }
            huge |= is_huge_pages(name);
            req_cpu_mem |= name == "cpu" || name == "memory";
        }
    }
    if huge && !lim_cpu_mem && !req_cpu_mem {
        errs.push(crate::errs::forbidden(f, "HugePages require cpu or memory"));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_above_limits() {
        let r = json!({"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}});
        let errs = validate_requirements(Some(&r), "spec.containers[0].resources");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.containers[0].resources.requests");
        assert_eq!(errs[0].message, "Invalid value: \"1\": must be less than or equal to cpu limit of 500m");
    }

    #[test]
    fn names_and_quantities() {
        let r = json!({"limits": {"gpu": "1", "example.com/dev": "1.5"}, "requests": {"memory": "-1Gi", "cpu": "abc"}});
        let errs = validate_requirements(Some(&r), "r");
        let msgs: Vec<String> = errs.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
        assert!(
            msgs.contains(
                &"r.limits[gpu]: Invalid value: \"gpu\": must be a standard resource type or fully qualified"
                    .to_owned()
            ),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"r.limits[example.com/dev]: Invalid value: \"1500m\": must be an integer".to_owned()),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(
                &"r.requests[memory]: Invalid value: \"-1Gi\": must be greater than or equal to 0".to_owned()
            ),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.starts_with("r.requests[cpu]: Invalid value: \"abc\": quantities must match")),
            "{msgs:?}"
        );
    }
}
