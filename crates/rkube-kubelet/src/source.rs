//! The pod source: a watch of the pods with `spec.nodeName=<node>` feeding the pod workers. Once the first
//! list is known, the PLEG starts (which also finds what the runtime runs for pods the API no longer has)
//! and the kubelet reports ready.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher::{self, Event};
use tokio::sync::{oneshot, watch};

use crate::{Error, Kubelet, Result};

/// Watches the node's pods until `stop` is set.
pub(crate) async fn run(
    k: Arc<Kubelet>,
    mut stop: watch::Receiver<bool>,
    ready: Option<oneshot::Sender<()>>,
) -> Result<()> {
    let api: Api<Pod> = Api::all(k.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", k.config.node_name));
    let mut stream = std::pin::pin!(watcher::watcher(api, cfg));
    let mut ready = ready;
    let mut buffer: Vec<Pod> = Vec::new();
    let mut pleg_started = false;
    let mut failures: u32 = 0;
    loop {
        let event = tokio::select! {
            e = stream.next() => e,
            _ = rkube_client::stopped(&mut stop) => return Ok(()),
        };
        let Some(event) = event else { return Err(Error::Watch("the watch ended".into())) };
        match event {
            Ok(Event::Apply(pod)) => k.upsert(pod),
            Ok(Event::Delete(pod)) => {
                if let Some(uid) = pod.metadata.uid.as_deref() {
                    k.remove(uid);
                }
            }
            Ok(Event::Init) => buffer.clear(),
            Ok(Event::InitApply(pod)) => buffer.push(pod),
            Ok(Event::InitDone) => {
                failures = 0;
                k.replace(std::mem::take(&mut buffer));
                if !pleg_started {
                    pleg_started = true;
                    // The first relist adopts what runs and finds orphans before we say ready.
                    let mut pleg = crate::pleg::Pleg::default();
                    if let Err(e) = pleg.relist(&k).await {
                        tracing::warn!(error = %e, "first runtime relist");
                    }
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                    tokio::spawn(crate::pleg::run(k.clone(), pleg));
                }
            }
            Err(e) => {
                // The watcher retries by itself after an error; pace it so a down API server is not hammered.
                tracing::warn!(error = %e, "watching pods");
                failures = failures.saturating_add(1);
                let delay = std::time::Duration::from_millis(200u64 << failures.min(6));
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = rkube_client::stopped(&mut stop) => return Ok(()),
                }
            }
        }
    }
}
