//! The garbage collector's decisions, each made on live objects (a GET, never the cache alone) and
//! written with preconditions (uid and resourceVersion), so that no race with the graph deletes an object
//! whose owner exists: upstream's attemptToDeleteItem, processDeletingDependentsItem and
//! attemptToOrphanWorker.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::core::PartialObjectMeta;
use serde_json::json;

use super::graph::{Change, FOREGROUND, Graph, Identity, NodeView, ORPHAN, Work};
use super::monitor::Sink;
use crate::discovery::{Resource, Resources};
use crate::error::{Error, Result};
use rkube_client::api::{is_conflict, is_not_found};

/// How often a read-modify-write is retried on conflicts before the item is requeued.
const CONFLICT_RETRIES: usize = 5;

/// What the workers share.
pub(crate) struct Ctx {
    /// The API client.
    pub(crate) client: Client,
    /// Graph and queue.
    pub(crate) sink: Sink,
    /// The latest discovery, for owner kinds.
    pub(crate) resources: Arc<RwLock<Arc<Resources>>>,
    /// Owners verified absent (upstream's absentOwnerCache): a uid never comes back, so an owner found
    /// absent by namespace, kind, name and uid stays absent, and its many dependents need one GET, not one each.
    pub(crate) absent: Mutex<HashSet<String>>,
}

/// How many absent owners are remembered before the memory is cleared.
const ABSENT_CAPACITY: usize = 4096;

/// How an owner reference stands, by a live lookup.
#[derive(Debug, PartialEq, Eq)]
enum Owner {
    /// Exists and is not waiting for its dependents.
    Solid,
    /// Absent (404, or the name now has another uid).
    Dangling,
    /// Being deleted in the foreground: waits for its dependents.
    Waiting,
}

fn graph(ctx: &Ctx) -> std::sync::MutexGuard<'_, Graph> {
    ctx.sink.graph.lock().unwrap_or_else(|p| p.into_inner())
}

impl Ctx {
    fn resolve(&self, api_version: &str, kind: &str) -> Result<Resource> {
        let resources = self.resources.read().unwrap_or_else(|p| p.into_inner()).clone();
        resources
            .resolve(api_version, kind)
            .ok_or_else(|| Error::UnknownKind { api_version: api_version.to_owned(), kind: kind.to_owned() })
    }

    fn meta_api(&self, r: &Resource, ns: Option<&str>) -> Api<PartialObjectMeta<DynamicObject>> {
        match ns {
            Some(ns) if r.namespaced => Api::namespaced_with(self.client.clone(), ns, &r.ar),
            _ => Api::all_with(self.client.clone(), &r.ar),
        }
    }

    fn api(&self, r: &Resource, ns: Option<&str>) -> Api<DynamicObject> {
        match ns {
            Some(ns) if r.namespaced => Api::namespaced_with(self.client.clone(), ns, &r.ar),
            _ => Api::all_with(self.client.clone(), &r.ar),
        }
    }

    /// The live metadata of `name`, `None` when absent.
    async fn get(&self, r: &Resource, ns: Option<&str>, name: &str) -> Result<Option<ObjectMeta>> {
        match self.meta_api(r, ns).get_metadata_opt(name).await {
            Ok(o) => Ok(o.map(|o| o.metadata)),
            Err(e) => Err(Error::api(format!("reading {} {name}", r.display()), e)),
        }
    }
}

fn has_finalizer(meta: &ObjectMeta, f: &str) -> bool {
    meta.finalizers.iter().flatten().any(|x| x == f)
}

/// Looks at one work item.
pub(crate) async fn process(ctx: &Ctx, work: &Work) -> Result<()> {
    match work {
        Work::Delete(uid) => attempt_to_delete(ctx, uid).await,
        Work::Orphan(uid) => attempt_to_orphan(ctx, uid).await,
    }
}

/// The namespace an object of kind `r` named by `identity` lives in, if `r` is namespaced.
fn namespace_of<'a>(r: &Resource, identity: &'a Identity) -> Option<&'a str> {
    if r.namespaced { identity.namespace.as_deref() } else { None }
}

async fn attempt_to_delete(ctx: &Ctx, uid: &str) -> Result<()> {
    let Some(item) = graph(ctx).view(uid) else { return Ok(()) };
    if item.observed && item.deleting && !item.deleting_dependents {
        // Being deleted is a one-way trip: its dependents are looked at when it is gone.
        return Ok(());
    }
    let r = ctx.resolve(&item.identity.api_version, &item.identity.kind)?;
    if r.namespaced && item.identity.namespace.is_none() {
        // A namespaced kind named by a cluster-scoped dependent: no namespace to look in (upstream leaves it).
        return Ok(());
    }
    let ns = namespace_of(&r, &item.identity);
    let latest = match ctx.get(&r, ns, &item.identity.name).await? {
        Some(m) if m.uid.as_deref() == Some(uid) => m,
        _ => {
            ctx.sink.apply(Change::Absent(item.identity.clone()));
            return Ok(());
        }
    };
    if latest.deletion_timestamp.is_some() {
        if has_finalizer(&latest, FOREGROUND) {
            return process_deleting_dependents(ctx, &item, &r, ns).await;
        }
        return Ok(());
    }
    let refs = latest.owner_references.clone().unwrap_or_default();
    if refs.is_empty() {
        return Ok(());
    }
    let (mut solid, mut dangling, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
    for reference in &refs {
        let owner_r = ctx.resolve(&reference.api_version, &reference.kind)?;
        if owner_r.namespaced && ns.is_none() {
            // A cluster-scoped object cannot have a namespaced owner; retrying would not change that.
            tracing::warn!(object = %item.identity.name, owner = %reference.name, "a cluster-scoped object names a namespaced owner; ignored");
            return Ok(());
        }
        let owner_ns = if owner_r.namespaced { ns } else { None };
        let absent_key = format!(
            "{}/{}/{}/{}/{}",
            owner_ns.unwrap_or_default(),
            owner_r.ar.group,
            owner_r.ar.kind,
            reference.name,
            reference.uid
        );
        let known_absent = ctx.absent.lock().unwrap_or_else(|p| p.into_inner()).contains(&absent_key);
        let class = if known_absent {
            Owner::Dangling
        } else {
            match ctx.get(&owner_r, owner_ns, &reference.name).await? {
                None => Owner::Dangling,
                Some(m) if m.uid.as_deref() != Some(reference.uid.as_str()) => Owner::Dangling,
                Some(m) if m.deletion_timestamp.is_some() && has_finalizer(&m, FOREGROUND) => Owner::Waiting,
                Some(_) => Owner::Solid,
            }
        };
        if class == Owner::Dangling && !known_absent {
            let mut absent = ctx.absent.lock().unwrap_or_else(|p| p.into_inner());
            if absent.len() >= ABSENT_CAPACITY {
                absent.clear();
            }
            absent.insert(absent_key);
        }
        match class {
            Owner::Solid => solid.push(reference),
            Owner::Dangling => dangling.push(reference),
            Owner::Waiting => waiting.push(reference),
        }
    }
    let rv = latest.resource_version.clone();
    if !solid.is_empty() {
        if dangling.is_empty() && waiting.is_empty() {
            return Ok(());
        }
        // Keep the object for its live owners; drop the references that would keep the others waiting.
        let drop: Vec<&str> = dangling.iter().chain(&waiting).map(|o| o.uid.as_str()).collect();
        let kept: Vec<&OwnerReference> = refs.iter().filter(|o| !drop.contains(&o.uid.as_str())).collect();
        return patch_owner_refs(ctx, &r, ns, &item.identity, json!(kept), rv).await;
    }
    let mut rv = rv;
    let policy = if !waiting.is_empty() && graph(ctx).has_dependents(uid) {
        if graph(ctx).has_dependent_deleting_dependents(uid) {
            // A dependent waits for this object while an owner waits for it: unblock its own references
            // so that the foreground deletions cannot wait on each other in a cycle.
            let unblocked: Vec<OwnerReference> = refs
                .iter()
                .cloned()
                .map(|mut o| {
                    o.block_owner_deletion = Some(false);
                    o
                })
                .collect();
            let patched = ctx
                .api(&r, ns)
                .patch(
                    &item.identity.name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "metadata": { "ownerReferences": unblocked, "resourceVersion": rv } })),
                )
                .await
                .map_err(|e| {
                    Error::api(format!("unblocking the owner references of {} {}", r.display(), item.identity.name), e)
                })?;
            rv = patched.metadata.resource_version;
        }
        PropagationPolicy::Foreground
    } else if has_finalizer(&latest, ORPHAN) {
        PropagationPolicy::Orphan
    } else if has_finalizer(&latest, FOREGROUND) {
        PropagationPolicy::Foreground
    } else {
        PropagationPolicy::Background
    };
    delete(ctx, &r, ns, &item.identity, rv, policy).await
}

/// Deletes the object if it still is the one classified (uid and resourceVersion preconditions).
async fn delete(
    ctx: &Ctx,
    r: &Resource,
    ns: Option<&str>,
    id: &Identity,
    rv: Option<String>,
    policy: PropagationPolicy,
) -> Result<()> {
    let dp = DeleteParams {
        propagation_policy: Some(policy.clone()),
        preconditions: Some(Preconditions { uid: Some(id.uid.clone()), resource_version: rv }),
        ..DeleteParams::default()
    };
    match ctx.api(r, ns).delete(&id.name, &dp).await {
        Ok(_) => {
            tracing::info!(resource = %r.display(), namespace = ns.unwrap_or_default(), name = %id.name, ?policy, "garbage collected");
            Ok(())
        }
        Err(e) if is_not_found(&e) => {
            ctx.sink.apply(Change::Absent(id.clone()));
            Ok(())
        }
        // A conflict means the object changed since it was classified: requeued, looked at afresh.
        Err(e) => Err(Error::api(format!("deleting {} {}", r.display(), id.name), e)),
    }
}

/// An owner being deleted in the foreground: done when no dependent blocks it, else its blocking
/// dependents are deleted (their deletion brings it back here).
async fn process_deleting_dependents(ctx: &Ctx, item: &NodeView, r: &Resource, ns: Option<&str>) -> Result<()> {
    let blocking = graph(ctx).blocking_dependents(&item.identity.uid);
    if blocking.is_empty() {
        return remove_finalizer(ctx, r, ns, &item.identity, FOREGROUND).await;
    }
    for (dep, deleting_dependents) in blocking {
        if !deleting_dependents {
            ctx.sink.queue.add(Work::Delete(dep));
        }
    }
    Ok(())
}

/// Removes `finalizer` from the object (read, then a merge patch with the resourceVersion read).
async fn remove_finalizer(ctx: &Ctx, r: &Resource, ns: Option<&str>, id: &Identity, finalizer: &str) -> Result<()> {
    for _ in 0..CONFLICT_RETRIES {
        let Some(meta) = ctx.get(r, ns, &id.name).await? else { return Ok(()) };
        if meta.uid.as_deref() != Some(id.uid.as_str()) || !has_finalizer(&meta, finalizer) {
            return Ok(());
        }
        let kept: Vec<&String> = meta.finalizers.iter().flatten().filter(|f| *f != finalizer).collect();
        let patch = json!({ "metadata": { "finalizers": kept, "resourceVersion": meta.resource_version } });
        match ctx.api(r, ns).patch(&id.name, &PatchParams::default(), &Patch::Merge(patch)).await {
            Ok(_) => {
                tracing::info!(resource = %r.display(), namespace = ns.unwrap_or_default(), name = %id.name, finalizer, "removed the garbage collector's finalizer");
                return Ok(());
            }
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) if is_conflict(&e) => continue,
            Err(e) => {
                return Err(Error::api(format!("removing finalizer {finalizer} from {} {}", r.display(), id.name), e));
            }
        }
    }
    Err(Error::Conflict(format!("removing finalizer {finalizer} from {} {}", r.display(), id.name)))
}

/// Writes `ownerReferences` with the resourceVersion read as precondition.
async fn patch_owner_refs(
    ctx: &Ctx,
    r: &Resource,
    ns: Option<&str>,
    id: &Identity,
    refs: serde_json::Value,
    rv: Option<String>,
) -> Result<()> {
    let patch = json!({ "metadata": { "ownerReferences": refs, "resourceVersion": rv } });
    match ctx.api(r, ns).patch(&id.name, &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::api(format!("updating the owner references of {} {}", r.display(), id.name), e)),
    }
}

/// An owner deleted with `propagationPolicy=Orphan`: its references are removed from every dependent,
/// then its `orphan` finalizer.
async fn attempt_to_orphan(ctx: &Ctx, uid: &str) -> Result<()> {
    let Some(owner) = graph(ctx).view(uid) else { return Ok(()) };
    let dependents = graph(ctx).dependents(uid);
    let mut failures = Vec::new();
    for dep in dependents {
        if let Err(e) = orphan_one(ctx, &dep, uid).await {
            failures.push(e);
        }
    }
    if let Some(e) = failures.into_iter().next() {
        return Err(e);
    }
    let r = ctx.resolve(&owner.identity.api_version, &owner.identity.kind)?;
    remove_finalizer(ctx, &r, namespace_of(&r, &owner.identity), &owner.identity, ORPHAN).await
}

async fn orphan_one(ctx: &Ctx, dep: &Identity, owner_uid: &str) -> Result<()> {
    let r = ctx.resolve(&dep.api_version, &dep.kind)?;
    let ns = namespace_of(&r, dep);
    for _ in 0..CONFLICT_RETRIES {
        let Some(meta) = ctx.get(&r, ns, &dep.name).await? else { return Ok(()) };
        if meta.uid.as_deref() != Some(dep.uid.as_str()) {
            return Ok(());
        }
        let refs = meta.owner_references.unwrap_or_default();
        if !refs.iter().any(|o| o.uid == owner_uid) {
            return Ok(());
        }
        let kept: Vec<&OwnerReference> = refs.iter().filter(|o| o.uid != owner_uid).collect();
        match patch_owner_refs(ctx, &r, ns, dep, json!(kept), meta.resource_version).await {
            Ok(()) => return Ok(()),
            Err(Error::Api { source, .. }) if is_conflict(&source) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict(format!("orphaning {} {}", r.display(), dep.name)))
}
