//! Service-account tokens: issuing bound tokens (upstream's TokenRequest) and legacy Secret tokens, and
//! verifying both (upstream's JWT token authenticator with its bound and legacy validators).

use std::time::{Duration, SystemTime};

use rkube_apimachinery::Cause;
use serde_json::{Value, json};

use crate::error::{IssueError, KeyError, VerifyError};
use crate::jws::{self, Algorithm, SigningKey, VerifyingKey};
use crate::sa_claims::{
    BoundPayload, Claims, KubernetesClaim, LEEWAY, LEGACY_ISSUER, LegacyPayload, Lookup, LookupKind, ObjectRef,
    ReadPayload, TokenKind,
};
use crate::timefmt::{rfc3339, unix_seconds};
use crate::user::{Authenticated, service_account_username, split_service_account_username};

/// The issuer rkube's API server uses (`--service-account-issuer`), as kubeadm's default.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// `spec.expirationSeconds` when a TokenRequest gives none.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// The shortest lifetime a TokenRequest may ask for: 10 minutes.
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// The longest lifetime a TokenRequest may ask for: 2^32 seconds.
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// The lifetime the kubelet asks for projected tokens; upstream then issues a token valid for a year
/// that only warns after this (`--service-account-extend-token-expiration`, on by default).
pub const WARN_ONLY_EXPIRATION_SECONDS: i64 = 60 * 60 + 7;
/// The extended lifetime of such tokens: one year.
pub const EXTENDED_EXPIRATION_SECONDS: i64 = 24 * 365 * 60 * 60;

/// The object a TokenRequest's `spec.boundObjectRef` names, which the API server fetches before issuing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundObjectRef {
    /// Pod, Secret or Node.
    pub kind: LookupKind,
    /// The object's name (in the service account's namespace, except for a Node).
    pub name: String,
    /// The uid the request requires, empty if it names none.
    pub uid: String,
}

/// A freshly issued bound token.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The signed JWT.
    pub token: String,
    /// `status.expirationTimestamp`: now + `expirationSeconds`, RFC 3339.
    pub expiration_timestamp: String,
    /// The same instant.
    pub expires_at: SystemTime,
    /// `spec.expirationSeconds` after defaulting and capping.
    pub expiration_seconds: i64,
    /// `spec.audiences` after defaulting.
    pub audiences: Vec<String>,
    /// The token's `jti` (the credential id is `JTI=<jti>`).
    pub jti: String,
    /// A warning for the client (`requested expiration of X seconds shortened to Y seconds`), if any.
    pub warning: Option<String>,
}

impl std::fmt::Debug for IssuedToken {
    // The token is a credential: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("expiration_timestamp", &self.expiration_timestamp)
            .field("audiences", &self.audiences)
            .field("jti", &self.jti)
            .finish_non_exhaustive()
    }
}

/// Signs service-account tokens with the cluster's service-account key.
pub struct TokenIssuer {
    key: SigningKey,
    issuer: String,
    api_audiences: Vec<String>,
    max_expiration: Option<i64>,
    extend_expiration: bool,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("api_audiences", &self.api_audiences)
            .field("key", self.key.public())
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer signing with `private_key_pem` (RSA → RS256, ECDSA P-256/P-384 → ES256/ES384) as
    /// `issuer`; `api_audiences` are the API server's own (`--api-audiences`, by default the issuer),
    /// the audiences of a TokenRequest that names none.
    pub fn new(private_key_pem: &str, issuer: impl Into<String>, api_audiences: Vec<String>) -> Result<Self, KeyError> {
        Ok(TokenIssuer {
            key: SigningKey::from_pem(private_key_pem)?,
            issuer: issuer.into(),
            api_audiences,
            max_expiration: None,
            extend_expiration: true,
        })
    }

    /// Caps every token's lifetime (`--service-account-max-token-expiration`); longer requests are
    /// shortened with a warning, as upstream.
    pub fn with_max_expiration(mut self, seconds: i64) -> Self {
        self.max_expiration = Some(seconds).filter(|s| *s > 0);
        self
    }

    /// Whether pod-bound tokens requested for 3607 s (the kubelet's default) are issued for a year with a
    /// `warnafter` claim (`--service-account-extend-token-expiration`, default on).
    pub fn with_extended_expiration(mut self, on: bool) -> Self {
        self.extend_expiration = on;
        self
    }

    /// The `iss` of issued tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The API server's audiences.
    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }

    /// The JWS algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.key.public().algorithm()
    }

    /// The `kid` header: base64url(SHA-256(DER SubjectPublicKeyInfo)), as upstream derives it.
    pub fn key_id(&self) -> &str {
        self.key.public().kid()
    }

    /// The public key, DER SubjectPublicKeyInfo (for the OIDC discovery JWKS).
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key.public().spki_der()
    }

    /// A verifier for this issuer's tokens (and legacy tokens signed by the same key).
    pub fn verifier(&self) -> TokenVerifier {
        TokenVerifier {
            issuers: vec![self.issuer.clone()],
            keys: vec![self.key.public().clone()],
            api_audiences: self.api_audiences.clone(),
        }
    }

    /// Issues a bound token for the ServiceAccount `sa` per a TokenRequest `spec` (`audiences`,
    /// `expirationSeconds`, `boundObjectRef`); `bound` is the object `boundObjectRef` names. A pod-bound
    /// token records the pod's node by name only; use [`TokenIssuer::issue_with_node`] to add its uid.
    pub fn issue(
        &self,
        sa: &Value,
        spec: &Value,
        bound: Option<&Value>,
        now: SystemTime,
    ) -> Result<IssuedToken, IssueError> {
        self.issue_with_node(sa, spec, bound, None, now)
    }

    /// [`TokenIssuer::issue`], with the Node a bound pod runs on (`None` if it does not exist).
    pub fn issue_with_node(
        &self,
        sa: &Value,
        spec: &Value,
        bound: Option<&Value>,
        node: Option<&Value>,
        now: SystemTime,
    ) -> Result<IssuedToken, IssueError> {
        let sa_name = str_at(sa, "/metadata/name");
        let namespace = str_at(sa, "/metadata/namespace");
        if sa_name.is_empty() {
            return Err(IssueError::ServiceAccount("metadata.name"));
        }
        if namespace.is_empty() {
            return Err(IssueError::ServiceAccount("metadata.namespace"));
        }
        let mut expiration_seconds = expiration_seconds(spec)?;
        let audiences = spec_audiences(spec).unwrap_or_else(|| self.api_audiences.clone());

        let mut claim = KubernetesClaim {
            namespace: namespace.to_owned(),
            serviceaccount: ObjectRef { name: sa_name.to_owned(), uid: str_at(sa, "/metadata/uid").to_owned() },
            ..KubernetesClaim::default()
        };
        if let Some(r) = bound_object_ref(spec)? {
            let object = bound
                .ok_or_else(|| IssueError::BoundObjectNotFound { resource: r.kind.resource(), name: r.name.clone() })?;
            let live = object_ref(object);
            if r.kind == LookupKind::Pod && str_at(object, "/spec/serviceAccountName") != sa_name {
                return Err(IssueError::BadRequest(format!(
                    "cannot bind token for serviceaccount {sa_name:?} to pod running with different serviceaccount name."
                )));
            }
            if !r.uid.is_empty() && r.uid != live.uid {
                return Err(IssueError::BoundObjectUidMismatch {
                    kind: r.kind.kind().to_owned(),
                    name: r.name,
                    uid: r.uid,
                });
            }
            match r.kind {
                LookupKind::Pod => {
                    claim.pod = Some(live);
                    // The node a pod runs on is recorded too; by name alone if its Node is gone.
                    let node_name = str_at(object, "/spec/nodeName");
                    if !node_name.is_empty() {
                        claim.node = Some(
                            node.map(object_ref)
                                .unwrap_or(ObjectRef { name: node_name.to_owned(), uid: String::new() }),
                        );
                    }
                }
                LookupKind::Secret => claim.secret = Some(live),
                _ => claim.node = Some(live),
            }
        }

        let mut warning = None;
        if let Some(max) = self.max_expiration.filter(|m| expiration_seconds > *m) {
            warning = Some(format!("requested expiration of {expiration_seconds} seconds shortened to {max} seconds"));
            expiration_seconds = max;
        }
        // Kubelet-requested projected tokens live a year but report staleness after the requested time.
        let mut lifetime = expiration_seconds;
        let kube_audiences = audiences.iter().all(|a| self.api_audiences.contains(a));
        if self.extend_expiration
            && claim.pod.is_some()
            && expiration_seconds == WARN_ONLY_EXPIRATION_SECONDS
            && kube_audiences
        {
            claim.warnafter = Some(unix_seconds(now) + expiration_seconds);
            lifetime = EXTENDED_EXPIRATION_SECONDS;
        }

        let iat = unix_seconds(now);
        let jti = uuid::Uuid::new_v4().to_string();
        let subject = service_account_username(namespace, sa_name);
        let payload = BoundPayload {
            aud: &audiences,
            exp: iat + lifetime,
            iat,
            iss: &self.issuer,
            jti: &jti,
            kubernetes: &claim,
            nbf: iat,
            sub: &subject,
        };
        let token = self.sign(&payload)?;
        let expires_at = now + Duration::from_secs(expiration_seconds.unsigned_abs());
        Ok(IssuedToken {
            token,
            expiration_timestamp: rfc3339(expires_at),
            expires_at,
            expiration_seconds,
            audiences,
            jti,
            warning,
        })
    }

    /// Handles a whole TokenRequest as upstream's `serviceaccounts/<name>/token` create does: checks
    /// `metadata.name`/`namespace` against the service account, issues, and returns the TokenRequest
    /// with defaults and `status` filled in, plus the warning for the client (a `Warning: 299 - "..."`
    /// header), if any. `bound` is the object `spec.boundObjectRef` names (see [`bound_object_ref`]);
    /// `node` the Node a bound pod runs on.
    pub fn token_request(
        &self,
        body: &Value,
        sa: &Value,
        bound: Option<&Value>,
        node: Option<&Value>,
        now: SystemTime,
    ) -> Result<(Value, Option<String>), IssueError> {
        let sa_name = str_at(sa, "/metadata/name");
        let namespace = str_at(sa, "/metadata/namespace");
        for (field, want, what) in [("name", sa_name, "name"), ("namespace", namespace, "namespace")] {
            let given = str_at(body, &format!("/metadata/{field}"));
            if !given.is_empty() && given != want {
                let detail = format!("must match the service account {what} if specified");
                return Err(IssueError::Invalid {
                    name: sa_name.to_owned(),
                    causes: vec![Cause::invalid(&format!("metadata.{field}"), &json!(given), &detail)],
                });
            }
        }
        let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
        let issued = self.issue_with_node(sa, &spec, bound, node, now)?;
        let mut out = body.clone();
        if !out.is_object() {
            out = json!({});
        }
        out["apiVersion"] = json!("authentication.k8s.io/v1");
        out["kind"] = json!("TokenRequest");
        if !out.get("metadata").is_some_and(Value::is_object) {
            out["metadata"] = json!({});
        }
        out["metadata"]["name"] = json!(sa_name);
        out["metadata"]["namespace"] = json!(namespace);
        out["metadata"]["creationTimestamp"] = json!(rfc3339(now));
        let mut spec = spec;
        if !spec.is_object() {
            spec = json!({});
        }
        spec["audiences"] = json!(issued.audiences);
        spec["expirationSeconds"] = json!(issued.expiration_seconds);
        out["spec"] = spec;
        out["status"] = json!({ "token": issued.token, "expirationTimestamp": issued.expiration_timestamp });
        Ok((out, issued.warning))
    }

    /// A legacy token for the `kubernetes.io/service-account-token` Secret `secret_name` of `sa`, as
    /// upstream's tokens controller writes into the Secret's `data.token`: issuer
    /// `kubernetes/serviceaccount`, no audience, no expiry.
    pub fn issue_legacy(&self, sa: &Value, secret_name: &str) -> Result<String, IssueError> {
        let name = str_at(sa, "/metadata/name");
        let namespace = str_at(sa, "/metadata/namespace");
        let sub = service_account_username(namespace, name);
        let payload = LegacyPayload {
            iss: LEGACY_ISSUER,
            namespace,
            secret_name,
            service_account_name: name,
            service_account_uid: str_at(sa, "/metadata/uid"),
            sub: &sub,
        };
        self.sign(&payload)
    }

    fn sign(&self, payload: &impl serde::Serialize) -> Result<String, IssueError> {
        let bytes = serde_json::to_vec(payload).map_err(|_| IssueError::Sign(aws_lc_rs::error::Unspecified))?;
        self.key.sign(&bytes).map_err(IssueError::Sign)
    }
}

/// The object a TokenRequest `spec` binds to: `Pod`, `Secret` or `Node` of the core group, else
/// upstream's BadRequest `cannot bind token to object of type <group>/<version>, Kind=<kind>`.
pub fn bound_object_ref(spec: &Value) -> Result<Option<BoundObjectRef>, IssueError> {
    let Some(r) = spec.get("boundObjectRef").filter(|r| !r.is_null()) else {
        return Ok(None);
    };
    let api_version = str_at(r, "/apiVersion");
    let kind = str_at(r, "/kind");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let lookup = match (group, kind) {
        ("", "Pod") => LookupKind::Pod,
        ("", "Secret") => LookupKind::Secret,
        ("", "Node") => LookupKind::Node,
        _ => {
            return Err(IssueError::BadRequest(format!(
                "cannot bind token to object of type {group}/{version}, Kind={kind}"
            )));
        }
    };
    Ok(Some(BoundObjectRef { kind: lookup, name: str_at(r, "/name").to_owned(), uid: str_at(r, "/uid").to_owned() }))
}

/// `spec.expirationSeconds`, defaulted and validated as upstream's `ValidateTokenRequest`.
fn expiration_seconds(spec: &Value) -> Result<i64, IssueError> {
    let field = "spec.expirationSeconds";
    let secs = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
        Some(v) => v.as_i64().ok_or_else(|| IssueError::Invalid {
            name: String::new(),
            causes: vec![Cause::invalid(field, v, "must be an integer")],
        })?,
    };
    let mut causes = Vec::new();
    if secs < MIN_EXPIRATION_SECONDS {
        causes.push(Cause::invalid(field, &json!(secs), "may not specify a duration less than 10 minutes"));
    }
    if secs > MAX_EXPIRATION_SECONDS {
        causes.push(Cause::invalid(field, &json!(secs), "may not specify a duration larger than 2^32 seconds"));
    }
    if causes.is_empty() { Ok(secs) } else { Err(IssueError::Invalid { name: String::new(), causes }) }
}

fn spec_audiences(spec: &Value) -> Option<Vec<String>> {
    let list: Vec<String> =
        spec.get("audiences")?.as_array()?.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    (!list.is_empty()).then_some(list)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn object_ref(o: &Value) -> ObjectRef {
    ObjectRef { name: str_at(o, "/metadata/name").to_owned(), uid: str_at(o, "/metadata/uid").to_owned() }
}

/// Verifies service-account tokens: bound tokens from the configured issuers and legacy Secret tokens.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    issuers: Vec<String>,
    keys: Vec<VerifyingKey>,
    api_audiences: Vec<String>,
}

impl TokenVerifier {
    /// A verifier accepting bound tokens from `issuers` (`--service-account-issuer`, all of them) and
    /// legacy tokens, signed by any of `key_pems` (`PUBLIC KEY` PEM or a private key PEM, as
    /// `--service-account-key-file`), for `api_audiences` (`--api-audiences`).
    pub fn new(
        issuers: Vec<String>,
        key_pems: &[impl AsRef<str>],
        api_audiences: Vec<String>,
    ) -> Result<Self, KeyError> {
        let keys = key_pems.iter().map(|p| VerifyingKey::from_pem(p.as_ref())).collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        Ok(TokenVerifier { issuers, keys, api_audiences })
    }

    /// The API server's audiences.
    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }

    /// Checks a token's signature, issuer, audience (`audiences` are those the request accepts; empty
    /// means the API's own) and, for bound tokens, `exp`/`nbf`/`iat` with upstream's one-minute leeway.
    /// What remains is checking the objects in [`Claims::lookups`] with [`Claims::confirm`].
    pub fn verify(&self, token: &str, audiences: &[String], now: SystemTime) -> Result<Claims, VerifyError> {
        let unverified = jws::parse(token)?;
        let p: ReadPayload = serde_json::from_slice(&unverified.payload)
            .map_err(|e| VerifyError::Malformed(format!("payload is not a JWT claims set ({e})")))?;
        let kind = if p.iss == LEGACY_ISSUER {
            TokenKind::Legacy
        } else if self.issuers.contains(&p.iss) {
            TokenKind::Bound
        } else {
            return Err(VerifyError::UnknownIssuer(p.iss));
        };
        unverified.verify(&self.keys)?;

        // A token without audiences (legacy) is good for the API's own audiences only.
        let token_audiences = if p.aud.is_empty() { self.api_audiences.clone() } else { p.aud.clone() };
        let requested = if audiences.is_empty() { self.api_audiences.as_slice() } else { audiences };
        let accepted: Vec<String> = requested.iter().filter(|a| token_audiences.contains(a)).cloned().collect();
        if accepted.is_empty() && !self.api_audiences.is_empty() {
            return Err(VerifyError::Audience { token: token_audiences, requested: requested.to_vec() });
        }

        match kind {
            TokenKind::Legacy => legacy_claims(p, accepted, token),
            TokenKind::Bound => {
                check_times(&p, now)?;
                let k = p.kubernetes.unwrap_or_default();
                Ok(Claims {
                    kind,
                    issuer: p.iss,
                    subject: p.sub,
                    audiences: accepted,
                    jti: p.jti,
                    expiry: p.exp,
                    namespace: k.namespace,
                    service_account: k.serviceaccount,
                    pod: k.pod,
                    secret: k.secret,
                    node: k.node,
                    token: String::new(),
                })
            }
        }
    }

    /// The whole service-account authentication: [`TokenVerifier::verify`], then [`Claims::confirm`]
    /// with `get` fetching live objects; the user carries `system:authenticated`.
    pub fn authenticate(
        &self,
        token: &str,
        audiences: &[String],
        now: SystemTime,
        get: impl Fn(&Lookup) -> Option<Value>,
    ) -> Result<Authenticated, VerifyError> {
        let claims = self.verify(token, audiences, now)?;
        let info = claims.confirm(get, now)?;
        Ok(Authenticated { user: info.user(), audiences: claims.audiences })
    }
}

/// go-jose's `Claims.Validate` with the default leeway.
fn check_times(p: &ReadPayload, now: SystemTime) -> Result<(), VerifyError> {
    let leeway = i64::try_from(LEEWAY.as_secs()).unwrap_or(60);
    let now = unix_seconds(now);
    if p.nbf.is_some_and(|nbf| now + leeway < nbf) {
        return Err(VerifyError::NotYetValid);
    }
    if p.exp.is_some_and(|exp| now - leeway > exp) {
        return Err(VerifyError::Expired);
    }
    if p.iat.is_some_and(|iat| now + leeway < iat) {
        return Err(VerifyError::IssuedInFuture);
    }
    Ok(())
}

/// Upstream's legacy validator: every claim present and `sub` consistent with them.
fn legacy_claims(p: ReadPayload, audiences: Vec<String>, token: &str) -> Result<Claims, VerifyError> {
    let missing = [
        (p.sub.is_empty(), "sub"),
        (p.legacy_namespace.is_empty(), "namespace"),
        (p.legacy_secret_name.is_empty(), "secretName"),
        (p.legacy_sa_name.is_empty(), "serviceAccountName"),
        (p.legacy_sa_uid.is_empty(), "serviceAccountUID"),
    ];
    if let Some((_, claim)) = missing.iter().find(|(m, _)| *m) {
        return Err(VerifyError::LegacyClaimMissing(claim));
    }
    if split_service_account_username(&p.sub) != Some((p.legacy_namespace.as_str(), p.legacy_sa_name.as_str())) {
        return Err(VerifyError::LegacySubjectInvalid);
    }
    Ok(Claims {
        kind: TokenKind::Legacy,
        issuer: p.iss,
        subject: p.sub,
        audiences,
        jti: None,
        expiry: p.exp,
        namespace: p.legacy_namespace,
        service_account: ObjectRef { name: p.legacy_sa_name, uid: p.legacy_sa_uid },
        pod: None,
        secret: Some(ObjectRef { name: p.legacy_secret_name, uid: String::new() }),
        node: None,
        token: token.to_owned(),
    })
}
