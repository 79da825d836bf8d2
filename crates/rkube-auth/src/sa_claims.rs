//! Service-account token claims: the JSON layouts upstream writes, what a verified token says, and the
//! live-object checks (service account, pod, secret, node) that complete its authentication.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::error::VerifyError;
use crate::timefmt::parse_rfc3339;
use crate::user::{
    EXTRA_CREDENTIAL_ID, EXTRA_NODE_NAME, EXTRA_NODE_UID, EXTRA_POD_NAME, EXTRA_POD_UID, UserInfo,
    service_account_groups, service_account_username,
};

/// The issuer of legacy, Secret-based tokens (upstream's `LegacyIssuer`).
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// Label upstream's legacy-token cleaner sets on a Secret whose token may no longer be used.
pub const LEGACY_INVALID_SINCE_LABEL: &str = "kubernetes.io/legacy-token-invalid-since";
/// Label recording the day a legacy token was last used (the API server patches it, at most daily).
pub const LEGACY_LAST_USED_LABEL: &str = "kubernetes.io/legacy-token-last-used";
/// go-jose's default leeway, which upstream applies to `exp`, `nbf`, `iat` and deletion timestamps.
pub const LEEWAY: Duration = Duration::from_secs(60);

/// A name and uid, as in the `kubernetes.io` claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Object name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Object uid.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// The private `kubernetes.io` claim of a bound token. Fields in alphabetical order because upstream's
/// go-jose serializes claims through a map, whose keys Go sorts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KubernetesClaim {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) node: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pod: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secret: Option<ObjectRef>,
    // Go's omitempty does not apply to struct values: the service account is always written.
    #[serde(default)]
    pub(crate) serviceaccount: ObjectRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) warnafter: Option<i64>,
}

/// A bound token's payload as issued (keys sorted, as upstream's).
#[derive(Serialize)]
pub(crate) struct BoundPayload<'a> {
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub(crate) aud: &'a [String],
    pub(crate) exp: i64,
    pub(crate) iat: i64,
    pub(crate) iss: &'a str,
    pub(crate) jti: &'a str,
    #[serde(rename = "kubernetes.io")]
    pub(crate) kubernetes: &'a KubernetesClaim,
    pub(crate) nbf: i64,
    pub(crate) sub: &'a str,
}

/// A legacy token's payload as the tokens controller issues it.
#[derive(Serialize)]
pub(crate) struct LegacyPayload<'a> {
    pub(crate) iss: &'a str,
    #[serde(rename = "kubernetes.io/serviceaccount/namespace")]
    pub(crate) namespace: &'a str,
    #[serde(rename = "kubernetes.io/serviceaccount/secret.name")]
    pub(crate) secret_name: &'a str,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.name")]
    pub(crate) service_account_name: &'a str,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.uid")]
    pub(crate) service_account_uid: &'a str,
    pub(crate) sub: &'a str,
}

/// Any service-account token's payload, as read back.
#[derive(Deserialize, Default)]
pub(crate) struct ReadPayload {
    #[serde(default, deserialize_with = "audience")]
    pub(crate) aud: Vec<String>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub(crate) exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub(crate) iat: Option<i64>,
    #[serde(default)]
    pub(crate) iss: String,
    #[serde(default)]
    pub(crate) jti: Option<String>,
    #[serde(default, rename = "kubernetes.io")]
    pub(crate) kubernetes: Option<KubernetesClaim>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub(crate) nbf: Option<i64>,
    #[serde(default)]
    pub(crate) sub: String,
    #[serde(default, rename = "kubernetes.io/serviceaccount/namespace")]
    pub(crate) legacy_namespace: String,
    #[serde(default, rename = "kubernetes.io/serviceaccount/secret.name")]
    pub(crate) legacy_secret_name: String,
    #[serde(default, rename = "kubernetes.io/serviceaccount/service-account.name")]
    pub(crate) legacy_sa_name: String,
    #[serde(default, rename = "kubernetes.io/serviceaccount/service-account.uid")]
    pub(crate) legacy_sa_uid: String,
}

/// `aud` may be one string or an array of strings (RFC 7519 §4.1.3).
fn audience<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Aud>::deserialize(d)? {
        None => Vec::new(),
        Some(Aud::One(a)) => vec![a],
        Some(Aud::Many(a)) => a,
    })
}

/// NumericDates may carry a fraction; whole seconds are what every check compares.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    // `as` saturates, which is the right reading of an absurd date.
    Ok(Option::<f64>::deserialize(d)?.map(|f| f.floor() as i64))
}

/// Which kind of service-account token a verified token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A bound token from the TokenRequest API (projected volumes, `kubectl create token`).
    Bound,
    /// A legacy token stored in a `kubernetes.io/service-account-token` Secret.
    Legacy,
}

/// The kind of a live object a token's validity depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKind {
    /// The ServiceAccount (always).
    ServiceAccount,
    /// The Pod a token is bound to.
    Pod,
    /// The Secret a token is bound to, or a legacy token's Secret.
    Secret,
    /// The Node a token is bound to.
    Node,
}

impl LookupKind {
    /// The plural resource (`serviceaccounts`, `pods`, `secrets`, `nodes`) in the core group.
    pub fn resource(self) -> &'static str {
        match self {
            LookupKind::ServiceAccount => "serviceaccounts",
            LookupKind::Pod => "pods",
            LookupKind::Secret => "secrets",
            LookupKind::Node => "nodes",
        }
    }

    /// The kind (`ServiceAccount`, `Pod`, `Secret`, `Node`).
    pub fn kind(self) -> &'static str {
        match self {
            LookupKind::ServiceAccount => "ServiceAccount",
            LookupKind::Pod => "Pod",
            LookupKind::Secret => "Secret",
            LookupKind::Node => "Node",
        }
    }
}

/// A live object the API server must fetch to finish authenticating a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// What kind of object.
    pub kind: LookupKind,
    /// Its namespace (empty for a Node).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The uid the token expects it to have (empty for a legacy token's Secret).
    pub uid: String,
}

/// What a signature-checked, audience-checked and time-checked service-account token says.
#[derive(Clone, PartialEq, Eq)]
pub struct Claims {
    /// Bound or legacy.
    pub kind: TokenKind,
    /// `iss`.
    pub issuer: String,
    /// `sub`: `system:serviceaccount:<ns>:<name>`.
    pub subject: String,
    /// The audiences the token was accepted for (those the request accepts, in the request's order).
    pub audiences: Vec<String>,
    /// `jti`, when the token has one.
    pub jti: Option<String>,
    /// `exp`, seconds since the epoch (legacy tokens have none).
    pub expiry: Option<i64>,
    /// The service account's namespace.
    pub namespace: String,
    /// The service account.
    pub service_account: ObjectRef,
    /// The pod the token is bound to.
    pub pod: Option<ObjectRef>,
    /// The secret the token is bound to (for a legacy token: its Secret, without uid).
    pub secret: Option<ObjectRef>,
    /// The node the token is bound to, or (with a pod) the node that pod ran on.
    pub node: Option<ObjectRef>,
    /// A legacy token compares itself with its Secret's copy, so the claims keep it.
    pub(crate) token: String,
}

impl std::fmt::Debug for Claims {
    // Never print the bearer token itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claims")
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .field("audiences", &self.audiences)
            .field("jti", &self.jti)
            .field("expiry", &self.expiry)
            .field("namespace", &self.namespace)
            .field("service_account", &self.service_account)
            .field("pod", &self.pod)
            .field("secret", &self.secret)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// A service account identified by a token and confirmed against live objects (upstream's
/// `ServiceAccountInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccountInfo {
    /// Namespace.
    pub namespace: String,
    /// Service-account name.
    pub name: String,
    /// Service-account uid.
    pub uid: String,
    /// Bound pod's name.
    pub pod_name: String,
    /// Bound pod's uid.
    pub pod_uid: String,
    /// Node name (bound node, or the bound pod's node).
    pub node_name: String,
    /// Node uid.
    pub node_uid: String,
    /// `JTI=<jti>` for bound tokens with a jti.
    pub credential_id: String,
    /// For a legacy token: its Secret's name, so the API server can keep the
    /// `kubernetes.io/legacy-token-last-used` label current.
    pub legacy_secret: Option<String>,
}

impl ServiceAccountInfo {
    /// The user: `system:serviceaccount:<ns>:<name>`, uid = the service account's uid, groups
    /// `system:serviceaccounts`, `system:serviceaccounts:<ns>`, `system:authenticated`, and the extra
    /// keys upstream sets (pod name and uid together, credential id, node name and uid).
    pub fn user(&self) -> UserInfo {
        let mut user = UserInfo {
            name: service_account_username(&self.namespace, &self.name),
            uid: self.uid.clone(),
            groups: service_account_groups(&self.namespace),
            ..UserInfo::default()
        };
        if !self.pod_name.is_empty() && !self.pod_uid.is_empty() {
            user.extra.insert(EXTRA_POD_NAME.into(), vec![self.pod_name.clone()]);
            user.extra.insert(EXTRA_POD_UID.into(), vec![self.pod_uid.clone()]);
        }
        if !self.credential_id.is_empty() {
            user.extra.insert(EXTRA_CREDENTIAL_ID.into(), vec![self.credential_id.clone()]);
        }
        if !self.node_name.is_empty() {
            user.extra.insert(EXTRA_NODE_NAME.into(), vec![self.node_name.clone()]);
            if !self.node_uid.is_empty() {
                user.extra.insert(EXTRA_NODE_UID.into(), vec![self.node_uid.clone()]);
            }
        }
        user.authenticated()
    }
}

impl Claims {
    /// The live objects whose existence (with the same uid) the token depends on, in the order upstream
    /// checks them. The API server fetches each (from its cache) and passes them to [`Claims::confirm`].
    pub fn lookups(&self) -> Vec<Lookup> {
        let ns = |kind, r: &ObjectRef| Lookup {
            kind,
            namespace: self.namespace.clone(),
            name: r.name.clone(),
            uid: r.uid.clone(),
        };
        let sa = ns(LookupKind::ServiceAccount, &self.service_account);
        if self.kind == TokenKind::Legacy {
            let secret = self.secret.iter().map(|s| ns(LookupKind::Secret, s));
            return secret.chain([sa]).collect();
        }
        let mut out = vec![sa];
        out.extend(self.secret.iter().map(|s| ns(LookupKind::Secret, s)));
        out.extend(self.pod.iter().map(|p| ns(LookupKind::Pod, p)));
        // A pod-bound token's node claim is informational; only a node-bound token depends on the node.
        if self.pod.is_none() {
            out.extend(self.node.iter().map(|n| Lookup {
                kind: LookupKind::Node,
                namespace: String::new(),
                name: n.name.clone(),
                uid: n.uid.clone(),
            }));
        }
        out
    }

    /// Completes authentication against live objects: `get` returns the object a [`Lookup`] names, or
    /// `None` if it does not exist. Rejects tokens whose service account, pod, secret or node was
    /// deleted (beyond the leeway) or re-created with another uid, as upstream's validators do.
    pub fn confirm(
        &self,
        get: impl Fn(&Lookup) -> Option<Value>,
        now: SystemTime,
    ) -> Result<ServiceAccountInfo, VerifyError> {
        match self.kind {
            TokenKind::Bound => self.confirm_bound(get, now),
            TokenKind::Legacy => self.confirm_legacy(get),
        }
    }

    fn confirm_bound(
        &self,
        get: impl Fn(&Lookup) -> Option<Value>,
        now: SystemTime,
    ) -> Result<ServiceAccountInfo, VerifyError> {
        // Things deleted before now-leeway count as gone.
        let cutoff = now.checked_sub(LEEWAY).unwrap_or(now);
        let mut info = ServiceAccountInfo {
            namespace: self.namespace.clone(),
            name: self.service_account.name.clone(),
            uid: self.service_account.uid.clone(),
            credential_id: self
                .jti
                .as_deref()
                .filter(|j| !j.is_empty())
                .map(|j| format!("JTI={j}"))
                .unwrap_or_default(),
            ..ServiceAccountInfo::default()
        };
        for lookup in self.lookups() {
            let live = get(&lookup);
            let live_uid = live.as_ref().map(uid_of).unwrap_or_default();
            let deleted = live.as_ref().is_some_and(|o| deleted_before(o, cutoff));
            match lookup.kind {
                LookupKind::ServiceAccount => {
                    if live.is_none() {
                        return Err(VerifyError::ServiceAccountNotFound {
                            namespace: lookup.namespace,
                            name: lookup.name,
                        });
                    }
                    if live_uid != lookup.uid {
                        return Err(VerifyError::ServiceAccountUid { live: live_uid, claim: lookup.uid });
                    }
                    if deleted {
                        return Err(VerifyError::ServiceAccountDeleted {
                            namespace: lookup.namespace,
                            name: lookup.name,
                        });
                    }
                }
                kind => {
                    let label = match kind {
                        LookupKind::Pod => "pod",
                        LookupKind::Secret => "secret",
                        _ => "node",
                    };
                    if live.is_none() {
                        return Err(VerifyError::Invalidated);
                    }
                    if live_uid != lookup.uid {
                        return Err(VerifyError::BoundObjectUid { kind: label, live: live_uid, claim: lookup.uid });
                    }
                    if deleted {
                        return Err(VerifyError::Invalidated);
                    }
                }
            }
        }
        if let Some(pod) = &self.pod {
            info.pod_name.clone_from(&pod.name);
            info.pod_uid.clone_from(&pod.uid);
        }
        if let Some(node) = &self.node {
            info.node_name.clone_from(&node.name);
            info.node_uid.clone_from(&node.uid);
        }
        Ok(info)
    }

    fn confirm_legacy(&self, get: impl Fn(&Lookup) -> Option<Value>) -> Result<ServiceAccountInfo, VerifyError> {
        let lookups = self.lookups();
        let (Some(secret_lookup), Some(sa_lookup)) = (lookups.first(), lookups.get(1)) else {
            return Err(VerifyError::LegacyClaimMissing("secretName"));
        };
        let secret = get(secret_lookup).ok_or(VerifyError::LegacyInvalidated)?;
        if secret.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
            return Err(VerifyError::LegacyInvalidated);
        }
        let stored = secret
            .pointer("/data/token")
            .and_then(Value::as_str)
            .and_then(|b| STANDARD.decode(b).ok())
            .unwrap_or_default();
        // Constant time: the stored token is a credential.
        if aws_lc_rs::constant_time::verify_slices_are_equal(&stored, self.token.as_bytes()).is_err() {
            return Err(VerifyError::LegacyMismatch);
        }
        let sa =
            get(sa_lookup).ok_or_else(|| VerifyError::LegacyServiceAccountNotFound { name: sa_lookup.name.clone() })?;
        if sa.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
            return Err(VerifyError::LegacyServiceAccountDeleted {
                namespace: sa_lookup.namespace.clone(),
                name: sa_lookup.name.clone(),
            });
        }
        let live_uid = uid_of(&sa);
        if live_uid != sa_lookup.uid {
            return Err(VerifyError::LegacyServiceAccountUid { live: live_uid, claim: sa_lookup.uid.clone() });
        }
        let invalid_since = secret
            .pointer("/metadata/labels")
            .and_then(|l| l.get(LEGACY_INVALID_SINCE_LABEL))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !invalid_since.is_empty() {
            return Err(VerifyError::LegacyMarkedInvalid {
                namespace: self.namespace.clone(),
                secret: secret_lookup.name.clone(),
                name: sa_lookup.name.clone(),
            });
        }
        Ok(ServiceAccountInfo {
            namespace: self.namespace.clone(),
            name: self.service_account.name.clone(),
            uid: self.service_account.uid.clone(),
            legacy_secret: Some(secret_lookup.name.clone()),
            ..ServiceAccountInfo::default()
        })
    }
}

fn uid_of(o: &Value) -> String {
    o.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// Whether `metadata.deletionTimestamp` is set and earlier than `cutoff`.
fn deleted_before(o: &Value, cutoff: SystemTime) -> bool {
    o.pointer("/metadata/deletionTimestamp").and_then(Value::as_str).and_then(parse_rfc3339).is_some_and(|t| t < cutoff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_audience_as_string_or_list() {
        let p: ReadPayload = serde_json::from_value(json!({ "aud": "a", "exp": 10.7 })).expect("parse");
        assert_eq!(p.aud, ["a"]);
        assert_eq!(p.exp, Some(10));
        let p: ReadPayload = serde_json::from_value(json!({ "aud": ["a", "b"] })).expect("parse");
        assert_eq!(p.aud, ["a", "b"]);
    }

    #[test]
    fn user_extra_as_upstream() {
        let info = ServiceAccountInfo {
            namespace: "ns".into(),
            name: "sa".into(),
            uid: "u".into(),
            pod_name: "p".into(),
            pod_uid: "pu".into(),
            node_name: "n".into(),
            credential_id: "JTI=j".into(),
            ..ServiceAccountInfo::default()
        };
        let u = info.user();
        assert_eq!(u.name, "system:serviceaccount:ns:sa");
        assert_eq!(u.groups, ["system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"]);
        assert_eq!(
            u.extra.keys().map(String::as_str).collect::<Vec<_>>(),
            [EXTRA_CREDENTIAL_ID, EXTRA_NODE_NAME, EXTRA_POD_NAME, EXTRA_POD_UID]
        );
    }
}
