//! The node Lease in `kube-node-lease` a kubelet keeps renewing, and when each node renews it.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

/// Where node Leases live.
pub const NAMESPACE: &str = "kube-node-lease";

/// The Lease of node `name` (owned by the node, so it goes when the node is deleted), renewed at `now`.
pub(crate) fn build(name: &str, node_uid: Option<&str>, duration_seconds: i32, now: Timestamp) -> Lease {
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
            lease_duration_seconds: Some(duration_seconds),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        }),
    }
}

/// `lease` renewed at `now` by us (holder and duration put back if someone changed them).
pub(crate) fn renewed(mut lease: Lease, name: &str, duration_seconds: i32, now: Timestamp) -> Lease {
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = Some(name.to_owned());
    spec.lease_duration_seconds = Some(duration_seconds);
    spec.renew_time = Some(MicroTime(now));
    lease
}

/// How long node `k` of `count` waits before its first renewal, so renewals spread evenly over one interval
/// instead of arriving together.
pub(crate) fn first_delay(k: usize, count: usize, interval: Duration) -> Duration {
    if count == 0 {
        return interval;
    }
    interval.mul_f64(k as f64 / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_renews() {
        let t0 = Timestamp::from_second(100).unwrap();
        let lease = build("sim-0", Some("u1"), 40, t0);
        let spec = lease.spec.clone().unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("sim-0"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        assert_eq!(lease.metadata.owner_references.as_ref().unwrap()[0].uid, "u1");
        let t1 = Timestamp::from_second(110).unwrap();
        let again = renewed(lease, "sim-0", 40, t1);
        assert_eq!(again.spec.unwrap().renew_time, Some(MicroTime(t1)));
    }

    #[test]
    fn spreads_first_renewals() {
        let i = Duration::from_secs(10);
        assert_eq!(first_delay(0, 5000, i), Duration::ZERO);
        assert_eq!(first_delay(2500, 5000, i), Duration::from_secs(5));
        assert!(first_delay(4999, 5000, i) < i);
    }
}
