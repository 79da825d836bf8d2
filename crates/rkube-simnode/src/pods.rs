//! Acting as the kubelet of our nodes for the pods bound to them: one watch on all bound pods
//! (`spec.nodeName!=`), a cache of ours, and a pool of workers that mark pods Running, finish those that
//! run to completion, and delete those being deleted. Writes happen only when the status would change.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher;
use rkube_client::api::{is_conflict, is_not_found};
use rkube_client::lean::Lean;
use rkube_client::queue::WorkQueue;
use rkube_client::{Error, Result};

use crate::admit::{self, Amounts, NodeUsage};
use crate::ipam::PodIpam;
use crate::podstatus;
use crate::shared::Shared;

/// A pod's namespace and name.
type Key = (String, String);

struct Pods {
    shared: Arc<Shared>,
    cache: Mutex<HashMap<Key, Arc<Pod>>>,
    ipam: Mutex<PodIpam>,
    /// Per node: the pods admitted and what they request.
    usage: Mutex<HashMap<String, NodeUsage>>,
    /// Every node's allocatable (they are all alike).
    allocatable: Amounts,
    queue: Arc<WorkQueue<Key>>,
}

impl Pods {
    /// Forgets what pod `pod` held on its node: its addresses and its share of the node's resources.
    fn release(&self, pod: &Pod) {
        let uid = uid_of(pod);
        lock(&self.ipam).release(&uid);
        if let Some(node) = node_of(pod)
            && let Some(u) = lock(&self.usage).get_mut(&node)
        {
            u.release(&uid);
        }
    }
}

fn node_of(pod: &Pod) -> Option<String> {
    pod.spec.as_ref().and_then(|s| s.node_name.clone())
}

fn phase_of(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn key_of(pod: &Pod) -> Key {
    (pod.metadata.namespace.clone().unwrap_or_default(), pod.metadata.name.clone().unwrap_or_default())
}

fn uid_of(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

/// Runs the pod watch and the workers until aborted (workers start once the node watch has listed our nodes,
/// so pods get addresses from the nodes' podCIDRs).
pub(crate) async fn run(shared: Arc<Shared>) {
    let pods = Arc::new(Pods {
        shared: shared.clone(),
        cache: Mutex::new(HashMap::new()),
        ipam: Mutex::new(PodIpam::default()),
        usage: Mutex::new(HashMap::new()),
        allocatable: allocatable(&shared.config),
        queue: WorkQueue::new(Duration::from_millis(50), Duration::from_secs(30)),
    });
    let _ = shared.nodes_synced.subscribe().wait_for(|s| *s).await;
    let workers: Vec<_> = (0..shared.config.pod_workers).map(|_| tokio::spawn(work(pods.clone()))).collect();
    let _abort = AbortOnDrop(workers);
    watch(&pods).await;
}

fn allocatable(config: &crate::config::SimConfig) -> Amounts {
    let q = |s: &str| k8s_openapi::apimachinery::pkg::api::resource::Quantity(s.to_owned());
    let list: std::collections::BTreeMap<String, _> = [
        ("cpu", q(&config.cpu)),
        ("memory", q(&config.memory)),
        ("pods", q(&config.pods)),
        ("ephemeral-storage", q(&config.ephemeral_storage)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    admit::amounts(&list)
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

async fn watch(pods: &Pods) {
    let config = watcher::Config::default().fields("spec.nodeName!=");
    // managedFields are never needed here (a status write keeps the stored ones): without them the cache is
    // smaller and so is every status write's body; they are not even decoded.
    let mut events = rkube_client::lean::watch_all::<Pod>(pods.shared.client.clone(), config).boxed();
    // While (re)listing: the keys seen, queued only once the list is complete so that pods already running
    // are counted against their nodes before any new pod is admitted.
    let mut listed: Option<(HashSet<Key>, Vec<Key>)> = None;
    let ours = |p: &Pod| node_of(p).is_some_and(|n| pods.shared.owned.contains_key(&n));
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(%e, "watching pods bound to nodes");
                continue;
            }
        };
        match event {
            watcher::Event::Init => listed = Some((HashSet::new(), Vec::new())),
            watcher::Event::InitApply(p) | watcher::Event::Apply(p) if ours(&p) => {
                let key = key_of(&p);
                note_started(pods, &p);
                lock(&pods.cache).insert(key.clone(), Arc::new(p));
                match listed.as_mut() {
                    Some((seen, pending)) => {
                        seen.insert(key.clone());
                        pending.push(key);
                    }
                    None => pods.queue.add(key),
                }
            }
            watcher::Event::InitApply(_) | watcher::Event::Apply(_) => {}
            watcher::Event::Delete(p) => {
                let cached = lock(&pods.cache).remove(&key_of(&p));
                if let Some(c) = cached {
                    pods.release(&c);
                }
            }
            watcher::Event::InitDone => {
                let Some((seen, pending)) = listed.take() else { continue };
                // Pods deleted while the watch was down: forget them.
                let gone: Vec<Arc<Pod>> = {
                    let mut cache = lock(&pods.cache);
                    let keys: Vec<Key> = cache.keys().filter(|k| !seen.contains(*k)).cloned().collect();
                    keys.iter().filter_map(|k| cache.remove(k)).collect()
                };
                for p in gone {
                    pods.release(&p);
                }
                for key in pending {
                    pods.queue.add(key);
                }
                pods.shared.pods_synced.send_replace(true);
            }
        }
    }
}

/// Counts a pod that runs on its node already (started by this process, or by an earlier run of it): its
/// share of the node and its addresses, before any new pod is admitted or given an address.
fn note_started(pods: &Pods, pod: &Pod) {
    if phase_of(pod) != "Running" {
        return;
    }
    let (Some(node), Some(spec)) = (node_of(pod), pod.spec.as_ref()) else { return };
    let Some(&index) = pods.shared.owned.get(&node) else { return };
    let uid = uid_of(pod);
    let ips: Vec<IpAddr> =
        pod.status.iter().flat_map(|s| s.pod_ips.iter().flatten()).filter_map(|p| p.ip.parse().ok()).collect();
    if !ips.is_empty() && !spec.host_network.unwrap_or(false) {
        lock(&pods.ipam).reserve(&uid, &pods.shared.pod_cidrs(&node, index), &ips);
    }
    lock(&pods.usage).entry(node).or_default().account(&uid, admit::pod_requests(spec));
}

async fn work(pods: Arc<Pods>) {
    while let Some(key) = pods.queue.get().await {
        match sync(&pods, &key).await {
            Ok(None) => pods.queue.forget(&key),
            Ok(Some(after)) => {
                pods.queue.forget(&key);
                pods.queue.add_after(key.clone(), after);
            }
            Err(e) => {
                tracing::warn!(%e, pod = %format!("{}/{}", key.0, key.1), "syncing pod; retrying");
                pods.queue.add_rate_limited(key.clone());
            }
        }
        pods.queue.done(&key);
    }
}

/// Brings one pod forward; returns when to look at it again (a pod due to finish later).
async fn sync(pods: &Pods, key: &Key) -> Result<Option<Duration>> {
    let Some(pod) = lock(&pods.cache).get(key).cloned() else { return Ok(None) };
    let shared = &pods.shared;
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), &key.0);
    let uid = uid_of(&pod);
    let what = || format!("pod {}/{}", key.0, key.1);
    if pod.metadata.deletion_timestamp.is_some() {
        pods.release(&pod);
        if pod.metadata.deletion_grace_period_seconds == Some(0) && pod.metadata.finalizers.is_some() {
            // Already asked; the pod goes once its finalizers are removed.
            return Ok(None);
        }
        // Containers stopped at once: remove the pod for good, as a kubelet does after they stopped.
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions { uid: Some(uid.clone()), resource_version: None }),
            ..DeleteParams::default()
        };
        let _p = shared.permit().await;
        return match api.delete(&key.1, &dp).await {
            Ok(_) => Ok(None),
            Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(None),
            Err(e) => Err(Error::api(format!("deleting {}", what()), e)),
        };
    }
    let phase = phase_of(&pod);
    if matches!(phase, "Succeeded" | "Failed") {
        pods.release(&pod);
        return Ok(None);
    }
    let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else { return Ok(None) };
    let Some(&index) = shared.owned.get(&node) else { return Ok(None) };
    let now = Timestamp::now();
    let to_completion = podstatus::runs_to_completion(&pod);
    let due = phase == "Running" && to_completion && podstatus::finish_time(&pod).is_some_and(|t| t <= now);
    let admitted = if phase == "Running" {
        Ok(())
    } else {
        let requests = admit::pod_requests(pod.spec.as_ref().unwrap_or(&Default::default()));
        lock(&pods.usage).entry(node.clone()).or_default().admit(&uid, requests, &pods.allocatable)
    };
    let status = if let Err(rejection) = admitted {
        let message = format!("Pod was rejected: {}", rejection.message);
        tracing::info!(pod = %what(), node = %node, reason = %rejection.reason, "{message}");
        let recorder = rkube_client::events::Recorder::new(shared.client.clone(), "kubelet", Some(node.clone()));
        recorder.record(&*pod, rkube_client::events::EventType::Warning, &rejection.reason, &rejection.message).await;
        podstatus::rejected(&pod, &rejection.reason, &rejection.message)
    } else if due {
        pods.release(&pod);
        podstatus::finished(&pod, now)
    } else {
        let host_ip = shared.host_ip(index);
        let ips =
            addresses(pods, &pod, &node, index, &host_ip).map_err(|e| Error::Invalid(format!("{}: {e}", what())))?;
        podstatus::running(&pod, &host_ip, &ips, now)
    };
    let again = |status: &k8s_openapi::api::core::v1::PodStatus| {
        let running = status.phase.as_deref() == Some("Running");
        let mut p = Pod { status: Some(status.clone()), ..Pod::default() };
        p.metadata.annotations = pod.metadata.annotations.clone();
        (running && to_completion)
            .then(|| podstatus::finish_time(&p))
            .flatten()
            .map(|t| Duration::from_millis(t.duration_since(Timestamp::now()).as_millis().max(0) as u64))
    };
    if pod.status.as_ref() == Some(&status) {
        return Ok(again(&status));
    }
    // As a kubelet's status manager writes it: a merge patch of the whole status, guarded by the pod's uid (a
    // pod deleted and created again under the name is not ours to write). Unlike a replace it neither sends
    // the whole pod nor makes the server decode, check and merge one; the answer is read without managedFields.
    let patch = serde_json::json!({"metadata": {"uid": uid}, "status": status});
    let written = {
        let _p = shared.permit().await;
        Api::<Lean<Pod>>::namespaced(shared.client.clone(), &key.0)
            .patch_status(&key.1, &PatchParams::default(), &Patch::Merge(&patch))
            .await
    };
    match written {
        Ok(Lean(w)) => {
            let mut cache = lock(&pods.cache);
            // Our response is newer than the cached pod only if no event arrived since we read it.
            if cache.get(key).is_some_and(|c| c.metadata.resource_version == pod.metadata.resource_version) {
                cache.insert(key.clone(), Arc::new(w));
            }
            Ok(again(&status))
        }
        Err(e) if is_not_found(&e) => Ok(None),
        // The patch carries no resourceVersion, so this is the server giving up on its own retries under
        // concurrent writes: the pod's newer version comes through the watch and queues it again, so waiting out
        // a backoff here would only delay the pod.
        Err(e) if is_conflict(&e) => Ok(None),
        Err(e) => Err(Error::api(format!("writing the status of {}", what()), e)),
    }
}

/// The pod's addresses: the node's for host-network pods; those it has; else new ones from the node's ranges.
fn addresses(pods: &Pods, pod: &Pod, node: &str, index: usize, host_ip: &str) -> Result<Vec<String>, String> {
    if pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false) {
        return Ok(vec![host_ip.to_owned()]);
    }
    let uid = uid_of(pod);
    let cidrs = pods.shared.pod_cidrs(node, index);
    let have: Vec<IpAddr> =
        pod.status.iter().flat_map(|s| s.pod_ips.iter().flatten()).filter_map(|p| p.ip.parse().ok()).collect();
    let mut ipam = lock(&pods.ipam);
    if !have.is_empty() {
        ipam.reserve(&uid, &cidrs, &have);
        return Ok(have.iter().map(IpAddr::to_string).collect());
    }
    Ok(ipam.allocate(&uid, &cidrs)?.iter().map(IpAddr::to_string).collect())
}
