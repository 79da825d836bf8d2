//! Bound service-account tokens (pkg/kubelet/token/token_manager.go): requested with TokenRequest for a pod
//! (audiences, expirationSeconds, boundObjectRef), cached per request, and refreshed once 80% of the lifetime
//! (less a jitter of up to 10 s) or 24 h has passed; a failed refresh keeps serving a still-valid token.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};

const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
const MAX_JITTER_SECS: f64 = 10.0;

/// What a token is asked for with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    pub(crate) namespace: String,
    pub(crate) service_account: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) expiration_seconds: i64,
    pub(crate) pod_name: String,
    pub(crate) pod_uid: String,
}

#[derive(Debug, Clone)]
struct Issued {
    token: String,
    expires: Timestamp,
    /// The requested lifetime the server confirmed (`spec.expirationSeconds` of the response).
    lifetime: i64,
}

/// The tokens of this node's pods.
#[derive(Default)]
pub(crate) struct TokenManager {
    tokens: Mutex<HashMap<TokenKey, Issued>>,
}

impl TokenManager {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenKey, Issued>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A current token for `key`, requested anew when the cached one needs a refresh.
    pub(crate) async fn get(&self, client: &kube::Client, key: &TokenKey) -> Result<String, String> {
        let cached = self.lock().get(key).cloned();
        let now = Timestamp::now();
        if let Some(c) = &cached
            && !requires_refresh(c, now, jitter())
        {
            return Ok(c.token.clone());
        }
        match request(client, key).await {
            Ok(issued) => {
                let token = issued.token.clone();
                self.lock().insert(key.clone(), issued);
                Ok(token)
            }
            Err(e) => match cached.filter(|c| now < c.expires) {
                Some(c) => {
                    tracing::warn!(pod = %key.pod_name, error = %e, "refreshing the service-account token failed; the current one is still valid");
                    Ok(c.token)
                }
                None => Err(format!("failed to fetch token: {e}")),
            },
        }
    }

    /// Forgets the tokens of the pod with `uid` (it is gone).
    pub(crate) fn forget_pod(&self, uid: &str) {
        self.lock().retain(|k, _| k.pod_uid != uid);
    }
}

fn jitter() -> SignedDuration {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    let fraction = (h.finish() % 1_000_000) as f64 / 1_000_000.0;
    SignedDuration::from_secs((fraction * MAX_JITTER_SECS) as i64)
}

/// Upstream's `requiresRefresh`: expired, older than 24 h, or within 20% of its lifetime of expiring.
fn requires_refresh(t: &Issued, now: Timestamp, jitter: SignedDuration) -> bool {
    if now >= t.expires {
        return true;
    }
    let lifetime = SignedDuration::from_secs(t.lifetime);
    let issued_at = t.expires - lifetime;
    let max_ttl = SignedDuration::try_from(MAX_TTL).unwrap_or(SignedDuration::MAX);
    if now > issued_at + max_ttl - jitter {
        return true;
    }
    now > t.expires - SignedDuration::from_secs(t.lifetime * 20 / 100) - jitter
}

async fn request(client: &kube::Client, key: &TokenKey) -> Result<Issued, String> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &key.namespace);
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: key.audiences.clone(),
            expiration_seconds: Some(key.expiration_seconds),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(key.pod_name.clone()),
                uid: Some(key.pod_uid.clone()),
            }),
        },
        ..Default::default()
    };
    let tr = api
        .create_token_request(&key.service_account, &PostParams::default(), &req)
        .await
        .map_err(crate::setup::api_message)?;
    let status = tr.status.ok_or("the TokenRequest response has no status")?;
    Ok(Issued {
        token: status.token,
        expires: status.expiration_timestamp.0,
        lifetime: tr.spec.expiration_seconds.unwrap_or(key.expiration_seconds),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(at: Timestamp, lifetime: i64) -> Issued {
        Issued { token: "t".into(), expires: at + SignedDuration::from_secs(lifetime), lifetime }
    }

    #[test]
    fn refreshes_at_80_percent_of_lifetime() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let t = issued(t0, 3600);
        let no_jitter = SignedDuration::ZERO;
        assert!(!requires_refresh(&t, t0, no_jitter));
        assert!(!requires_refresh(&t, t0 + SignedDuration::from_secs(2879), no_jitter));
        assert!(requires_refresh(&t, t0 + SignedDuration::from_secs(2881), no_jitter));
        // The jitter brings the refresh forward, never later.
        assert!(requires_refresh(&t, t0 + SignedDuration::from_secs(2875), SignedDuration::from_secs(10)));
        assert!(requires_refresh(&t, t0 + SignedDuration::from_secs(3600), no_jitter));
    }

    #[test]
    fn refreshes_after_a_day_whatever_the_lifetime() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let t = issued(t0, 365 * 24 * 3600);
        assert!(!requires_refresh(&t, t0 + SignedDuration::from_hours(23), SignedDuration::ZERO));
        assert!(requires_refresh(
            &t,
            t0 + SignedDuration::from_hours(24) + SignedDuration::from_secs(1),
            SignedDuration::ZERO
        ));
    }
}
