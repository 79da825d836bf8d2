//! The probe manager: the workers of each running container instance, started by `add_container` and
//! aborted by `remove_container`/`remove_pod` (or when the manager is dropped).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::exec::Executor;
use crate::prober::{Events, Probed};
use crate::worker::Worker;
use crate::{ProbeKind, ProbeManager, ProbeUpdate};

/// Verdict changes waiting for the kubelet (upstream's results channel holds 20; workers wait when it is full).
const UPDATES_BUFFER: usize = 256;

/// The workers of one container instance.
pub(crate) struct Entry {
    pod_uid: String,
    tasks: Vec<JoinHandle<()>>,
}

pub(crate) type Workers = Arc<Mutex<HashMap<String, Entry>>>;

/// The container `name` of `pod` and its events' field path (probes exist on app and sidecar containers).
pub(crate) fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<(&'a Container, String)> {
    let spec = pod.spec.as_ref()?;
    if let Some(c) = spec.containers.iter().find(|c| c.name == name) {
        return Some((c, format!("spec.containers{{{name}}}")));
    }
    if let Some(c) = spec.init_containers.iter().flatten().find(|c| c.name == name) {
        return Some((c, format!("spec.initContainers{{{name}}}")));
    }
    None
}

/// The pod's IP as probes use it: the runtime's answer, else the pod's status (host IP for hostNetwork).
pub(crate) fn pod_ip(pod: &Pod, known: Option<IpAddr>) -> String {
    if let Some(ip) = known {
        return ip.to_string();
    }
    let status = pod.status.as_ref();
    let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
    status
        .and_then(|s| s.pod_ip.clone())
        .or_else(|| status.and_then(|s| s.host_ip.clone()).filter(|_| host_network))
        .unwrap_or_default()
}

/// When the container instance started, from the pod's status (a restarted kubelet keeps counting from
/// the real start); now when the status does not say.
fn started_at(pod: &Pod, name: &str, container_id: &str) -> Instant {
    let status = pod.status.as_ref();
    let statuses = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .chain(status.and_then(|s| s.init_container_statuses.as_ref()))
        .flatten();
    let started = statuses
        .filter(|s| s.name == name && s.container_id.as_deref().is_some_and(|id| id.ends_with(container_id)))
        .find_map(|s| s.state.as_ref()?.running.as_ref()?.started_at.clone());
    let now = Instant::now();
    let Some(started) = started else { return now };
    let ago = k8s_openapi::jiff::Timestamp::now().duration_since(started.0);
    match std::time::Duration::try_from(ago) {
        Ok(ago) => now.checked_sub(ago).unwrap_or(now),
        Err(_) => now,
    }
}

impl ProbeManager {
    /// A manager whose events go to `events`.
    pub(crate) fn with_events(events: Events) -> (ProbeManager, mpsc::Receiver<ProbeUpdate>) {
        let (tx, rx) = mpsc::channel(UPDATES_BUFFER);
        (ProbeManager { updates: tx, events, workers: Arc::default() }, rx)
    }

    /// Starts the workers of container `name` (instance `container_id`) of `pod`.
    pub(crate) fn start(&self, pod: &Pod, pod_ip: Option<IpAddr>, name: &str, container_id: &str, exec: Executor) {
        let Some((container, field_path)) = find_container(pod, name) else {
            tracing::debug!(container = name, "probe manager: no such container in the pod spec");
            return;
        };
        let probes = [
            (ProbeKind::Startup, &container.startup_probe),
            (ProbeKind::Liveness, &container.liveness_probe),
            (ProbeKind::Readiness, &container.readiness_probe),
        ];
        if probes.iter().all(|(_, p)| p.is_none()) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("probe manager used outside a tokio runtime; no probes run");
            return;
        };
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        if workers.contains_key(container_id) {
            return;
        }
        let probed = Arc::new(Probed {
            pod: Arc::new(pod.clone()),
            container: container.clone(),
            container_id: container_id.to_owned(),
            pod_ip: self::pod_ip(pod, pod_ip),
            exec,
            field_path,
        });
        let has_startup = container.startup_probe.is_some();
        let (signal, started) = watch::channel(!has_startup);
        let started_at = started_at(pod, name, container_id);
        let mut signal = Some(signal);
        let tasks = probes
            .into_iter()
            .filter_map(|(kind, spec)| Some((kind, spec.clone()?)))
            .map(|(kind, spec)| {
                let worker = Worker {
                    kind,
                    spec,
                    probed: probed.clone(),
                    events: self.events.clone(),
                    updates: self.updates.clone(),
                    started_at,
                    started: started.clone(),
                    signal_started: if kind == ProbeKind::Startup { signal.take() } else { None },
                };
                runtime.spawn(worker.run())
            })
            .collect();
        let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
        workers.insert(container_id.to_owned(), Entry { pod_uid, tasks });
    }

    /// Aborts the workers of the entries `pick` selects.
    pub(crate) fn stop(&self, pick: impl Fn(&str, &Entry) -> bool) {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.retain(|id, entry| {
            if pick(id, entry) {
                entry.tasks.iter().for_each(JoinHandle::abort);
                false
            } else {
                true
            }
        });
    }

    /// Whether `pod_uid` owns the entry.
    pub(crate) fn owned_by(entry: &Entry, pod_uid: &str) -> bool {
        entry.pod_uid == pod_uid
    }
}

impl Drop for ProbeManager {
    fn drop(&mut self) {
        self.stop(|_, _| true);
    }
}
