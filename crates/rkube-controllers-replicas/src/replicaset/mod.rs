//! The replica controller (upstream's `ReplicaSetController`), generic over ReplicaSet and
//! ReplicationController: keeps `spec.replicas` active pods matching the owner's selector, adopting orphans
//! and releasing pods that no longer match, and reports status.

mod kind;
mod manage;
mod rank;
mod status;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::Api;
use kube::{Client, Resource, ResourceExt};

use crate::claim::{Owner, claim};
use crate::expectations::Expectations;
use crate::key::{ObjKey, same_version};
use crate::worker;
use rkube_client::events::Recorder;
use rkube_client::informer::{Change, Informer};
use rkube_client::pods::{controller_of, controller_ref, is_active, matches};
use rkube_client::queue::WorkQueue;
use rkube_client::{Error, Result};

pub(crate) use kind::Replicated;
pub(crate) use manage::message;

/// One replica controller and the shared informers it reads.
pub(crate) struct Controller<K> {
    client: Client,
    owners: Informer<K>,
    pods: Informer<Pod>,
    queue: Arc<WorkQueue<ObjKey>>,
    expectations: Expectations,
    recorder: Recorder,
}

/// Whether `r` names an object of kind `K` (group and kind; versions may differ).
pub(crate) fn refers_to<K: Resource<DynamicType = ()>>(r: &OwnerReference) -> bool {
    let group = |api_version: &str| api_version.rsplit_once('/').map_or("", |(g, _)| g).to_owned();
    r.kind == K::kind(&()) && group(&r.api_version) == K::group(&())
}

impl<K: Replicated> Controller<K> {
    /// A controller over the shared caches.
    pub(crate) fn new(client: Client, owners: Informer<K>, pods: Informer<Pod>) -> Arc<Self> {
        Arc::new(Controller {
            recorder: Recorder::new(client.clone(), K::COMPONENT, None),
            client,
            owners,
            pods,
            queue: worker::queue(),
            expectations: Expectations::default(),
        })
    }

    /// Syncs queued owners with `workers` concurrent workers until dropped.
    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        let this = self.clone();
        worker::run(K::COMPONENT, self.queue.clone(), workers, move |key| {
            let this = this.clone();
            async move { this.sync(&key).await }
        })
        .await;
    }

    /// Stops handing out work.
    pub(crate) fn shutdown(&self) {
        self.queue.shutdown();
    }

    /// An owner changed.
    pub(crate) fn on_owner(&self, change: &Change<'_, K>) {
        match *change {
            Change::Object { old: Some(old), new: Some(new) } if same_version(old, new) => {}
            Change::Object { new: Some(o), .. } => self.queue.add(ObjKey::of(o)),
            Change::Object { old: Some(o), new: None } => {
                let key = ObjKey::of(o);
                self.expectations.forget(&key);
                self.queue.add(key);
            }
            // A relist, or the replay to a late handler, already reported each object that differs.
            Change::Object { old: None, new: None } | Change::Relisted => {}
        }
    }

    /// The owner `r` points at, if it is one of ours and still the same object.
    fn resolve(&self, ns: &str, r: &OwnerReference) -> Option<ObjKey> {
        if !refers_to::<K>(r) {
            return None;
        }
        let key = ObjKey { ns: ns.to_owned(), name: r.name.clone() };
        let owner = self.owners.get(&key.ns, &key.name)?;
        (owner.meta().uid.as_deref() == Some(r.uid.as_str())).then_some(key)
    }

    /// Owners in the pod's namespace whose selector matches it (candidates to adopt an orphan).
    fn selecting(&self, pod: &Pod) -> Vec<ObjKey> {
        let ns = pod.namespace().unwrap_or_default();
        let empty = Default::default();
        let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
        self.owners
            .list_namespace(&ns)
            .iter()
            .filter(|o| o.pod_selector().ok().flatten().is_some_and(|s| matches(Some(&s), labels)))
            .map(|o| ObjKey::of(o.as_ref()))
            .collect()
    }

    fn pod_gone(&self, pod: &Pod) {
        let ns = pod.namespace().unwrap_or_default();
        if let Some(key) = controller_of(&pod.metadata).and_then(|r| self.resolve(&ns, r)) {
            self.expectations.deletion_observed(&key, &format!("{ns}/{}", pod.name_any()));
            self.queue.add(key);
        }
    }

    /// A pod changed (upstream's addPod/updatePod/deletePod handlers).
    pub(crate) fn on_pod(&self, change: &Change<'_, Pod>) {
        match *change {
            Change::Object { old: None, new: Some(pod) } => {
                if pod.metadata.deletion_timestamp.is_some() {
                    return self.pod_gone(pod);
                }
                let ns = pod.namespace().unwrap_or_default();
                match controller_of(&pod.metadata) {
                    Some(r) => {
                        if let Some(key) = self.resolve(&ns, r) {
                            self.expectations.creation_observed(&key);
                            self.queue.add(key);
                        }
                    }
                    None => self.selecting(pod).into_iter().for_each(|k| self.queue.add(k)),
                }
            }
            Change::Object { old: Some(old), new: Some(new) } => {
                if same_version(old, new) {
                    return;
                }
                let labels_changed = old.metadata.labels != new.metadata.labels;
                if new.metadata.deletion_timestamp.is_some() {
                    self.pod_gone(new);
                    if labels_changed {
                        self.pod_gone(old);
                    }
                    return;
                }
                let ns = new.namespace().unwrap_or_default();
                let (old_ref, new_ref) = (controller_of(&old.metadata), controller_of(&new.metadata));
                let ref_changed = old_ref.map(|r| &r.uid) != new_ref.map(|r| &r.uid);
                if ref_changed && let Some(key) = old_ref.and_then(|r| self.resolve(&ns, r)) {
                    self.queue.add(key);
                }
                match new_ref {
                    Some(r) => {
                        if let Some(key) = self.resolve(&ns, r) {
                            self.queue.add(key);
                        }
                    }
                    None if labels_changed || ref_changed => {
                        self.selecting(new).into_iter().for_each(|k| self.queue.add(k))
                    }
                    None => {}
                }
            }
            Change::Object { old: Some(pod), new: None } => self.pod_gone(pod),
            // A relist, or the replay to a late handler, already reported each pod that differs.
            Change::Object { old: None, new: None } | Change::Relisted => {}
        }
    }

    /// Reconciles one owner; returns when to look again, if a time matters.
    async fn sync(&self, key: &ObjKey) -> Result<Option<Duration>> {
        let Some(owner) = self.owners.get(&key.ns, &key.name) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let needs_sync = self.expectations.satisfied(key);
        let selector = match owner.pod_selector() {
            Ok(Some(s)) => s,
            Ok(None) => {
                tracing::warn!(kind = %K::kind(&()), owner = %key, "empty selector: not managing pods");
                return Ok(None);
            }
            Err(e) => {
                tracing::warn!(kind = %K::kind(&()), owner = %key, error = %e, "not managing pods");
                return Ok(None);
            }
        };
        let candidates: Vec<Arc<Pod>> =
            self.pods.list_namespace(&key.ns).into_iter().filter(|p| is_active(p)).collect();
        let claim_owner = Owner {
            api: Api::<K>::namespaced(self.client.clone(), &key.ns),
            obj: owner.as_ref(),
            reference: controller_ref(owner.as_ref()),
        };
        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), &key.ns);
        let empty = Default::default();
        let pods = claim(&claim_owner, &pods_api, candidates, |p| {
            matches(Some(&selector), p.metadata.labels.as_ref().unwrap_or(&empty))
        })
        .await?;
        let manage_error = if needs_sync && owner.meta().deletion_timestamp.is_none() {
            self.manage_replicas(&owner, key, &pods).await.err()
        } else {
            None
        };
        let now = k8s_openapi::jiff::Timestamp::now();
        let template_labels = owner.template().and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.clone());
        let manage_message = manage_error.as_ref().map(manage::message);
        let observed = status::Observed {
            current: owner.replica_status(),
            generation: owner.meta().generation.unwrap_or(0),
            desired: owner.desired(),
            min_ready_seconds: owner.min_ready_seconds(),
            template_labels: &template_labels.unwrap_or_default(),
            pods: &pods,
            manage_error: manage_message.as_deref(),
        };
        let new_status = status::calculate(&observed, now);
        if new_status != observed.current {
            self.write_status(key, &new_status).await?;
        }
        if let Some(e) = manage_error {
            return Err(e);
        }
        Ok(status::next_available_in(&pods, owner.min_ready_seconds(), now))
    }

    async fn write_status(&self, key: &ObjKey, s: &kind::ReplicaStatus) -> Result<()> {
        let api = Api::<K>::namespaced(self.client.clone(), &key.ns);
        crate::worker::patch_status(&api, &key.name, &s.to_patch())
            .await
            .map_err(|e| Error::api(format!("updating the status of {} {key}", K::kind(&())), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::api::core::v1::ReplicationController;

    #[test]
    fn owner_references_resolve_by_group_and_kind() {
        let r = |api_version: &str, kind: &str| OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            ..OwnerReference::default()
        };
        assert!(refers_to::<ReplicaSet>(&r("apps/v1", "ReplicaSet")));
        assert!(!refers_to::<ReplicaSet>(&r("v1", "ReplicationController")));
        assert!(refers_to::<ReplicationController>(&r("v1", "ReplicationController")));
        assert!(!refers_to::<ReplicationController>(&r("apps/v1", "ReplicationController")));
    }
}
