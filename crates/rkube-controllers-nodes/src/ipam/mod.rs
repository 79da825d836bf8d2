//! Node IPAM, as upstream's range allocator (`pkg/controller/nodeipam/ipam/range_allocator.go`): every node
//! gets `spec.podCIDR`/`spec.podCIDRs` cut from `--cluster-cidr` in `--node-cidr-mask-size` blocks.
//!
//! Ranges already on nodes are counted as used when the node list is complete, before anything is
//! allocated (after every relist the set is rebuilt from what the nodes carry). A deleted node's range goes
//! back to the pool and nodes left without one (pool exhausted, event `CIDRNotAvailable`) are retried
//! then. The write is a merge patch of `spec.podCIDR(s)` guarded by the `resourceVersion` of a node seen
//! without a range, so a range is never written over one set meanwhile. IPv4 only.

mod cidrset;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use rkube_client::events::{EventType, Recorder};
use rkube_client::informer::{Change, Informer, SharedInformers};
use rkube_client::queue::WorkQueue;
use rkube_client::{Error, Result};
use serde_json::json;
use tokio::sync::{Mutex, mpsc, watch};

use cidrset::{CidrSet, Ipv4Cidr};

/// Upstream's event source for the range allocator.
const COMPONENT: &str = "cidrAllocator";
/// Conflicting writes retried before the node goes back to the queue.
const PATCH_RETRIES: usize = 5;

/// What the allocator knows: the set and which node holds which block.
struct State {
    cluster: Ipv4Cidr,
    node_prefix: u8,
    set: CidrSet,
    /// The range each node holds (seen on it, or written by us).
    held: HashMap<String, Ipv4Cidr>,
    /// Nodes left without a range because the pool was exhausted; retried when a range is released.
    waiting: HashSet<String>,
    synced: bool,
}

impl State {
    /// Counts `node`'s ranges as used (parse failures and foreign ranges are logged: they are not ours).
    fn occupy(&mut self, node: &Node) {
        let name = node.name_any();
        let Some(cidr) = pod_cidrs(node).first().copied() else { return };
        match Ipv4Cidr::parse(cidr) {
            Ok(c) => {
                if self.held.get(&name) == Some(&c) {
                    return;
                }
                if let Some(old) = self.held.remove(&name) {
                    let _ = self.set.release(old);
                }
                match self.set.occupy(c) {
                    Ok(()) => {
                        self.held.insert(name.clone(), c);
                    }
                    Err(e) => tracing::warn!(node = %name, error = %e, "node range not counted"),
                }
                self.waiting.remove(&name);
            }
            Err(e) => tracing::warn!(node = %name, error = %e, "node range not counted"),
        }
    }

    fn release(&mut self, name: &str) -> bool {
        self.waiting.remove(name);
        match self.held.remove(name) {
            Some(c) => {
                let _ = self.set.release(c);
                tracing::info!(node = name, cidr = %c, "released node pod range");
                true
            }
            None => false,
        }
    }
}

fn pod_cidrs(node: &Node) -> Vec<&str> {
    let spec = node.spec.as_ref();
    let list: Vec<&str> =
        spec.and_then(|s| s.pod_cidrs.as_ref()).map(|l| l.iter().map(String::as_str).collect()).unwrap_or_default();
    if !list.is_empty() {
        return list;
    }
    spec.and_then(|s| s.pod_cidr.as_deref()).filter(|c| !c.is_empty()).into_iter().collect()
}

/// Runs the allocator until `stop` is set. A cluster CIDR it cannot use (IPv6, bad mask) turns IPAM off
/// with an error in the log rather than stopping the controller manager.
pub(crate) async fn run(
    informers: SharedInformers,
    cluster_cidr: &str,
    mask: u8,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    let set = Ipv4Cidr::parse(cluster_cidr).and_then(|c| CidrSet::new(c, mask).map(|s| (c, s)));
    let (cluster, set) = match set {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(cluster_cidr, mask, error = %e, "node IPAM disabled");
            let mut stop = stop;
            rkube_client::stopped(&mut stop).await;
            return Ok(());
        }
    };
    tracing::info!(cluster_cidr = %cluster, mask, ranges = set.capacity(), "node IPAM (range allocator) starting");
    let state = Arc::new(Mutex::new(State {
        cluster,
        node_prefix: mask,
        set,
        held: HashMap::new(),
        waiting: HashSet::new(),
        synced: false,
    }));
    let queue = WorkQueue::<String>::new(Duration::from_millis(200), Duration::from_secs(60));
    let client = informers.client().clone();
    let nodes = informers.get::<Node>();
    let api: Api<Node> = Api::all(client.clone());
    // The state is updated under an async lock (held across writes), which a handler may not wait for: it
    // only passes names on, in order, to the loop below.
    let (tx, mut rx) = mpsc::unbounded_channel();
    nodes.on_change(move |c| {
        let seen = match c {
            Change::Object { new: Some(n), .. } => Seen::Changed(n.name_any()),
            Change::Object { old: Some(n), new: None } => Seen::Deleted(n.name_any()),
            Change::Object { old: None, new: None } => return,
            Change::Relisted => Seen::Relisted,
        };
        let _ = tx.send(seen);
    });
    let recorder = Recorder::new(client, COMPONENT, None);
    let watch_loop = {
        let (state, queue, nodes) = (state.clone(), queue.clone(), nodes.clone());
        async move {
            while let Some(seen) = rx.recv().await {
                handle(&state, &queue, &nodes, seen).await;
            }
        }
    };
    let worker = {
        let queue = queue.clone();
        async move {
            while let Some(name) = queue.get().await {
                match Box::pin(allocate(&api, &state, &nodes, &recorder, &name)).await {
                    Ok(()) => queue.forget(&name),
                    Err(e) => {
                        tracing::warn!(node = %name, error = %e, "assigning the node's pod range");
                        queue.add_rate_limited(name.clone());
                    }
                }
                queue.done(&name);
            }
        }
    };
    let result = rkube_client::until_stopped(
        "node IPAM",
        async {
            tokio::join!(watch_loop, worker);
        },
        stop,
    )
    .await;
    queue.shutdown();
    result
}

/// A node change, as the informer's handler passes it on.
enum Seen {
    Changed(String),
    Deleted(String),
    /// The node list is complete (again).
    Relisted,
}

async fn handle(state: &Mutex<State>, queue: &Arc<WorkQueue<String>>, nodes: &Informer<Node>, seen: Seen) {
    match seen {
        Seen::Relisted => {
            // The complete list: rebuild what is used from the nodes themselves, then allocate.
            let nodes = nodes.list();
            let mut s = state.lock().await;
            let Ok(set) = CidrSet::new(s.cluster, s.node_prefix) else { return };
            s.set = set;
            s.held.clear();
            s.waiting.retain(|n| nodes.iter().any(|node| node.name_any() == *n));
            for node in &nodes {
                s.occupy(node);
            }
            s.synced = true;
            tracing::info!(nodes = nodes.len(), used = s.set.in_use(), "node IPAM synced");
            drop(s);
            for node in nodes.iter().filter(|n| pod_cidrs(n).is_empty()) {
                queue.add(node.name_any());
            }
        }
        Seen::Changed(name) => {
            let mut s = state.lock().await;
            // Before the first complete list, the relist above does it all.
            if !s.synced {
                return;
            }
            // Gone since: its deletion follows.
            let Some(node) = nodes.get("", &name) else { return };
            if pod_cidrs(&node).is_empty() {
                drop(s);
                queue.add(name);
            } else {
                s.occupy(&node);
            }
        }
        Seen::Deleted(name) => {
            let mut s = state.lock().await;
            if s.release(&name) {
                let waiting: Vec<String> = s.waiting.iter().cloned().collect();
                drop(s);
                for name in waiting {
                    queue.add(name);
                }
            }
        }
    }
}

/// Gives `name` a range if it has none. The state stays locked across the write so that a relist cannot
/// rebuild the set under an allocation in flight.
async fn allocate(
    api: &Api<Node>,
    state: &Mutex<State>,
    nodes: &Informer<Node>,
    recorder: &Recorder,
    name: &str,
) -> Result<()> {
    let mut s = state.lock().await;
    let Some(mut node) = nodes.get("", name).map(|n| (*n).clone()) else { return Ok(()) };
    if !pod_cidrs(&node).is_empty() {
        s.occupy(&node);
        return Ok(());
    }
    let cidr = match s.held.get(name) {
        Some(c) => *c,
        None => match s.set.allocate_next() {
            Ok(c) => {
                s.held.insert(name.to_owned(), c);
                c
            }
            Err(e) => {
                // Told once per node; it is retried when a range is released.
                if s.waiting.insert(name.to_owned()) {
                    tracing::warn!(node = name, error = %e, "no pod range left for node");
                    let msg = format!("Node {name} status is now: CIDRNotAvailable");
                    recorder.record(&node, EventType::Normal, "CIDRNotAvailable", &msg).await;
                }
                return Ok(());
            }
        },
    };
    for attempt in 0..PATCH_RETRIES {
        if attempt > 0 {
            node = match api.get(name).await {
                Ok(n) => n,
                Err(e) if rkube_client::api::is_not_found(&e) => {
                    s.release(name);
                    return Ok(());
                }
                Err(e) => return Err(Error::api(format!("getting node {name}"), e)),
            };
            if !pod_cidrs(&node).is_empty() {
                // Someone else set it (or our earlier write went through): theirs counts.
                s.occupy(&node);
                return Ok(());
            }
        }
        let patch = json!({
            "metadata": {"resourceVersion": node.resource_version()},
            "spec": {"podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()]},
        });
        match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {
                tracing::info!(node = name, cidr = %cidr, "set node pod range");
                s.waiting.remove(name);
                return Ok(());
            }
            Err(e) if rkube_client::api::is_conflict(&e) => continue,
            Err(e) if rkube_client::api::is_not_found(&e) => {
                s.release(name);
                return Ok(());
            }
            Err(e) => {
                s.release(name);
                let msg = format!("Node {name} status is now: CIDRAssignmentFailed");
                recorder.record(&node, EventType::Normal, "CIDRAssignmentFailed", &msg).await;
                return Err(Error::api(format!("patching the pod range of node {name}"), e));
            }
        }
    }
    s.release(name);
    Err(Error::Conflict(format!("patching the pod range of node {name}")))
}
