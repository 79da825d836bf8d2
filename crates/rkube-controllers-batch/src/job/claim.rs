//! Which pods a Job manages (upstream's `getPodsForJob` with `PodControllerRefManager.ClaimPods`): its own
//! pods that still match its selector, orphans that match (adopted: controller reference and tracking
//! finalizer added), while its own pods that stopped matching are released (unless the Job is being
//! deleted).

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::core::Selector;
use kube::{Client, ResourceExt};
use rkube_client::Error;
use rkube_client::pods::{controller_of, controller_ref, matches};

use super::JobController;
use super::pods::TRACKING_FINALIZER;

/// What claiming does with one pod of the namespace.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Ours and matching.
    Keep,
    /// An orphan that matches.
    Adopt,
    /// Ours but no longer matching.
    Release,
    /// Someone else's, or not matching.
    Ignore,
}

/// Upstream's claim rules for one pod (a Job being deleted neither adopts nor releases).
pub(crate) fn claim(job: &Job, selector: Option<&Selector>, pod: &Pod) -> Claim {
    let uid = job.metadata.uid.as_deref().unwrap_or("");
    let fits = matches(selector, pod.metadata.labels.as_ref().unwrap_or(&Default::default()));
    let deleting = job.metadata.deletion_timestamp.is_some();
    match controller_of(&pod.metadata) {
        Some(r) if r.uid == uid => match (fits, deleting) {
            (true, _) => Claim::Keep,
            (false, false) => Claim::Release,
            (false, true) => Claim::Ignore,
        },
        Some(_) => Claim::Ignore,
        None if fits && !deleting && pod.metadata.deletion_timestamp.is_none() => Claim::Adopt,
        None => Claim::Ignore,
    }
}

async fn patch_pod(client: &Client, pod: &Pod, body: serde_json::Value) -> Result<Option<Pod>, kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    match api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(body)).await {
        Ok(p) => Ok(Some(p)),
        Err(e) if rkube_client::api::is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

impl JobController {
    /// The pods `job` manages, after adopting and releasing as needed.
    pub(super) async fn claim_pods(&self, job: &Job) -> rkube_client::Result<Vec<Arc<Pod>>> {
        let ns = job.namespace().unwrap_or_default();
        let selector = match job.spec.as_ref().and_then(|s| s.selector.as_ref()) {
            Some(sel) => rkube_client::pods::selector(sel)?,
            None => None,
        };
        let mut out = Vec::new();
        let mut fresh_checked = false;
        for pod in self.pods.list_namespace(&ns) {
            match claim(job, selector.as_ref(), &pod) {
                Claim::Keep => out.push(pod),
                Claim::Ignore => {}
                Claim::Release => {
                    let body = serde_json::json!({"metadata": {
                        "ownerReferences": [{"$patch": "delete", "uid": job.metadata.uid}],
                        "uid": pod.metadata.uid,
                    }});
                    patch_pod(&self.client, &pod, body)
                        .await
                        .map_err(|e| Error::api(format!("releasing pod {ns}/{}", pod.name_any()), e))?;
                }
                Claim::Adopt => {
                    // Adopt only for a Job that still exists with this uid and is not being deleted.
                    if !fresh_checked {
                        self.recheck(job).await?;
                        fresh_checked = true;
                    }
                    let body = serde_json::json!({"metadata": {
                        "ownerReferences": [controller_ref(job)],
                        "uid": pod.metadata.uid,
                        "finalizers": [TRACKING_FINALIZER],
                    }});
                    let adopted = patch_pod(&self.client, &pod, body)
                        .await
                        .map_err(|e| Error::api(format!("adopting pod {ns}/{}", pod.name_any()), e))?;
                    out.extend(adopted.map(Arc::new));
                }
            }
        }
        Ok(out)
    }

    /// Upstream's `RecheckDeletionTimestamp`: the live Job must be the same one and not being deleted.
    async fn recheck(&self, job: &Job) -> rkube_client::Result<()> {
        let (ns, name) = (job.namespace().unwrap_or_default(), job.name_any());
        let api: Api<Job> = Api::namespaced(self.client.clone(), &ns);
        let fresh = api.get(&name).await.map_err(|e| Error::api(format!("getting job {ns}/{name}"), e))?;
        if fresh.metadata.uid != job.metadata.uid {
            return Err(Error::Invalid(format!("original Job {ns}/{name} is gone: got uid {:?}", fresh.metadata.uid)));
        }
        if fresh.metadata.deletion_timestamp.is_some() {
            return Err(Error::Invalid(format!("Job {ns}/{name} is being deleted: not adopting pods")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference, Time};

    fn job() -> Job {
        let mut j = Job::default();
        j.metadata.name = Some("j".into());
        j.metadata.uid = Some("u1".into());
        j
    }

    fn pod(labels: &[(&str, &str)], owner: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                labels: Some(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
                owner_references: owner
                    .map(|uid| vec![OwnerReference { uid: uid.into(), controller: Some(true), ..Default::default() }]),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn claims_follow_ownership_and_selector() {
        let sel =
            LabelSelector { match_labels: Some([("app".to_owned(), "x".to_owned())].into()), match_expressions: None };
        let sel = rkube_client::pods::selector(&sel).ok().flatten();
        let j = job();
        assert_eq!(claim(&j, sel.as_ref(), &pod(&[("app", "x")], Some("u1"))), Claim::Keep);
        assert_eq!(claim(&j, sel.as_ref(), &pod(&[("app", "y")], Some("u1"))), Claim::Release);
        assert_eq!(claim(&j, sel.as_ref(), &pod(&[("app", "x")], None)), Claim::Adopt);
        assert_eq!(claim(&j, sel.as_ref(), &pod(&[("app", "x")], Some("other"))), Claim::Ignore);
        assert_eq!(claim(&j, sel.as_ref(), &pod(&[("app", "y")], None)), Claim::Ignore);
        let mut gone = pod(&[("app", "x")], None);
        gone.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(claim(&j, sel.as_ref(), &gone), Claim::Ignore, "pods being deleted are not adopted");
        let mut deleting = job();
        deleting.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(claim(&deleting, sel.as_ref(), &pod(&[("app", "y")], Some("u1"))), Claim::Ignore);
        assert_eq!(claim(&deleting, sel.as_ref(), &pod(&[("app", "x")], Some("u1"))), Claim::Keep);
        assert_eq!(claim(&deleting, sel.as_ref(), &pod(&[("app", "x")], None)), Claim::Ignore);
    }
}
