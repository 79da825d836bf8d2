//! The pod lifecycle event generator (upstream's generic PLEG): every second, list the runtime's sandboxes
//! and containers and wake the worker of every pod whose sandbox or container states changed — including
//! pods the API no longer has, whose workers then remove what is left.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rkube_cri::{api, labels};

use crate::{Kubelet, Result};

const PERIOD: Duration = Duration::from_secs(1);

/// The states seen at the last relist, per pod UID.
#[derive(Default)]
pub(crate) struct Pleg {
    seen: HashMap<String, BTreeMap<String, i32>>,
}

impl Pleg {
    /// Lists the runtime once and wakes the pods whose states changed since the last list.
    pub(crate) async fn relist(&mut self, k: &Arc<Kubelet>) -> Result<()> {
        let mut rt = k.runtime.runtime.clone();
        let sandboxes = rt
            .list_pod_sandbox(api::ListPodSandboxRequest { filter: None })
            .await
            .map_err(rkube_cri::Error::cri("ListPodSandbox"))?
            .into_inner()
            .items;
        let containers = rt
            .list_containers(api::ListContainersRequest { filter: None })
            .await
            .map_err(rkube_cri::Error::cri("ListContainers"))?
            .into_inner()
            .containers;
        let mut now: HashMap<String, BTreeMap<String, i32>> = HashMap::new();
        for s in sandboxes {
            if let Some(uid) = s.labels.get(labels::POD_UID) {
                // Sandbox and container states share a map: offset sandbox states so they never collide.
                now.entry(uid.clone()).or_default().insert(s.id, 100 + s.state);
            }
        }
        for c in containers {
            if let Some(uid) = c.labels.get(labels::POD_UID) {
                now.entry(uid.clone()).or_default().insert(c.id, c.state);
            }
        }
        let changed: Vec<String> = now
            .iter()
            .filter(|(uid, states)| self.seen.get(*uid) != Some(states))
            .map(|(uid, _)| uid.clone())
            .chain(self.seen.keys().filter(|uid| !now.contains_key(*uid)).cloned())
            .collect();
        self.seen = now;
        for uid in changed {
            k.wake(&uid);
        }
        Ok(())
    }
}

/// Relists every second until the kubelet stops; also forgets stable back-off entries now and then.
pub(crate) async fn run(k: Arc<Kubelet>, mut pleg: Pleg) {
    let mut stop = k.stop.clone();
    let mut ticks: u64 = 0;
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PERIOD) => {}
            _ = rkube_client::stopped(&mut stop) => return,
        }
        match pleg.relist(&k).await {
            Ok(()) => failing = false,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "relisting the runtime");
                }
                failing = true;
            }
        }
        ticks += 1;
        if ticks.is_multiple_of(60) {
            let now = k8s_openapi::jiff::Timestamp::now();
            let mut m = k.memory();
            m.crash.gc(now);
            m.pulls.gc(now);
        }
    }
}
