//! The node's heartbeat: its Lease in `kube-node-lease`, renewed every 10 s with a 40 s duration (upstream's
//! node lease controller), owned by the Node so it goes when the Node is deleted.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use rkube_client::api::{is_already_exists, is_conflict, is_not_found};
use tokio::sync::watch;

/// Where node Leases live.
pub const NAMESPACE: &str = "kube-node-lease";
/// `spec.leaseDurationSeconds` (upstream's default).
pub const DURATION_SECONDS: i32 = 40;
/// How often the Lease is renewed (upstream: a quarter of its duration).
pub const RENEW_INTERVAL: Duration = Duration::from_secs(10);

/// The Lease of node `name`, renewed at `now`.
pub(crate) fn build(name: &str, node_uid: Option<&str>, now: Timestamp) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(NAMESPACE.to_owned()),
            owner_references: node_uid.map(|uid| {
                vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Node".into(),
                    name: name.to_owned(),
                    uid: uid.to_owned(),
                    ..OwnerReference::default()
                }]
            }),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.to_owned()),
            lease_duration_seconds: Some(DURATION_SECONDS),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        }),
    }
}

/// `lease` renewed by us at `now` (holder and duration put back if someone changed them).
pub(crate) fn renewed(mut lease: Lease, name: &str, now: Timestamp) -> Lease {
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = Some(name.to_owned());
    spec.lease_duration_seconds = Some(DURATION_SECONDS);
    spec.renew_time = Some(MicroTime(now));
    lease
}

/// Renews the Lease until `stop` is set; failures are retried with back-off (200 ms up to 7 s) and never end
/// the loop: a node that cannot reach the API keeps trying, as upstream's.
pub(crate) async fn run(client: kube::Client, name: String, node_uid: Option<String>, mut stop: watch::Receiver<bool>) {
    let api: Api<Lease> = Api::namespaced(client, NAMESPACE);
    let mut last: Option<Lease> = None;
    let mut backoff = Duration::from_millis(200);
    loop {
        let now = Timestamp::now();
        let result = match last.take() {
            Some(l) => api.replace(&name, &PostParams::default(), &renewed(l, &name, now)).await,
            None => match api.get_opt(&name).await {
                Ok(Some(l)) => api.replace(&name, &PostParams::default(), &renewed(l, &name, now)).await,
                Ok(None) => api.create(&PostParams::default(), &build(&name, node_uid.as_deref(), now)).await,
                Err(e) => Err(e),
            },
        };
        let pause = match result {
            Ok(l) => {
                last = Some(l);
                backoff = Duration::from_millis(200);
                RENEW_INTERVAL
            }
            Err(e) => {
                if !(is_conflict(&e) || is_not_found(&e) || is_already_exists(&e)) {
                    tracing::warn!(node = %name, "failed to update lease: {e}");
                }
                let b = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(7));
                b
            }
        };
        if crate::sleep_or_stop(pause, &mut stop).await {
            tracing::info!(node = %name, "stopped renewing the node lease");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_renews() {
        let t0 = Timestamp::from_second(100).unwrap();
        let lease = build("n1", Some("u1"), t0);
        let spec = lease.spec.clone().unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("n1"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        assert_eq!(lease.metadata.owner_references.as_ref().unwrap()[0].kind, "Node");
        let mut changed = lease.clone();
        changed.spec.as_mut().unwrap().lease_duration_seconds = Some(1);
        let t1 = Timestamp::from_second(110).unwrap();
        let again = renewed(changed, "n1", t1).spec.unwrap();
        assert_eq!((again.renew_time, again.lease_duration_seconds), (Some(MicroTime(t1)), Some(40)));
    }
}
