//! The proxy's main loop: Services and EndpointSlices mirrored with kube-rs reflectors; once both have
//! listed, a sync on every change but at most once per `min_sync_period`, a full resync every `sync_period`,
//! and failed syncs retried with backoff (the previous rules stay in force meanwhile), counted in the metrics and
//! reported as a Warning event about the node.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Instant;

use crate::metrics::{self, Metrics};
use crate::model::ProxyState;
use crate::proxier::Proxier;
use crate::{Error, ProxyConfig, ProxyMode, ipvs};

/// The reason of the Warning event a failed sync records about the node.
pub const SYNC_FAILED_REASON: &str = "FailedToSyncProxyRules";

/// Warning events about this node when syncs start failing: one per run of failures (the next after a success),
/// so a tool that keeps failing does not flood the API.
struct FailureEvents {
    client: Client,
    recorder: rkube_client::events::Recorder,
    node: String,
    failing: bool,
}

impl FailureEvents {
    fn new(client: Client, node: &str) -> FailureEvents {
        let recorder = rkube_client::events::Recorder::new(client.clone(), "kube-proxy", Some(node.to_owned()));
        FailureEvents { client, recorder, node: node.to_owned(), failing: false }
    }

    fn succeeded(&mut self) {
        self.failing = false;
    }

    async fn failed(&mut self, e: &Error) {
        if std::mem::replace(&mut self.failing, true) || self.node.is_empty() {
            return;
        }
        // The node's UID makes the event show in `kubectl describe node`; without it, the name still finds it.
        let uid = match Api::<k8s_openapi::api::core::v1::Node>::all(self.client.clone()).get_opt(&self.node).await {
            Ok(n) => n.and_then(|n| n.metadata.uid),
            Err(_) => None,
        };
        let regarding = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(self.node.clone()),
            uid,
            ..Default::default()
        };
        let message = format!("Failed to sync proxy rules (the previous rules stay in force): {e}");
        self.recorder
            .record_ref(regarding, rkube_client::events::EventType::Warning, SYNC_FAILED_REASON, &message)
            .await;
    }
}

fn mirror<K>(api: Api<K>, changed: Arc<Notify>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()).default_backoff());
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            if let Err(e) = ev {
                tracing::debug!(error = %e, "proxy watch error (retrying)");
            }
            changed.notify_one();
        }
    });
    reader
}

/// Runs the proxy until `stop` is set. `ready` is sent after the first successful sync. ipvs mode fails at
/// once when the kernel lacks its modules.
pub async fn run(
    config: ProxyConfig,
    client: Client,
    mut stop: watch::Receiver<bool>,
    ready: oneshot::Sender<()>,
) -> crate::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let mut proxier = match config.mode {
        ProxyMode::Iptables => Proxier::iptables(config.rule_options(), config.exec.clone(), metrics.clone()),
        ProxyMode::Nftables => Proxier::nftables(config.rule_options(), config.exec.clone(), metrics.clone()),
        ProxyMode::Ipvs => {
            ipvs::check_scheduler(&config.ipvs_scheduler).map_err(Error::Ipvs)?;
            let missing = ipvs::missing_modules(std::path::Path::new("/"));
            if !missing.is_empty() {
                return Err(Error::Ipvs(ipvs::missing_message(&missing)));
            }
            let backend = ipvs::open(&config.ipvs_scheduler, config.rule_options(), config.exec.clone()).await?;
            Proxier::ipvs(backend, config.exec.clone(), metrics.clone())
        }
    };
    if let Some(addr) = config.metrics_addr {
        let listener = metrics::bind(addr).await.map_err(|source| Error::Bind { addr, source })?;
        let (m, s) = (metrics.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(e) = metrics::serve(listener, m, s).await {
                tracing::warn!(error = %e, "proxy metrics server stopped");
            }
        });
    }
    let changed = Arc::new(Notify::new());
    let services = mirror(Api::<Service>::all(client.clone()), changed.clone());
    let slices = mirror(Api::<EndpointSlice>::all(client.clone()), changed.clone());
    let mut events = FailureEvents::new(client, &config.hostname);
    tokio::select! {
        _ = async { tokio::join!(services.wait_until_ready(), slices.wait_until_ready()) } => {}
        _ = stop.wait_for(|s| *s) => return Ok(()),
    }

    let mut ready = Some(ready);
    let mut last_sync: Option<Instant> = None;
    let mut next_full = Instant::now();
    let mut retry = config.min_sync_period.max(Duration::from_millis(100));
    let mut pending = true;
    loop {
        // Bounded frequency: never sooner than min_sync_period after the previous sync.
        if let Some(t) = last_sync {
            let earliest = t + config.min_sync_period;
            tokio::select! {
                _ = tokio::time::sleep_until(earliest) => {}
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
        }
        let full = Instant::now() >= next_full;
        if pending || full {
            let state = {
                let svcs = services.state();
                let sls = slices.state();
                ProxyState::build(svcs.iter().map(|s| s.as_ref()), sls.iter().map(|s| s.as_ref()), &config.hostname)
            };
            last_sync = Some(Instant::now());
            let outcome = if !full && state == *proxier.applied() {
                Ok(None)
            } else {
                proxier.sync(&state, full).await.map(Some)
            };
            match outcome {
                Ok(report) => {
                    events.succeeded();
                    pending = false;
                    retry = config.min_sync_period.max(Duration::from_millis(100));
                    if full {
                        next_full = Instant::now() + config.sync_period;
                    }
                    if let Some(r) = report {
                        tracing::debug!(
                            full,
                            written = r.written.len(),
                            deleted = r.deleted.len(),
                            "proxy rules synced"
                        );
                    }
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "proxy sync failed; previous rules stay in force, retrying");
                    events.failed(&e).await;
                    pending = true;
                    tokio::select! {
                        _ = tokio::time::sleep(retry) => {}
                        _ = stop.wait_for(|s| *s) => return Ok(()),
                    }
                    retry = (retry * 2).min(config.sync_period);
                    continue;
                }
            }
        }
        tokio::select! {
            _ = changed.notified() => pending = true,
            _ = tokio::time::sleep_until(next_full) => {}
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
    }
}
