//! The EndpointSlice mirroring controller: the Endpoints of a Service without a selector, written by
//! someone else, are mirrored into EndpointSlices managed by `endpointslicemirroring-controller.k8s.io`;
//! the mirrored slices go when the Endpoints or the Service go, when the Service gains a selector, or when
//! the Endpoints ask not to be mirrored (`endpointslice.kubernetes.io/skip-mirror: "true"`, as the API
//! server's own `default/kubernetes` does).

pub(crate) mod reconcile;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use rkube_client::api::{is_namespace_terminating, is_not_found};
use rkube_client::events::{EventType, Recorder};
use rkube_client::queue::WorkQueue;

use crate::error::{SyncError, SyncResult};
use crate::informers::{Caches, Change};
use crate::model;
use crate::slices::reconcile::Plan;
use crate::slices::service_of;
use crate::trackers::{Key, WriteTracker, key_of};
use reconcile::{CONTROLLER_NAME, MAX_ENDPOINTS_PER_SUBSET};

const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

/// Whether an Endpoints object is to be mirrored at all.
fn should_mirror(ep: &Endpoints) -> bool {
    let skip = ep.metadata.labels.as_ref().and_then(|l| l.get(SKIP_MIRROR_LABEL)).is_some_and(|v| v == "true");
    let leader = ep.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
    !skip && !leader
}

/// The mirroring controller's state.
pub(crate) struct Controller {
    client: Client,
    caches: Arc<Caches>,
    pub(crate) queue: Arc<WorkQueue<Key>>,
    tracker: WriteTracker,
    recorder: Recorder,
}

impl Controller {
    pub(crate) fn new(client: Client, caches: Arc<Caches>, queue: Arc<WorkQueue<Key>>) -> Self {
        let recorder = Recorder::new(client.clone(), "endpoint-slice-mirroring-controller", None);
        Controller { client, caches, queue, tracker: WriteTracker::default(), recorder }
    }

    /// A service appeared, went, or gained or lost its selector.
    pub(crate) fn on_service(&self, c: &Change<'_, Service>) {
        match c {
            Change::Object { old: Some(old), new: Some(new) } => {
                if model::selector(old).is_some() != model::selector(new).is_some() {
                    self.queue.add(key_of(&new.metadata));
                }
            }
            Change::Object { old: Some(s), new: None } | Change::Object { old: None, new: Some(s) } => {
                self.queue.add(key_of(&s.metadata))
            }
            Change::Object { old: None, new: None } | Change::Relisted => {}
        }
    }

    /// An Endpoints object changed.
    pub(crate) fn on_endpoints(&self, c: &Change<'_, Endpoints>) {
        match c {
            Change::Object { old: Some(old), new: Some(new) } => {
                if old.metadata.resource_version != new.metadata.resource_version
                    && (should_mirror(old) || should_mirror(new))
                {
                    self.queue.add(key_of(&new.metadata));
                }
            }
            Change::Object { old: Some(e), new: None } | Change::Object { old: None, new: Some(e) } => {
                self.queue.add(key_of(&e.metadata))
            }
            Change::Object { old: None, new: None } | Change::Relisted => {}
        }
    }

    /// A mirrored slice changed: resync unless it is this controller's own write. After a relist, every
    /// slice is looked at again as if it had changed.
    pub(crate) fn on_slice(&self, c: &Change<'_, EndpointSlice>) {
        match c {
            Change::Object { old, new } => self.slice_changed(*old, *new),
            Change::Relisted => {
                for s in self.caches.slices.list() {
                    self.slice_changed(Some(&s), Some(&s));
                }
            }
        }
    }

    fn slice_changed(&self, old: Option<&EndpointSlice>, new: Option<&EndpointSlice>) {
        match (old, new) {
            (_, Some(s)) => {
                if let Some(key) = service_of(s, CONTROLLER_NAME)
                    && self.tracker.is_news(&key, &s.metadata)
                {
                    self.queue.add(key);
                }
            }
            (Some(s), None) => {
                if let Some(key) = service_of(s, CONTROLLER_NAME)
                    && self.tracker.on_deleted(&key, s.metadata.name.as_deref().unwrap_or(""))
                {
                    self.queue.add(key);
                }
            }
            (None, None) => {}
        }
        if let (Some(old), Some(new)) = (old, new)
            && let Some(key) = service_of(old, CONTROLLER_NAME)
            && service_of(new, CONTROLLER_NAME).as_ref() != Some(&key)
        {
            self.tracker.on_deleted(&key, old.metadata.name.as_deref().unwrap_or(""));
            self.queue.add(key);
        }
    }

    fn mirrored(&self, key: &Key) -> Vec<EndpointSlice> {
        let slices = self.caches.slices.list_namespace(&key.0).into_iter();
        slices.filter(|s| service_of(s, CONTROLLER_NAME).as_ref() == Some(key)).map(|s| s.as_ref().clone()).collect()
    }

    /// Makes the mirrored slices of `key` right.
    pub(crate) async fn sync(&self, key: &Key) -> SyncResult {
        let (ns, name) = key;
        let svc = self.caches.services.get(ns, name);
        let endpoints = self.caches.endpoints.get(ns, name);
        let existing = self.mirrored(key);
        let ep = match (svc, endpoints) {
            (Some(svc), Some(ep)) if model::selector(&svc).is_none() && should_mirror(&ep) => ep,
            _ => {
                let plan = Plan { delete: existing, ..Plan::default() };
                self.finalize(key, None, plan).await?;
                if self.caches.services.get(ns, name).is_none() {
                    self.tracker.forget(key);
                }
                return Ok(());
            }
        };
        if self.tracker.stale(key, existing.iter().map(|s| &s.metadata)) {
            return Err(SyncError::Stale("EndpointSlice", ns.clone(), name.clone()));
        }
        let mirror = reconcile::desired(&ep);
        if mirror.invalid > 0 {
            let message = format!("Skipped {} invalid IP addresses when mirroring to EndpointSlices", mirror.invalid);
            self.recorder.record(ep.as_ref(), EventType::Warning, "InvalidIPAddress", &message).await;
        }
        if mirror.skipped > mirror.invalid {
            let message = format!(
                "A max of {MAX_ENDPOINTS_PER_SUBSET} addresses can be mirrored to EndpointSlices per Endpoints subset. {} addresses were skipped",
                mirror.skipped
            );
            self.recorder.record(ep.as_ref(), EventType::Warning, "TooManyAddressesToMirror", &message).await;
        }
        let plan = reconcile::plan(&ep, mirror, &existing);
        self.finalize(key, Some(&ep), plan).await
    }

    async fn finalize(&self, key: &Key, ep: Option<&Endpoints>, plan: Plan) -> SyncResult {
        let (ns, name) = key;
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        // No new slices for Endpoints being deleted.
        if ep.is_some_and(|e| e.metadata.deletion_timestamp.is_none()) {
            for s in plan.create {
                match api.create(&PostParams::default(), &s).await {
                    Ok(created) => self.tracker.wrote(key, &created.metadata),
                    Err(e) if is_namespace_terminating(&e) => return Ok(()),
                    Err(e) => {
                        let what = format!("failed to create EndpointSlice for Endpoints {ns}/{name}");
                        return Err(rkube_client::Error::api(what, e).into());
                    }
                }
            }
        }
        for s in plan.update {
            let slice = s.metadata.name.clone().unwrap_or_default();
            match api.replace(&slice, &PostParams::default(), &s).await {
                Ok(updated) => self.tracker.wrote(key, &updated.metadata),
                Err(e) => {
                    let what = format!("failed to update {slice} EndpointSlice for Endpoints {ns}/{name}");
                    return Err(rkube_client::Error::api(what, e).into());
                }
            }
        }
        for s in plan.delete {
            let slice = s.metadata.name.clone().unwrap_or_default();
            match api.delete(&slice, &DeleteParams::default()).await {
                Ok(_) => self.tracker.deleted(key, &slice),
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    let what = format!("failed to delete {slice} EndpointSlice for Endpoints {ns}/{name}");
                    return Err(rkube_client::Error::api(what, e).into());
                }
            }
        }
        Ok(())
    }
}
