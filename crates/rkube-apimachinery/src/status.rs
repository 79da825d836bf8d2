//! API errors as upstream's `Status` objects: the same codes, reasons and message wording as
//! k8s.io/apimachinery/pkg/api/errors, so clients (kubectl, client-go, kube-rs) recognise them.

use serde::Serialize;
use serde_json::{Value, json};

/// One per-field cause of an Invalid (or other) error, as in `details.causes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    /// Machine-readable reason, e.g. `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`.
    pub reason: String,
    /// Human-readable message, e.g. `Invalid value: "X": a lowercase RFC 1123 subdomain ...`.
    pub message: String,
    /// The field path, e.g. `metadata.name`, `spec.containers[0].image`.
    pub field: String,
}

impl Cause {
    /// `Required value` for a missing field.
    pub fn required(field: &str, detail: &str) -> Self {
        let message = if detail.is_empty() { "Required value".to_owned() } else { format!("Required value: {detail}") };
        Cause { reason: "FieldValueRequired".into(), message, field: field.into() }
    }

    /// `Invalid value: <value>: <detail>` for a field whose value is wrong.
    pub fn invalid(field: &str, value: &Value, detail: &str) -> Self {
        Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {}: {detail}", value_text(value)),
            field: field.into(),
        }
    }

    /// `Unsupported value: <value>: supported values: ...` for an enum field.
    pub fn not_supported(field: &str, value: &Value, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!("Unsupported value: {}: supported values: {}", value_text(value), list.join(", ")),
            field: field.into(),
        }
    }

    /// `Forbidden: <detail>` for a field that may not be set or changed.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Cause { reason: "FieldValueForbidden".into(), message: format!("Forbidden: {detail}"), field: field.into() }
    }

    /// `Duplicate value: <value>`.
    pub fn duplicate(field: &str, value: &Value) -> Self {
        Cause {
            reason: "FieldValueDuplicate".into(),
            message: format!("Duplicate value: {}", value_text(value)),
            field: field.into(),
        }
    }

    /// How the cause reads inside the error message: `<field>: <message>`.
    fn line(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// Values print as upstream prints them in field errors: strings quoted, everything else as JSON.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// An API error: an HTTP status with upstream's `Status` body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason`, e.g. `NotFound`.
    pub reason: &'static str,
    /// `Status.message`.
    pub message: String,
    /// `Status.details`, if any.
    pub details: Option<Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} {})", self.message, self.code, self.reason)
    }
}

impl std::error::Error for ApiError {}

/// `resource` as upstream writes it in messages: `configmaps` or `deployments.apps`.
fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() { resource.to_owned() } else { format!("{resource}.{group}") }
}

fn details(group: &str, resource: &str, name: &str) -> Value {
    let mut d = json!({ "kind": resource });
    if !name.is_empty() {
        d["name"] = json!(name);
    }
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    d
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>, details: Option<Value>) -> Self {
        ApiError { code, reason, message: message.into(), details }
    }

    /// 404: `configmaps "x" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(group, resource)),
            Some(details(group, resource, name)),
        )
    }

    /// 404 for a path that names no resource at all: `the server could not find the requested resource`.
    pub fn no_such_resource() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource", Some(json!({})))
    }

    /// 409: `configmaps "x" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(group, resource)),
            Some(details(group, resource, name)),
        )
    }

    /// 409: a stale resourceVersion, worded as upstream's optimistic-concurrency error.
    pub fn conflict(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(group, resource)
            ),
            Some(details(group, resource, name)),
        )
    }

    /// 409 with a custom explanation (e.g. server-side apply conflicts), reason Conflict.
    pub fn conflict_with(group: &str, resource: &str, name: &str, why: &str, causes: Vec<Cause>) -> Self {
        let mut d = details(group, resource, name);
        if !causes.is_empty() {
            d["causes"] = json!(causes);
        }
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{name}\": {why}", qualified(group, resource)),
            Some(d),
        )
    }

    /// 422: `ConfigMap "X" is invalid: metadata.name: Invalid value: ...` with one cause per field.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let lines: Vec<String> = causes.iter().map(Cause::line).collect();
        let summary = match lines.len() {
            0 => String::new(),
            1 => lines[0].clone(),
            _ => format!("[{}]", lines.join(", ")),
        };
        let mut d = json!({ "name": name, "kind": kind, "causes": causes });
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        Self::new(422, "Invalid", format!("{} \"{name}\" is invalid: {summary}", qualified(group, kind)), Some(d))
    }

    /// 422 without per-field causes (e.g. a JSON patch whose `test` fails).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message, None)
    }

    /// 429: a request refused for now (e.g. an eviction a disruption budget forbids), with one cause.
    pub fn too_many_requests(message: &str, cause_reason: &str, cause_field: &str) -> Self {
        Self::new(
            429,
            "TooManyRequests",
            message,
            Some(json!({ "causes": [{ "reason": cause_reason, "message": message, "field": cause_field }] })),
        )
    }

    /// 400 with a message that says what is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message, None)
    }

    /// 401: no valid credentials.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized", None)
    }

    /// 403 from the authorizer, worded as upstream's RBAC denial.
    pub fn forbidden(
        user: &str,
        verb: &str,
        group: &str,
        resource: &str,
        subresource: &str,
        namespace: &str,
        name: &str,
    ) -> Self {
        let res = if subresource.is_empty() { resource.to_owned() } else { format!("{resource}/{subresource}") };
        let target =
            if name.is_empty() { qualified(group, &res) } else { format!("{} \"{name}\"", qualified(group, &res)) };
        let scope = if namespace.is_empty() {
            "at the cluster scope".to_owned()
        } else {
            format!("in the namespace \"{namespace}\"")
        };
        let message = format!(
            "{target} is forbidden: User \"{user}\" cannot {verb} resource \"{res}\" in API group \"{group}\" {scope}"
        );
        Self::new(403, "Forbidden", message, Some(details(group, resource, name)))
    }

    /// 403 with a custom message (admission, namespace being terminated, ...).
    pub fn forbidden_because(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let target = if name.is_empty() {
            qualified(group, resource)
        } else {
            format!("{} \"{name}\"", qualified(group, resource))
        };
        Self::new(403, "Forbidden", format!("{target} is forbidden: {why}"), Some(details(group, resource, name)))
    }

    /// 405: the resource does not support the verb.
    pub fn method_not_allowed(verb: &str, resource: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({verb} {resource})"),
            Some(json!({})),
        )
    }

    /// 410: a resourceVersion older than the compacted history.
    pub fn expired(requested: i64, oldest: i64) -> Self {
        Self::new(410, "Expired", format!("too old resource version: {requested} ({oldest})"), None)
    }

    /// 413: a request body over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(413, "RequestEntityTooLarge", format!("Request entity too large: limit is {limit}"), None)
    }

    /// 413: an object larger than the store keeps.
    pub fn object_too_large(size: usize, limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!(
                "Request entity too large: the object is {size} bytes and the store keeps at most {limit} bytes per object"
            ),
            None,
        )
    }

    /// 410 for a `continue` token whose revision was compacted, with upstream's advice.
    pub fn expired_continue() -> Self {
        Self::new(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
            None,
        )
    }

    /// Adds one cause to the details (creating them if needed).
    pub fn with_cause(mut self, reason: &str, message: &str, field: &str) -> Self {
        let d = self.details.get_or_insert_with(|| json!({}));
        d["causes"] = json!([{ "reason": reason, "message": message, "field": field }]);
        self
    }

    /// 415: a body in a format the server does not read.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"
            ),
            None,
        )
    }

    /// 406: an Accept header the server cannot answer.
    pub fn not_acceptable(accept: &str) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!("only the following media types are accepted: application/json, application/yaml (got {accept:?})"),
            None,
        )
    }

    /// 500 with what failed; the details stay in the server log.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", format!("Internal error occurred: {}", message.into()), None)
    }

    /// 503: the storage (or another dependency) is unavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message, None)
    }

    /// 504: a request took longer than allowed.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message, None)
    }

    /// The `Status` object clients read.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_upstream_wording() {
        assert_eq!(ApiError::not_found("", "configmaps", "x").message, "configmaps \"x\" not found");
        assert_eq!(ApiError::not_found("apps", "deployments", "d").message, "deployments.apps \"d\" not found");
        assert_eq!(ApiError::already_exists("", "namespaces", "a").code, 409);
        let f =
            ApiError::forbidden("system:serviceaccount:default:default", "list", "", "configmaps", "", "default", "");
        assert_eq!(
            f.message,
            "configmaps is forbidden: User \"system:serviceaccount:default:default\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""
        );
        let f = ApiError::forbidden("bob", "get", "", "nodes", "", "", "n1");
        assert_eq!(
            f.message,
            "nodes \"n1\" is forbidden: User \"bob\" cannot get resource \"nodes\" in API group \"\" at the cluster scope"
        );
        assert_eq!(ApiError::expired(5, 10).message, "too old resource version: 5 (10)");
    }

    #[test]
    fn invalid_lists_causes() {
        let one = ApiError::invalid(
            "",
            "ConfigMap",
            "X",
            vec![Cause::invalid("metadata.name", &json!("X"), "must be lowercase")],
        );
        assert_eq!(one.message, "ConfigMap \"X\" is invalid: metadata.name: Invalid value: \"X\": must be lowercase");
        let two = ApiError::invalid(
            "apps",
            "Deployment",
            "d",
            vec![Cause::required("spec.selector", ""), Cause::required("spec.template", "")],
        );
        assert_eq!(
            two.message,
            "Deployment.apps \"d\" is invalid: [spec.selector: Required value, spec.template: Required value]"
        );
        let s = two.to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["details"]["causes"][1]["field"], "spec.template");
        assert_eq!(s["details"]["group"], "apps");
    }
}
