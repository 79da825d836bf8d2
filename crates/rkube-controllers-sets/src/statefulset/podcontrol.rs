//! Carries out a StatefulSet plan's writes as upstream's `StatefulPodControl` does, with its events
//! (`create Pod web-0 in StatefulSet web successful`, `create Claim www-web-0 Pod web-0 in StatefulSet web
//! success`, and the `... failed error: ...` forms).

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::Ctx;
use super::ordinals::{identity_matches, storage_matches, update_identity, update_storage};
use super::plan::Action;
use super::pvc;
use crate::workers::{error_text, key_of};
use rkube_client::api::{is_already_exists, is_not_found};
use rkube_client::events::EventType;
use rkube_client::{Error, Result};

/// Records upstream's pod event for `verb` (`create`, `update`, `delete`) and its outcome.
async fn pod_event(ctx: &Ctx, set: &StatefulSet, verb: &str, pod: &str, err: Option<&str>) {
    let title = format!("{}{}", verb[..1].to_uppercase(), &verb[1..]);
    let name = set.name_any();
    match err {
        None => {
            let msg = format!("{verb} Pod {pod} in StatefulSet {name} successful");
            ctx.recorder.record(set, EventType::Normal, &format!("Successful{title}"), &msg).await;
        }
        Some(e) => {
            let msg = format!("{verb} Pod {pod} in StatefulSet {name} failed error: {e}");
            ctx.recorder.record(set, EventType::Warning, &format!("Failed{title}"), &msg).await;
        }
    }
}

fn cached_claim(ctx: &Ctx, ns: &str, name: &str) -> Option<PersistentVolumeClaim> {
    ctx.claims.get(ns, name).map(|c| (*c).clone())
}

/// Creates the pod's missing claims (upstream's `createPersistentVolumeClaims`).
async fn create_claims(ctx: &Ctx, set: &StatefulSet, pod: &Pod) -> Result<()> {
    let ns = set.metadata.namespace.as_deref().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    let mut errors = Vec::new();
    for claim in pvc::claims_for(set, pod) {
        let name = claim.name_any();
        match cached_claim(ctx, ns, &name) {
            Some(c) if c.metadata.deletion_timestamp.is_some() => errors.push(format!("pvc {name} is being deleted")),
            Some(_) => {}
            None => match api.create(&PostParams::default(), &claim).await {
                Ok(_) => {
                    let msg =
                        format!("create Claim {name} Pod {} in StatefulSet {} success", pod.name_any(), set.name_any());
                    ctx.recorder.record(set, EventType::Normal, "SuccessfulCreate", &msg).await;
                }
                Err(e) if is_already_exists(&e) => {}
                Err(e) => {
                    let msg = format!(
                        "create Claim {name} for Pod {} in StatefulSet {} failed error: {}",
                        pod.name_any(),
                        set.name_any(),
                        error_text(&e)
                    );
                    ctx.recorder.record(set, EventType::Warning, "FailedCreate", &msg).await;
                    errors.push(format!("failed to create PVC {name}: {}", error_text(&e)));
                }
            },
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(Error::Invalid(errors.join(", "))) }
}

/// Sets the owners of the pod's claims as the retention policy says (upstream's
/// `UpdatePodClaimForRetentionPolicy`).
async fn fix_claim_owners(ctx: &Ctx, set: &StatefulSet, pod: &Pod) -> Result<()> {
    let ns = set.metadata.namespace.as_deref().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    for want in pvc::claims_for(set, pod) {
        let name = want.name_any();
        let claim = match cached_claim(ctx, ns, &name) {
            Some(c) => c,
            // Just created: read it unless the policy leaves claims unowned anyway.
            None if !pvc::owners_up_to_date(&want, set, pod) => match api.get(&name).await {
                Ok(c) => c,
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(Error::api(format!("reading claim {ns}/{name}"), e)),
            },
            None => continue,
        };
        if pvc::owners_up_to_date(&claim, set, pod) {
            continue;
        }
        let refs = pvc::wanted_owner_refs(&claim, set, pod);
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": claim.resource_version()}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::api(format!("could not update claim {name} for delete policy ownerRefs"), e))?;
    }
    Ok(())
}

/// Whether the pod's existing claims are owned as the policy says.
fn claims_match(ctx: &Ctx, set: &StatefulSet, pod: &Pod) -> bool {
    let ns = set.metadata.namespace.as_deref().unwrap_or_default();
    pvc::claims_for(set, pod)
        .iter()
        .all(|c| cached_claim(ctx, ns, &c.name_any()).is_none_or(|live| pvc::owners_up_to_date(&live, set, pod)))
}

/// Carries out one action of a plan for `set` (`update_set` is the set at its update revision).
pub(crate) async fn execute(ctx: &Ctx, set: &StatefulSet, update_set: &StatefulSet, action: Action) -> Result<()> {
    let ns = set.metadata.namespace.as_deref().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let key = key_of(&set.metadata);
    match action {
        Action::Create(pod) => {
            let name = pod.name_any();
            if let Err(e) = create_claims(ctx, set, &pod).await {
                pod_event(ctx, set, "create", &name, Some(&e.to_string())).await;
                return Err(e);
            }
            let created = match pods.create(&PostParams::default(), &pod).await {
                Ok(p) => p,
                Err(e) if is_already_exists(&e) => return Err(Error::api(format!("creating pod {ns}/{name}"), e)),
                Err(e) => {
                    pod_event(ctx, set, "create", &name, Some(&error_text(&e))).await;
                    return Err(Error::api(format!("creating pod {ns}/{name}"), e));
                }
            };
            ctx.expectations.created(&key, name.clone());
            if let Err(e) = fix_claim_owners(ctx, set, &created).await {
                pod_event(ctx, set, "update", &name, Some(&e.to_string())).await;
                return Err(e);
            }
            pod_event(ctx, set, "create", &name, None).await;
            Ok(())
        }
        Action::CreateMissingClaims(pod) => create_claims(ctx, set, &pod).await,
        Action::FixClaims(pod) => fix_claim_owners(ctx, update_set, &pod).await,
        Action::Delete(pod) => {
            let name = pod.name_any();
            match pods.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    ctx.expectations.deleted(&key, name.clone(), pod.metadata.uid.clone().unwrap_or_default());
                    pod_event(ctx, set, "delete", &name, None).await;
                    Ok(())
                }
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => {
                    pod_event(ctx, set, "delete", &name, Some(&error_text(&e))).await;
                    Err(Error::api(format!("deleting pod {ns}/{name}"), e))
                }
            }
        }
        Action::Update(mut pod) => {
            let name = pod.name_any();
            let mut consistent = true;
            if !identity_matches(update_set, &pod) {
                update_identity(update_set, &mut pod);
                consistent = false;
            }
            if !storage_matches(update_set, &pod) {
                update_storage(update_set, &mut pod);
                consistent = false;
                if let Err(e) = create_claims(ctx, update_set, &pod).await {
                    pod_event(ctx, set, "update", &name, Some(&e.to_string())).await;
                    return Err(e);
                }
            }
            if !claims_match(ctx, update_set, &pod)
                && let Err(e) = fix_claim_owners(ctx, update_set, &pod).await
            {
                pod_event(ctx, set, "update", &name, Some(&e.to_string())).await;
                return Err(e);
            }
            if consistent {
                return Ok(());
            }
            match pods.replace(&name, &PostParams::default(), &pod).await {
                Ok(_) => {
                    pod_event(ctx, set, "update", &name, None).await;
                    Ok(())
                }
                Err(e) => {
                    pod_event(ctx, set, "update", &name, Some(&error_text(&e))).await;
                    Err(Error::api(format!("updating pod {ns}/{name}"), e))
                }
            }
        }
    }
}
