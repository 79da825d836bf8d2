//! One pass over one StatefulSet (upstream's `sync` and `UpdateStatefulSet`): revisions, claimed pods, the
//! plan and its writes, the status (written only when it changed, even after a failed write), history
//! truncation.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::core::SelectorExt;
use serde_json::json;

use super::ordinals::is_member;
use super::plan::{self, Revisions};
use super::{Ctx, podcontrol, revisions, status};
use crate::claims;
use crate::expectations::Seen;
use crate::workers::Requeue;
use rkube_client::api::is_not_found;
use rkube_client::{Error, Result};

/// Syncs the StatefulSet `key` (`namespace/name`).
pub(crate) async fn sync(ctx: Arc<Ctx>, key: String) -> Result<Requeue> {
    let Some((ns, name)) = key.split_once('/') else { return Ok(None) };
    let Some(set) = ctx.sets.get(ns, name) else {
        ctx.expectations.forget(&key);
        return Ok(None);
    };
    let set: StatefulSet = (*set).clone();
    let Some(spec) = set.spec.as_ref() else { return Ok(None) };
    let selector = match rkube_client::pods::selector(&spec.selector) {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(None),
        Err(e) => {
            // Nothing to retry until the object changes.
            tracing::warn!(statefulset = %key, error = %e, "invalid selector");
            return Ok(None);
        }
    };
    let seen = |n: &str| match ctx.pods.get(ns, n) {
        None => Seen::Absent,
        Some(p) if p.metadata.deletion_timestamp.is_some() => Seen::Deleting,
        Some(p) => Seen::Alive(p.metadata.uid.clone().unwrap_or_default()),
    };
    if !ctx.expectations.satisfied(&key, seen) {
        // The watch brings our own writes soon; look again then (or shortly, should it not).
        return Ok(Some(Duration::from_secs(2)));
    }
    let revs = revisions::get(&ctx, &set, &selector).await?;
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let candidates: Vec<Pod> = ctx.pods.list_namespace(ns).iter().map(|p| (**p).clone()).collect();
    let pods = claims::claim(&pod_api, &set, candidates, |p| {
        is_member(&set, p) && selector.matches(&claims::labels_of(&p.metadata))
    })
    .await?;
    let current_set = revisions::apply(&set, &revs.current);
    let update_set = revisions::apply(&set, &revs.update);
    let (current_name, update_name) = (revs.current.name_any(), revs.update.name_any());
    let r = Revisions {
        current_set: &current_set,
        update_set: &update_set,
        current: &current_name,
        update: &update_name,
        collision_count: revs.collision_count,
    };
    let now = Timestamp::now();
    let claim = |n: &str| ctx.claims.get(ns, n).map(|c| (*c).clone());
    let mut planned = plan::plan(&set, &r, &pods, claim, now);
    let mut failure = None;
    for action in std::mem::take(&mut planned.actions) {
        if let Err(e) = podcontrol::execute(&ctx, &set, &update_set, action).await {
            failure = Some(e);
            break;
        }
    }
    let mut st = planned.status;
    status::complete_rolling_update(&set, &mut st);
    if status::differs(&set, &st) {
        let body = json!({"status": {
            "observedGeneration": st.observed_generation,
            "replicas": st.replicas,
            "readyReplicas": st.ready_replicas,
            "currentReplicas": st.current_replicas,
            "updatedReplicas": st.updated_replicas,
            "availableReplicas": st.available_replicas,
            "currentRevision": st.current_revision,
            "updateRevision": st.update_revision,
            "collisionCount": st.collision_count,
        }});
        let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), ns);
        match api.patch_status(name, &PatchParams::default(), &Patch::Merge(&body)).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                failure.get_or_insert(Error::api(format!("updating the status of statefulset {key}"), e));
            }
        }
    }
    revisions::truncate(&ctx, &set, &revs, &pods).await?;
    if let Some(e) = failure {
        return Err(e);
    }
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    if min_ready > 0 && st.available_replicas != Some(super::ordinals::replicas(&set)) {
        return Ok(Some(Duration::from_secs(u64::try_from(min_ready).unwrap_or(1))));
    }
    Ok(None)
}
