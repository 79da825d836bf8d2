//! A StatefulSet's ControllerRevisions (upstream's `getStatefulSetRevisions` and `truncateHistory`): the
//! update revision is the set's template (an identical older revision is renumbered, as after
//! `kubectl rollout undo`; otherwise one is created, bumping the collision count past taken names); the
//! current revision is the one `status.currentRevision` names; old revisions no pod runs are deleted beyond
//! `revisionHistoryLimit`.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{Selector, SelectorExt};
use serde_json::json;

use super::Ctx;
use super::ordinals::pod_revision;
use crate::history::{self, HASH_LABEL};
use rkube_client::api::{is_already_exists, is_not_found};
use rkube_client::{Error, Result};

/// The set's revisions, sorted, with the current and update ones.
pub(crate) struct Revisions {
    pub(crate) all: Vec<ControllerRevision>,
    pub(crate) current: ControllerRevision,
    pub(crate) update: ControllerRevision,
    pub(crate) collision_count: i32,
}

fn api(ctx: &Ctx, set: &StatefulSet) -> Api<ControllerRevision> {
    Api::namespaced(ctx.client.clone(), set.metadata.namespace.as_deref().unwrap_or_default())
}

/// The revisions matching the set's selector that it controls, adopting orphans (upstream's
/// `ListControllerRevisions` and `adoptOrphanRevisions`).
async fn owned(ctx: &Ctx, set: &StatefulSet, selector: &Selector) -> Result<Vec<ControllerRevision>> {
    let uid = set.metadata.uid.clone().unwrap_or_default();
    let mut out = Vec::new();
    for r in ctx.revisions.list_namespace(set.metadata.namespace.as_deref().unwrap_or_default()) {
        if !selector.matches(&r.labels().clone()) {
            continue;
        }
        match rkube_client::pods::controller_of(&r.metadata) {
            Some(c) if c.uid == uid => out.push((*r).clone()),
            Some(_) => {}
            None if set.metadata.deletion_timestamp.is_some() => {}
            None => {
                let mut refs = r.metadata.owner_references.clone().unwrap_or_default();
                refs.push(rkube_client::pods::controller_ref(set));
                let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": r.resource_version()}});
                match api(ctx, set).patch(&r.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                    Ok(adopted) => out.push(adopted),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(Error::api(format!("adopting controllerrevision {}", r.name_any()), e)),
                }
            }
        }
    }
    history::sort(&mut out);
    Ok(out)
}

/// Finds or makes the update revision and finds the current one.
pub(crate) async fn get(ctx: &Ctx, set: &StatefulSet, selector: &Selector) -> Result<Revisions> {
    let mut all = owned(ctx, set, selector).await?;
    let mut collision_count = set.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0);
    let template = set.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let data = history::template_patch(&template);
    let next = history::next_revision(&all);
    let hash = history::hash_revision(&data, Some(collision_count));
    let candidate = history::new_revision(set, &template, HASH_LABEL, &hash, next);
    let equal: Vec<&ControllerRevision> = all.iter().filter(|r| history::equal(r, &candidate)).collect();
    let update = match (equal.last(), all.last()) {
        (Some(eq), Some(last)) if history::equal(last, eq) => last.clone(),
        (Some(eq), _) => {
            let patch = json!({"revision": next});
            let name = eq.name_any();
            let r = api(ctx, set)
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::api(format!("renumbering controllerrevision {name}"), e))?;
            all.retain(|x| x.name_any() != name);
            all.push(r.clone());
            r
        }
        (None, _) => {
            let r = create(ctx, set, &template, &data, next, &mut collision_count).await?;
            all.push(r.clone());
            r
        }
    };
    history::sort(&mut all);
    let current_name = set.status.as_ref().and_then(|s| s.current_revision.clone()).unwrap_or_default();
    let current = all.iter().find(|r| r.name_any() == current_name).cloned().unwrap_or_else(|| update.clone());
    Ok(Revisions { all, current, update, collision_count })
}

/// Creates a revision, moving to the next collision count while its name is taken by other data
/// (upstream's `CreateControllerRevision`).
async fn create(
    ctx: &Ctx,
    set: &StatefulSet,
    template: &k8s_openapi::api::core::v1::PodTemplateSpec,
    data: &serde_json::Value,
    revision: i64,
    collision_count: &mut i32,
) -> Result<ControllerRevision> {
    let api = api(ctx, set);
    for _ in 0..100 {
        let hash = history::hash_revision(data, Some(*collision_count));
        let rev = history::new_revision(set, template, HASH_LABEL, &hash, revision);
        let name = rev.name_any();
        match api.create(&PostParams::default(), &rev).await {
            Ok(r) => return Ok(r),
            Err(e) if is_already_exists(&e) => {
                let existing =
                    api.get(&name).await.map_err(|e| Error::api(format!("reading controllerrevision {name}"), e))?;
                if history::same_data(&existing, &rev) {
                    return Ok(existing);
                }
                *collision_count += 1;
            }
            Err(e) => return Err(Error::api(format!("creating controllerrevision {name}"), e)),
        }
    }
    Err(Error::Conflict(format!("statefulset {}: no free revision name", set.name_any())))
}

/// Deletes the oldest revisions beyond the history limit that are neither current, update nor run by a pod.
pub(crate) async fn truncate(ctx: &Ctx, set: &StatefulSet, revs: &Revisions, pods: &[Pod]) -> Result<()> {
    let mut live: BTreeSet<String> = pods.iter().map(|p| pod_revision(p).to_owned()).collect();
    live.insert(revs.current.name_any());
    live.insert(revs.update.name_any());
    let old: Vec<&ControllerRevision> = revs.all.iter().filter(|r| !live.contains(&r.name_any())).collect();
    let limit = set.spec.as_ref().and_then(|s| s.revision_history_limit).unwrap_or(10);
    let Ok(limit) = usize::try_from(limit) else { return Ok(()) };
    if old.len() <= limit {
        return Ok(());
    }
    let api = api(ctx, set);
    for r in &old[..old.len() - limit] {
        match api.delete(&r.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(Error::api(format!("deleting controllerrevision {}", r.name_any()), e)),
        }
    }
    Ok(())
}

/// The set with the template `rev` holds (upstream's `ApplyRevision`).
pub(crate) fn apply(set: &StatefulSet, rev: &ControllerRevision) -> StatefulSet {
    let mut s = set.clone();
    if let (Some(spec), Some(t)) = (s.spec.as_mut(), history::template_of(rev)) {
        spec.template = t;
    }
    s
}
