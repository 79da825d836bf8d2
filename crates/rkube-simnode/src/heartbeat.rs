//! Keeping registered nodes alive: each node's Lease renewed every renew interval (spread over the
//! interval), and its status written only when a condition was changed by someone else or the periodic
//! report is due, judged against what a watch on our nodes last saw.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use crate::lease;
use crate::node::{self, SIMULATED_LABEL};
use crate::register::{Registered, renew_lease};
use crate::shared::{NodeView, Shared};

/// Watches our nodes, keeping [`Shared::nodes`] current (podCIDRs, conditions). Runs until aborted.
pub(crate) async fn watch_nodes(shared: Arc<Shared>) {
    let api: Api<Node> = Api::all(shared.client.clone());
    let config = watcher::Config::default().labels(&format!("{SIMULATED_LABEL}=true"));
    let mut listing: Option<HashMap<String, NodeView>> = None;
    let mut events = watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(%e, "watching simulated nodes");
                continue;
            }
        };
        let ours = |n: &Node| n.metadata.name.as_ref().filter(|name| shared.owned.contains_key(*name)).cloned();
        match event {
            watcher::Event::Init => listing = Some(HashMap::new()),
            watcher::Event::InitApply(n) => {
                if let (Some(name), Some(l)) = (ours(&n), listing.as_mut()) {
                    l.insert(name, NodeView::of(&n));
                }
            }
            watcher::Event::InitDone => {
                if let Some(l) = listing.take() {
                    *shared.nodes() = l;
                }
                shared.nodes_synced.send_replace(true);
            }
            watcher::Event::Apply(n) => {
                if let Some(name) = ours(&n) {
                    shared.nodes().insert(name, NodeView::of(&n));
                }
            }
            watcher::Event::Delete(n) => {
                if let Some(name) = ours(&n) {
                    shared.nodes().remove(&name);
                }
            }
        }
    }
}

/// Keeps node `k` (of this process's `count`) alive: renews its Lease and checks its status once per renew
/// interval, the first time after a delay that spreads the nodes over one interval. Runs until aborted.
pub(crate) async fn keep_alive(shared: Arc<Shared>, registered: Registered, k: usize) {
    let config = &shared.config;
    let Registered { name, mut uid, lease: mut last } = registered;
    let Some(&index) = shared.owned.get(&name) else { return };
    let report_secs = config.status_report_interval.as_secs().max(1) as i64;
    let start = tokio::time::Instant::now() + lease::first_delay(k, config.count, config.renew_interval);
    let mut ticks = tokio::time::interval_at(start, config.renew_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let nodes: Api<Node> = Api::all(shared.client.clone());
    let mut gone_logged = false;
    loop {
        ticks.tick().await;
        let view = shared.node(&name);
        if view.is_none() && *shared.nodes_synced.borrow() {
            // Deleted by someone: a kubelet does not register again, and its Lease would only be collected.
            if !std::mem::replace(&mut gone_logged, true) {
                tracing::info!(node = %name, "node was deleted; no longer renewing its lease");
            }
            last = None;
            continue;
        }
        gone_logged = false;
        if let Some(v) = view.as_ref().filter(|v| v.uid.is_some() && v.uid != uid) {
            // Deleted and registered again by someone: a new Lease owned by the new node.
            uid = v.uid.clone();
            last = None;
        }
        match renew_lease(&shared, &name, uid.as_deref(), last.take()).await {
            Ok(l) => last = Some(l),
            Err(e) => tracing::warn!(%e, node = %name, "renewing the node lease"),
        }
        let Some(view) = view else { continue };
        let now = Timestamp::now();
        if !node::needs_status_update(&view.conditions, now, report_secs) {
            continue;
        }
        let conditions = node::conditions(now, &view.conditions);
        let patch = json!({ "status": { "conditions": conditions } });
        let _p = shared.permit().await;
        match nodes.patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
            Ok(n) => {
                shared.nodes().insert(name.clone(), NodeView::of(&n));
            }
            Err(e) => tracing::warn!(%e, node = %name, index, "writing the node status"),
        }
    }
}
