//! The Endpoints controller: for every Service with a selector, an Endpoints object of the same name
//! holding its pods' addresses, written only when it changed; deleted with its Service. Services without
//! a selector (and the API server's own `default/kubernetes`) are left to whoever writes their Endpoints.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use rkube_client::api::{is_already_exists, is_namespace_terminating, is_not_found};
use rkube_client::events::{EventType, Recorder};

use crate::batch::Batched;
use crate::error::{SyncError, SyncResult};
use crate::informers::{Caches, Change};
use crate::model::{self, HEADLESS_LABEL, TRIGGER_TIME_ANNOTATION};
use crate::subsets::{self, OVER_CAPACITY_ANNOTATION, TRUNCATED};
use crate::trackers::{Key, TriggerTimes, format_time, key_of};

/// Upstream's leader-election record annotation: such Endpoints are locks, not service endpoints.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

/// The Endpoints controller's state.
pub(crate) struct Controller {
    client: Client,
    caches: Arc<Caches>,
    pub(crate) queue: Batched<Key>,
    triggers: TriggerTimes,
    /// resourceVersions this controller replaced: seeing one in the cache means the cache is behind.
    replaced: Mutex<HashMap<Key, String>>,
    recorder: Recorder,
}

impl Controller {
    pub(crate) fn new(client: Client, caches: Arc<Caches>, queue: Batched<Key>) -> Self {
        let recorder = Recorder::new(client.clone(), "endpoint-controller", None);
        Controller { client, caches, queue, triggers: TriggerTimes::default(), replaced: Mutex::default(), recorder }
    }

    /// A service changed: sync it now. After a relist, every service is synced again.
    pub(crate) fn on_service(&self, c: &Change<'_, Service>) {
        self.caches.queue_service(&self.queue, c);
    }

    /// A pod changed: sync the services it concerns at the end of the batch period.
    pub(crate) fn on_pod(&self, c: &Change<'_, Pod>) {
        self.caches.queue_pod_services(&self.queue, c);
    }

    /// Someone deleted an Endpoints object: put it back if its service wants one.
    pub(crate) fn on_endpoints(&self, c: &Change<'_, Endpoints>) {
        if let Change::Object { old: Some(ep), new: None } = c {
            self.queue.queue().add(key_of(&ep.metadata));
        }
    }

    /// Queues every Endpoints object once at start, so those left without a service are deleted.
    pub(crate) fn check_leftovers(&self) {
        for ep in self.caches.endpoints.list() {
            if !ep.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(LEADER_ANNOTATION)) {
                self.queue.queue().add(key_of(&ep.metadata));
            }
        }
    }

    /// Makes the Endpoints of service `key` right.
    pub(crate) async fn sync(&self, key: &Key) -> SyncResult {
        let (ns, name) = key;
        if ns == "default" && name == "kubernetes" {
            return Ok(()); // the API server's own
        }
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
        let Some(svc) = self.caches.services.get(ns, name) else {
            if self.caches.endpoints.get(ns, name).is_some() {
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(rkube_client::Error::api(format!("deleting endpoints {ns}/{name}"), e).into()),
                }
            }
            self.triggers.delete(key);
            self.lock().remove(key);
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
        let trigger = self.triggers.compute(&svc, pods.iter().map(|p| p.as_ref()));
        let mut desired = subsets::desired_subsets(&svc, pods.iter().map(|p| p.as_ref()));
        let truncated = subsets::truncate(&mut desired);

        let current = self.caches.endpoints.get(ns, name);
        if let Some(cur) = &current
            && self.lock().get(key) == cur.metadata.resource_version.as_ref()
        {
            return Err(SyncError::Stale("endpoints", ns.clone(), name.clone()));
        }
        let svc_labels = svc.metadata.labels.clone().unwrap_or_default();
        if let Some(cur) = &current {
            let mut labels = cur.metadata.labels.clone().unwrap_or_default();
            labels.remove(HEADLESS_LABEL);
            let annotations = cur.metadata.annotations.clone().unwrap_or_default();
            let capacity_ok =
                annotations.get(OVER_CAPACITY_ANNOTATION).map(String::as_str) == truncated.then_some(TRUNCATED);
            if subsets::subsets_equal(cur.subsets.as_deref().unwrap_or(&[]), &desired)
                && labels == svc_labels
                && capacity_ok
            {
                return Ok(());
            }
        }

        let mut ep = current.as_deref().cloned().unwrap_or_else(|| Endpoints {
            metadata: ObjectMeta { name: Some(name.clone()), namespace: Some(ns.clone()), ..ObjectMeta::default() },
            subsets: None,
        });
        ep.subsets = (!desired.is_empty()).then_some(desired);
        let mut labels: BTreeMap<String, String> = svc_labels;
        if model::is_service_ip_set(&svc) {
            labels.remove(HEADLESS_LABEL);
        } else {
            labels.insert(HEADLESS_LABEL.into(), String::new());
        }
        ep.metadata.labels = Some(labels);
        let mut annotations = ep.metadata.annotations.take().unwrap_or_default();
        match trigger {
            Some(t) => annotations.insert(TRIGGER_TIME_ANNOTATION.into(), format_time(t)),
            None => annotations.remove(TRIGGER_TIME_ANNOTATION),
        };
        if truncated {
            annotations.insert(OVER_CAPACITY_ANNOTATION.into(), TRUNCATED.into());
        } else {
            annotations.remove(OVER_CAPACITY_ANNOTATION);
        }
        ep.metadata.annotations = (!annotations.is_empty()).then_some(annotations);

        let result = match &current {
            None => api.create(&PostParams::default(), &ep).await,
            Some(_) => api.replace(name, &PostParams::default(), &ep).await,
        };
        match result {
            Ok(written) => {
                if let Some(cur) = &current
                    && written.metadata.resource_version != cur.metadata.resource_version
                    && let Some(old) = cur.metadata.resource_version.clone()
                {
                    self.lock().insert(key.clone(), old);
                }
                Ok(())
            }
            Err(e) if current.is_none() && is_namespace_terminating(&e) => Ok(()),
            // Created by an earlier sync the cache has not caught up with yet.
            Err(e) if current.is_none() && is_already_exists(&e) => {
                Err(SyncError::Stale("endpoints", ns.clone(), name.clone()))
            }
            Err(e) => {
                let (reason, message) = match current {
                    None => {
                        ("FailedToCreateEndpoint", format!("Failed to create endpoint for service {ns}/{name}: {e}"))
                    }
                    Some(_) => ("FailedToUpdateEndpoint", format!("Failed to update endpoint {ns}/{name}: {e}")),
                };
                self.recorder.record(&ep, EventType::Warning, reason, &message).await;
                let what = if reason == "FailedToCreateEndpoint" { "creating" } else { "updating" };
                Err(rkube_client::Error::api(format!("{what} endpoints {ns}/{name}"), e).into())
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, String>> {
        self.replaced.lock().unwrap_or_else(|p| p.into_inner())
    }
}
