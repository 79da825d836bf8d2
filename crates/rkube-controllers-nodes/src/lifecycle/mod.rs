//! The node lifecycle controller, as upstream's `pkg/controller/nodelifecycle`: a periodic health pass over
//! all nodes (Lease renewals and Ready heartbeats, judged on our clock, see [`health`]) that marks silent
//! nodes `Unknown`, queues NoExecute `not-ready`/`unreachable` taints through the per-zone rate limits of
//! [`zones`] and marks the pods of nodes that just went down not Ready; a worker keeping the NoSchedule
//! condition taints and `unschedulable` (and the beta os/arch labels) in step with every node change; pods
//! newly bound to a node that is not Ready marked not Ready ([`pods`]); `RegisteredNode`/`RemovingNode`/
//! `NodeNotReady` events.

mod health;
mod pods;
mod taints;
mod writes;
mod zones;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::{Client, ResourceExt};
use rkube_client::Result;
use rkube_client::events::{EventType, Recorder};
use rkube_client::informer::{Change, Informer, SharedInformers};
use rkube_client::queue::WorkQueue;
use tokio::sync::watch;

use health::Health;
use taints::{NO_EXECUTE, NOT_READY, UNREACHABLE};
use zones::{Disruption, Rates, TaintQueue, Zones};

/// Upstream's event source for this controller.
const COMPONENT: &str = "node-controller";
/// Where kubelets renew their Leases.
const LEASE_NAMESPACE: &str = "kube-node-lease";
/// How often the NoExecute taint queues are drained (upstream's `NodeEvictionPeriod`).
const TAINT_PERIOD: Duration = Duration::from_millis(100);

/// Timing of the lifecycle controller.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// `--node-monitor-grace-period`.
    pub(crate) grace: Duration,
    /// `--node-startup-grace-period` (a node that never posted a Ready condition).
    pub(crate) startup_grace: Duration,
    /// `--node-monitor-period`.
    pub(crate) period: Duration,
    /// Eviction (NoExecute tainting) rates.
    pub(crate) rates: Rates,
}

impl Config {
    /// Upstream's defaults around a grace period: the pass runs every 5 s, or more often for short grace
    /// periods so that the grace period is what decides.
    pub(crate) fn new(grace: Duration) -> Config {
        let period = (grace / 5).clamp(Duration::from_millis(500), Duration::from_secs(5));
        Config { grace, startup_grace: grace.max(Duration::from_secs(60)), period, rates: Rates::default() }
    }
}

struct Lifecycle {
    client: Client,
    api: Api<Node>,
    recorder: Recorder,
    nodes: Informer<Node>,
    /// Leases of every namespace (the shared informer's); only `kube-node-lease` is read.
    leases: Informer<Lease>,
    cfg: Config,
    health: HashMap<String, Health>,
    /// Nodes seen by earlier passes (for RegisteredNode/RemovingNode).
    known: HashMap<String, Node>,
    zones: Zones,
    tainters: HashMap<String, TaintQueue>,
    /// Nodes whose pods could not all be marked not Ready; retried next pass.
    retry_pods: HashSet<String>,
}

/// Runs the controller on the shared informers until `stop` is set.
pub(crate) async fn run(informers: SharedInformers, cfg: Config, stop: watch::Receiver<bool>) -> Result<()> {
    let client = informers.client().clone();
    let api: Api<Node> = Api::all(client.clone());
    let nodes = informers.get::<Node>();
    let leases = informers.get::<Lease>();
    let queue = WorkQueue::<String>::new(Duration::from_millis(100), Duration::from_secs(30));
    {
        let (queue, reader) = (queue.clone(), nodes.clone());
        nodes.on_change(move |c| match c {
            Change::Object { new: Some(n), .. } => queue.add(n.name_any()),
            Change::Object { .. } => {}
            // Every node is looked at again after a relist.
            Change::Relisted => reader.list().iter().for_each(|n| queue.add(n.name_any())),
        });
    }
    let no_schedule = {
        let (queue, api, nodes) = (queue.clone(), api.clone(), nodes.clone());
        async move {
            while let Some(name) = queue.get().await {
                match no_schedule_pass(&api, &nodes, &name).await {
                    Ok(()) => queue.forget(&name),
                    Err(e) => {
                        tracing::warn!(node = %name, error = %e, "updating NoSchedule taints");
                        queue.add_rate_limited(name.clone());
                    }
                }
                queue.done(&name);
            }
        }
    };
    let recorder = Recorder::new(client.clone(), COMPONENT, None);
    let bindings = pods::watch_bindings(&informers, recorder.clone());
    let mut lc = Lifecycle {
        recorder,
        client,
        api,
        nodes,
        leases,
        cfg,
        health: HashMap::new(),
        known: HashMap::new(),
        zones: Zones::default(),
        tainters: HashMap::new(),
        retry_pods: HashSet::new(),
    };
    let passes = async move {
        tokio::join!(lc.nodes.wait_synced(), lc.leases.wait_synced());
        tracing::info!(grace = ?lc.cfg.grace, period = ?lc.cfg.period, "node lifecycle controller starting");
        let mut monitor = tokio::time::interval(lc.cfg.period);
        let mut taint = tokio::time::interval(TAINT_PERIOD);
        monitor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        taint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = monitor.tick() => Box::pin(lc.monitor_pass()).await,
                _ = taint.tick() => Box::pin(lc.taint_pass()).await,
            }
        }
    };
    let result = rkube_client::until_stopped(
        "node lifecycle controller",
        async {
            tokio::join!(Box::pin(no_schedule), Box::pin(passes), Box::pin(bindings));
        },
        stop,
    )
    .await;
    queue.shutdown();
    result
}

/// Upstream's `doNoScheduleTaintingPass` and `reconcileNodeLabels` for one node.
async fn no_schedule_pass(api: &Api<Node>, nodes: &Informer<Node>, name: &str) -> Result<()> {
    let Some(node) = nodes.get("", name) else { return Ok(()) };
    let labels = writes::labels_to_mirror(&node);
    if !labels.is_empty() {
        writes::set_labels(api, name, &labels).await?;
    }
    let (add, del) = taints::no_schedule_diff(&node);
    if add.is_empty() && del.is_empty() {
        return Ok(());
    }
    writes::swap_taints(api, name, &add, &del).await.map(|_| ())
}

impl Lifecycle {
    fn tainter(&mut self, zone: &str) -> &mut TaintQueue {
        let qps = self.cfg.rates.normal;
        self.tainters.entry(zone.to_owned()).or_insert_with(|| TaintQueue::new(qps, Instant::now()))
    }

    /// Upstream's `monitorNodeHealth`.
    async fn monitor_pass(&mut self) {
        let nodes = self.nodes.list();
        let names: HashSet<String> = nodes.iter().map(|n| n.name_any()).collect();
        for node in &nodes {
            let name = node.name_any();
            if self.known.contains_key(&name) {
                continue;
            }
            let msg = format!("Node {name} event: Registered Node {name} in Controller");
            self.recorder.record(&**node, EventType::Normal, "RegisteredNode", &msg).await;
            self.known.insert(name, (**node).clone());
            self.tainter(&zones::zone_key(node));
            self.mark_reachable(node).await;
        }
        let gone: Vec<String> = self.known.keys().filter(|n| !names.contains(*n)).cloned().collect();
        for name in gone {
            if let Some(node) = self.known.remove(&name) {
                let msg = format!("Node {name} event: Removing Node {name} from Controller");
                self.recorder.record(&node, EventType::Normal, "RemovingNode", &msg).await;
                self.tainter(&zones::zone_key(&node)).remove(&name);
            }
            self.health.remove(&name);
            self.retry_pods.remove(&name);
        }
        let mut per_zone: HashMap<String, Vec<Option<String>>> = HashMap::new();
        for node in &nodes {
            match Box::pin(self.check_node(node)).await {
                Ok(ready) if !zones::excluded(node) => per_zone.entry(zones::zone_key(node)).or_default().push(ready),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(node = %node.name_any(), error = %e, "node health not updated; no eviction this pass")
                }
            }
        }
        let now = Instant::now();
        match self.zones.update(&self.cfg.rates, &per_zone) {
            Disruption::Steady => {}
            Disruption::Enter => {
                tracing::info!("Controller detected that all Nodes are not-Ready. Entering master disruption mode");
                for node in &nodes {
                    self.mark_reachable(node).await;
                }
                for q in self.tainters.values_mut() {
                    q.set_qps(0.0, now);
                }
            }
            Disruption::Exit(rates) => {
                tracing::info!("Controller detected that some Nodes are Ready. Exiting master disruption mode");
                for h in self.health.values_mut() {
                    h.probe = now;
                    h.ready_transition = now;
                }
                for (zone, qps) in rates {
                    self.tainter(&zone).set_qps(qps, now);
                }
            }
            Disruption::Rates(rates) => {
                for (zone, qps) in rates {
                    tracing::info!(zone = %zone.replace('\0', ""), qps, "zone eviction rate");
                    self.tainter(&zone).set_qps(qps, now);
                }
            }
        }
    }

    /// Upstream's `tryUpdateNodeHealth` and what follows it for one node; returns the node's Ready status
    /// after the pass (`None`: no Ready condition yet).
    async fn check_node(&mut self, node: &Node) -> Result<Option<String>> {
        let name = node.name_any();
        let observed = health::condition(node, "Ready").cloned();
        let lease = self.leases.get(LEASE_NAMESPACE, &name);
        let renew = lease.as_ref().and_then(|l| l.spec.as_ref()).and_then(|s| s.renew_time.clone());
        let now = Instant::now();
        let mut h = health::observe(self.health.remove(&name), observed.as_ref(), renew.as_ref(), now);
        let grace = if observed.is_some() { self.cfg.grace } else { self.cfg.startup_grace };
        let mut current = observed.clone();
        if health::is_stale(&h, now, grace) {
            let conditions = health::mark_unknown(node, &Time(k8s_openapi::jiff::Timestamp::now()));
            let ready = conditions.iter().find(|c| c.type_ == "Ready").cloned();
            if ready != observed {
                let mut updated = node.clone();
                updated.status.get_or_insert_with(Default::default).conditions = Some(conditions);
                tracing::info!(node = %name, "node stopped posting status; marking it Unknown");
                if let Err(e) = writes::write_status(&self.api, &updated).await {
                    self.health.insert(name, h);
                    return Err(e);
                }
                h.ready = ready.clone();
                h.ready_transition = now;
                current = ready;
            }
        }
        self.health.insert(name.clone(), h);
        let Some(current) = current else { return Ok(None) };
        // A node without a Ready condition counts as Unknown (upstream's stand-in condition).
        let observed_status = observed.as_ref().map_or("Unknown", |c| c.status.as_str()).to_owned();
        self.taint_based_eviction(node, &observed_status).await;
        let went_down = current.status != "True" && observed_status == "True";
        if went_down {
            let msg = format!("Node {name} status is now: NodeNotReady");
            self.recorder.record(node, EventType::Normal, "NodeNotReady", &msg).await;
        }
        if went_down || (self.retry_pods.contains(&name) && observed_status != "True") {
            match pods::mark_pods_not_ready(&self.client, &self.recorder, &name).await {
                Ok(()) => {
                    self.retry_pods.remove(&name);
                }
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "marking pods not ready; retried next pass");
                    self.retry_pods.insert(name);
                }
            }
        } else {
            self.retry_pods.remove(&name);
        }
        Ok(Some(current.status))
    }

    /// Upstream's `processTaintBaseEviction`: an already tainted node swaps not-ready/unreachable at once,
    /// otherwise it waits in its zone's rate-limited queue; a Ready node loses both.
    async fn taint_based_eviction(&mut self, node: &Node, observed: &str) {
        let name = node.name_any();
        let (target, opposite) = match observed {
            "False" => (NOT_READY, UNREACHABLE),
            "Unknown" => (UNREACHABLE, NOT_READY),
            "True" => return self.mark_reachable(node).await,
            _ => return,
        };
        let current = taints::of(node);
        if taints::has(current, opposite, NO_EXECUTE) {
            let add = [taints::taint(target, NO_EXECUTE)];
            let del = [taints::taint(opposite, NO_EXECUTE)];
            if let Err(e) = writes::swap_taints(&self.api, &name, &add, &del).await {
                tracing::warn!(node = %name, error = %e, "swapping NoExecute taints; retried next pass");
            }
            return;
        }
        let has_target = taints::has(current, target, NO_EXECUTE);
        let q = self.tainter(&zones::zone_key(node));
        if !has_target {
            q.remove(&name);
        }
        if q.add(&name) {
            tracing::info!(node = %name, ready = observed, "node is not Ready; queued for NoExecute tainting");
        }
    }

    /// Upstream's `markNodeAsReachable`: lifts the NoExecute not-ready/unreachable taints.
    async fn mark_reachable(&mut self, node: &Node) {
        let name = node.name_any();
        let current = taints::of(node);
        if taints::has(current, UNREACHABLE, NO_EXECUTE) || taints::has(current, NOT_READY, NO_EXECUTE) {
            let del = [taints::taint(UNREACHABLE, NO_EXECUTE), taints::taint(NOT_READY, NO_EXECUTE)];
            match writes::swap_taints(&self.api, &name, &[], &del).await {
                Ok(true) => tracing::info!(node = %name, "node is healthy again, removed NoExecute taints"),
                Ok(false) => {}
                Err(e) => tracing::warn!(node = %name, error = %e, "removing NoExecute taints; retried next pass"),
            }
        }
        self.tainter(&zones::zone_key(node)).remove(&name);
    }

    /// Upstream's `doNoExecuteTaintingPass`: taints the nodes each zone's rate lets through now.
    async fn taint_pass(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        for (zone, q) in self.tainters.iter_mut() {
            while let Some(name) = q.pop(now) {
                due.push((zone.clone(), name));
            }
        }
        for (zone, name) in due {
            let Some(node) = self.nodes.get("", &name) else { continue };
            let Some(ready) = health::condition(&node, "Ready") else {
                self.tainter(&zone).retry(name);
                continue;
            };
            let (target, opposite) = match ready.status.as_str() {
                "False" => (NOT_READY, UNREACHABLE),
                "Unknown" => (UNREACHABLE, NOT_READY),
                _ => continue,
            };
            let add = [taints::taint(target, NO_EXECUTE)];
            let del = [taints::taint(opposite, NO_EXECUTE)];
            match writes::swap_taints(&self.api, &name, &add, &del).await {
                Ok(_) => tracing::info!(node = %name, taint = target, "tainted node NoExecute"),
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "NoExecute tainting; retried");
                    self.tainter(&zone).retry(name);
                }
            }
        }
    }
}
