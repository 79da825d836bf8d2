//! Bootstrap tokens against their Secrets.

mod common;

use common::{now, secs};
use rkube_auth::{BootstrapError, BootstrapToken};
use serde_json::json;

fn token() -> BootstrapToken {
    BootstrapToken::parse("abcdef.0123456789abcdef").expect("parse")
}

fn secret() -> serde_json::Value {
    token().to_secret(
        Some(now() + secs(3600)),
        &["authentication", "signing"],
        &["system:bootstrappers:worker", "system:bootstrappers:kubeadm:default-node-token"],
        Some("join"),
    )
}

#[test]
fn valid_token_authenticates() {
    let s = secret();
    assert_eq!(s["metadata"], json!({ "name": "bootstrap-token-abcdef", "namespace": "kube-system" }));
    assert_eq!(s["type"], "bootstrap.kubernetes.io/token");
    let user = token().authenticate(Some(&s), now()).expect("valid");
    assert_eq!(user.name, "system:bootstrap:abcdef");
    // Sorted and de-duplicated as upstream, then system:authenticated.
    assert_eq!(
        user.groups,
        [
            "system:bootstrappers",
            "system:bootstrappers:kubeadm:default-node-token",
            "system:bootstrappers:worker",
            "system:authenticated"
        ]
    );
}

#[test]
fn expired_token_is_refused() {
    let err = token().authenticate(Some(&secret()), now() + secs(3600)).expect_err("expired");
    assert_eq!(err, BootstrapError::Expired("bootstrap-token-abcdef".into()));
    // No expiration at all never expires.
    let forever = token().to_secret(None, &["authentication"], &[], None);
    token().authenticate(Some(&forever), now() + secs(100 * 365 * 24 * 3600)).expect("no expiry");
}

#[test]
fn wrong_secret_is_refused() {
    let other = BootstrapToken::parse("abcdef.ffffffffffffffff").expect("parse");
    let err = other.authenticate(Some(&secret()), now()).expect_err("wrong secret");
    assert_eq!(err, BootstrapError::SecretMismatch("bootstrap-token-abcdef".into()));
}

#[test]
fn malformed_tokens_are_not_bootstrap_tokens() {
    for t in [
        "abcde.0123456789abcdef",
        "ABCDEF.0123456789abcdef",
        "abcdef.0123456789abcde",
        "abcdef0123456789abcdef",
        "abcdef.0123456789abcdef0",
    ] {
        assert_eq!(BootstrapToken::parse(t), Err(BootstrapError::Malformed), "{t}");
    }
}

#[test]
fn usage_flag_is_required() {
    let signing_only = token().to_secret(Some(now() + secs(60)), &["signing"], &[], None);
    let err = token().authenticate(Some(&signing_only), now()).expect_err("usage");
    assert_eq!(err, BootstrapError::NotForAuthentication("bootstrap-token-abcdef".into()));
}

#[test]
fn secret_shape_is_checked() {
    assert!(matches!(token().authenticate(None, now()), Err(BootstrapError::SecretNotFound(_))));
    let mut s = secret();
    s["type"] = json!("Opaque");
    assert!(matches!(token().authenticate(Some(&s), now()), Err(BootstrapError::WrongType(_))));
    let mut s = secret();
    s["metadata"]["deletionTimestamp"] = json!("2018-01-01T00:00:00Z");
    assert!(matches!(token().authenticate(Some(&s), now()), Err(BootstrapError::Deleting(_))));
    let s = BootstrapToken::parse("zzzzzz.0123456789abcdef").expect("parse").to_secret(
        None,
        &["authentication"],
        &[],
        None,
    );
    assert!(matches!(token().authenticate(Some(&s), now()), Err(BootstrapError::IdMismatch(_))));
    let s = token().to_secret(None, &["authentication"], &["system:masters"], None);
    let err = token().authenticate(Some(&s), now()).expect_err("group");
    assert!(err.to_string().contains(r#"bootstrap group "system:masters" is invalid"#), "{err}");
}
