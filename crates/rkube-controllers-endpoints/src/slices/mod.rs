//! The EndpointSlice controller: for every Service with a selector, EndpointSlices (at most 100 endpoints
//! each, per address type and resolved port set) managed by `endpointslice-controller.k8s.io`, kept with
//! the fewest writes; the garbage collector removes them with their Service.

pub(crate) mod desired;
pub(crate) mod naming;
pub(crate) mod reconcile;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use rkube_client::api::{is_namespace_terminating, is_not_found};
use rkube_client::events::{EventType, Recorder};

use crate::batch::Batched;
use crate::error::{SyncError, SyncResult};
use crate::informers::{Caches, Change};
use crate::model::{self, TRIGGER_TIME_ANNOTATION};
use crate::trackers::{Key, TriggerTimes, WriteTracker, format_time};
use naming::{CONTROLLER_NAME, MANAGED_BY_LABEL, SERVICE_NAME_LABEL};
use reconcile::{Desired, Group, Plan};

/// Most endpoints per slice (upstream's `--max-endpoints-per-slice` default).
pub(crate) const MAX_ENDPOINTS_PER_SLICE: usize = 100;
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The EndpointSlice controller's state.
pub(crate) struct Controller {
    client: Client,
    caches: Arc<Caches>,
    pub(crate) queue: Batched<Key>,
    triggers: TriggerTimes,
    tracker: WriteTracker,
    recorder: Recorder,
}

/// The service a slice of `controller` belongs to, if it is one of its slices.
pub(crate) fn service_of(slice: &EndpointSlice, controller: &str) -> Option<Key> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(controller) {
        return None;
    }
    let svc = labels.get(SERVICE_NAME_LABEL).filter(|s| !s.is_empty())?;
    Some((slice.metadata.namespace.clone().unwrap_or_default(), svc.clone()))
}

impl Controller {
    pub(crate) fn new(client: Client, caches: Arc<Caches>, queue: Batched<Key>) -> Self {
        let recorder = Recorder::new(client.clone(), "endpoint-slice-controller", None);
        Controller {
            client,
            caches,
            queue,
            triggers: TriggerTimes::default(),
            tracker: WriteTracker::default(),
            recorder,
        }
    }

    /// A service changed: sync it now. After a relist, every service is synced again.
    pub(crate) fn on_service(&self, c: &Change<'_, Service>) {
        self.caches.queue_service(&self.queue, c);
    }

    /// A pod changed: sync the services it concerns at the end of the batch period.
    pub(crate) fn on_pod(&self, c: &Change<'_, Pod>) {
        self.caches.queue_pod_services(&self.queue, c);
    }

    /// A node appeared or changed zone: its pods' services get the node and zone.
    pub(crate) fn on_node(&self, c: &Change<'_, Node>) {
        let node = match c {
            Change::Object { old: None, new: Some(n) } => n,
            Change::Object { old: Some(old), new: Some(new) } => {
                let zone = |n: &Node| n.metadata.labels.as_ref().and_then(|l| l.get(ZONE_LABEL).cloned());
                if zone(old) == zone(new) {
                    return;
                }
                new
            }
            Change::Object { new: None, .. } | Change::Relisted => return,
        };
        let name = node.metadata.name.as_deref().unwrap_or("");
        for pod in self.caches.pods.list().into_iter().filter(|p| model::node_name(p) == name) {
            for key in self.caches.services_for_pod(None, Some(&pod)) {
                self.queue.add_batched(key);
            }
        }
    }

    /// A slice changed: resync its service unless the change is this controller's own write. After a
    /// relist, every slice is looked at again as if it had changed.
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
            (None, Some(s)) => {
                if let Some(key) = service_of(s, CONTROLLER_NAME)
                    && self.tracker.is_news(&key, &s.metadata)
                {
                    self.queue.add_batched(key);
                }
            }
            (Some(old), Some(new)) => {
                let (was, is) = (service_of(old, CONTROLLER_NAME), service_of(new, CONTROLLER_NAME));
                if let Some(key) = &is
                    && (was != is || self.tracker.is_news(key, &new.metadata))
                {
                    self.queue.add_batched(key.clone());
                }
                if let Some(key) = was
                    && Some(&key) != is.as_ref()
                {
                    // Relabelled away: no longer one of this service's slices.
                    self.tracker.on_deleted(&key, old.metadata.name.as_deref().unwrap_or(""));
                    self.queue.add_batched(key);
                }
            }
            (Some(s), None) => {
                if let Some(key) = service_of(s, CONTROLLER_NAME)
                    && self.tracker.on_deleted(&key, s.metadata.name.as_deref().unwrap_or(""))
                {
                    self.queue.add_batched(key);
                }
            }
            (None, None) => {}
        }
    }

    /// Makes the slices of service `key` right.
    pub(crate) async fn sync(&self, key: &Key) -> SyncResult {
        let (ns, name) = key;
        let Some(svc) = self.caches.services.get(ns, name) else {
            // The garbage collector deletes the slices with the service.
            self.triggers.delete(key);
            self.tracker.forget(key);
            return Ok(());
        };
        if model::is_external_name(&svc) || model::selector(&svc).is_none() {
            return Ok(());
        }
        let pods: Vec<Arc<Pod>> = self
            .caches
            .pods
            .list_namespace(ns)
            .into_iter()
            .filter(|p| model::selects(&svc, p.metadata.labels.as_ref()))
            .collect();
        let existing: Vec<EndpointSlice> = self
            .caches
            .slices
            .list_namespace(ns)
            .into_iter()
            .filter(|s| service_of(s, CONTROLLER_NAME).as_ref() == Some(key))
            .filter(|s| s.metadata.deletion_timestamp.is_none())
            .map(|s| s.as_ref().clone())
            .collect();
        if self.tracker.stale(key, existing.iter().map(|s| &s.metadata)) {
            return Err(SyncError::Stale("EndpointSlice", ns.clone(), name.clone()));
        }
        let trigger = self.triggers.compute(&svc, pods.iter().map(|p| p.as_ref()));
        let (desired, missing) = self.desired(&svc, &pods);
        let plan = reconcile::plan(&svc, desired, &existing, MAX_ENDPOINTS_PER_SLICE, CONTROLLER_NAME);
        if let Err(e) = self.finalize(&svc, key, plan, trigger).await {
            let message = format!("Error updating Endpoint Slices for Service {ns}/{name}: {e}");
            self.recorder.record(svc.as_ref(), EventType::Warning, "FailedToUpdateEndpointSlices", &message).await;
            return Err(e);
        }
        missing.map_or(Ok(()), Err)
    }

    /// The desired endpoints, and the error to retry with when a pod's node is not known yet.
    fn desired(&self, svc: &Service, pods: &[Arc<Pod>]) -> (Desired, Option<SyncError>) {
        let mut desired = Desired::new();
        let mut missing = None;
        let publish_not_ready = model::publish_not_ready(svc);
        for address_type in desired::address_types(svc) {
            let groups = desired.entry(address_type).or_default();
            for pod in pods.iter().filter(|p| model::should_pod_be_in_endpoints(p, true)) {
                let ports = desired::endpoint_ports(svc, pod);
                let group = groups
                    .entry(desired::ports_key(&ports))
                    .or_insert_with(|| Group { ports: ports.clone(), ..Group::default() });
                let node = self.caches.nodes.get("", model::node_name(pod));
                if node.is_none() && !publish_not_ready {
                    missing = Some(SyncError::NodeMissing {
                        pod: pod.metadata.name.clone().unwrap_or_default(),
                        namespace: svc.metadata.namespace.clone().unwrap_or_default(),
                        service: svc.metadata.name.clone().unwrap_or_default(),
                        node: model::node_name(pod).to_owned(),
                    });
                    continue;
                }
                let ep = desired::pod_to_endpoint(pod, node.as_deref(), svc, address_type);
                if !ep.addresses.is_empty() {
                    group.endpoints.insert(desired::endpoint_key(&ep), ep);
                }
            }
        }
        (desired, missing)
    }

    async fn finalize(
        &self,
        svc: &Service,
        key: &Key,
        plan: Plan,
        trigger: Option<k8s_openapi::jiff::Timestamp>,
    ) -> SyncResult {
        let (ns, name) = key;
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        let stamp = |s: &mut EndpointSlice| {
            let mut a = s.metadata.annotations.take().unwrap_or_default();
            match trigger {
                Some(t) => a.insert(TRIGGER_TIME_ANNOTATION.into(), format_time(t)),
                None => a.remove(TRIGGER_TIME_ANNOTATION),
            };
            s.metadata.annotations = (!a.is_empty()).then_some(a);
        };
        // No new slices for a service being deleted: the garbage collector is removing them.
        if svc.metadata.deletion_timestamp.is_none() {
            for mut s in plan.create {
                stamp(&mut s);
                match api.create(&PostParams::default(), &s).await {
                    Ok(created) => self.tracker.wrote(key, &created.metadata),
                    Err(e) if is_namespace_terminating(&e) => return Ok(()),
                    Err(e) => {
                        let what = format!("failed to create EndpointSlice for Service {ns}/{name}");
                        return Err(rkube_client::Error::api(what, e).into());
                    }
                }
            }
        }
        for mut s in plan.update {
            stamp(&mut s);
            let slice = s.metadata.name.clone().unwrap_or_default();
            match api.replace(&slice, &PostParams::default(), &s).await {
                Ok(updated) => self.tracker.wrote(key, &updated.metadata),
                Err(e) => {
                    let what = format!("failed to update {slice} EndpointSlice for Service {ns}/{name}");
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
                    let what = format!("failed to delete {slice} EndpointSlice for Service {ns}/{name}");
                    return Err(rkube_client::Error::api(what, e).into());
                }
            }
        }
        Ok(())
    }
}
