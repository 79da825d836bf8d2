//! Service-account tokens end to end: issue with a real key, verify, confirm against live objects.

mod common;

use std::collections::HashSet;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::*;
use rkube_auth::{
    Algorithm, IssueError, LookupKind, TokenIssuer, TokenKind, TokenVerifier, VerifyError, bound_object_ref,
};
use serde_json::{Value, json};

#[test]
fn round_trip_with_rsa_2048() {
    let issuer = issuer();
    assert_eq!(issuer.algorithm(), Algorithm::RS256);
    let issued = issuer.issue(&service_account(), &json!({}), None, now()).expect("issue");
    assert_eq!(issued.expiration_seconds, 3600);
    assert_eq!(issued.expiration_timestamp, "2018-01-01T01:00:00Z");
    assert_eq!(issued.audiences, audiences());

    let claims = issuer.verifier().verify(&issued.token, &[], now()).expect("verify");
    assert_eq!(claims.kind, TokenKind::Bound);
    assert_eq!(claims.subject, "system:serviceaccount:ci:builder");
    assert_eq!(claims.audiences, audiences());
    let lookups = claims.lookups();
    assert_eq!(lookups.len(), 1);
    assert_eq!(
        (lookups[0].kind, lookups[0].name.as_str(), lookups[0].uid.as_str()),
        (LookupKind::ServiceAccount, "builder", "sa-uid-1")
    );

    let info = claims.confirm(getter(vec![service_account()]), now()).expect("confirm");
    let user = info.user();
    assert_eq!(user.name, "system:serviceaccount:ci:builder");
    assert_eq!(user.uid, "sa-uid-1");
    assert_eq!(user.groups, ["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"]);
    assert_eq!(user.extra["authentication.kubernetes.io/credential-id"], [format!("JTI={}", issued.jti)]);
}

#[test]
fn works_with_the_key_rkube_pki_generates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = rkube_pki::Pki::load_or_create(&rkube_pki::PkiConfig::new(dir.path(), "node-a")).expect("pki");
    let key = pki.service_account_key();
    let issuer = TokenIssuer::new(key.private_key_pem(), ISSUER, audiences()).expect("issuer");
    assert_eq!(issuer.algorithm().name(), key.algorithm());
    // Upstream's kid: base64url(SHA-256(DER SubjectPublicKeyInfo)).
    assert_eq!(issuer.key_id(), URL_SAFE_NO_PAD.encode(digest(&SHA256, key.public_key_der())));
    assert_eq!(issuer.public_key_der(), key.public_key_der());

    let issued = issuer.issue(&service_account(), &json!({}), None, now()).expect("issue");
    let verifier = TokenVerifier::new(vec![ISSUER.into()], &[key.public_key_pem()], audiences()).expect("verifier");
    verifier.verify(&issued.token, &[], now()).expect("verify with the public key file");
    let header: Value = serde_json::from_str(&decode(&issued.token).0).expect("header");
    assert_eq!(header, json!({ "alg": "RS256", "kid": issuer.key_id() }));
}

#[test]
fn ecdsa_keys_sign_es256() {
    let pem = rcgen::KeyPair::generate().expect("ec").serialize_pem();
    let issuer = TokenIssuer::new(&pem, ISSUER, audiences()).expect("issuer");
    assert_eq!(issuer.algorithm(), Algorithm::ES256);
    let issued = issuer.issue(&service_account(), &json!({}), None, now()).expect("issue");
    let (header, _) = decode(&issued.token);
    assert!(header.starts_with(r#"{"alg":"ES256","kid":""#), "{header}");
    let verifier = TokenVerifier::new(vec![ISSUER.into()], &[pem.as_str()], audiences()).expect("verifier");
    verifier.verify(&issued.token, &[], now()).expect("verify");
}

#[test]
fn every_rejection_is_distinct() {
    let issuer = issuer();
    let token = issuer.issue(&service_account(), &json!({}), None, now()).expect("issue").token;
    let verifier = issuer.verifier();

    let wrong_audience = verifier.verify(&token, &["vault".into()], now()).expect_err("audience");
    assert_eq!(
        wrong_audience.to_string(),
        r#"token audiences ["https://kubernetes.default.svc.cluster.local"] is invalid for the target audiences ["vault"]"#
    );
    // Expired only past exp plus the one-minute leeway.
    verifier.verify(&token, &[], now() + secs(3600 + 60)).expect("within leeway");
    let expired = verifier.verify(&token, &[], now() + secs(3600 + 61)).expect_err("expired");
    let not_yet = verifier.verify(&token, &[], now() - secs(61)).expect_err("not yet valid");

    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut sig = URL_SAFE_NO_PAD.decode(&parts[2]).expect("sig");
    sig[10] ^= 1;
    parts[2] = URL_SAFE_NO_PAD.encode(sig);
    let tampered_sig = verifier.verify(&parts.join("."), &[], now()).expect_err("tampered signature");

    let mut payload = payload(&token);
    payload["sub"] = json!("system:serviceaccount:kube-system:admin");
    let forged = format!(
        "{}.{}.{}",
        token.split('.').next().expect("h"),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        token.split('.').nth(2).expect("s")
    );
    let tampered_payload = verifier.verify(&forged, &[], now()).expect_err("tampered payload");

    let elsewhere = TokenIssuer::new(rsa_pem(), "https://elsewhere.example", audiences()).expect("issuer");
    let foreign = elsewhere.issue(&service_account(), &json!({}), None, now()).expect("issue").token;
    let wrong_issuer = verifier.verify(&foreign, &[], now()).expect_err("issuer");

    let other_key = TokenIssuer::new(other_rsa_pem(), ISSUER, audiences()).expect("issuer");
    let other = other_key.issue(&service_account(), &json!({}), None, now()).expect("issue").token;
    let wrong_key = verifier.verify(&other, &[], now()).expect_err("key");

    let garbage = verifier.verify("not-a-jwt", &[], now()).expect_err("garbage");

    assert!(matches!(wrong_audience, VerifyError::Audience { .. }));
    assert_eq!(expired, VerifyError::Expired);
    assert_eq!(expired.to_string(), "service account token has expired");
    assert_eq!(not_yet, VerifyError::NotYetValid);
    assert_eq!(tampered_sig, VerifyError::BadSignature);
    assert_eq!(tampered_payload, VerifyError::BadSignature);
    assert!(matches!(wrong_issuer, VerifyError::UnknownIssuer(_)));
    assert_eq!(wrong_key, VerifyError::UnknownKey);
    assert_eq!(wrong_key.to_string(), "invalid signature, no keys found");
    assert!(matches!(garbage, VerifyError::Malformed(_)));
    let all = [wrong_audience, expired, not_yet, tampered_sig, wrong_issuer, wrong_key, garbage];
    let texts: HashSet<String> = all.iter().map(ToString::to_string).collect();
    assert_eq!(texts.len(), all.len(), "{texts:?}");
    assert!(all[4].is_not_ours() && all[6].is_not_ours() && !all[1].is_not_ours());
}

#[test]
fn audiences_are_intersected() {
    let issuer = issuer();
    let spec = json!({ "audiences": ["vault", "https://kubernetes.default.svc.cluster.local"] });
    let token = issuer.issue(&service_account(), &spec, None, now()).expect("issue").token;
    let verifier = issuer.verifier();
    assert_eq!(verifier.verify(&token, &[], now()).expect("api").audiences, audiences());
    let claims = verifier.verify(&token, &["other".into(), "vault".into()], now()).expect("vault");
    assert_eq!(claims.audiences, ["vault"]);
}

#[test]
fn short_or_huge_expirations_are_invalid() {
    let issuer = issuer();
    let err = issuer.issue(&service_account(), &json!({ "expirationSeconds": 60 }), None, now()).expect_err("short");
    assert_eq!(
        err.to_string(),
        r#"TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"#
    );
    let api = err.to_api_error();
    assert_eq!((api.code, api.reason), (422, "Invalid"));
    assert_eq!(api.details.expect("details")["causes"][0]["field"], "spec.expirationSeconds");

    let err = issuer
        .issue(&service_account(), &json!({ "expirationSeconds": (1i64 << 32) + 1 }), None, now())
        .expect_err("huge");
    assert!(err.to_string().ends_with("may not specify a duration larger than 2^32 seconds"), "{err}");
    issuer.issue(&service_account(), &json!({ "expirationSeconds": 600 }), None, now()).expect("ten minutes is fine");
}

#[test]
fn claims_layout_matches_upstream() {
    let issued =
        issuer().issue_with_node(&service_account(), &pod_spec(), Some(&pod()), Some(&node()), now()).expect("issue");
    let (header, payload_text) = decode(&issued.token);
    let header: Value = serde_json::from_str(&header).expect("header");
    assert_eq!(header.as_object().expect("object").keys().collect::<Vec<_>>(), ["alg", "kid"]);

    // Keys in Go's sorted-map order, as go-jose writes them.
    let order: Vec<usize> =
        ["\"aud\"", "\"exp\"", "\"iat\"", "\"iss\"", "\"jti\"", "\"kubernetes.io\"", "\"nbf\"", "\"sub\""]
            .iter()
            .map(|k| payload_text.find(k).unwrap_or_else(|| panic!("{k} missing in {payload_text}")))
            .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{payload_text}");

    let p: Value = serde_json::from_str(&payload_text).expect("payload");
    assert_eq!(
        p,
        json!({
            "aud": ["https://kubernetes.default.svc.cluster.local"],
            "exp": 1_514_764_800 + 3600,
            "iat": 1_514_764_800,
            "iss": ISSUER,
            "jti": issued.jti,
            "kubernetes.io": {
                "namespace": "ci",
                "node": { "name": "node-a", "uid": "node-uid-1" },
                "pod": { "name": "runner", "uid": "pod-uid-1" },
                "serviceaccount": { "name": "builder", "uid": "sa-uid-1" },
            },
            "nbf": 1_514_764_800,
            "sub": "system:serviceaccount:ci:builder",
        })
    );
}

#[test]
fn pod_bound_tokens_die_with_their_pod() {
    let issuer = issuer();
    let issued = issuer.issue(&service_account(), &pod_spec(), Some(&pod()), now()).expect("issue");
    // Without the Node object, the node is recorded by name only.
    assert_eq!(payload(&issued.token)["kubernetes.io"]["node"], json!({ "name": "node-a" }));
    let claims = issuer.verifier().verify(&issued.token, &[], now()).expect("verify");
    let kinds: Vec<LookupKind> = claims.lookups().iter().map(|l| l.kind).collect();
    assert_eq!(kinds, [LookupKind::ServiceAccount, LookupKind::Pod]);

    let user = claims.confirm(getter(vec![service_account(), pod()]), now()).expect("alive").user();
    assert_eq!(user.extra["authentication.kubernetes.io/pod-name"], ["runner"]);
    assert_eq!(user.extra["authentication.kubernetes.io/pod-uid"], ["pod-uid-1"]);
    assert_eq!(user.extra["authentication.kubernetes.io/node-name"], ["node-a"]);
    assert!(!user.extra.contains_key("authentication.kubernetes.io/node-uid"));

    let gone = claims.confirm(getter(vec![service_account()]), now()).expect_err("pod deleted");
    assert_eq!(gone, VerifyError::Invalidated);
    assert_eq!(gone.to_string(), "service account token has been invalidated");

    let mut recreated = pod();
    recreated["metadata"]["uid"] = json!("pod-uid-2");
    let err = claims.confirm(getter(vec![service_account(), recreated]), now()).expect_err("recreated");
    assert_eq!(err.to_string(), "pod UID (pod-uid-2) does not match service account pod ref claim (pod-uid-1)");

    // Deletion counts once it is older than the leeway.
    let mut deleting = pod();
    deleting["metadata"]["deletionTimestamp"] = json!("2018-01-01T00:00:00Z");
    claims.confirm(getter(vec![service_account(), deleting.clone()]), now() + secs(30)).expect("within leeway");
    let err = claims.confirm(getter(vec![service_account(), deleting]), now() + secs(120)).expect_err("deleted");
    assert_eq!(err, VerifyError::Invalidated);
}

#[test]
fn tokens_die_with_their_service_account() {
    let issuer = issuer();
    let token = issuer.issue(&service_account(), &json!({}), None, now()).expect("issue").token;
    let claims = issuer.verifier().verify(&token, &[], now()).expect("verify");
    let err = claims.confirm(getter(vec![]), now()).expect_err("missing");
    assert_eq!(err.to_string(), r#"serviceaccounts "builder" not found"#);
    let mut recreated = service_account();
    recreated["metadata"]["uid"] = json!("sa-uid-2");
    let err = claims.confirm(getter(vec![recreated]), now()).expect_err("recreated");
    assert_eq!(err.to_string(), "service account UID (sa-uid-2) does not match claim (sa-uid-1)");
    let mut deleting = service_account();
    deleting["metadata"]["deletionTimestamp"] = json!("2017-12-31T23:00:00Z");
    let err = claims.confirm(getter(vec![deleting]), now()).expect_err("deleted");
    assert_eq!(err.to_string(), "service account ci/builder has been deleted");
}

#[test]
fn authenticate_in_one_call() {
    let issuer = issuer();
    let token = issuer.issue(&service_account(), &json!({}), None, now()).expect("issue").token;
    let a = issuer.verifier().authenticate(&token, &[], now(), getter(vec![service_account()])).expect("authenticate");
    assert_eq!(a.user.name, "system:serviceaccount:ci:builder");
    assert_eq!(a.audiences, audiences());
}

#[test]
fn kubelet_projected_tokens_get_the_extended_lifetime() {
    let spec = json!({ "expirationSeconds": 3607, "boundObjectRef": pod_spec()["boundObjectRef"] });
    let issued = issuer().issue(&service_account(), &spec, Some(&pod()), now()).expect("issue");
    let p = payload(&issued.token);
    assert_eq!(p["exp"].as_i64().expect("exp") - p["iat"].as_i64().expect("iat"), 365 * 24 * 3600);
    assert_eq!(p["kubernetes.io"]["warnafter"], 1_514_764_800 + 3607);
    assert_eq!(issued.expiration_timestamp, "2018-01-01T01:00:07Z");
    // Not for tokens bound to nothing, nor when turned off.
    let plain = issuer().issue(&service_account(), &json!({ "expirationSeconds": 3607 }), None, now()).expect("issue");
    assert!(payload(&plain.token)["kubernetes.io"].get("warnafter").is_none());
    let off =
        issuer().with_extended_expiration(false).issue(&service_account(), &spec, Some(&pod()), now()).expect("issue");
    assert!(payload(&off.token)["kubernetes.io"].get("warnafter").is_none());
}

#[test]
fn max_expiration_shortens_with_a_warning() {
    let issued = issuer()
        .with_max_expiration(1800)
        .issue(&service_account(), &json!({ "expirationSeconds": 7200 }), None, now())
        .expect("issue");
    assert_eq!(issued.expiration_seconds, 1800);
    assert_eq!(issued.warning.as_deref(), Some("requested expiration of 7200 seconds shortened to 1800 seconds"));
}

#[test]
fn bound_objects_are_checked() {
    let issuer = issuer();
    let mut other_pod = pod();
    other_pod["spec"]["serviceAccountName"] = json!("default");
    let err = issuer.issue(&service_account(), &pod_spec(), Some(&other_pod), now()).expect_err("other sa");
    assert_eq!(
        err.to_string(),
        r#"cannot bind token for serviceaccount "builder" to pod running with different serviceaccount name."#
    );
    assert_eq!(err.to_api_error().code, 400);

    let mut recreated = pod();
    recreated["metadata"]["uid"] = json!("pod-uid-2");
    let err = issuer.issue(&service_account(), &pod_spec(), Some(&recreated), now()).expect_err("uid");
    let api = err.to_api_error();
    assert_eq!((api.code, api.reason), (409, "Conflict"));
    assert_eq!(
        api.message,
        r#"Operation cannot be fulfilled on Pod "runner": the UID in the bound object reference (pod-uid-1) does not match the UID in record. The object might have been deleted and then recreated"#
    );

    let err = issuer.issue(&service_account(), &pod_spec(), None, now()).expect_err("missing");
    assert_eq!(err.to_api_error().message, r#"pods "runner" not found"#);

    let deploy = json!({ "boundObjectRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "d" } });
    let err = bound_object_ref(&deploy).expect_err("deployment");
    assert_eq!(err.to_string(), "cannot bind token to object of type apps/v1, Kind=Deployment");
    let r = bound_object_ref(&pod_spec()).expect("pod").expect("some");
    assert_eq!((r.kind, r.name.as_str(), r.uid.as_str()), (LookupKind::Pod, "runner", "pod-uid-1"));

    let secret = json!({ "kind": "Secret", "metadata": { "name": "s", "namespace": "ci", "uid": "sec-1" } });
    let spec = json!({ "boundObjectRef": { "apiVersion": "v1", "kind": "Secret", "name": "s" } });
    let token = issuer.issue(&service_account(), &spec, Some(&secret), now()).expect("secret-bound").token;
    let claims = issuer.verifier().verify(&token, &[], now()).expect("verify");
    let err = claims.confirm(getter(vec![service_account()]), now()).expect_err("secret gone");
    assert_eq!(err, VerifyError::Invalidated);
    claims.confirm(getter(vec![service_account(), secret]), now()).expect("secret alive");
}

#[test]
fn token_request_answers_like_upstream() {
    let body = json!({ "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {} });
    let (out, warning) = issuer().token_request(&body, &service_account(), None, None, now()).expect("token request");
    assert_eq!(warning, None);
    assert_eq!(out["metadata"]["name"], "builder");
    assert_eq!(out["metadata"]["namespace"], "ci");
    assert_eq!(out["metadata"]["creationTimestamp"], "2018-01-01T00:00:00Z");
    assert_eq!(out["spec"], json!({ "audiences": audiences(), "expirationSeconds": 3600 }));
    assert_eq!(out["status"]["expirationTimestamp"], "2018-01-01T01:00:00Z");
    assert!(out["status"]["token"].as_str().expect("token").starts_with("eyJ"));

    let body = json!({ "metadata": { "name": "someone-else" }, "spec": {} });
    let err = issuer().token_request(&body, &service_account(), None, None, now()).expect_err("name");
    assert!(matches!(err, IssueError::Invalid { .. }));
    assert_eq!(
        err.to_string(),
        r#"TokenRequest.authentication.k8s.io "builder" is invalid: metadata.name: Invalid value: "someone-else": must match the service account name if specified"#
    );
}

#[test]
fn legacy_secret_tokens() {
    let issuer = issuer();
    let token = issuer.issue_legacy(&service_account(), "builder-token-abcde").expect("legacy");
    let p = payload(&token);
    assert_eq!(
        p,
        json!({
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": "ci",
            "kubernetes.io/serviceaccount/secret.name": "builder-token-abcde",
            "kubernetes.io/serviceaccount/service-account.name": "builder",
            "kubernetes.io/serviceaccount/service-account.uid": "sa-uid-1",
            "sub": "system:serviceaccount:ci:builder",
        })
    );
    let secret = json!({
        "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": { "name": "builder-token-abcde", "namespace": "ci", "uid": "s1",
                      "annotations": { "kubernetes.io/service-account.name": "builder" } },
        "data": { "token": STANDARD.encode(&token) },
    });
    let verifier = issuer.verifier();
    // Legacy tokens never expire, and are good for the API's own audiences only.
    let claims = verifier.verify(&token, &[], now() + secs(10 * 365 * 24 * 3600)).expect("verify");
    assert_eq!(claims.kind, TokenKind::Legacy);
    let kinds: Vec<LookupKind> = claims.lookups().iter().map(|l| l.kind).collect();
    assert_eq!(kinds, [LookupKind::Secret, LookupKind::ServiceAccount]);
    let info = claims.confirm(getter(vec![secret.clone(), service_account()]), now()).expect("confirm");
    assert_eq!(info.legacy_secret.as_deref(), Some("builder-token-abcde"));
    assert_eq!(info.user().name, "system:serviceaccount:ci:builder");
    assert!(info.user().extra.is_empty());
    assert!(matches!(verifier.verify(&token, &["vault".into()], now()), Err(VerifyError::Audience { .. })));

    let mut replaced = secret.clone();
    replaced["data"]["token"] = json!(STANDARD.encode("something else"));
    let err = claims.confirm(getter(vec![replaced, service_account()]), now()).expect_err("replaced");
    assert_eq!(err.to_string(), "Token does not match server's copy");
    let err = claims.confirm(getter(vec![service_account()]), now()).expect_err("secret deleted");
    assert_eq!(err.to_string(), "Token has been invalidated");
    let mut marked = secret;
    marked["metadata"]["labels"] = json!({ "kubernetes.io/legacy-token-invalid-since": "2023-10-10" });
    let err = claims.confirm(getter(vec![marked, service_account()]), now()).expect_err("marked");
    assert!(err.to_string().starts_with(
        "the token in secret ci/builder-token-abcde for service account ci/builder has been marked invalid."
    ));
}

#[test]
fn legacy_claims_are_checked() {
    let issuer = issuer();
    let mut sa = service_account();
    sa["metadata"]["uid"] = json!("");
    let token = issuer.issue_legacy(&sa, "s").expect("legacy");
    let err = issuer.verifier().verify(&token, &[], now()).expect_err("no uid");
    assert_eq!(err.to_string(), "serviceAccountUID claim is missing");
}

#[test]
fn verifier_needs_keys() {
    let none: [&str; 0] = [];
    assert!(TokenVerifier::new(vec![ISSUER.into()], &none, audiences()).is_err());
    assert!(TokenIssuer::new("not a key", ISSUER, audiences()).is_err());
}
