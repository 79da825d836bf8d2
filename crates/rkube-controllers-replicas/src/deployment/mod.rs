//! The Deployment controller (upstream's `DeploymentController`): claims the ReplicaSets a Deployment
//! selects, creates the new one for its template, moves replicas from old to new by its strategy, scales
//! proportionally, trims history, and reports status and conditions.

mod history;
mod progress;
mod recreate;
mod rolling;
mod scale;
mod status;
mod surge;
mod sync;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::Api;
use kube::{Client, ResourceExt};

use crate::claim::{Owner, claim};
use crate::key::{ObjKey, same_version};
use crate::replicaset::refers_to;
use crate::worker;
use rkube_client::Result;
use rkube_client::events::{EventType, Recorder};
use rkube_client::informer::{Change, Informer};
use rkube_client::pods::{controller_of, controller_ref, matches};
use rkube_client::queue::WorkQueue;

/// The Deployment controller and the shared informers it reads.
pub(crate) struct Controller {
    client: Client,
    deployments: Informer<Deployment>,
    replica_sets: Informer<ReplicaSet>,
    pods: Informer<Pod>,
    queue: Arc<WorkQueue<ObjKey>>,
    recorder: Recorder,
}

/// Pods of a Deployment's ReplicaSets, by ReplicaSet UID (what Recreate waits on).
pub(crate) type PodMap = HashMap<String, Vec<Arc<Pod>>>;

impl Controller {
    /// A controller over the shared caches.
    pub(crate) fn new(
        client: Client,
        deployments: Informer<Deployment>,
        replica_sets: Informer<ReplicaSet>,
        pods: Informer<Pod>,
    ) -> Arc<Self> {
        Arc::new(Controller {
            recorder: Recorder::new(client.clone(), "deployment-controller", None),
            client,
            deployments,
            replica_sets,
            pods,
            queue: worker::queue(),
        })
    }

    /// Syncs queued Deployments with `workers` concurrent workers until dropped.
    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        let this = self.clone();
        worker::run("deployment-controller", self.queue.clone(), workers, move |key| {
            let this = this.clone();
            async move { this.sync(&key).await }
        })
        .await;
    }

    /// Stops handing out work.
    pub(crate) fn shutdown(&self) {
        self.queue.shutdown();
    }

    /// A Deployment changed.
    pub(crate) fn on_deployment(&self, change: &Change<'_, Deployment>) {
        match *change {
            Change::Object { old: Some(old), new: Some(new) } if same_version(old, new) => {}
            Change::Object { new: Some(d), .. } | Change::Object { old: Some(d), new: None } => {
                self.queue.add(ObjKey::of(d))
            }
            // A relist, or the replay to a late handler, already reported each Deployment that differs.
            Change::Object { old: None, new: None } | Change::Relisted => {}
        }
    }

    fn resolve(&self, ns: &str, r: &OwnerReference) -> Option<ObjKey> {
        if !refers_to::<Deployment>(r) {
            return None;
        }
        let key = ObjKey { ns: ns.to_owned(), name: r.name.clone() };
        let d = self.deployments.get(&key.ns, &key.name)?;
        (d.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(key)
    }

    /// Deployments whose selector matches an orphan ReplicaSet's labels.
    fn selecting(&self, rs: &ReplicaSet) -> Vec<ObjKey> {
        let ns = rs.namespace().unwrap_or_default();
        let empty = Default::default();
        let labels = rs.metadata.labels.as_ref().unwrap_or(&empty);
        self.deployments
            .list_namespace(&ns)
            .iter()
            .filter(|d| {
                let sel = d.spec.as_ref().and_then(|s| rkube_client::pods::selector(&s.selector).ok().flatten());
                sel.is_some_and(|s| matches(Some(&s), labels))
            })
            .map(|d| ObjKey::of(d.as_ref()))
            .collect()
    }

    /// A ReplicaSet changed (upstream's add/update/deleteReplicaSet handlers).
    pub(crate) fn on_replica_set(&self, change: &Change<'_, ReplicaSet>) {
        let enqueue_owner = |rs: &ReplicaSet| {
            let ns = rs.namespace().unwrap_or_default();
            if let Some(key) = controller_of(&rs.metadata).and_then(|r| self.resolve(&ns, r)) {
                self.queue.add(key);
            }
        };
        match *change {
            Change::Object { old: None, new: Some(rs) } => match controller_of(&rs.metadata) {
                Some(_) => enqueue_owner(rs),
                None if rs.metadata.deletion_timestamp.is_none() => {
                    self.selecting(rs).into_iter().for_each(|k| self.queue.add(k))
                }
                None => {}
            },
            Change::Object { old: Some(old), new: Some(new) } => {
                if same_version(old, new) {
                    return;
                }
                let (old_ref, new_ref) = (controller_of(&old.metadata), controller_of(&new.metadata));
                let ref_changed = old_ref.map(|r| &r.uid) != new_ref.map(|r| &r.uid);
                if ref_changed && old_ref.is_some() {
                    enqueue_owner(old);
                }
                match new_ref {
                    Some(_) => enqueue_owner(new),
                    None if ref_changed || old.metadata.labels != new.metadata.labels => {
                        self.selecting(new).into_iter().for_each(|k| self.queue.add(k))
                    }
                    None => {}
                }
            }
            Change::Object { old: Some(rs), new: None } => enqueue_owner(rs),
            // A relist, or the replay to a late handler, already reported each ReplicaSet that differs.
            Change::Object { old: None, new: None } | Change::Relisted => {}
        }
    }

    /// A pod changed: a Recreate rollout waits for the old pods to be gone.
    pub(crate) fn on_pod(&self, change: &Change<'_, Pod>) {
        let Change::Object { old: Some(pod), new: None } = *change else { return };
        let ns = pod.namespace().unwrap_or_default();
        let Some(r) = controller_of(&pod.metadata).filter(|r| refers_to::<ReplicaSet>(r)) else { return };
        let Some(rs) = self.replica_sets.get(&ns, &r.name) else { return };
        let Some(key) = controller_of(&rs.metadata).and_then(|r| self.resolve(&ns, r)) else { return };
        let recreate = self.deployments.get(&key.ns, &key.name).is_some_and(|d| !surge::is_rolling(&d));
        if recreate {
            self.queue.add(key);
        }
    }

    /// Reconciles one Deployment (upstream's `syncDeployment`); returns when to look again, if a time matters.
    async fn sync(&self, key: &ObjKey) -> Result<Option<Duration>> {
        let Some(cached) = self.deployments.get(&key.ns, &key.name) else { return Ok(None) };
        let mut d = (*cached).clone();
        let selector = d.spec.as_ref().map(|s| rkube_client::pods::selector(&s.selector));
        let selector = match selector {
            Some(Ok(Some(s))) => s,
            Some(Ok(None)) | None => {
                let msg = "This deployment is selecting all pods. A non-empty selector is required.";
                self.recorder.record(&d, EventType::Warning, "SelectingAll", msg).await;
                self.observe_generation_only(&mut d).await?;
                return Ok(None);
            }
            Some(Err(e)) => {
                tracing::warn!(deployment = %key, error = %e, "invalid selector: not syncing");
                return Ok(None);
            }
        };
        let mut rs_list = self.claim_replica_sets(&d, &selector).await?;
        if d.metadata.deletion_timestamp.is_some() {
            return self.sync_status_only(&mut d, &mut rs_list).await;
        }
        self.check_paused_conditions(&mut d).await?;
        if paused(&d) || self.is_scaling_event(&mut d, &mut rs_list).await? {
            return self.sync_scaling(&mut d, &mut rs_list).await;
        }
        if surge::is_rolling(&d) {
            self.rollout_rolling(&mut d, &mut rs_list).await
        } else {
            let pod_map = self.pod_map(&rs_list);
            self.rollout_recreate(&mut d, &mut rs_list, &pod_map).await
        }
    }

    /// The ReplicaSets `d` controls after adopting matching orphans and releasing non-matching ones.
    async fn claim_replica_sets(&self, d: &Deployment, selector: &kube::core::Selector) -> Result<Vec<ReplicaSet>> {
        let ns = d.namespace().unwrap_or_default();
        let owner = Owner {
            api: Api::<Deployment>::namespaced(self.client.clone(), &ns),
            obj: d,
            reference: controller_ref(d),
        };
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &ns);
        let empty = Default::default();
        let claimed = claim(&owner, &api, self.replica_sets.list_namespace(&ns), |rs| {
            matches(Some(selector), rs.metadata.labels.as_ref().unwrap_or(&empty))
        })
        .await?;
        Ok(claimed.into_iter().map(|rs| (*rs).clone()).collect())
    }

    fn pod_map(&self, rs_list: &[ReplicaSet]) -> PodMap {
        let mut map: PodMap =
            rs_list.iter().filter_map(|rs| rs.metadata.uid.clone()).map(|u| (u, Vec::new())).collect();
        let Some(ns) = rs_list.first().and_then(|rs| rs.namespace()) else { return map };
        for pod in self.pods.list_namespace(&ns) {
            if let Some(list) = controller_of(&pod.metadata).and_then(|r| map.get_mut(&r.uid)) {
                list.push(pod);
            }
        }
        map
    }
}

/// `spec.paused`.
pub(crate) fn paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;

    #[test]
    fn paused_defaults_to_false() {
        let mut d = Deployment::default();
        assert!(!paused(&d));
        d.spec = Some(k8s_openapi::api::apps::v1::DeploymentSpec { paused: Some(true), ..Default::default() });
        assert!(paused(&d));
        assert_eq!(Deployment::kind(&()), "Deployment");
    }
}
