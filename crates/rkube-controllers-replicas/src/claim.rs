//! Claiming dependents (upstream's `ControllerRefManager`): a controller adopts orphans its selector
//! matches (adding its controller reference with a strategic merge patch keyed on the child's UID) and
//! releases children it controls that its selector no longer matches.

use std::sync::Arc;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use rkube_client::api::is_not_found;
use rkube_client::pods::controller_of;
use rkube_client::{Error, Result};

/// What to do with one candidate child.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Ours and selected: keep it.
    Keep,
    /// Not ours to touch.
    Ignore,
    /// An orphan we select: take it.
    Adopt,
    /// Ours but no longer selected: let it go.
    Release,
}

/// Decides about `child` for the owner with `owner_uid` (being deleted when `owner_deleting`), given whether
/// the owner's selector matches the child.
pub(crate) fn decide(child: &ObjectMeta, owner_uid: &str, owner_deleting: bool, selected: bool) -> Decision {
    match controller_of(child) {
        Some(r) if r.uid != owner_uid => Decision::Ignore,
        Some(_) if selected => Decision::Keep,
        // A controller being deleted lets the garbage collector have its children as they are.
        Some(_) if owner_deleting => Decision::Ignore,
        Some(_) => Decision::Release,
        None if owner_deleting || !selected || child.deletion_timestamp.is_some() => Decision::Ignore,
        None => Decision::Adopt,
    }
}

/// The owner as the claim needs it.
pub(crate) struct Owner<'a, O> {
    /// The owner's API, to re-read it before adopting.
    pub(crate) api: Api<O>,
    /// The owner as cached.
    pub(crate) obj: &'a O,
    /// The controller reference to put on adopted children.
    pub(crate) reference: OwnerReference,
}

/// Claims `candidates` for `owner`; returns the children it controls afterwards. Adoption first re-reads
/// the owner from the API server (upstream's `RecheckDeletionTimestamp`) so a controller deleted meanwhile
/// never adopts.
pub(crate) async fn claim<O, C>(
    owner: &Owner<'_, O>,
    children: &Api<C>,
    candidates: Vec<Arc<C>>,
    selected: impl Fn(&C) -> bool,
) -> Result<Vec<Arc<C>>>
where
    O: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    C: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let uid = owner.reference.uid.as_str();
    let deleting = owner.obj.meta().deletion_timestamp.is_some();
    let mut claimed = Vec::new();
    let mut first_error = None;
    let mut may_adopt: Option<bool> = None;
    for child in candidates {
        match decide(child.meta(), uid, deleting, selected(&child)) {
            Decision::Keep => claimed.push(child),
            Decision::Ignore => {}
            Decision::Adopt => {
                if may_adopt.is_none() {
                    may_adopt = Some(still_adoptable(owner).await?);
                }
                if may_adopt != Some(true) {
                    continue;
                }
                match adopt(children, &child, &owner.reference).await {
                    Ok(()) => claimed.push(child),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            Decision::Release => {
                if let Err(e) = release(children, &child, uid).await {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(claimed),
    }
}

async fn still_adoptable<O>(owner: &Owner<'_, O>) -> Result<bool>
where
    O: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let name = owner.obj.name_any();
    match owner.api.get(&name).await {
        Ok(fresh) => Ok(fresh.meta().uid.as_deref() == Some(owner.reference.uid.as_str())
            && fresh.meta().deletion_timestamp.is_none()),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(Error::api(format!("reading {} {name} before adopting", O::kind(&())), e)),
    }
}

async fn adopt<C>(api: &Api<C>, child: &C, reference: &OwnerReference) -> Result<()>
where
    C: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    // The child's UID in the patch makes it fail on a re-created namesake; its resourceVersion makes it fail
    // when another controller adopted it meanwhile (the API server does not refuse two controller references).
    let patch = json!({"metadata": {
        "ownerReferences": [reference],
        "uid": child.meta().uid,
        "resourceVersion": child.meta().resource_version,
    }});
    patch_child(api, child, &patch, "adopting").await
}

async fn release<C>(api: &Api<C>, child: &C, owner_uid: &str) -> Result<()>
where
    C: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch =
        json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}], "uid": child.meta().uid}});
    patch_child(api, child, &patch, "releasing").await
}

async fn patch_child<C>(api: &Api<C>, child: &C, patch: &serde_json::Value, what: &str) -> Result<()>
where
    C: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let name = child.name_any();
    match api.patch(&name, &PatchParams::default(), &Patch::Strategic(patch)).await {
        Ok(_) => Ok(()),
        // Gone already: nothing to claim.
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::api(format!("{what} {} {name}", C::kind(&())), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn owned_by(uid: &str) -> ObjectMeta {
        ObjectMeta {
            owner_references: Some(vec![OwnerReference {
                uid: uid.into(),
                controller: Some(true),
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn decisions_follow_controller_ref_manager() {
        let orphan = ObjectMeta::default();
        assert_eq!(decide(&orphan, "u", false, true), Decision::Adopt);
        assert_eq!(decide(&orphan, "u", false, false), Decision::Ignore);
        assert_eq!(decide(&orphan, "u", true, true), Decision::Ignore);
        let dying = ObjectMeta { deletion_timestamp: Some(Time(k8s_openapi::jiff::Timestamp::now())), ..orphan };
        assert_eq!(decide(&dying, "u", false, true), Decision::Ignore);
        assert_eq!(decide(&owned_by("u"), "u", false, true), Decision::Keep);
        assert_eq!(decide(&owned_by("u"), "u", false, false), Decision::Release);
        assert_eq!(decide(&owned_by("u"), "u", true, false), Decision::Ignore);
        assert_eq!(decide(&owned_by("other"), "u", false, true), Decision::Ignore);
    }
}
