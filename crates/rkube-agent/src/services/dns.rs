//! The cluster DNS as a part of the agent: rkube-dns on the node's address (port 53, UDP and TCP; metrics on
//! 9153), forwarding other names to the host's resolv.conf nameservers; once it has synced with the API, the
//! `kube-dns` Service and this node's EndpointSlice are made to point at it, and kept so.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::kube_dns;
use crate::config::AgentConfig;
use crate::run::Parts;
use crate::{Error, Result};

/// How often the Service and the slice are checked (one GET each; a write only when something is off).
const UPKEEP: Duration = Duration::from_secs(30);

struct Plan {
    dns: rkube_dns::DnsConfig,
    metrics_addr: SocketAddr,
    node: String,
    node_ip: IpAddr,
    cluster_ip: IpAddr,
}

/// Spawns the DNS as a part; the receiver fires once it answers from a synced index and the API routes pods'
/// queries to it.
pub(super) fn spawn(
    config: &AgentConfig,
    client: &kube::Client,
    parts: &mut Parts,
    stop: watch::Receiver<bool>,
) -> Result<oneshot::Receiver<()>> {
    let Some(cluster_ip) = config.cluster_dns.first().copied() else {
        return Err(Error::Services("the cluster DNS needs a --cluster-dns address (or --disable-dns)".into()));
    };
    let listen = SocketAddr::new(config.node_ip, 53);
    let upstreams = match rkube_dns::upstreams_from_resolv_conf(&config.resolv_conf) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "the cluster DNS forwards nothing: no upstream resolvers");
            Vec::new()
        }
    };
    // Our own addresses as upstreams would loop (rkube-dns drops its listen address; the cluster IP leads back
    // to it through the proxy).
    let upstreams: Vec<SocketAddr> =
        upstreams.into_iter().filter(|u| u.ip() != cluster_ip && u.ip() != config.node_ip).collect();
    let plan = Plan {
        dns: rkube_dns::DnsConfig {
            listen: vec![listen],
            domain: config.cluster_domain.trim_end_matches('.').to_owned(),
            upstreams,
            ..rkube_dns::DnsConfig::default()
        },
        metrics_addr: SocketAddr::new(config.node_ip, kube_dns::METRICS_PORT),
        node: config.node_name.clone(),
        node_ip: config.node_ip,
        cluster_ip,
    };
    let (tx, rx) = oneshot::channel();
    let client = client.clone();
    parts.spawn(async move { ("the cluster DNS", run(plan, client, stop, tx).await) });
    Ok(rx)
}

async fn run(
    plan: Plan,
    client: kube::Client,
    mut stop: watch::Receiver<bool>,
    ready: oneshot::Sender<()>,
) -> Result<()> {
    let fail = |what: String| Error::Services(format!("the cluster DNS failed: {what}"));
    let metrics_listener = tokio::net::TcpListener::bind(plan.metrics_addr)
        .await
        .map_err(|e| fail(format!("binding its metrics address {}: {e}", plan.metrics_addr)))?;
    let metrics = plan.dns.metrics.clone();
    let metrics_stop = stop.clone();
    let metrics_task = tokio::spawn(async move {
        if let Err(e) = rkube_dns::metrics::serve(metrics_listener, metrics, metrics_stop).await {
            tracing::warn!(error = %e, "cluster DNS metrics server stopped");
        }
    });
    let (synced_tx, mut synced) = watch::channel(false);
    let server = rkube_dns::run(plan.dns, client.clone(), stop.clone(), synced_tx);
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => {
            metrics_task.abort();
            return r.map_err(|e| fail(e.to_string())).and(Ok(()));
        }
        _ = synced.wait_for(|s| *s) => {}
    }
    // Route pods to this node's DNS. Failing here fails the start: without it pods get no names.
    let svc = tokio::select! {
        r = kube_dns::ensure_service(&client, plan.cluster_ip) => r.map_err(fail)?,
        _ = crate::stopped(&mut stop) => return Ok(()),
    };
    let slice = kube_dns::slice(&plan.node, plan.node_ip, &svc);
    kube_dns::ensure_slice(&client, &slice).await.map_err(fail)?;
    let _ = ready.send(());
    let outcome = loop {
        tokio::select! {
            r = &mut server => break r.map_err(|e| fail(e.to_string())),
            stopped = crate::sleep_or_stop(UPKEEP, &mut stop) => {
                if stopped {
                    break (&mut server).await.map_err(|e| fail(e.to_string()));
                }
                let kept = match kube_dns::ensure_service(&client, plan.cluster_ip).await {
                    Ok(svc) => kube_dns::ensure_slice(&client, &kube_dns::slice(&plan.node, plan.node_ip, &svc)).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = kept {
                    tracing::warn!(error = %e, "keeping the kube-dns service and this node's slice (retrying)");
                }
            }
        }
    };
    // This node no longer answers: take it out of the service (best effort, bounded: the API may be gone too).
    let _ = tokio::time::timeout(Duration::from_secs(3), kube_dns::delete_slice(&client, &plan.node)).await;
    metrics_task.abort();
    outcome
}
