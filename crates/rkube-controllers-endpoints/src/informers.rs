//! The process's shared informers as the three controllers see them: which kinds they read (`Caches`) and
//! which controller is told of which change (`watch`). The caches themselves are rkube-client's, shared
//! with every other controller of the process.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use rkube_client::informer::{Informer, SharedInformers};

use crate::batch::Batched;
use crate::model;
use crate::trackers::{Key, key_of};
use crate::{endpoints, mirroring, slices};

pub(crate) use rkube_client::informer::Change;

/// The informer caches the controllers read.
pub(crate) struct Caches {
    pub(crate) services: Informer<Service>,
    pub(crate) pods: Informer<Pod>,
    pub(crate) nodes: Informer<Node>,
    pub(crate) endpoints: Informer<Endpoints>,
    pub(crate) slices: Informer<EndpointSlice>,
}

impl Caches {
    /// The shared informers of every kind the controllers read (started if they were not running).
    pub(crate) fn new(informers: &SharedInformers) -> Self {
        Caches {
            services: informers.get(),
            pods: informers.get(),
            nodes: informers.get(),
            endpoints: informers.get(),
            slices: informers.get(),
        }
    }

    /// Resolves once every cache holds its first complete list.
    pub(crate) async fn synced(&self) {
        tokio::join!(
            self.services.wait_synced(),
            self.pods.wait_synced(),
            self.nodes.wait_synced(),
            self.endpoints.wait_synced(),
            self.slices.wait_synced()
        );
    }

    /// The services (as keys) a pod going from `old` to `new` concerns.
    /// Queues a changed service (every service after a relist) at once: the handler both the Endpoints and
    /// the EndpointSlice controllers use.
    pub(crate) fn queue_service(&self, queue: &Batched<Key>, c: &Change<'_, Service>) {
        match c {
            Change::Object { old, new } => {
                if let Some(svc) = new.or(*old) {
                    queue.queue().add(key_of(&svc.metadata));
                }
            }
            Change::Relisted => {
                for svc in self.services.list() {
                    queue.queue().add(key_of(&svc.metadata));
                }
            }
        }
    }

    /// Queues, at the end of the batch period, the services a changed pod concerns.
    pub(crate) fn queue_pod_services(&self, queue: &Batched<Key>, c: &Change<'_, Pod>) {
        if let Change::Object { old, new } = c {
            for key in self.services_for_pod(*old, *new) {
                queue.add_batched(key);
            }
        }
    }

    pub(crate) fn services_for_pod(&self, old: Option<&Pod>, new: Option<&Pod>) -> BTreeSet<Key> {
        let Some(ns) = new.or(old).and_then(|p| p.metadata.namespace.clone()) else { return BTreeSet::new() };
        let services = self.services.list_namespace(&ns);
        let names = model::services_to_update(services.iter().map(|s| s.as_ref()), old, new);
        names.into_iter().map(|n| (ns.clone(), n)).collect()
    }
}

/// Tells each controller of the changes of the kinds it watches. Handlers stay registered as long as the
/// informers run.
pub(crate) fn watch(
    caches: &Caches,
    eps: &Arc<endpoints::Controller>,
    sls: &Arc<slices::Controller>,
    mir: &Arc<mirroring::Controller>,
) {
    let (e, s, m) = (eps.clone(), sls.clone(), mir.clone());
    caches.services.on_change(move |c| {
        e.on_service(&c);
        s.on_service(&c);
        m.on_service(&c);
    });
    let (e, s) = (eps.clone(), sls.clone());
    caches.pods.on_change(move |c| {
        e.on_pod(&c);
        s.on_pod(&c);
    });
    let s = sls.clone();
    caches.nodes.on_change(move |c| s.on_node(&c));
    let (e, m) = (eps.clone(), mir.clone());
    caches.endpoints.on_change(move |c| {
        e.on_endpoints(&c);
        m.on_endpoints(&c);
    });
    let (s, m) = (sls.clone(), mir.clone());
    caches.slices.on_change(move |c| {
        s.on_slice(&c);
        m.on_slice(&c);
    });
}
