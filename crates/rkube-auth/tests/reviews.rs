//! The review APIs: request validation and response shapes.

mod common;

use common::{getter, issuer, now, service_account};
use rkube_auth::{
    AccessReviewKind, Authenticated, Rbac, ReviewError, TokenReviewOutcome, UserInfo, access_review, rules_review,
    rules_review_namespace, self_subject_review, token_review, token_review_spec,
};
use serde_json::{Value, json};

fn rbac_objects() -> (Vec<Value>, Vec<Value>) {
    let roles = vec![json!({ "kind": "ClusterRole", "metadata": { "name": "pod-reader" },
        "rules": [{ "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"] },
                  { "nonResourceURLs": ["/healthz"], "verbs": ["get"] }] })];
    let bindings = vec![json!({ "kind": "ClusterRoleBinding", "metadata": { "name": "readers" },
        "roleRef": { "kind": "ClusterRole", "name": "pod-reader" }, "subjects": [{ "kind": "Group", "name": "readers" }] })];
    (roles, bindings)
}

fn reader() -> UserInfo {
    UserInfo {
        name: "erin".into(),
        groups: vec!["readers".into(), "system:authenticated".into()],
        ..Default::default()
    }
}

fn ssar(verb: &str, resource: &str) -> Value {
    json!({ "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": { "creationTimestamp": null },
            "spec": { "resourceAttributes": { "namespace": "default", "verb": verb, "resource": resource, "group": "" } } })
}

#[test]
fn self_subject_access_review_allowed_and_denied() {
    let (roles, bindings) = rbac_objects();
    let rbac = Rbac::new(&roles, &bindings, &[], &[]);
    let authorize = |u: &UserInfo, a: &rkube_auth::Attributes| rbac.authorize(u, a);
    let out = access_review(&ssar("list", "pods"), &reader(), AccessReviewKind::SelfSubjectAccessReview, authorize)
        .expect("ok");
    assert_eq!(
        out,
        json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": { "creationTimestamp": null },
            "spec": { "resourceAttributes": { "namespace": "default", "verb": "list", "resource": "pods" } },
            "status": { "allowed": true, "reason": "RBAC: allowed by ClusterRoleBinding \"readers\" of ClusterRole \"pod-reader\" to Group \"readers\"" },
        })
    );
    let out = access_review(&ssar("delete", "pods"), &reader(), AccessReviewKind::SelfSubjectAccessReview, authorize)
        .expect("ok");
    assert_eq!(out["status"], json!({ "allowed": false }));

    let body = json!({ "spec": { "nonResourceAttributes": { "path": "/healthz", "verb": "get" } } });
    let out = access_review(&body, &reader(), AccessReviewKind::SelfSubjectAccessReview, authorize).expect("ok");
    assert_eq!(out["status"]["allowed"], true);
    assert_eq!(out["spec"], json!({ "nonResourceAttributes": { "path": "/healthz", "verb": "get" } }));
}

#[test]
fn subject_access_review_asks_about_the_spec_user() {
    let (roles, bindings) = rbac_objects();
    let rbac = Rbac::new(&roles, &bindings, &[], &[]);
    let body = json!({ "spec": { "user": "erin", "groups": ["readers"], "resourceAttributes": { "verb": "get", "resource": "pods", "namespace": "x" } } });
    let nobody = UserInfo::new("system:kube-controller-manager");
    let out =
        access_review(&body, &nobody, AccessReviewKind::SubjectAccessReview, |u, a| rbac.authorize(u, a)).expect("ok");
    assert_eq!(out["status"]["allowed"], true);
    assert_eq!(out["spec"]["user"], "erin");
    assert_eq!(out["spec"]["groups"], json!(["readers"]));
}

#[test]
fn invalid_bodies_name_the_field() {
    let never = |_: &UserInfo, _: &rkube_auth::Attributes| -> (bool, String) { panic!("not asked") };
    let me = reader();
    let cases = [
        (
            json!({ "spec": { "resourceAttributes": { "verb": "get" } } }),
            AccessReviewKind::SubjectAccessReview,
            "spec.user",
        ),
        (json!({ "spec": { "user": "a" } }), AccessReviewKind::SubjectAccessReview, "spec.resourceAttributes"),
        (
            json!({ "spec": { "user": "a", "resourceAttributes": {}, "nonResourceAttributes": { "path": "/" } } }),
            AccessReviewKind::SubjectAccessReview,
            "spec.nonResourceAttributes",
        ),
        (json!({ "spec": {} }), AccessReviewKind::SelfSubjectAccessReview, "spec.resourceAttributes"),
        (
            json!({ "metadata": { "name": "x" }, "spec": { "resourceAttributes": {} } }),
            AccessReviewKind::SelfSubjectAccessReview,
            "metadata",
        ),
        (
            json!({ "spec": { "user": "a", "resourceAttributes": { "namespace": "other" } } }),
            AccessReviewKind::LocalSubjectAccessReview { namespace: "dev" },
            "spec.resourceAttributes.namespace",
        ),
        (
            json!({ "spec": { "user": "a", "nonResourceAttributes": { "path": "/" } } }),
            AccessReviewKind::LocalSubjectAccessReview { namespace: "dev" },
            "spec.nonResourceAttributes",
        ),
        (
            json!({ "spec": { "resourceAttributes": { "fieldSelector": {} } } }),
            AccessReviewKind::SelfSubjectAccessReview,
            "spec.resourceAttributes.fieldSelector.requirements",
        ),
    ];
    for (body, kind, field) in cases {
        let err = access_review(&body, &me, kind, never).expect_err(field);
        assert!(err.fields().contains(&field), "{field}: {err}");
        assert_eq!(err.to_api_error().code, 422);
    }
    let err = access_review(
        &json!({ "spec": { "resourceAttributes": { "verb": "get" } } }),
        &me,
        AccessReviewKind::SubjectAccessReview,
        never,
    )
    .expect_err("no user");
    assert_eq!(
        err.to_string(),
        r#"SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": at least one of user or group must be specified"#
    );
    let err = access_review(&json!({ "spec": {} }), &me, AccessReviewKind::SelfSubjectAccessReview, never)
        .expect_err("neither");
    assert_eq!(
        err.to_string(),
        r#"SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified"#
    );
}

#[test]
fn local_subject_access_review_namespaces() {
    let body = json!({ "spec": { "user": "a", "resourceAttributes": { "namespace": "dev", "verb": "get", "resource": "pods" } } });
    let out =
        access_review(&body, &reader(), AccessReviewKind::LocalSubjectAccessReview { namespace: "dev" }, |_, a| {
            assert_eq!(a.namespace, "dev");
            (false, String::new())
        })
        .expect("ok");
    assert_eq!(out["metadata"], json!({ "creationTimestamp": null, "namespace": "dev" }));
    assert_eq!(out["kind"], "LocalSubjectAccessReview");

    let body = json!({ "metadata": { "namespace": "prod" }, "spec": { "user": "a", "resourceAttributes": { "namespace": "prod" } } });
    let err =
        access_review(&body, &reader(), AccessReviewKind::LocalSubjectAccessReview { namespace: "dev" }, |_, _| {
            (true, String::new())
        })
        .expect_err("url mismatch");
    assert!(matches!(err, ReviewError::BadRequest(_)));
    assert_eq!(err.to_api_error().code, 400);
}

#[test]
fn self_subject_review_shape() {
    let mut user = UserInfo::new("system:serviceaccount:ci:builder");
    user.uid = "sa-uid-1".into();
    user.groups = vec!["system:serviceaccounts".into(), "system:authenticated".into()];
    user.extra.insert("authentication.kubernetes.io/pod-name".into(), vec!["runner".into()]);
    assert_eq!(
        self_subject_review(&user, now()),
        json!({
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": { "creationTimestamp": "2018-01-01T00:00:00Z" },
            "status": { "userInfo": {
                "username": "system:serviceaccount:ci:builder",
                "uid": "sa-uid-1",
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "extra": { "authentication.kubernetes.io/pod-name": ["runner"] },
            } },
        })
    );
}

#[test]
fn rules_review_shape() {
    let (roles, bindings) = rbac_objects();
    let rbac = Rbac::new(&roles, &bindings, &[], &[]);
    let body = json!({ "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": { "namespace": "default" } });
    let ns = rules_review_namespace(&body).expect("namespace");
    let out = rules_review(&rbac.rules_for(&reader(), &ns));
    assert_eq!(
        out,
        json!({
            "kind": "SelfSubjectRulesReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": { "creationTimestamp": null },
            "spec": {},
            "status": {
                "resourceRules": [{ "verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"] }],
                "nonResourceRules": [{ "verbs": ["get"], "nonResourceURLs": ["/healthz"] }],
                "incomplete": false,
            },
        })
    );
    let err = rules_review_namespace(&json!({ "spec": {} })).expect_err("no namespace");
    assert_eq!(err.to_string(), "no namespace on request");
    let empty = rules_review(&rbac.rules_for(&UserInfo::new("nobody"), "default"));
    assert_eq!(empty["status"]["resourceRules"], json!([]));
}

#[test]
fn token_review_of_a_service_account_token() {
    let issuer = issuer();
    let token = issuer.issue(&service_account(), &json!({}), None, now()).expect("issue").token;
    let body = json!({ "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": { "token": token } });
    let spec = token_review_spec(&body).expect("spec");
    assert!(spec.audiences.is_empty());
    let result = issuer.verifier().authenticate(&spec.token, &spec.audiences, now(), getter(vec![service_account()]));
    let out = token_review(&body, &TokenReviewOutcome::from_service_account(result));
    assert_eq!(out["metadata"], json!({ "creationTimestamp": null }));
    assert_eq!(out["spec"]["token"], token);
    assert_eq!(out["status"]["authenticated"], true);
    assert_eq!(out["status"]["audiences"], json!(["https://kubernetes.default.svc.cluster.local"]));
    assert_eq!(out["status"]["user"]["username"], "system:serviceaccount:ci:builder");
    assert_eq!(out["status"]["user"]["uid"], "sa-uid-1");
    assert_eq!(
        out["status"]["user"]["groups"],
        json!(["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"])
    );
    assert!(
        out["status"]["user"]["extra"]["authentication.kubernetes.io/credential-id"][0]
            .as_str()
            .expect("jti")
            .starts_with("JTI=")
    );

    // Expired: the authenticator's error in upstream's aggregate form.
    let later = now() + std::time::Duration::from_secs(7200);
    let result = issuer.verifier().authenticate(&token, &[], later, getter(vec![service_account()]));
    let out = token_review(&body, &TokenReviewOutcome::from_service_account(result));
    assert_eq!(
        out["status"],
        json!({ "user": {}, "error": "[invalid bearer token, service account token has expired]" })
    );

    // Not a token anyone knows.
    let out = token_review(&json!({ "spec": { "token": "abc" } }), &TokenReviewOutcome::Rejected(None));
    assert_eq!(out["status"], json!({ "user": {}, "error": "invalid bearer token" }));
}

#[test]
fn token_review_needs_a_token() {
    let err = token_review_spec(&json!({ "spec": {} })).expect_err("empty");
    assert_eq!(err.to_string(), "token is required for TokenReview in authentication");
    assert_eq!(err.to_api_error().code, 400);
    let spec = token_review_spec(&json!({ "spec": { "token": "t", "audiences": ["vault"] } })).expect("spec");
    assert_eq!(spec.audiences, ["vault"]);
    let outcome = TokenReviewOutcome::Authenticated(Authenticated { user: UserInfo::new("u"), audiences: vec![] });
    assert_eq!(outcome.error_text(), None);
}
