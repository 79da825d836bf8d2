//! Bootstrap tokens (`<id>.<secret>`): checked against the Secret `kube-system/bootstrap-token-<id>` as
//! upstream's bootstrap-token authenticator does, generated as kubeadm generates them.

use std::collections::BTreeSet;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::error::BootstrapError;
use crate::timefmt::{parse_rfc3339, rfc3339};
use crate::user::UserInfo;

/// The namespace bootstrap-token Secrets live in.
pub const SECRET_NAMESPACE: &str = "kube-system";
/// Bootstrap-token Secrets are named `bootstrap-token-<id>`.
pub const SECRET_NAME_PREFIX: &str = "bootstrap-token-";
/// The Secret type that marks a bootstrap token.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// Bootstrap users are named `system:bootstrap:<id>`.
pub const USER_PREFIX: &str = "system:bootstrap:";
/// The group every bootstrap token authenticates into.
pub const DEFAULT_GROUP: &str = "system:bootstrappers";
/// Secret key: the token id.
pub const KEY_TOKEN_ID: &str = "token-id";
/// Secret key: the token secret.
pub const KEY_TOKEN_SECRET: &str = "token-secret";
/// Secret key: RFC 3339 expiry.
pub const KEY_EXPIRATION: &str = "expiration";
/// Secret key: `"true"` if the token may authenticate.
pub const KEY_USAGE_AUTHENTICATION: &str = "usage-bootstrap-authentication";
/// Secret key: `"true"` if the token may sign the `cluster-info` ConfigMap.
pub const KEY_USAGE_SIGNING: &str = "usage-bootstrap-signing";
/// Secret key: comma-separated extra groups, each `system:bootstrappers:<name>`.
pub const KEY_EXTRA_GROUPS: &str = "auth-extra-groups";
/// Secret key: a human-readable description.
pub const KEY_DESCRIPTION: &str = "description";

const ID_LEN: usize = 6;
const SECRET_LEN: usize = 16;
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A bootstrap token, `[a-z0-9]{6}.[a-z0-9]{16}`.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    id: String,
    secret: String,
}

impl std::fmt::Debug for BootstrapToken {
    // The secret half is a credential: only the public id is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapToken").field("id", &self.id).finish_non_exhaustive()
    }
}

impl BootstrapToken {
    /// Parses `<id>.<secret>`; anything else is not a bootstrap token (upstream ignores it).
    pub fn parse(token: &str) -> Result<BootstrapToken, BootstrapError> {
        let (id, secret) = token.split_once('.').ok_or(BootstrapError::Malformed)?;
        let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| ALPHABET.contains(&b));
        if !ok(id, ID_LEN) || !ok(secret, SECRET_LEN) {
            return Err(BootstrapError::Malformed);
        }
        Ok(BootstrapToken { id: id.to_owned(), secret: secret.to_owned() })
    }

    /// A new random token, each character uniform over `[a-z0-9]` as kubeadm's generator.
    pub fn generate() -> Result<BootstrapToken, BootstrapError> {
        Ok(BootstrapToken { id: random_chars(ID_LEN)?, secret: random_chars(SECRET_LEN)? })
    }

    /// The public id (`abcdef`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret half.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The bearer token, `<id>.<secret>`.
    pub fn token(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    /// The Secret holding this token: `bootstrap-token-<id>` (in `kube-system`).
    pub fn secret_name(&self) -> String {
        format!("{SECRET_NAME_PREFIX}{}", self.id)
    }

    /// Authenticates against `secret`, the Secret [`BootstrapToken::secret_name`] in `kube-system`
    /// (`None` if it does not exist): the user `system:bootstrap:<id>` in `system:bootstrappers`, the
    /// extra groups (sorted, de-duplicated, as upstream) and `system:authenticated`.
    pub fn authenticate(&self, secret: Option<&Value>, now: SystemTime) -> Result<UserInfo, BootstrapError> {
        let name = self.secret_name();
        let secret = secret.ok_or_else(|| BootstrapError::SecretNotFound(name.clone()))?;
        if secret.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
            return Err(BootstrapError::Deleting(name));
        }
        let data = secret.get("data").and_then(Value::as_object);
        let Some(data) = data.filter(|_| secret.get("type").and_then(Value::as_str) == Some(SECRET_TYPE)) else {
            return Err(BootstrapError::WrongType(name));
        };
        let get = |key: &str| data_value(data, key);
        // Constant time: this is the credential comparison.
        if aws_lc_rs::constant_time::verify_slices_are_equal(get(KEY_TOKEN_SECRET).as_bytes(), self.secret.as_bytes())
            .is_err()
        {
            return Err(BootstrapError::SecretMismatch(name));
        }
        if get(KEY_TOKEN_ID) != self.id {
            return Err(BootstrapError::IdMismatch(name));
        }
        if expired(&get(KEY_EXPIRATION), now) {
            return Err(BootstrapError::Expired(name));
        }
        if get(KEY_USAGE_AUTHENTICATION) != "true" {
            return Err(BootstrapError::NotForAuthentication(name));
        }
        let mut groups = BTreeSet::from([DEFAULT_GROUP.to_owned()]);
        let extra = get(KEY_EXTRA_GROUPS);
        if !extra.is_empty() {
            for group in extra.split(',') {
                if !valid_extra_group(group) {
                    return Err(BootstrapError::InvalidExtraGroup { secret: name, group: group.to_owned() });
                }
                groups.insert(group.to_owned());
            }
        }
        let user = UserInfo {
            name: format!("{USER_PREFIX}{}", self.id),
            groups: groups.into_iter().collect(),
            ..UserInfo::default()
        };
        Ok(user.authenticated())
    }

    /// The Secret that makes this token valid, as `kubeadm token create` writes it: `usages` among
    /// `authentication` and `signing`, optional expiry, extra groups and description. Values are
    /// base64 in `data`, as stored.
    pub fn to_secret(
        &self,
        expiration: Option<SystemTime>,
        usages: &[&str],
        extra_groups: &[&str],
        description: Option<&str>,
    ) -> Value {
        let mut data = Map::new();
        let mut put = |k: &str, v: &str| {
            data.insert(k.to_owned(), json!(STANDARD.encode(v)));
        };
        put(KEY_TOKEN_ID, &self.id);
        put(KEY_TOKEN_SECRET, &self.secret);
        if let Some(at) = expiration {
            put(KEY_EXPIRATION, &rfc3339(at));
        }
        for usage in usages {
            put(&format!("usage-bootstrap-{usage}"), "true");
        }
        if !extra_groups.is_empty() {
            put(KEY_EXTRA_GROUPS, &extra_groups.join(","));
        }
        if let Some(d) = description {
            put(KEY_DESCRIPTION, d);
        }
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": self.secret_name(), "namespace": SECRET_NAMESPACE },
            "type": SECRET_TYPE,
            "data": data,
        })
    }
}

/// A `data` value decoded; missing or undecodable reads as empty, as upstream's `GetData` of a missing key.
fn data_value(data: &Map<String, Value>, key: &str) -> String {
    data.get(key)
        .and_then(Value::as_str)
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

/// Upstream's `HasExpired`: no expiration never expires; an unparseable one counts as expired.
fn expired(expiration: &str, now: SystemTime) -> bool {
    if expiration.is_empty() {
        return false;
    }
    parse_rfc3339(expiration).is_none_or(|at| at <= now)
}

/// `\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z`.
fn valid_extra_group(group: &str) -> bool {
    let Some(rest) = group.strip_prefix("system:bootstrappers:") else {
        return false;
    };
    let Some(last) = rest.bytes().last() else {
        return false;
    };
    let middle = &rest.as_bytes()[..rest.len() - 1];
    let lower_digit = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    lower_digit(last) && middle.len() <= 255 && middle.iter().all(|&b| lower_digit(b) || b == b':' || b == b'-')
}

/// `n` characters uniform over the alphabet: bytes at or above 252 (7 × 36) are redrawn so that the
/// modulo introduces no bias.
fn random_chars(n: usize) -> Result<String, BootstrapError> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 32];
    while out.len() < n {
        aws_lc_rs::rand::fill(&mut buf).map_err(BootstrapError::Random)?;
        for b in buf.iter().filter(|&&b| b < 252) {
            if out.len() == n {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(b % 36)]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_group_pattern() {
        assert!(valid_extra_group("system:bootstrappers:kubeadm:default-node-token"));
        assert!(valid_extra_group("system:bootstrappers:a"));
        assert!(!valid_extra_group("system:bootstrappers:"));
        assert!(!valid_extra_group("system:bootstrappers"));
        assert!(!valid_extra_group("system:bootstrappers:a-"));
        assert!(!valid_extra_group("system:bootstrappers:Upper"));
        assert!(!valid_extra_group("system:masters"));
    }

    #[test]
    fn expiry_rules() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_514_764_800);
        assert!(!expired("", now));
        assert!(expired("garbage", now));
        assert!(expired("2018-01-01T00:00:00Z", now));
        assert!(!expired("2018-01-01T00:00:01Z", now));
    }

    #[test]
    fn generated_tokens_parse() {
        let t = BootstrapToken::generate().expect("generate");
        assert_eq!(BootstrapToken::parse(&t.token()).expect("parse"), t);
        assert_ne!(BootstrapToken::generate().expect("generate"), t);
        assert!(!format!("{t:?}").contains(t.secret()));
    }
}
