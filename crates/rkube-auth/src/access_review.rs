//! The authorization review APIs (authorization.k8s.io/v1): SubjectAccessReview,
//! SelfSubjectAccessReview and LocalSubjectAccessReview (`kubectl auth can-i`), and
//! SelfSubjectRulesReview (`kubectl auth can-i --list`), validated and answered as upstream.

use rkube_apimachinery::Cause;
use serde_json::{Map, Value, json};

use crate::error::ReviewError;
use crate::user::{Attributes, UserInfo};

const GROUP: &str = "authorization.k8s.io";

/// Which access review a request creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessReviewKind<'a> {
    /// `subjectaccessreviews`: may the user in `spec` do this?
    SubjectAccessReview,
    /// `selfsubjectaccessreviews`: may I do this?
    SelfSubjectAccessReview,
    /// `namespaces/<namespace>/localsubjectaccessreviews`: may the user in `spec` do this in the URL's namespace?
    LocalSubjectAccessReview {
        /// The namespace in the request's URL.
        namespace: &'a str,
    },
}

impl AccessReviewKind<'_> {
    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        match self {
            AccessReviewKind::SubjectAccessReview => "SubjectAccessReview",
            AccessReviewKind::SelfSubjectAccessReview => "SelfSubjectAccessReview",
            AccessReviewKind::LocalSubjectAccessReview { .. } => "LocalSubjectAccessReview",
        }
    }
}

/// Answers an access review: validates `body` as upstream (exactly one of `resourceAttributes` and
/// `nonResourceAttributes`; for SubjectAccessReview and LocalSubjectAccessReview a `user` or `groups`;
/// empty metadata; for LocalSubjectAccessReview the namespaces agreeing), asks `authorize` about the
/// user (`requester` for SelfSubjectAccessReview, the one in `spec` otherwise) and returns the review
/// with `status.allowed` and `status.reason` filled in.
pub fn access_review(
    body: &Value,
    requester: &UserInfo,
    kind: AccessReviewKind<'_>,
    authorize: impl Fn(&UserInfo, &Attributes) -> (bool, String),
) -> Result<Value, ReviewError> {
    let mut metadata = body.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default();
    if let AccessReviewKind::LocalSubjectAccessReview { namespace } = kind {
        // The generic create handler defaults the object's namespace from the URL, or refuses a different one.
        match metadata.get("namespace").and_then(Value::as_str).unwrap_or_default() {
            "" => {
                metadata.insert("namespace".into(), json!(namespace));
            }
            ns if ns != namespace => {
                return Err(ReviewError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            _ => {}
        }
    }
    let spec = body.get("spec").and_then(Value::as_object).cloned().unwrap_or_default();
    let causes = validate(&metadata, &spec, kind);
    if !causes.is_empty() {
        let kind_name = body.get("kind").and_then(Value::as_str).filter(|k| !k.is_empty()).unwrap_or(kind.kind());
        return Err(ReviewError::Invalid { kind: kind_name.to_owned(), group: GROUP, causes });
    }

    let user = match kind {
        AccessReviewKind::SelfSubjectAccessReview => requester.clone(),
        _ => spec_user(&spec),
    };
    let attrs = match object(&spec, "resourceAttributes") {
        Some(ra) => Attributes {
            verb: text(ra, "verb"),
            group: text(ra, "group"),
            resource: text(ra, "resource"),
            subresource: text(ra, "subresource"),
            namespace: text(ra, "namespace"),
            name: text(ra, "name"),
            path: None,
        },
        None => {
            let nra = object(&spec, "nonResourceAttributes");
            Attributes {
                verb: nra.map(|n| text(n, "verb")).unwrap_or_default(),
                path: Some(nra.map(|n| text(n, "path")).unwrap_or_default()),
                ..Attributes::default()
            }
        }
    };
    let (allowed, reason) = authorize(&user, &attrs);

    let mut out_meta = Map::new();
    out_meta.insert("creationTimestamp".into(), Value::Null);
    if let Some(ns) =
        metadata.get("namespace").filter(|_| matches!(kind, AccessReviewKind::LocalSubjectAccessReview { .. }))
    {
        out_meta.insert("namespace".into(), ns.clone());
    }
    let mut status = Map::new();
    status.insert("allowed".into(), json!(allowed));
    if !reason.is_empty() {
        status.insert("reason".into(), json!(reason));
    }
    Ok(json!({
        "kind": kind.kind(),
        "apiVersion": format!("{GROUP}/v1"),
        "metadata": out_meta,
        "spec": normalized_spec(&spec, kind),
        "status": status,
    }))
}

/// Upstream's `Validate{,Self,Local}SubjectAccessReview` (the v1.33 wording), as field causes.
fn validate(metadata: &Map<String, Value>, spec: &Map<String, Value>, kind: AccessReviewKind<'_>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let ra = object(spec, "resourceAttributes");
    let nra = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    if ra.is_some() && nra.is_some() {
        causes.push(Cause::invalid(
            "spec.nonResourceAttributes",
            nra.unwrap_or(&Value::Null),
            "cannot be specified in combination with resourceAttributes",
        ));
    }
    if ra.is_none() && nra.is_none() {
        causes.push(Cause::invalid(
            "spec.resourceAttributes",
            &json!("null"),
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    let self_review = kind == AccessReviewKind::SelfSubjectAccessReview;
    let groups_empty = spec.get("groups").and_then(Value::as_array).is_none_or(Vec::is_empty);
    if !self_review && text(spec, "user").is_empty() && groups_empty {
        causes.push(Cause::invalid("spec.user", &json!(""), "at least one of user or group must be specified"));
    }
    if let Some(ra) = ra {
        for selector in ["fieldSelector", "labelSelector"] {
            causes.extend(validate_selector(ra, selector));
        }
    }
    let local = matches!(kind, AccessReviewKind::LocalSubjectAccessReview { .. });
    let meta_rest: Map<String, Value> = metadata
        .iter()
        .filter(|(k, v)| k.as_str() != "managedFields" && !(local && k.as_str() == "namespace") && !is_zero(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !meta_rest.is_empty() {
        let detail = if local { "must be empty except for namespace" } else { "must be empty" };
        causes.push(Cause::invalid("metadata", &Value::Object(metadata.clone()), detail));
    }
    if local {
        let ns = metadata.get("namespace").and_then(Value::as_str).unwrap_or_default();
        if let Some(ra) = ra.filter(|ra| text(ra, "namespace") != ns) {
            causes.push(Cause::invalid(
                "spec.resourceAttributes.namespace",
                &json!(text(ra, "namespace")),
                "must match metadata.namespace",
            ));
        }
        if let Some(nra) = nra {
            causes.push(Cause::invalid("spec.nonResourceAttributes", nra, "disallowed on this kind of request"));
        }
    }
    causes
}

/// A field or label selector in resourceAttributes: `rawSelector` or `requirements`, not both nor neither.
fn validate_selector(ra: &Map<String, Value>, key: &str) -> Vec<Cause> {
    let Some(sel) = object(ra, key) else {
        return Vec::new();
    };
    let path = format!("spec.resourceAttributes.{key}");
    let raw = text(sel, "rawSelector");
    let reqs = sel.get("requirements").and_then(Value::as_array).is_some_and(|r| !r.is_empty());
    let mut causes = Vec::new();
    if !raw.is_empty() && reqs {
        causes.push(Cause::invalid(
            &format!("{path}.rawSelector"),
            &json!(raw),
            "may not specified at the same time as requirements",
        ));
    }
    if raw.is_empty() && !reqs {
        causes.push(Cause::required(
            &format!("{path}.requirements"),
            &format!("when {path} is specified, requirements or rawSelector is required"),
        ));
    }
    causes
}

/// The user a SubjectAccessReview asks about: `user`, `groups`, `uid`, `extra` (no group is added).
fn spec_user(spec: &Map<String, Value>) -> UserInfo {
    let strings = |v: &Value| {
        v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
    };
    UserInfo {
        name: text(spec, "user"),
        uid: text(spec, "uid"),
        groups: spec.get("groups").map(strings).unwrap_or_default(),
        extra: spec
            .get("extra")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), strings(v))).collect())
            .unwrap_or_default(),
    }
}

/// The spec as it reads back after upstream's decode and encode: known fields, empty ones omitted.
fn normalized_spec(spec: &Map<String, Value>, kind: AccessReviewKind<'_>) -> Value {
    let mut out = Map::new();
    let keep = |src: &Map<String, Value>, keys: &[&str]| -> Map<String, Value> {
        keys.iter().filter_map(|k| src.get(*k).filter(|v| !is_zero(v)).map(|v| ((*k).to_owned(), v.clone()))).collect()
    };
    if let Some(ra) = object(spec, "resourceAttributes") {
        let keys = [
            "namespace",
            "verb",
            "group",
            "version",
            "resource",
            "subresource",
            "name",
            "fieldSelector",
            "labelSelector",
        ];
        out.insert("resourceAttributes".into(), Value::Object(keep(ra, &keys)));
    }
    if let Some(nra) = object(spec, "nonResourceAttributes") {
        out.insert("nonResourceAttributes".into(), Value::Object(keep(nra, &["path", "verb"])));
    }
    if kind != AccessReviewKind::SelfSubjectAccessReview {
        out.extend(keep(spec, &["user", "groups", "extra", "uid"]));
    }
    Value::Object(out)
}

/// A resource rule of a SelfSubjectRulesReview.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceRule {
    /// Verbs (`*` for all).
    pub verbs: Vec<String>,
    /// API groups (`*` for all).
    pub api_groups: Vec<String>,
    /// Resources (`*`, `pods`, `pods/log`, `*/scale`).
    pub resources: Vec<String>,
    /// Resource names; empty means all.
    pub resource_names: Vec<String>,
}

impl ResourceRule {
    /// The `authorization.k8s.io/v1` JSON (`verbs` always; the lists omitted when empty).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("verbs".into(), json!(self.verbs));
        for (k, v) in
            [("apiGroups", &self.api_groups), ("resources", &self.resources), ("resourceNames", &self.resource_names)]
        {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        }
        Value::Object(m)
    }
}

/// A non-resource rule of a SelfSubjectRulesReview.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NonResourceRule {
    /// Verbs (`get`, `*`).
    pub verbs: Vec<String>,
    /// URLs (`/healthz`, `/api/*`, `*`).
    pub non_resource_urls: Vec<String>,
}

impl NonResourceRule {
    /// The `authorization.k8s.io/v1` JSON.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("verbs".into(), json!(self.verbs));
        if !self.non_resource_urls.is_empty() {
            m.insert("nonResourceURLs".into(), json!(self.non_resource_urls));
        }
        Value::Object(m)
    }
}

/// Everything a user may do in a namespace, as the authorizers' rule resolvers report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRules {
    /// Resource rules.
    pub resource_rules: Vec<ResourceRule>,
    /// Non-resource rules.
    pub non_resource_rules: Vec<NonResourceRule>,
    /// Whether some authorizer could not list its rules (the list may be incomplete).
    pub incomplete: bool,
    /// Errors met while listing, aggregated.
    pub evaluation_error: String,
}

impl UserRules {
    /// Adds another authorizer's rules (upstream's union rule resolver).
    pub fn extend(&mut self, other: UserRules) {
        self.resource_rules.extend(other.resource_rules);
        self.non_resource_rules.extend(other.non_resource_rules);
        self.incomplete |= other.incomplete;
        if !other.evaluation_error.is_empty() {
            if !self.evaluation_error.is_empty() {
                self.evaluation_error.push_str(", ");
            }
            self.evaluation_error.push_str(&other.evaluation_error);
        }
    }
}

/// A SelfSubjectRulesReview's namespace: `spec.namespace`, required (upstream's BadRequest otherwise).
pub fn rules_review_namespace(body: &Value) -> Result<String, ReviewError> {
    let ns = body.pointer("/spec/namespace").and_then(Value::as_str).unwrap_or_default();
    if ns.is_empty() {
        return Err(ReviewError::BadRequest("no namespace on request".into()));
    }
    Ok(ns.to_owned())
}

/// The SelfSubjectRulesReview answer for `rules` (what `kubectl auth can-i --list` prints). As
/// upstream, the response carries an empty `spec`.
pub fn rules_review(rules: &UserRules) -> Value {
    let mut status = Map::new();
    status.insert("resourceRules".into(), rules.resource_rules.iter().map(ResourceRule::to_json).collect());
    status.insert("nonResourceRules".into(), rules.non_resource_rules.iter().map(NonResourceRule::to_json).collect());
    status.insert("incomplete".into(), json!(rules.incomplete));
    if !rules.evaluation_error.is_empty() {
        status.insert("evaluationError".into(), json!(rules.evaluation_error));
    }
    json!({
        "kind": "SelfSubjectRulesReview",
        "apiVersion": format!("{GROUP}/v1"),
        "metadata": { "creationTimestamp": null },
        "spec": {},
        "status": status,
    })
}

fn object<'v>(m: &'v Map<String, Value>, key: &str) -> Option<&'v Map<String, Value>> {
    m.get(key).and_then(Value::as_object)
}

fn text(m: &Map<String, Value>, key: &str) -> String {
    m.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// Go's zero value as JSON: null, "", 0, false, and (as upstream's semantic equality) empty lists and maps.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}
