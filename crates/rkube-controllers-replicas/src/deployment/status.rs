//! Writing a Deployment's status: only when it changed, as a merge patch that also removes what the new
//! status no longer has; the paused/resumed conditions; and the status syncs that end each pass.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use kube::ResourceExt;
use kube::api::Api;
use serde_json::{Map, Value, json};

use super::progress::{self, PAUSED, PROGRESSING, RESUMED, TIMED_OUT};
use super::sync::now;
use super::{Controller, paused};
use rkube_client::{Error, Result};

/// A merge patch turning status `old` into `new` at the top level (absent fields become nulls).
pub(crate) fn status_patch(old: &DeploymentStatus, new: &DeploymentStatus) -> Value {
    let as_map = |s: &DeploymentStatus| match serde_json::to_value(s) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let (old, new) = (as_map(old), as_map(new));
    let mut patch = Map::new();
    for (k, v) in &new {
        if old.get(k) != Some(v) {
            patch.insert(k.clone(), v.clone());
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            patch.insert(k.clone(), Value::Null);
        }
    }
    json!({ "status": patch })
}

impl Controller {
    /// Writes `status` if it differs from `d`'s, and keeps `d` in step.
    pub(super) async fn write_status(&self, d: &mut Deployment, status: DeploymentStatus) -> Result<()> {
        let old = d.status.clone().unwrap_or_default();
        if old == status {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default());
        crate::worker::patch_status(&api, &d.name_any(), &status_patch(&old, &status))
            .await
            .map_err(|e| Error::api(format!("updating the status of deployment {}", crate::key::name_of(d)), e))?;
        d.status = Some(status);
        Ok(())
    }

    /// A Deployment that selects everything only gets its generation observed.
    pub(super) async fn observe_generation_only(&self, d: &mut Deployment) -> Result<()> {
        let mut status = d.status.clone().unwrap_or_default();
        if status.observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
            status.observed_generation = d.metadata.generation;
            self.write_status(d, status).await?;
        }
        Ok(())
    }

    /// Records pausing and resuming in the Progressing condition, so that time spent paused never counts
    /// against the progress deadline.
    pub(super) async fn check_paused_conditions(&self, d: &mut Deployment) -> Result<()> {
        if progress::progress_deadline(d).is_none() {
            return Ok(());
        }
        let mut status = d.status.clone().unwrap_or_default();
        let reason = progress::get(&status, PROGRESSING).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(TIMED_OUT) {
            return Ok(());
        }
        let paused_cond = reason.as_deref() == Some(PAUSED);
        let c = if paused(d) && !paused_cond {
            progress::condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused".into(), now())
        } else if !paused(d) && paused_cond {
            progress::condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed".into(), now())
        } else {
            return Ok(());
        };
        progress::set(&mut status, c);
        self.write_status(d, status).await
    }

    /// Status only (a Deployment being deleted).
    pub(super) async fn sync_status_only(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> Result<Option<Duration>> {
        let (new_rs, old) = self.get_all(d, rs_list, false).await?;
        self.sync_deployment_status(d, new_rs.as_ref(), &old).await?;
        Ok(None)
    }

    /// The status from the ReplicaSets, written if changed (upstream's `syncDeploymentStatus`).
    pub(super) async fn sync_deployment_status(
        &self,
        d: &mut Deployment,
        new_rs: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> Result<()> {
        let mut all: Vec<&ReplicaSet> = old.iter().collect();
        all.extend(new_rs);
        let status = progress::calculate(&all, new_rs, d, now());
        self.write_status(d, status).await
    }

    /// The rollout's status with its Progressing condition, written if changed; otherwise when to look
    /// again for the progress deadline (upstream's `syncRolloutStatus`).
    pub(super) async fn sync_rollout_status(
        &self,
        d: &mut Deployment,
        new_rs: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> Result<Option<Duration>> {
        let mut all: Vec<&ReplicaSet> = old.iter().collect();
        all.extend(new_rs);
        let at = now();
        let status = progress::rollout_status(&all, new_rs, d, at);
        if d.status.as_ref() == Some(&status) {
            return Ok(progress::recheck_in(d, &status, at));
        }
        self.write_status(d, status).await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_remove_what_is_gone() {
        let old = DeploymentStatus { replicas: Some(3), available_replicas: Some(3), ..DeploymentStatus::default() };
        let new = DeploymentStatus { replicas: Some(4), ..DeploymentStatus::default() };
        assert_eq!(status_patch(&old, &new), json!({"status": {"replicas": 4, "availableReplicas": null}}));
        assert_eq!(status_patch(&new, &new), json!({"status": {}}));
    }
}
