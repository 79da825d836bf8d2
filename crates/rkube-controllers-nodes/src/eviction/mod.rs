//! Taint-based eviction, as upstream's `pkg/controller/tainteviction` (the NoExecute taint manager):
//! pods bound to a node with NoExecute taints they do not tolerate are deleted at once; pods tolerating
//! them for `tolerationSeconds` are deleted when that time has passed (see [`tolerations`]); pods
//! tolerating them forever stay. Timers are cancelled when the taints go or the pod changes. Before the
//! delete the pod gets the `DisruptionTarget` condition (reason `DeletionByTaintManager`), and the event
//! `TaintManagerEviction` says `Marking for deletion Pod ns/name`.

mod tolerations;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use rkube_client::api::is_not_found;
use rkube_client::events::{EventType, Recorder};
use rkube_client::informer::{Change, Informer, SharedInformers};
use rkube_client::{Error, Result};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use tolerations::{Tainted, Verdict};

/// Upstream's event source (the controller's name in kube-controller-manager).
const COMPONENT: &str = "taint-eviction-controller";
/// Attempts at the condition-and-delete of one pod (upstream's `retries`).
const RETRIES: usize = 5;

type PodKey = (String, String);

struct Work {
    id: u64,
    at: Timestamp,
    handle: AbortHandle,
}

struct Eviction {
    client: Client,
    recorder: Recorder,
    pods: Informer<Pod>,
    /// Each tainted node's NoExecute taints, with when each counts as added.
    tainted: HashMap<String, Vec<Tainted>>,
    /// What we last acted on for each pod: its node and tolerations.
    seen: HashMap<PodKey, (String, Vec<Toleration>)>,
    work: Arc<Mutex<HashMap<PodKey, Work>>>,
    next_id: u64,
}

/// A node or pod change, as the informers' handlers pass it on: the handlers may not wait, and the
/// controller's state is changed (and events are recorded) in order by one loop.
enum Seen<K> {
    Changed(K),
    Deleted(K),
}

/// Passes the changes of `informer` on to `tx`, keyed by `key`; relists report their differences as
/// changes, so there is nothing more to do then.
fn forward<T, K>(informer: &Informer<T>, tx: mpsc::UnboundedSender<Seen<K>>, key: fn(&T) -> K)
where
    T: kube::Resource + Send + Sync + 'static,
    K: Send + 'static,
{
    informer.on_change(move |c| {
        let seen = match c {
            Change::Object { new: Some(o), .. } => Seen::Changed(key(o)),
            Change::Object { old: Some(o), new: None } => Seen::Deleted(key(o)),
            Change::Object { old: None, new: None } | Change::Relisted => return,
        };
        let _ = tx.send(seen);
    });
}

fn pod_key(p: &Pod) -> PodKey {
    (p.namespace().unwrap_or_default(), p.name_any())
}

/// Runs the controller on the shared informers until `stop` is set.
pub(crate) async fn run(informers: SharedInformers, stop: watch::Receiver<bool>) -> Result<()> {
    let client = informers.client().clone();
    let (nodes, pods) = (informers.get::<Node>(), informers.get::<Pod>());
    let (node_tx, mut node_events) = mpsc::unbounded_channel();
    let (pod_tx, mut pod_events) = mpsc::unbounded_channel();
    forward(&nodes, node_tx, |n: &Node| n.name_any());
    forward(&pods, pod_tx, pod_key);
    let mut ev = Eviction {
        recorder: Recorder::new(client.clone(), COMPONENT, None),
        client,
        pods,
        tainted: HashMap::new(),
        seen: HashMap::new(),
        work: Arc::new(Mutex::new(HashMap::new())),
        next_id: 0,
    };
    let work = ev.work.clone();
    let events = async move {
        loop {
            // Node changes first, as upstream prioritises them: they decide what pod changes mean. A change
            // is read from the cache when its turn comes: an object gone meanwhile has its deletion queued.
            tokio::select! {
                biased;
                Some(e) = node_events.recv() => match e {
                    Seen::Changed(name) => {
                        if let Some(n) = nodes.get("", &name) {
                            Box::pin(ev.node_changed(&n)).await
                        }
                    }
                    Seen::Deleted(name) => { ev.tainted.remove(&name); }
                },
                Some(e) = pod_events.recv() => match e {
                    Seen::Changed(key) => {
                        if let Some(p) = ev.pods.get(&key.0, &key.1) {
                            Box::pin(ev.pod_changed(&p)).await
                        }
                    }
                    Seen::Deleted(key) => ev.pod_gone(key).await,
                },
                else => break,
            }
        }
    };
    let result = rkube_client::until_stopped("taint eviction controller", Box::pin(events), stop).await;
    for (_, w) in work.lock().unwrap_or_else(|p| p.into_inner()).drain() {
        w.handle.abort();
    }
    result
}

fn no_execute(node: &Node) -> Vec<k8s_openapi::api::core::v1::Taint> {
    let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    taints.into_iter().filter(|t| t.effect == "NoExecute").collect()
}

fn pod_event(recorder: &Recorder, key: &PodKey, message: String) -> impl std::future::Future<Output = ()> + use<> {
    let regarding = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(key.1.clone()),
        namespace: Some(key.0.clone()),
        ..ObjectReference::default()
    };
    let recorder = recorder.clone();
    async move { recorder.record_ref(regarding, EventType::Normal, "TaintManagerEviction", &message).await }
}

impl Eviction {
    async fn node_changed(&mut self, node: &Node) {
        let name = node.name_any();
        let now = Timestamp::now();
        let previous = self.tainted.get(&name);
        let taints: Vec<Tainted> = no_execute(node)
            .into_iter()
            .map(|t| {
                let seen = previous.and_then(|p| p.iter().find(|o| o.taint == t)).map(|o| o.since);
                Tainted { since: tolerations::since(&t, seen, now), taint: t }
            })
            .collect();
        if previous.map_or(taints.is_empty(), |p| *p == taints) {
            return;
        }
        if taints.is_empty() {
            self.tainted.remove(&name);
        } else {
            self.tainted.insert(name.clone(), taints);
        }
        let on_node = self.pods.list().into_iter();
        for pod in on_node.filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name.as_str())) {
            self.process(&pod).await;
        }
    }

    async fn pod_changed(&mut self, pod: &Pod) {
        let key = (pod.namespace().unwrap_or_default(), pod.name_any());
        let spec = pod.spec.as_ref();
        let node = spec.and_then(|s| s.node_name.clone()).unwrap_or_default();
        let tols = spec.and_then(|s| s.tolerations.clone()).unwrap_or_default();
        // Only a new node or new tolerations change the verdict (as upstream's PodUpdated).
        if self.seen.get(&key).is_some_and(|(n, t)| *n == node && *t == tols) {
            return;
        }
        self.process(pod).await;
    }

    async fn pod_gone(&mut self, key: PodKey) {
        self.seen.remove(&key);
        self.cancel(&key).await;
    }

    /// Upstream's `processPodOnNode`.
    async fn process(&mut self, pod: &Pod) {
        let key = (pod.namespace().unwrap_or_default(), pod.name_any());
        let spec = pod.spec.as_ref();
        let node = spec.and_then(|s| s.node_name.clone()).unwrap_or_default();
        let tols = spec.and_then(|s| s.tolerations.clone()).unwrap_or_default();
        self.seen.insert(key.clone(), (node.clone(), tols.clone()));
        if node.is_empty() || pod.metadata.deletion_timestamp.is_some() {
            return;
        }
        let verdict = self.tainted.get(&node).map_or(Verdict::Never, |t| tolerations::verdict(t, &tols));
        let now = Timestamp::now();
        match verdict {
            Verdict::Never => self.cancel(&key).await,
            Verdict::Now => {
                let due = self.scheduled_at(&key).is_some_and(|at| at <= now);
                if !due {
                    self.cancel(&key).await;
                    tracing::info!(pod = %format!("{}/{}", key.0, key.1), node = %node, "NoExecute taint not tolerated");
                    self.schedule(key, now);
                }
            }
            Verdict::At(at) => {
                if self.scheduled_at(&key) != Some(at) {
                    self.cancel(&key).await;
                    self.schedule(key, at);
                }
            }
        }
    }

    fn scheduled_at(&self, key: &PodKey) -> Option<Timestamp> {
        self.work.lock().unwrap_or_else(|p| p.into_inner()).get(key).map(|w| w.at)
    }

    /// Cancels a pending deletion, with upstream's event when there was one.
    async fn cancel(&mut self, key: &PodKey) {
        let removed = self.work.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        if let Some(w) = removed {
            w.handle.abort();
            tracing::info!(pod = %format!("{}/{}", key.0, key.1), "cancelled taint eviction");
            pod_event(&self.recorder, key, format!("Cancelling deletion of Pod {}/{}", key.0, key.1)).await;
        }
    }

    fn schedule(&mut self, key: PodKey, at: Timestamp) {
        self.next_id += 1;
        let id = self.next_id;
        let delay = Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or_default();
        let (client, recorder, work, k) = (self.client.clone(), self.recorder.clone(), self.work.clone(), key.clone());
        let mut map = self.work.lock().unwrap_or_else(|p| p.into_inner());
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            {
                let mut map = work.lock().unwrap_or_else(|p| p.into_inner());
                if map.get(&k).map(|w| w.id) != Some(id) {
                    return;
                }
                map.remove(&k);
            }
            tracing::info!(pod = %format!("{}/{}", k.0, k.1), "deleting pod (NoExecute taint)");
            pod_event(&recorder, &k, format!("Marking for deletion Pod {}/{}", k.0, k.1)).await;
            let mut last = None;
            for _ in 0..RETRIES {
                match condition_and_delete(&client, &k).await {
                    Ok(()) => return,
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if let Some(e) = last {
                tracing::warn!(pod = %format!("{}/{}", k.0, k.1), error = %e, "taint eviction failed");
            }
        });
        map.insert(key, Work { id, at, handle: task.abort_handle() });
    }
}

/// Upstream's `addConditionAndDeletePod`.
async fn condition_and_delete(client: &Client, key: &PodKey) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &key.0);
    let what = || format!("pod {}/{}", key.0, key.1);
    let pod = match api.get(&key.1).await {
        Ok(p) => p,
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(Error::api(format!("getting {}", what()), e)),
    };
    let has = pod.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| {
        c.iter().any(|c| {
            c.type_ == "DisruptionTarget" && c.status == "True" && c.reason.as_deref() == Some("DeletionByTaintManager")
        })
    });
    if !has {
        let patch = json!({"status": {"conditions": [{
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": Time(Timestamp::now()),
        }]}});
        match api.patch_status(&key.1, &PatchParams::default(), &Patch::Strategic(&patch)).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(Error::api(format!("adding the DisruptionTarget condition to {}", what()), e)),
        }
    }
    match api.delete(&key.1, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::api(format!("deleting {}", what()), e)),
    }
}
