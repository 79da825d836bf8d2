//! Upstream's `ControllerRefManager`: an owner claims the objects its selector matches. Objects it controls
//! that stop matching are released; orphans that match are adopted (unless the owner or the orphan is being
//! deleted); objects controlled by another owner are left alone.

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use rkube_client::{Error, Result, api::is_not_found};

/// What to do with one candidate object.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Ours already.
    Mine,
    /// An orphan that matches: take it.
    Adopt,
    /// Ours but no longer matching: let it go.
    Release,
    /// Not ours and not to be taken.
    Ignore,
}

/// Decides the claim on an object with `meta` by the owner with `owner_uid` (`owner_deleting` when the
/// owner has a deletionTimestamp); `matches` says whether the owner's selector (and filters) match it.
pub(crate) fn decide(meta: &ObjectMeta, owner_uid: &str, owner_deleting: bool, matches: bool) -> Claim {
    match rkube_client::pods::controller_of(meta) {
        Some(r) if r.uid != owner_uid => Claim::Ignore,
        Some(_) if matches => Claim::Mine,
        Some(_) if owner_deleting => Claim::Ignore,
        Some(_) => Claim::Release,
        None if owner_deleting || !matches || meta.deletion_timestamp.is_some() => Claim::Ignore,
        None => Claim::Adopt,
    }
}

/// Claims `candidates` for `owner`; returns those it now controls. `matches` tells whether a candidate's
/// labels (and other filters) fit the owner.
pub(crate) async fn claim<O, K>(
    api: &Api<K>,
    owner: &O,
    candidates: Vec<K>,
    matches: impl Fn(&K) -> bool,
) -> Result<Vec<K>>
where
    O: Resource<DynamicType = ()>,
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let uid = owner.meta().uid.clone().unwrap_or_default();
    let deleting = owner.meta().deletion_timestamp.is_some();
    let mut mine = Vec::new();
    for obj in candidates {
        match decide(obj.meta(), &uid, deleting, matches(&obj)) {
            Claim::Mine => mine.push(obj),
            Claim::Ignore => {}
            Claim::Adopt => {
                let mut refs = obj.meta().owner_references.clone().unwrap_or_default();
                refs.push(rkube_client::pods::controller_ref(owner));
                if let Some(adopted) = set_owners(api, &obj, refs).await? {
                    mine.push(adopted);
                }
            }
            Claim::Release => {
                let refs: Vec<OwnerReference> =
                    obj.meta().owner_references.iter().flatten().filter(|r| r.uid != uid).cloned().collect();
                set_owners(api, &obj, refs).await?;
            }
        }
    }
    Ok(mine)
}

/// Writes `obj`'s owner references, guarded by its resourceVersion (a concurrent change fails with a
/// conflict and the owner is synced again). `None` when the object is gone.
async fn set_owners<K>(api: &Api<K>, obj: &K, refs: Vec<OwnerReference>) -> Result<Option<K>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": obj.resource_version()}});
    match api.patch(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(o) => Ok(Some(o)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(Error::api(format!("updating the owners of {} {}", K::kind(&()), obj.name_any()), e)),
    }
}

/// The labels of an object, empty when it has none.
pub(crate) fn labels_of(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned_by(uid: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            owner_references: uid
                .map(|u| vec![OwnerReference { uid: u.into(), controller: Some(true), ..OwnerReference::default() }]),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn claims_as_the_controller_ref_manager() {
        assert_eq!(decide(&owned_by(Some("me")), "me", false, true), Claim::Mine);
        assert_eq!(decide(&owned_by(Some("me")), "me", true, true), Claim::Mine);
        assert_eq!(decide(&owned_by(Some("me")), "me", false, false), Claim::Release);
        assert_eq!(decide(&owned_by(Some("me")), "me", true, false), Claim::Ignore);
        assert_eq!(decide(&owned_by(Some("other")), "me", false, true), Claim::Ignore);
        assert_eq!(decide(&owned_by(None), "me", false, true), Claim::Adopt);
        assert_eq!(decide(&owned_by(None), "me", true, true), Claim::Ignore);
        assert_eq!(decide(&owned_by(None), "me", false, false), Claim::Ignore);
    }
}
