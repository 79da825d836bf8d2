//! CertificateSigningRequests (certificates.k8s.io/v1), as upstream's strategies: the requester's identity is
//! recorded by the server on create (never taken from the client), the spec is immutable, the `approval`
//! subresource alone sets Approved/Denied conditions, and the `status` subresource (the signer's) sets the
//! certificate and other conditions.

use serde_json::{Value, json};

use super::Strategy;
use rkube_apimachinery::Cause;

/// The CSR strategy.
pub(crate) struct Csr;

/// The one instance.
pub(crate) static CSR: Csr = Csr;

const APPROVAL_TYPES: [&str; 2] = ["Approved", "Denied"];
const USAGES: &[&str] = &[
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

impl Strategy for Csr {
    fn extra_fields(&self) -> &'static [&'static str] {
        &["spec.signerName"]
    }
    fn prepare_update(&self, new: &mut Value, old: &Value) {
        // The spec (request, requester, signer) never changes after create.
        match old.get("spec") {
            Some(s) => new["spec"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("spec");
                }
            }
        }
    }
    fn validate(&self, obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
        validate(obj)
    }
}

/// Records who asks, as upstream's PrepareForCreate: `spec.username`, `uid`, `groups` and `extra` of the
/// authenticated user replace whatever the client sent.
pub(crate) fn record_requester(obj: &mut Value, user: &rkube_auth::UserInfo) {
    if !obj.get("spec").is_some_and(Value::is_object) {
        return;
    }
    let spec = &mut obj["spec"];
    spec["username"] = json!(user.name);
    match user.uid.is_empty() {
        true => {
            if let Some(s) = spec.as_object_mut() {
                s.remove("uid");
            }
        }
        false => spec["uid"] = json!(user.uid),
    }
    spec["groups"] = json!(user.groups);
    match user.extra.is_empty() {
        true => {
            if let Some(s) = spec.as_object_mut() {
                s.remove("extra");
            }
        }
        false => spec["extra"] = json!(user.extra),
    }
}

/// The object a `status` update stores: the old object with the new status, except the approval conditions,
/// which only the `approval` subresource changes.
pub(crate) fn merge_status(old: &Value, wanted: &Value) -> Value {
    let mut new = old.clone();
    let mut status = wanted.get("status").cloned().unwrap_or_else(|| json!({}));
    let mut conditions: Vec<Value> = conditions(&status).into_iter().filter(|c| !is_approval(c)).collect();
    conditions.extend(conditions_of(old).into_iter().filter(is_approval));
    status["conditions"] = json!(conditions);
    new["status"] = status;
    stamp_conditions(&mut new);
    new
}

/// The object an `approval` update stores: the old object with the new conditions (the certificate stays).
pub(crate) fn merge_approval(old: &Value, wanted: &Value) -> Value {
    let mut new = old.clone();
    let wanted_conditions = wanted.get("status").map(conditions).unwrap_or_default();
    if !new.get("status").is_some_and(Value::is_object) {
        new["status"] = json!({});
    }
    new["status"]["conditions"] = json!(wanted_conditions);
    stamp_conditions(&mut new);
    new
}

fn conditions(status: &Value) -> Vec<Value> {
    status.get("conditions").and_then(Value::as_array).cloned().unwrap_or_default()
}

fn conditions_of(obj: &Value) -> Vec<Value> {
    obj.get("status").map(conditions).unwrap_or_default()
}

fn is_approval(c: &Value) -> bool {
    c.get("type").and_then(Value::as_str).is_some_and(|t| APPROVAL_TYPES.contains(&t))
}

/// Upstream fills `lastUpdateTime` and `lastTransitionTime` of conditions that lack them.
fn stamp_conditions(obj: &mut Value) {
    let now = crate::meta::now();
    if let Some(cs) = obj.pointer_mut("/status/conditions").and_then(Value::as_array_mut) {
        for c in cs {
            for field in ["lastUpdateTime", "lastTransitionTime"] {
                if c.get(field).is_none_or(Value::is_null) {
                    c[field] = json!(now);
                }
            }
        }
    }
}

fn validate(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let request = obj.pointer("/spec/request").and_then(Value::as_str).unwrap_or_default();
    // A request that is not a PEM CSR is refused by the signer (a Failed condition), not here: decoding it
    // would make the API server parse certificates.
    if request.is_empty() {
        causes.push(Cause::required("spec.request", ""));
    }
    let signer = obj.pointer("/spec/signerName").and_then(Value::as_str).unwrap_or_default();
    if signer.is_empty() {
        causes.push(Cause::required("spec.signerName", ""));
    } else if !signer.contains('/') {
        causes.push(Cause::invalid(
            "spec.signerName",
            &json!(signer),
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ));
    }
    match obj.pointer("/spec/usages").and_then(Value::as_array) {
        None => causes.push(Cause::required("spec.usages", "")),
        Some(usages) => {
            for (i, u) in usages.iter().enumerate() {
                if !u.as_str().is_some_and(|u| USAGES.contains(&u)) {
                    causes.push(Cause::not_supported(&format!("spec.usages[{i}]"), u, USAGES));
                }
            }
        }
    }
    if let Some(secs) = obj.pointer("/spec/expirationSeconds").and_then(Value::as_i64)
        && secs < 600
    {
        causes.push(Cause::invalid(
            "spec.expirationSeconds",
            &json!(secs),
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    let cs = conditions_of(obj);
    let has = |t: &str| cs.iter().any(|c| c.get("type").and_then(Value::as_str) == Some(t));
    for (i, c) in cs.iter().enumerate() {
        let t = c.get("type").and_then(Value::as_str).unwrap_or_default();
        if t.is_empty() {
            causes.push(Cause::required(&format!("status.conditions[{i}].type"), ""));
        }
        if cs.iter().filter(|o| o.get("type").and_then(Value::as_str) == Some(t)).count() > 1
            && cs.iter().position(|o| o.get("type").and_then(Value::as_str) == Some(t)) != Some(i)
        {
            causes.push(Cause::duplicate(&format!("status.conditions[{i}].type"), &json!(t)));
        }
    }
    if has("Approved") && has("Denied") {
        causes.push(Cause::invalid(
            "status.conditions",
            &json!("Approved"),
            "Approved and Denied conditions are mutually exclusive",
        ));
    }
    let cert = obj.pointer("/status/certificate").and_then(Value::as_str).unwrap_or_default();
    if !cert.is_empty() && !has("Approved") {
        causes.push(Cause::forbidden("status.certificate", "only allowed when the Approved condition is set"));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_and_status_touch_only_their_fields() {
        let old =
            json!({"spec": {"username": "a"}, "status": {"conditions": [{"type": "Approved", "status": "True"}]}});
        let status = merge_status(
            &old,
            &json!({"spec": {"username": "b"}, "status": {"certificate": "Y2VydA==", "conditions": [{"type": "Failed", "status": "True"}]}}),
        );
        assert_eq!(status["spec"]["username"], "a");
        assert_eq!(status["status"]["certificate"], "Y2VydA==");
        let types: Vec<String> =
            conditions_of(&status).iter().filter_map(|c| c["type"].as_str().map(str::to_owned)).collect();
        assert_eq!(types, ["Failed", "Approved"], "the status subresource keeps the approval");
        let approval = merge_approval(
            &status,
            &json!({"status": {"certificate": "", "conditions": [{"type": "Denied", "status": "True"}]}}),
        );
        assert_eq!(approval["status"]["certificate"], "Y2VydA==");
        assert_eq!(approval["status"]["conditions"][0]["type"], "Denied");
        assert!(approval["status"]["conditions"][0]["lastUpdateTime"].is_string());
    }
}
