//! The crate's errors: one enum per concern, each variant worded as upstream words the same failure.

use rkube_apimachinery::{ApiError, Cause};

/// A signing or verifying key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The text holds no PEM block of the expected kind.
    #[error("no {expected} found in the PEM text")]
    NoPem {
        /// What was looked for, e.g. `private key`.
        expected: &'static str,
        /// What the PEM parser reported.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// The key decodes but is not RSA (2048 to 8192 bits) or ECDSA P-256/P-384.
    #[error("unsupported service-account key: {0}; use RSA (RS256) or ECDSA P-256 (ES256) / P-384 (ES384)")]
    Unsupported(String),
    /// The public half of a key could not be encoded (it names the key id derivation).
    #[error("cannot encode the public key")]
    Encode(#[source] aws_lc_rs::error::Unspecified),
    /// A verifier was built without a single key.
    #[error("no service-account verifying key was given")]
    NoKeys,
}

/// A TokenRequest was refused; each variant maps to the status upstream answers with.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// 422 Invalid: field errors, e.g. `spec.expirationSeconds` below 10 minutes.
    #[error("TokenRequest.authentication.k8s.io {name:?} is invalid: {}", causes_text(causes))]
    Invalid {
        /// The name the error is reported under (upstream uses "" for spec errors).
        name: String,
        /// One cause per field.
        causes: Vec<Cause>,
    },
    /// 400 BadRequest, e.g. a token bound to a pod that runs under another service account.
    #[error("{0}")]
    BadRequest(String),
    /// 404 NotFound: the object named by `spec.boundObjectRef` does not exist.
    #[error("{resource} {name:?} not found")]
    BoundObjectNotFound {
        /// Plural resource (`pods`, `secrets`, `nodes`).
        resource: &'static str,
        /// The object's name.
        name: String,
    },
    /// 409 Conflict: the bound object reference names another incarnation (uid) of the object.
    #[error(
        "Operation cannot be fulfilled on {kind} {name:?}: the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
    )]
    BoundObjectUidMismatch {
        /// The object's kind (`Pod`), which upstream uses as the resource in this message.
        kind: String,
        /// The object's name.
        name: String,
        /// The uid the request named.
        uid: String,
    },
    /// 500: the ServiceAccount object given has no name, namespace or uid.
    #[error("the ServiceAccount object has no {0}")]
    ServiceAccount(&'static str),
    /// 500: signing failed (aws-lc-rs reported an error).
    #[error("failed to generate token")]
    Sign(#[source] aws_lc_rs::error::Unspecified),
}

impl IssueError {
    /// The `Status` error the API server answers with, as upstream's TokenRequest REST handler.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            IssueError::Invalid { name, causes } => {
                ApiError::invalid("authentication.k8s.io", "TokenRequest", name, causes.clone())
            }
            IssueError::BadRequest(m) => ApiError::bad_request(m.clone()),
            IssueError::BoundObjectNotFound { resource, name } => ApiError::not_found("", resource, name),
            IssueError::BoundObjectUidMismatch { kind, name, uid } => ApiError::conflict_with(
                "",
                kind,
                name,
                &format!(
                    "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
                Vec::new(),
            ),
            other @ (IssueError::ServiceAccount(_) | IssueError::Sign(_)) => ApiError::internal(other.to_string()),
        }
    }
}

/// A bearer token was not accepted as a service-account token. The messages are upstream's, so a
/// TokenReview's `status.error` reads as kube-apiserver's would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a compact JWS with a JSON payload: not a service-account token at all (upstream ignores it).
    #[error("not a JSON web token: {0}")]
    Malformed(String),
    /// Signed JWT whose `iss` is none of ours: some other authenticator's token (upstream ignores it).
    #[error("token issuer {0:?} is not a service-account issuer of this cluster")]
    UnknownIssuer(String),
    /// The token names a key id that none of our keys has: signed by another key.
    #[error("invalid signature, no keys found")]
    UnknownKey,
    /// The signature does not verify with any candidate key (tampered token, or the `alg` is not the key's).
    #[error("go-jose/go-jose: error in cryptographic primitive")]
    BadSignature,
    /// None of the token's audiences is one the request accepts.
    #[error("token audiences {} is invalid for the target audiences {}", go_quoted(token), go_quoted(requested))]
    Audience {
        /// The token's `aud` (or the API audiences, for a legacy token without one).
        token: Vec<String>,
        /// The audiences the request accepts.
        requested: Vec<String>,
    },
    /// `exp` is more than a minute (upstream's leeway) in the past.
    #[error("service account token has expired")]
    Expired,
    /// `nbf` is more than a minute in the future.
    #[error("service account token is not valid yet")]
    NotYetValid,
    /// `iat` is more than a minute in the future.
    #[error("service account token is issued in the future")]
    IssuedInFuture,
    /// A legacy token lacks a claim it must carry (`sub`, `namespace`, `secretName`, ...).
    #[error("{0} claim is missing")]
    LegacyClaimMissing(&'static str),
    /// A legacy token's `sub` does not name its namespace and service account.
    #[error("sub claim is invalid")]
    LegacySubjectInvalid,
    /// The service account the token names does not exist (the getter's NotFound, as upstream returns it).
    #[error("serviceaccounts {name:?} not found")]
    ServiceAccountNotFound {
        /// Namespace of the service account.
        namespace: String,
        /// Name of the service account.
        name: String,
    },
    /// The service account was deleted and re-created: its uid is not the token's.
    #[error("service account UID ({live}) does not match claim ({claim})")]
    ServiceAccountUid {
        /// The live object's uid.
        live: String,
        /// The uid in the token.
        claim: String,
    },
    /// The service account is being deleted (for longer than the leeway).
    #[error("service account {namespace}/{name} has been deleted")]
    ServiceAccountDeleted {
        /// Namespace of the service account.
        namespace: String,
        /// Name of the service account.
        name: String,
    },
    /// The bound pod, secret or node is gone or being deleted.
    #[error("service account token has been invalidated")]
    Invalidated,
    /// The bound object was re-created: its uid is not the token's.
    #[error("{kind} UID ({live}) does not match service account {kind} ref claim ({claim})")]
    BoundObjectUid {
        /// `pod`, `secret` or `node`, as in upstream's message.
        kind: &'static str,
        /// The live object's uid.
        live: String,
        /// The uid in the token.
        claim: String,
    },
    /// Legacy token: its Secret is gone or being deleted.
    #[error("Token has been invalidated")]
    LegacyInvalidated,
    /// Legacy token: the Secret now holds another token.
    #[error("Token does not match server's copy")]
    LegacyMismatch,
    /// Legacy token: the service account is gone (the getter's NotFound).
    #[error("serviceaccounts {name:?} not found")]
    LegacyServiceAccountNotFound {
        /// Name of the service account.
        name: String,
    },
    /// Legacy token: the service account is being deleted.
    #[error("ServiceAccount {namespace}/{name} has been deleted")]
    LegacyServiceAccountDeleted {
        /// Namespace of the service account.
        namespace: String,
        /// Name of the service account.
        name: String,
    },
    /// Legacy token: the service account was re-created.
    #[error("ServiceAccount UID ({live}) does not match claim ({claim})")]
    LegacyServiceAccountUid {
        /// The live object's uid.
        live: String,
        /// The uid in the token.
        claim: String,
    },
    /// Legacy token: its Secret carries the `kubernetes.io/legacy-token-invalid-since` label.
    #[error(
        "the token in secret {namespace}/{secret} for service account {namespace}/{name} has been marked invalid. Use tokens from the TokenRequest API or manually created secret-based tokens, or remove the 'kubernetes.io/legacy-token-invalid-since' label from the secret to temporarily allow use of this token"
    )]
    LegacyMarkedInvalid {
        /// Namespace of the secret and service account.
        namespace: String,
        /// Name of the secret.
        secret: String,
        /// Name of the service account.
        name: String,
    },
}

impl VerifyError {
    /// Whether upstream would treat the token as someone else's (no opinion, no error) rather than as
    /// a service-account token that failed: then a TokenReview reports only `invalid bearer token`.
    pub fn is_not_ours(&self) -> bool {
        matches!(self, VerifyError::Malformed(_) | VerifyError::UnknownIssuer(_))
    }
}

/// A bootstrap token did not authenticate. Upstream logs these and answers "not authenticated"
/// without an error, so a TokenReview shows only `invalid bearer token`; the variants say why, for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootstrapError {
    /// The token is not `[a-z0-9]{6}.[a-z0-9]{16}`: not a bootstrap token at all.
    #[error("not a bootstrap token (want [a-z0-9]{{6}}.[a-z0-9]{{16}})")]
    Malformed,
    /// No Secret `kube-system/bootstrap-token-<id>`.
    #[error("no secret of name {0} to match bootstrap bearer token")]
    SecretNotFound(String),
    /// The Secret is being deleted.
    #[error("bootstrap token secret {0} is deleted and awaiting removal")]
    Deleting(String),
    /// The Secret is not of type `bootstrap.kubernetes.io/token`, or has no data.
    #[error("bootstrap token secret {0} has invalid type, expected bootstrap.kubernetes.io/token")]
    WrongType(String),
    /// `token-secret` does not match the token's secret part.
    #[error("bootstrap token secret {0} has invalid value for key token-secret")]
    SecretMismatch(String),
    /// `token-id` does not match the token's id part.
    #[error("bootstrap token secret {0} has invalid value for key token-id")]
    IdMismatch(String),
    /// `expiration` is in the past (or unparseable, which upstream treats as expired).
    #[error("bootstrap token secret {0} has expired")]
    Expired(String),
    /// `usage-bootstrap-authentication` is not `"true"`.
    #[error("bootstrap token secret {0} not marked usage-bootstrap-authentication=true")]
    NotForAuthentication(String),
    /// An `auth-extra-groups` entry is not `system:bootstrappers:<name>`.
    #[error(
        "bootstrap token secret {secret} has invalid value for key auth-extra-groups: bootstrap group {group:?} is invalid (must match \\Asystem:bootstrappers:[a-z0-9:-]{{0,255}}[a-z0-9]\\z)"
    )]
    InvalidExtraGroup {
        /// The Secret's name.
        secret: String,
        /// The offending group.
        group: String,
    },
    /// The system's random source failed while generating a token.
    #[error("cannot generate a bootstrap token")]
    Random(#[source] aws_lc_rs::error::Unspecified),
}

/// A review request (TokenReview, SubjectAccessReview, ...) was refused before any decision.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReviewError {
    /// 422 Invalid, e.g. neither `resourceAttributes` nor `nonResourceAttributes`.
    #[error("{kind}.{group} \"\" is invalid: {}", causes_text(causes))]
    Invalid {
        /// The kind (`SubjectAccessReview`, ...).
        kind: String,
        /// The API group (`authorization.k8s.io`).
        group: &'static str,
        /// One cause per field.
        causes: Vec<Cause>,
    },
    /// 400 BadRequest, e.g. `token is required for TokenReview in authentication`.
    #[error("{0}")]
    BadRequest(String),
}

impl ReviewError {
    /// The `Status` error the API server answers with.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            // Upstream reports reviews as invalid under the empty name.
            ReviewError::Invalid { kind, group, causes } => ApiError::invalid(group, kind, "", causes.clone()),
            ReviewError::BadRequest(m) => ApiError::bad_request(m.clone()),
        }
    }

    /// The field paths named by an Invalid error (empty for BadRequest): handy in tests and logs.
    pub fn fields(&self) -> Vec<&str> {
        match self {
            ReviewError::Invalid { causes, .. } => causes.iter().map(|c| c.field.as_str()).collect(),
            ReviewError::BadRequest(_) => Vec::new(),
        }
    }
}

/// `field: message` lines joined as upstream's aggregate: one bare, several in brackets.
fn causes_text(causes: &[Cause]) -> String {
    let lines: Vec<String> = causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
    match lines.len() {
        1 => lines.concat(),
        _ => format!("[{}]", lines.join(", ")),
    }
}

/// A string list as Go's `%q` prints a `[]string`: `["a" "b"]`.
fn go_quoted(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_upstream() {
        let e = VerifyError::Audience { token: vec!["a".into()], requested: vec!["b".into(), "c".into()] };
        assert_eq!(e.to_string(), r#"token audiences ["a"] is invalid for the target audiences ["b" "c"]"#);
        let e = VerifyError::BoundObjectUid { kind: "pod", live: "1".into(), claim: "2".into() };
        assert_eq!(e.to_string(), "pod UID (1) does not match service account pod ref claim (2)");
        let e = IssueError::Invalid {
            name: String::new(),
            causes: vec![Cause::invalid(
                "spec.expirationSeconds",
                &serde_json::json!(60),
                "may not specify a duration less than 10 minutes",
            )],
        };
        assert_eq!(
            e.to_string(),
            r#"TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"#
        );
        assert_eq!(e.to_api_error().message, e.to_string());
        assert_eq!(e.to_api_error().code, 422);
    }
}
