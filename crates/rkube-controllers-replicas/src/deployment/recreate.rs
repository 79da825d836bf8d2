//! The Recreate strategy (upstream's `rolloutRecreate`): scale every old ReplicaSet to zero, wait until
//! none of their pods runs, then create and grow the new one.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;

use super::surge::{desired, rs_replicas};
use super::{Controller, PodMap, progress};
use rkube_client::Result;
use rkube_client::pods::phase;

/// Whether pods of old ReplicaSets still run (or may: anything not Succeeded or Failed counts).
pub(crate) fn old_pods_running(new_rs: Option<&ReplicaSet>, old: &[ReplicaSet], pods: &PodMap) -> bool {
    if old.iter().any(|rs| rs.status.as_ref().is_some_and(|s| s.replicas > 0)) {
        return true;
    }
    let new_uid = new_rs.and_then(|rs| rs.metadata.uid.as_deref());
    pods.iter()
        .filter(|(uid, _)| Some(uid.as_str()) != new_uid)
        .flat_map(|(_, list)| list.iter())
        .any(|p: &std::sync::Arc<Pod>| !matches!(phase(p), "Succeeded" | "Failed"))
}

impl Controller {
    /// One pass of a Recreate rollout.
    pub(super) async fn rollout_recreate(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
        pods: &PodMap,
    ) -> Result<Option<Duration>> {
        let (mut new_rs, mut old) = self.get_all(d, rs_list, false).await?;
        let mut scaled_down = false;
        for rs in old.iter_mut().filter(|rs| rs_replicas(rs) > 0) {
            scaled_down |= self.scale_and_record(rs, 0, d).await?;
        }
        if scaled_down || old_pods_running(new_rs.as_ref(), &old, pods) {
            return self.sync_rollout_status(d, new_rs.as_ref(), &old).await;
        }
        if new_rs.is_none() {
            (new_rs, old) = self.get_all(d, rs_list, true).await?;
        }
        if let Some(rs) = new_rs.as_mut() {
            self.scale_and_record(rs, desired(d), d).await?;
        }
        if progress::complete(d, &d.status.clone().unwrap_or_default()) {
            self.clean_up(d, &old).await?;
        }
        self.sync_rollout_status(d, new_rs.as_ref(), &old).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSetStatus;
    use k8s_openapi::api::core::v1::PodStatus;
    use std::sync::Arc;

    #[test]
    fn waits_for_old_pods() {
        let mut old = ReplicaSet::default();
        old.metadata.uid = Some("old".into());
        old.status = Some(ReplicaSetStatus { replicas: 0, ..ReplicaSetStatus::default() });
        let mut new = ReplicaSet::default();
        new.metadata.uid = Some("new".into());
        let pod = |phase: &str| {
            Arc::new(Pod {
                status: Some(PodStatus { phase: Some(phase.into()), ..PodStatus::default() }),
                ..Pod::default()
            })
        };
        let mut map = PodMap::new();
        map.insert("new".into(), vec![pod("Running")]);
        map.insert("old".into(), vec![pod("Succeeded")]);
        assert!(!old_pods_running(Some(&new), std::slice::from_ref(&old), &map));
        map.insert("old".into(), vec![pod("Pending")]);
        assert!(old_pods_running(Some(&new), std::slice::from_ref(&old), &map));
        old.status = Some(ReplicaSetStatus { replicas: 1, ..ReplicaSetStatus::default() });
        assert!(old_pods_running(Some(&new), &[old], &PodMap::new()));
    }
}
