//! A DaemonSet's ControllerRevisions (upstream's `constructHistory`, `snapshot`, `dedupCurHistories` and
//! `cleanupHistory`): the revision matching the current template is found or made, numbered above all
//! others, and old revisions beyond `revisionHistoryLimit` that no pod runs are deleted.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{Selector, SelectorExt};
use serde_json::json;

use super::Ctx;
use crate::claims;
use crate::history::{self, POD_REVISION_LABEL};
use rkube_client::api::{is_already_exists, is_not_found};
use rkube_client::{Error, Result};

/// The current revision and the old ones.
pub(crate) struct History {
    pub(crate) current: ControllerRevision,
    pub(crate) old: Vec<ControllerRevision>,
}

fn revisions_api(ctx: &Ctx, ds: &DaemonSet) -> Api<ControllerRevision> {
    Api::namespaced(ctx.client.clone(), ds.metadata.namespace.as_deref().unwrap_or_default())
}

fn hash_of(r: &ControllerRevision) -> Option<&str> {
    r.metadata.labels.as_ref()?.get(POD_REVISION_LABEL).map(String::as_str)
}

/// Finds or creates the revision of `ds`'s current template.
pub(crate) async fn construct(ctx: &Ctx, ds: &DaemonSet, selector: &Selector) -> Result<History> {
    let api = revisions_api(ctx, ds);
    let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
    let candidates: Vec<ControllerRevision> = ctx.revisions.list_namespace(ns).iter().map(|r| (**r).clone()).collect();
    let owned = claims::claim(&api, ds, candidates, |r| selector.matches(&claims::labels_of(&r.metadata))).await?;
    let template = ds.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let want = history::template_patch(&template);
    let (mut current, mut old) = (Vec::new(), Vec::new());
    for mut r in owned {
        if hash_of(&r).is_none() {
            // Older revisions lack the hash label: their name stands in for it (upstream does the same).
            let patch = json!({"metadata": {"labels": {POD_REVISION_LABEL: r.name_any()}}});
            r = api
                .patch(&r.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::api(format!("labelling controllerrevision {}", r.name_any()), e))?;
        }
        if r.data.as_ref().map(|d| &d.0) == Some(&want) {
            current.push(r);
        } else {
            old.push(r);
        }
    }
    let next = old.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
    let mut cur = if current.is_empty() { snapshot(ctx, ds, next).await? } else { dedup(ctx, ds, current).await? };
    if cur.revision < next {
        let patch = json!({"revision": next});
        cur = api
            .patch(&cur.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::api(format!("renumbering controllerrevision {}", cur.name_any()), e))?;
    }
    Ok(History { current: cur, old })
}

/// Creates the revision for the current template; a name taken by other data bumps the collision count.
async fn snapshot(ctx: &Ctx, ds: &DaemonSet, revision: i64) -> Result<ControllerRevision> {
    let api = revisions_api(ctx, ds);
    let template = ds.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let collisions = ds.status.as_ref().and_then(|s| s.collision_count);
    let hash = history::hash_template(&template, collisions);
    let rev = history::new_revision(ds, &template, POD_REVISION_LABEL, &hash, revision);
    let name = rev.name_any();
    match api.create(&PostParams::default(), &rev).await {
        Ok(r) => Ok(r),
        Err(e) if is_already_exists(&e) => {
            let existing =
                api.get(&name).await.map_err(|e| Error::api(format!("reading controllerrevision {name}"), e))?;
            let uid = ds.metadata.uid.as_deref().unwrap_or_default();
            if rkube_client::pods::is_controlled_by(&existing.metadata, uid) && history::same_data(&existing, &rev) {
                return Ok(existing);
            }
            let dss: Api<DaemonSet> =
                Api::namespaced(ctx.client.clone(), ds.metadata.namespace.as_deref().unwrap_or_default());
            let live = dss
                .get_status(&ds.name_any())
                .await
                .map_err(|e| Error::api(format!("reading daemonset {}", ds.name_any()), e))?;
            let live_count = live.status.as_ref().and_then(|s| s.collision_count);
            if live_count != collisions {
                return Err(Error::Conflict(format!("daemonset {}: stale collision count", ds.name_any())));
            }
            let patch = json!({"metadata": {"resourceVersion": live.resource_version()}, "status": {"collisionCount": live_count.unwrap_or(0) + 1}});
            dss.patch_status(&ds.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::api(format!("bumping the collision count of daemonset {}", ds.name_any()), e))?;
            Err(Error::Conflict(format!(
                "daemonset {}: revision name {name} collided; collision count bumped",
                ds.name_any()
            )))
        }
        Err(e) => Err(Error::api(format!("creating controllerrevision {name}"), e)),
    }
}

/// Several revisions hold the current template: keep the highest, move pods onto its hash, delete the rest.
async fn dedup(ctx: &Ctx, ds: &DaemonSet, mut current: Vec<ControllerRevision>) -> Result<ControllerRevision> {
    history::sort(&mut current);
    let Some(keep) = current.pop() else {
        return Err(Error::Invalid("no current revision".into()));
    };
    if current.is_empty() {
        return Ok(keep);
    }
    let keep_hash = hash_of(&keep).unwrap_or_default().to_owned();
    let api = revisions_api(ctx, ds);
    let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let uid = ds.metadata.uid.as_deref().unwrap_or_default();
    for p in ctx.pods.list_namespace(ns).iter().filter(|p| rkube_client::pods::is_controlled_by(&p.metadata, uid)) {
        if p.labels().get(POD_REVISION_LABEL).is_some_and(|h| h != &keep_hash) {
            let patch = json!({"metadata": {"labels": {POD_REVISION_LABEL: keep_hash}}});
            match pods.patch(&p.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(Error::api(format!("relabelling pod {}", p.name_any()), e)),
            }
        }
    }
    for dup in current {
        delete(&api, &dup).await?;
    }
    Ok(keep)
}

async fn delete(api: &Api<ControllerRevision>, r: &ControllerRevision) -> Result<()> {
    match api.delete(&r.name_any(), &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::api(format!("deleting controllerrevision {}", r.name_any()), e)),
    }
}

/// Deletes the oldest old revisions beyond `revisionHistoryLimit` (10 by default) that no pod runs.
pub(crate) async fn cleanup(ctx: &Ctx, ds: &DaemonSet, mut old: Vec<ControllerRevision>, pods: &[Pod]) -> Result<()> {
    let limit = ds.spec.as_ref().and_then(|s| s.revision_history_limit).unwrap_or(10);
    let mut excess = old.len() as i64 - i64::from(limit);
    if excess <= 0 {
        return Ok(());
    }
    let live: BTreeSet<&str> =
        pods.iter().filter_map(|p| p.labels().get(POD_REVISION_LABEL).map(String::as_str)).collect();
    history::sort(&mut old);
    let api = revisions_api(ctx, ds);
    for r in &old {
        if excess <= 0 {
            break;
        }
        if hash_of(r).is_some_and(|h| live.contains(h)) {
            continue;
        }
        delete(&api, r).await?;
        excess -= 1;
    }
    Ok(())
}
