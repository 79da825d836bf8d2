//! Events, in core/v1 shape (`involvedObject`, `message`) and events.k8s.io/v1 shape (`regarding`, `note`):
//! upstream's legacy checks for both, and the strict checks events.k8s.io/v1 adds.

use rkube_apimachinery::Cause;
use serde_json::Value;

use crate::errs::{invalid_str, required};
use crate::names::{dns1123_subdomain, qualified_name};
use crate::value::{get, s};

/// Events have no defaults.
pub fn default_event(_obj: &mut Value) {}

fn has_time(v: &Value, k: &str) -> bool {
    get(v, k).and_then(Value::as_str).is_some_and(|t| !t.is_empty())
}

/// Upstream's `legacyValidateEvent` over the core/v1 field names (`eventTime` decides old or new style).
fn legacy(obj: &Value, involved: &str, message: &str, reason: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    let inv = obj.get(involved).unwrap_or(&Value::Null);
    let inv_ns = s(inv, "namespace");
    let f = format!("{involved}.namespace");
    if !has_time(obj, "eventTime") {
        if inv_ns.is_empty() {
            if !ns.is_empty() && ns != "default" {
                errs.push(invalid_str(&f, inv_ns, "does not match event.namespace"));
            }
        } else if ns != inv_ns {
            errs.push(invalid_str(&f, inv_ns, "does not match event.namespace"));
        }
    } else {
        if inv_ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(invalid_str(&f, inv_ns, "does not match event.namespace"));
        }
        let rc = s(obj, "reportingController");
        if rc.is_empty() {
            errs.push(required("reportingController", ""));
        }
        errs.extend(qualified_name(rc).iter().map(|m| invalid_str("reportingController", rc, m)));
        let ri = s(obj, "reportingInstance");
        if ri.is_empty() {
            errs.push(required("reportingInstance", ""));
        }
        if ri.len() > 128 {
            errs.push(invalid_str("reportingInstance", "", "can have at most 128 characters"));
        }
        let action = s(obj, "action");
        if action.is_empty() {
            errs.push(required("action", ""));
        }
        if action.len() > 128 {
            errs.push(invalid_str("action", "", "can have at most 128 characters"));
        }
        let r = s(obj, reason);
        if r.is_empty() {
            errs.push(required("reason", ""));
        }
        if r.len() > 128 {
            errs.push(invalid_str("reason", "", "can have at most 128 characters"));
        }
        if s(obj, message).len() > 1024 {
            errs.push(invalid_str("message", "", "can have at most 1024 characters"));
        }
    }
    errs.extend(dns1123_subdomain(ns).iter().map(|m| invalid_str("namespace", ns, m)));
    errs
}

/// Validates a core/v1 Event (legacy rules only, as upstream does for the v1 API).
pub fn validate_event(obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
    legacy(obj, "involvedObject", "message", "reason")
}

/// Validates an events.k8s.io/v1 Event: the legacy rules plus eventTime, type and no deprecated fields.
pub fn validate_events_k8s_io_event(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut errs = legacy(obj, "regarding", "note", "reason");
    if old.is_some() {
        return errs;
    }
    if !has_time(obj, "eventTime") {
        errs.push(required("eventTime", ""));
    }
    let t = s(obj, "type");
    if t != "Normal" && t != "Warning" {
        errs.push(invalid_str("type", "", &format!("has invalid value: {t}")));
    }
    for (k, name) in [("deprecatedFirstTimestamp", "firstTimestamp"), ("deprecatedLastTimestamp", "lastTimestamp")] {
        if has_time(obj, k) {
            errs.push(invalid_str(name, "", "needs to be unset"));
        }
    }
    if obj.get("deprecatedCount").and_then(Value::as_i64).unwrap_or(0) != 0 {
        errs.push(invalid_str("count", "", "needs to be unset"));
    }
    if let Some(src) = get(obj, "deprecatedSource")
        && (!s(src, "component").is_empty() || !s(src, "host").is_empty())
    {
        errs.push(invalid_str("source", "", "needs to be unset"));
    }
    if let Some(series) = get(obj, "series") {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            errs.push(invalid_str("series.count", "", "should be at least 2"));
        }
        if !has_time(series, "lastObservedTime") {
            errs.push(required("series.lastObservedTime", ""));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn legacy_events() {
        let ok = json!({"metadata": {"namespace": "default"}, "involvedObject": {"kind": "Pod", "namespace": "default"}, "reason": "Started"});
        assert!(validate_event(&ok, None).is_empty());
        let bad =
            json!({"metadata": {"namespace": "default"}, "involvedObject": {"kind": "Pod", "namespace": "other"}});
        let errs = validate_event(&bad, None);
        assert_eq!(errs[0].field, "involvedObject.namespace");
        assert_eq!(errs[0].message, "Invalid value: \"other\": does not match event.namespace");
        let new =
            json!({"metadata": {"namespace": "default"}, "regarding": {"namespace": "default"}, "type": "Normal"});
        let fields: Vec<String> = validate_events_k8s_io_event(&new, None).into_iter().map(|c| c.field).collect();
        assert_eq!(fields, vec!["eventTime"]);
    }
}
