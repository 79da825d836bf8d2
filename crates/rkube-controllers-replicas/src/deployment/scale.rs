//! Resizing a Deployment's ReplicaSets outside a rollout (upstream's `sync`, `scale`, `isScalingEvent`):
//! a resize of a paused or settled Deployment goes to its one active ReplicaSet, or is spread over all of
//! them in proportion; plus the ScalingReplicaSet event and revision-history cleanup.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};

use super::history::{self, DESIRED_REPLICAS, annotation_i32};
use super::surge::{desired, is_rolling, max_surge, proportional_sizes, rs_replicas};
use super::{Controller, paused};
use rkube_client::api::is_not_found;
use rkube_client::events::EventType;
use rkube_client::{Error, Result};

/// The active (non-zero) ReplicaSets among `rss`.
pub(crate) fn active<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> Vec<&'a ReplicaSet> {
    rss.into_iter().filter(|rs| rs_replicas(rs) > 0).collect()
}

/// The new ReplicaSet is at full size and fully available (upstream's `IsSaturated`).
fn saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    let available = rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
    rs_replicas(rs) == desired(d) && annotation_i32(rs, DESIRED_REPLICAS) == Some(desired(d)) && available == desired(d)
}

/// The one ReplicaSet to resize directly: the only active one, or the newest when none is active.
fn active_or_latest<'a>(new_rs: Option<&'a ReplicaSet>, old: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let mut newest_first: Vec<&ReplicaSet> = old.iter().collect();
    newest_first.sort_by(|a, b| history::by_creation(b, a));
    let mut all = newest_first.clone();
    all.extend(new_rs);
    let act = active(all);
    match act.len() {
        0 => new_rs.or(newest_first.first().copied()),
        1 => act.first().copied(),
        _ => None,
    }
}

impl Controller {
    /// Whether some active ReplicaSet was sized for another `spec.replicas` (a resize, not a rollout).
    pub(super) async fn is_scaling_event(&self, d: &mut Deployment, rs_list: &mut Vec<ReplicaSet>) -> Result<bool> {
        let (new_rs, old) = self.get_all(d, rs_list, false).await?;
        let mut all: Vec<&ReplicaSet> = old.iter().collect();
        all.extend(new_rs.as_ref());
        Ok(active(all).into_iter().any(|rs| annotation_i32(rs, DESIRED_REPLICAS).is_some_and(|n| n != desired(d))))
    }

    /// A resize, or a paused Deployment: scale, clean up when paused, report status.
    pub(super) async fn sync_scaling(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> Result<Option<Duration>> {
        let (mut new_rs, mut old) = self.get_all(d, rs_list, false).await?;
        self.scale(d, new_rs.as_mut(), &mut old).await?;
        if paused(d) {
            self.clean_up(d, &old).await?;
        }
        self.sync_deployment_status(d, new_rs.as_ref(), &old).await?;
        Ok(None)
    }

    async fn scale(&self, d: &Deployment, mut new_rs: Option<&mut ReplicaSet>, old: &mut [ReplicaSet]) -> Result<()> {
        if let Some(name) = active_or_latest(new_rs.as_deref(), old).map(|rs| rs.name_any()) {
            let target = match new_rs.as_deref_mut() {
                Some(rs) if rs.name_any() == name => Some(rs),
                _ => old.iter_mut().find(|rs| rs.name_any() == name),
            };
            if let Some(rs) = target
                && rs_replicas(rs) != desired(d)
            {
                self.scale_and_record(rs, desired(d), d).await?;
            }
            return Ok(());
        }
        if saturated(d, new_rs.as_deref()) {
            for rs in old.iter_mut().filter(|rs| rs_replicas(rs) > 0) {
                self.scale_and_record(rs, 0, d).await?;
            }
            return Ok(());
        }
        if !is_rolling(d) {
            return Ok(());
        }
        let mut all: Vec<&ReplicaSet> = old.iter().collect();
        all.extend(new_rs.as_deref());
        let (sizes, op) = proportional_sizes(d, &active(all));
        for (name, size) in sizes {
            let target = match new_rs.as_deref_mut() {
                Some(rs) if rs.name_any() == name => Some(rs),
                _ => old.iter_mut().find(|rs| rs.name_any() == name),
            };
            if let Some(rs) = target {
                self.scale_rs(rs, size, d, op).await?;
            }
        }
        Ok(())
    }

    /// Scales `rs` to `n` with the ScalingReplicaSet event; whether it changed.
    pub(super) async fn scale_and_record(&self, rs: &mut ReplicaSet, n: i32, d: &Deployment) -> Result<bool> {
        if rs_replicas(rs) == n {
            return Ok(false);
        }
        let op = if rs_replicas(rs) < n { "up" } else { "down" };
        self.scale_rs(rs, n, d, op).await
    }

    /// Sets `rs` to `n` replicas and its sizing annotations to the Deployment's; whether the size changed.
    pub(super) async fn scale_rs(&self, rs: &mut ReplicaSet, n: i32, d: &Deployment, op: &str) -> Result<bool> {
        let from = rs_replicas(rs);
        let mut copy = rs.clone();
        let annotations_changed = history::set_replicas_annotations(&mut copy, desired(d), desired(d) + max_surge(d));
        if from == n && !annotations_changed {
            return Ok(false);
        }
        if let Some(spec) = copy.spec.as_mut() {
            spec.replicas = Some(n);
        }
        *rs = self.update_rs(&copy).await?;
        if from != n {
            let msg = format!("Scaled {op} replica set {} to {n} from {from}", rs.name_any());
            self.recorder.record(d, EventType::Normal, "ScalingReplicaSet", &msg).await;
        }
        Ok(from != n)
    }

    /// Deletes the oldest scaled-down ReplicaSets beyond `revisionHistoryLimit`.
    pub(super) async fn clean_up(&self, d: &Deployment, old: &[ReplicaSet]) -> Result<()> {
        let Some(limit) = d.spec.as_ref().and_then(|s| s.revision_history_limit) else { return Ok(()) };
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default());
        for rs in history::to_clean_up(old, limit) {
            match api.delete(&rs.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(Error::api(format!("deleting old replica set {}", crate::key::name_of(rs)), e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn rs(name: &str, replicas: i32, created: i64) -> ReplicaSet {
        let mut rs = ReplicaSet {
            spec: Some(ReplicaSetSpec { replicas: Some(replicas), ..ReplicaSetSpec::default() }),
            ..ReplicaSet::default()
        };
        rs.metadata.name = Some(name.into());
        rs.metadata.creation_timestamp = k8s_openapi::jiff::Timestamp::from_second(created).ok().map(Time);
        rs
    }

    #[test]
    fn picks_the_single_active_or_the_latest() {
        let old = vec![rs("a", 0, 1), rs("b", 0, 2)];
        let new = rs("c", 0, 3);
        assert_eq!(active_or_latest(Some(&new), &old).map(|r| r.name_any()).as_deref(), Some("c"));
        assert_eq!(active_or_latest(None, &old).map(|r| r.name_any()).as_deref(), Some("b"));
        let old = vec![rs("a", 2, 1), rs("b", 0, 2)];
        assert_eq!(active_or_latest(Some(&new), &old).map(|r| r.name_any()).as_deref(), Some("a"));
        let new = rs("c", 1, 3);
        assert!(active_or_latest(Some(&new), &old).is_none());
    }
}
