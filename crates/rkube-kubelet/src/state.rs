//! The kubelet's shared state: its clients, the pods the API binds to this node, one worker per pod UID,
//! and what it remembers between syncs (restart and image back-offs, last start failures, probe verdicts).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use rkube_client::events::{EventType, Recorder};
use tokio::sync::{Notify, watch};

use crate::KubeletConfig;
use crate::backoff::{self, Backoff};
use crate::status::Verdicts;

/// What the kubelet remembers between syncs.
pub(crate) struct Memory {
    /// CrashLoopBackOff per `<uid>_<container>_<hash>`.
    pub(crate) crash: Backoff,
    /// Image pull back-off per `<uid>_<image>`.
    pub(crate) pulls: Backoff,
    /// The last pull error per image back-off key.
    pub(crate) pull_errors: HashMap<String, String>,
    /// Per pod UID, per container name: the last start failure (reason, message).
    pub(crate) reasons: HashMap<String, HashMap<String, (String, String)>>,
    /// Probe verdicts per container ID.
    pub(crate) verdicts: HashMap<String, Verdicts>,
    /// Container IDs with probe workers, and their pod UID.
    pub(crate) probing: HashMap<String, String>,
    /// Volume set-up failures in a row per pod UID.
    pub(crate) mount_failures: HashMap<String, u32>,
    /// The status last written per pod UID, with the resourceVersion the write made (the watch may not
    /// have shown it yet).
    pub(crate) written: HashMap<String, (serde_json::Value, u64, std::time::Instant)>,
    /// Pods whose volumes were torn down after they finished.
    pub(crate) finished: HashSet<String>,
}

/// The kubelet.
pub(crate) struct Kubelet {
    /// Its configuration.
    pub(crate) config: KubeletConfig,
    /// The API client.
    pub(crate) client: kube::Client,
    /// The runtime.
    pub(crate) runtime: rkube_cri::Runtime,
    /// Pod volumes.
    pub(crate) volumes: Arc<rkube_volumes::VolumeManager>,
    /// Probe workers.
    pub(crate) probes: rkube_probes::ProbeManager,
    /// Events (component `kubelet`, host = node).
    pub(crate) recorder: Recorder,
    /// The machine's memory and allocatable resources (container configs depend on them).
    pub(crate) node: crate::spec::NodeResources,
    /// Set when the kubelet stops.
    pub(crate) stop: watch::Receiver<bool>,
    /// The pods bound to this node, by UID.
    pods: Mutex<HashMap<String, Pod>>,
    /// One worker per pod UID (pods in the API, or with something left in the runtime).
    workers: Mutex<HashMap<String, Arc<Notify>>>,
    memory: Mutex<Memory>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Kubelet {
    /// A kubelet with nothing known yet.
    pub(crate) fn new(
        config: KubeletConfig,
        client: kube::Client,
        runtime: rkube_cri::Runtime,
        volumes: Arc<rkube_volumes::VolumeManager>,
        probes: rkube_probes::ProbeManager,
        recorder: Recorder,
        stop: watch::Receiver<bool>,
    ) -> Kubelet {
        Kubelet {
            config,
            client,
            runtime,
            volumes,
            probes,
            recorder,
            node: crate::spec::NodeResources::detect(),
            stop,
            pods: Mutex::default(),
            workers: Mutex::default(),
            memory: Mutex::new(Memory {
                crash: Backoff::new(backoff::INITIAL, backoff::MAX),
                pulls: Backoff::new(backoff::INITIAL, backoff::MAX),
                pull_errors: HashMap::new(),
                reasons: HashMap::new(),
                verdicts: HashMap::new(),
                probing: HashMap::new(),
                mount_failures: HashMap::new(),
                written: HashMap::new(),
                finished: HashSet::new(),
            }),
        }
    }

    /// The memory, locked (never held across an await).
    pub(crate) fn memory(&self) -> MutexGuard<'_, Memory> {
        lock(&self.memory)
    }

    /// The pod with this UID, as the API last showed it.
    pub(crate) fn pod(&self, uid: &str) -> Option<Pod> {
        lock(&self.pods).get(uid).cloned()
    }

    /// Records a pod (added or changed) and wakes its worker.
    pub(crate) fn upsert(self: &Arc<Self>, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else { return };
        lock(&self.pods).insert(uid.clone(), pod);
        self.wake(&uid);
    }

    /// Forgets a pod (deleted from the API, or bound elsewhere) and wakes its worker to clean up.
    pub(crate) fn remove(self: &Arc<Self>, uid: &str) {
        lock(&self.pods).remove(uid);
        self.wake(uid);
    }

    /// Replaces the whole set of pods (after a relist), waking every worker concerned.
    pub(crate) fn replace(self: &Arc<Self>, pods: Vec<Pod>) {
        let new: HashMap<String, Pod> =
            pods.into_iter().filter_map(|p| p.metadata.uid.clone().map(|u| (u, p))).collect();
        let mut uids: HashSet<String> = new.keys().cloned().collect();
        {
            let mut current = lock(&self.pods);
            uids.extend(current.keys().cloned());
            *current = new;
        }
        for uid in uids {
            self.wake(&uid);
        }
    }

    /// Wakes the pod's worker, starting one when there is none.
    pub(crate) fn wake(self: &Arc<Self>, uid: &str) {
        let mut workers = lock(&self.workers);
        if let Some(n) = workers.get(uid) {
            n.notify_one();
            return;
        }
        let notify = Arc::new(Notify::new());
        workers.insert(uid.to_owned(), notify.clone());
        tokio::spawn(crate::worker::run(self.clone(), uid.to_owned(), notify));
    }

    /// Ends the pod's worker if the pod is (still) unknown; false when it came back meanwhile.
    pub(crate) fn retire(&self, uid: &str) -> bool {
        let mut workers = lock(&self.workers);
        if lock(&self.pods).contains_key(uid) {
            return false;
        }
        workers.remove(uid);
        let mut m = self.memory();
        m.reasons.remove(uid);
        m.mount_failures.remove(uid);
        m.written.remove(uid);
        m.finished.remove(uid);
        m.crash.forget_prefix(&format!("{uid}_"));
        m.pulls.forget_prefix(&format!("{uid}_"));
        m.pull_errors.retain(|k, _| !k.starts_with(&format!("{uid}_")));
        let ids: Vec<String> = m.probing.iter().filter(|(_, u)| *u == uid).map(|(id, _)| id.clone()).collect();
        for id in ids {
            m.probing.remove(&id);
            m.verdicts.remove(&id);
        }
        true
    }

    /// Records an event about one of the pod's containers (`spec.containers{name}` as its field path).
    pub(crate) async fn container_event(
        &self,
        pod: &Pod,
        container: &str,
        kind: EventType,
        reason: &str,
        message: &str,
    ) {
        let mut r: ObjectReference = rkube_client::events::reference(pod);
        let init = pod
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|i| i.iter().any(|c| c.name == container));
        r.field_path = Some(if init {
            format!("spec.initContainers{{{container}}}")
        } else {
            format!("spec.containers{{{container}}}")
        });
        self.recorder.record_ref(r, kind, reason, message).await;
    }

    /// Records an event about the pod.
    pub(crate) async fn pod_event(&self, pod: &Pod, kind: EventType, reason: &str, message: &str) {
        self.recorder.record(pod, kind, reason, message).await;
    }
}

/// `name_namespace(uid)`, as upstream's `format.Pod` names pods in messages.
pub(crate) fn format_pod(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or("")
    )
}

/// The pod's UID.
pub(crate) fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}
