//! Clean-up of stale `DisruptionTarget` pod conditions, as the disruption controller's second worker
//! upstream: a pod the eviction subresource marked for disruption but that was not deleted after all
//! (the delete failed) gets the condition set back to False once it is two minutes old.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use rkube_client::api::{is_conflict, is_not_found};
use rkube_client::informer::Informer;
use rkube_client::{Error, Result};
use serde_json::json;

/// How long a `DisruptionTarget` condition may stand on a pod that is not being deleted (upstream's
/// `stalePodDisruptionTimeout`).
pub(crate) const STALE_TIMEOUT: Duration = Duration::from_secs(120);
/// The field manager upstream applies the condition with.
const FIELD_MANAGER: &str = "DisruptionController";

/// When the pod's `DisruptionTarget` condition becomes stale (zero: it is), or `None` when it has none
/// to clean: absent or False, set by the kubelet, or on a pod that is being deleted or has finished.
pub(crate) fn stale_in(pod: &Pod, now: Timestamp) -> Option<Duration> {
    if pod.metadata.deletion_timestamp.is_some() || rkube_client::pods::is_terminal(pod) {
        return None;
    }
    let cond = pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "DisruptionTarget")?;
    if cond.status != "True" || cond.reason.as_deref() == Some("TerminationByKubelet") {
        return None;
    }
    let since = cond.last_transition_time.as_ref().map_or(Timestamp::UNIX_EPOCH, |t| t.0);
    let age = now.duration_since(since).unsigned_abs();
    Some(STALE_TIMEOUT.saturating_sub(age))
}

/// Sets the condition of the pod `key` back to False if it is stale now; `Some(wait)` when it will be later.
pub(crate) async fn clean(client: &Client, pods: &Informer<Pod>, key: &(String, String)) -> Result<Option<Duration>> {
    let Some(pod) = pods.get(&key.0, &key.1) else { return Ok(None) };
    let now = Timestamp::now();
    match stale_in(&pod, now) {
        None => return Ok(None),
        Some(wait) if !wait.is_zero() => return Ok(Some(wait)),
        Some(_) => {}
    }
    let patch = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": key.1, "namespace": key.0, "resourceVersion": pod.resource_version() },
        "status": { "conditions": [{
            "type": "DisruptionTarget", "status": "False",
            "lastTransitionTime": Timestamp::from_second(now.as_second()).unwrap_or(now).to_string(),
        }] },
    });
    let api = Api::<Pod>::namespaced(client.clone(), &key.0);
    match api.patch_status(&key.1, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await {
        Ok(_) => Ok(None),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) if is_conflict(&e) => {
            Err(Error::Conflict(format!("clearing DisruptionTarget of pod {}/{}", key.0, key.1)))
        }
        Err(e) => Err(Error::api(format!("clearing DisruptionTarget of pod {}/{}", key.0, key.1), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn marked(reason: &str, since: i64) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "DisruptionTarget".into(),
                    status: "True".into(),
                    reason: Some(reason.into()),
                    last_transition_time: Some(Time(at(since))),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn conditions_go_stale_after_two_minutes() {
        let pod = marked("EvictionByEvictionAPI", 1000);
        assert_eq!(stale_in(&pod, at(1030)), Some(Duration::from_secs(90)));
        assert_eq!(stale_in(&pod, at(1200)), Some(Duration::ZERO));
        assert_eq!(stale_in(&marked("TerminationByKubelet", 1000), at(1200)), None);
        let mut deleting = pod.clone();
        deleting.metadata.deletion_timestamp = Some(Time(at(1100)));
        assert_eq!(stale_in(&deleting, at(1200)), None);
        assert_eq!(stale_in(&Pod::default(), at(1200)), None);
    }
}
