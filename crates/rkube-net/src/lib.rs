//! rkube-net: the flannel-compatible pod network (IPv4 only). [`run`] is the seam the agent uses: it reads the
//! network config from the [`subnet::SubnetManager`], chooses the uplink, prepares the backend, leases this
//! node's subnet, writes the CNI conflist, `subnet.env` and docker options, installs the iptables rules and
//! sysctls, reports [`NodeNetwork`] through `ready`, then keeps peers' routes in step and renews the lease
//! until `stop` resolves.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod backend;
pub mod cidr;
pub mod config;
pub mod files;
pub mod iptables;
pub mod lease;
pub mod nl;
pub mod subnet;
pub mod sysctl;
pub mod uplink;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};

use crate::backend::{Backend, BackendError};
use crate::cidr::Ipv4Net;
use crate::config::NetConfig;
use crate::files::NodeFiles;
use crate::lease::{Lease, LeaseAttrs, LeaseEvent, RENEW_MARGIN_SECS};
use crate::subnet::{SubnetError, SubnetManager};
use crate::uplink::{Uplink, UplinkChoice, UplinkError};

/// How this node joins the pod network.
#[derive(Clone, Debug)]
pub struct NetOptions {
    /// `--iface` / `--iface-regex`.
    pub uplink: UplinkChoice,
    /// Where the CNI conflist, subnet.env and docker options go.
    pub files: NodeFiles,
    /// Install flannel's iptables rules (FLANNEL-FWD, FLANNEL-POSTRTG).
    pub iptables: bool,
    /// Set ip_forward and bridge-nf-call-iptables.
    pub sysctls: bool,
    /// On stop, remove the vxlan device, host-gw routes and iptables rules. Off by default: a restarting agent
    /// keeps its pods connected, as flanneld does.
    pub cleanup_on_stop: bool,
}

impl Default for NetOptions {
    fn default() -> Self {
        Self {
            uplink: UplinkChoice::default(),
            files: NodeFiles::default(),
            iptables: true,
            sysctls: true,
            cleanup_on_stop: false,
        }
    }
}

/// What the node holds once its network is up.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeNetwork {
    /// The cluster's network config.
    pub config: NetConfig,
    /// This node's lease (its pod CIDR is `lease.subnet`).
    pub lease: Lease,
    /// The MTU pods get.
    pub mtu: u32,
    /// The uplink in use.
    pub uplink: Uplink,
    /// Sysctls that could not be set, each with its fix.
    pub warnings: Vec<String>,
}

/// Why the pod network could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The subnet manager refused.
    #[error(transparent)]
    Subnet(#[from] SubnetError),
    /// No usable uplink.
    #[error(transparent)]
    Uplink(#[from] UplinkError),
    /// The backend refused.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Opening netlink failed.
    #[error("opening a netlink socket: {0}")]
    Netlink(std::io::Error),
    /// A node side file or iptables failed.
    #[error("{0}")]
    Node(String),
    /// `stop` resolved before the network was up.
    #[error("stopped before the pod network was up")]
    Stopped,
}

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The first retry when the lease is not possible yet (the node has no podCIDR): node IPAM usually sets it
/// within milliseconds of the node's registration, so a fixed second would be most of a fresh start.
const NOT_YET_MIN: Duration = Duration::from_millis(25);

/// Runs the node's pod network until `stop` resolves (see the crate doc). Netlink and iptables act in the
/// network namespace of the thread that calls this (its first poll opens the netlink socket).
pub async fn run(
    opts: NetOptions,
    subnets: Arc<dyn SubnetManager>,
    stop: impl Future<Output = ()> + Send,
    ready: oneshot::Sender<NodeNetwork>,
) -> Result<NodeNetwork, NetError> {
    let handle = nl::connect().map_err(NetError::Netlink)?;
    tokio::pin!(stop);
    let config = subnets.network_config().await?;
    let uplink = uplink::choose(&handle, &opts.uplink).await?;
    // A node refused before it holds a lease (network exhausted) leaves no device it made behind; a device an
    // earlier run made stays (its pods may still use it).
    let existed = nl::link_by_name(&handle, backend::VXLAN_DEVICE).await.ok().flatten().is_some();
    let backend = Backend::new(handle.clone(), uplink.clone(), &config.backend).await?;
    let attrs = backend.lease_attrs();
    let mut retry = LeaseRetry::default();
    let leased = loop {
        let acquired = tokio::select! {
            _ = &mut stop => break Err(NetError::Stopped),
            r = subnets.acquire(&config, &attrs) => r,
        };
        match acquired {
            Ok(l) => break Ok(l),
            Err(e) if e.is_transient() => {
                let delay = retry.next(&e);
                tokio::select! {
                    _ = &mut stop => break Err(NetError::Stopped),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            Err(e) => break Err(e.into()),
        }
    };
    let mut lease = match leased {
        Ok(l) => l,
        Err(e) => {
            if !existed && let Err(t) = backend.teardown().await {
                tracing::warn!(error = %t, "removing the unused vxlan device");
            }
            return Err(e);
        }
    };
    backend.configure(&lease).await?;
    let mtu = backend.mtu();
    opts.files.write(config.network, lease.subnet, mtu).map_err(NetError::Node)?;
    if opts.iptables {
        iptables::apply(config.network, lease.subnet).await.map_err(NetError::Node)?;
    }
    let warnings = if opts.sysctls { sysctl::ensure() } else { Vec::new() };
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let network = NodeNetwork { config: config.clone(), lease: lease.clone(), mtu, uplink, warnings };
    tracing::info!(subnet = %lease.subnet, backend = config.backend.type_name(), mtu, "pod network is up");
    let _ = ready.send(network.clone());

    let (tx, mut rx) = mpsc::channel(64);
    let watcher = tokio::spawn(watch_forever(subnets.clone(), lease.clone(), tx));
    let mut peers: HashMap<Ipv4Net, Lease> = HashMap::new();
    let mut first_snapshot = true;
    loop {
        let renew_in = renew_delay(&lease);
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(renew_in) => match subnets.renew(&lease).await {
                Ok(l) => lease = l,
                Err(e) => {
                    tracing::warn!(error = %e, subnet = %lease.subnet, "renewing the lease failed; retrying");
                    lease.expiration = Some(SystemTime::now() + BACKOFF_MAX + Duration::from_secs(RENEW_MARGIN_SECS as u64));
                }
            },
            ev = rx.recv() => match ev {
                Some(LeaseEvent::Snapshot(all)) => {
                    let listed: HashMap<Ipv4Net, Lease> = all.into_iter().map(|l| (l.subnet, l)).collect();
                    let mut gone: Vec<Ipv4Net> = peers.keys().filter(|s| !listed.contains_key(s)).copied().collect();
                    if std::mem::take(&mut first_snapshot) {
                        // Routes left by an earlier run for peers that left while this node was down.
                        let stale = backend::routes_in(&handle, config.network).await.unwrap_or_default();
                        for s in stale.into_iter().filter(|s| *s != lease.subnet && !listed.contains_key(s)) {
                            let ghost = Lease { subnet: s, attrs: backend.lease_attrs(), expiration: None };
                            peers.insert(s, Lease { attrs: LeaseAttrs { backend_data: serde_json::Value::Null, ..ghost.attrs }, ..ghost });
                            gone.push(s);
                        }
                        let keep: Vec<_> = listed.values().map(|l| l.attrs.public_ip).collect();
                        if let Err(e) = backend.prune_fdb(&keep).await {
                            tracing::warn!(error = %e, "pruning stale fdb entries");
                        }
                    }
                    for s in gone {
                        remove_peer(&backend, &mut peers, s).await;
                    }
                    for l in listed.into_values() {
                        add_peer(&backend, &mut peers, l).await;
                    }
                }
                Some(LeaseEvent::Added(peer)) => add_peer(&backend, &mut peers, peer).await,
                Some(LeaseEvent::Removed(subnet)) => remove_peer(&backend, &mut peers, subnet).await,
                None => break,
            },
        }
    }
    watcher.abort();
    if opts.cleanup_on_stop {
        cleanup(&backend, peers.values(), opts.iptables).await?;
    }
    Ok(NodeNetwork { lease, ..network })
}

async fn add_peer(backend: &Backend, peers: &mut HashMap<Ipv4Net, Lease>, peer: Lease) {
    if peers.get(&peer.subnet).is_some_and(|p| p.attrs == peer.attrs) {
        return;
    }
    if let Some(old) = peers.remove(&peer.subnet) {
        let _ = backend.remove_peer(&old).await;
    }
    match backend.add_peer(&peer).await {
        Ok(()) => tracing::info!(subnet = %peer.subnet, public_ip = %peer.attrs.public_ip, "peer added"),
        Err(e) => tracing::error!(error = %e, "peer {} not reachable", peer.subnet),
    }
    peers.insert(peer.subnet, peer);
}

async fn remove_peer(backend: &Backend, peers: &mut HashMap<Ipv4Net, Lease>, subnet: Ipv4Net) {
    if let Some(old) = peers.remove(&subnet) {
        match backend.remove_peer(&old).await {
            Ok(()) => tracing::info!(%subnet, "peer removed"),
            Err(e) => tracing::error!(error = %e, "removing peer {subnet}"),
        }
    }
}

async fn cleanup(backend: &Backend, peers: impl Iterator<Item = &Lease>, iptables: bool) -> Result<(), NetError> {
    for p in peers {
        backend.remove_peer(p).await?;
    }
    backend.teardown().await?;
    if iptables {
        iptables::remove().await.map_err(NetError::Node)?;
    }
    Ok(())
}

/// The delays between lease attempts: a store that cannot be reached is retried from [`BACKOFF_MIN`]; a lease
/// that is not possible yet (no podCIDR) from [`NOT_YET_MIN`], both doubling to [`BACKOFF_MAX`].
#[derive(Debug, Default)]
struct LeaseRetry {
    last: Option<Duration>,
}

impl LeaseRetry {
    /// The wait before the next attempt after `e`, logged (the short not-yet waits once at info, then at debug).
    fn next(&mut self, e: &SubnetError) -> Duration {
        let not_yet = matches!(e, SubnetError::NotYet(_));
        let delay = match self.last {
            Some(d) => (d * 2).min(BACKOFF_MAX),
            None if not_yet => NOT_YET_MIN,
            None => BACKOFF_MIN,
        };
        match (self.last, not_yet && delay < BACKOFF_MIN) {
            (None, true) => tracing::info!(error = %e, "cannot lease a subnet yet; retrying shortly"),
            (Some(_), true) => tracing::debug!(error = %e, "cannot lease a subnet yet; retrying in {delay:?}"),
            (_, false) => tracing::warn!(error = %e, "cannot lease a subnet yet; retrying in {delay:?}"),
        }
        self.last = Some(delay);
        delay
    }
}

fn renew_delay(lease: &Lease) -> Duration {
    match lease.expiration {
        None => Duration::from_secs(24 * 3600),
        Some(exp) => exp
            .checked_sub(Duration::from_secs(RENEW_MARGIN_SECS as u64))
            .and_then(|at| at.duration_since(SystemTime::now()).ok())
            .unwrap_or(Duration::ZERO),
    }
}

async fn watch_forever(subnets: Arc<dyn SubnetManager>, own: Lease, tx: mpsc::Sender<LeaseEvent>) {
    let mut delay = BACKOFF_MIN;
    loop {
        match subnets.watch(&own, tx.clone()).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "watching peer leases failed; retrying in {delay:?}"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_yet_retries_start_short_and_grow() {
        let not_yet = SubnetError::NotYet("node n1 has no spec.podCIDR yet".into());
        let mut r = LeaseRetry::default();
        let delays: Vec<Duration> = (0..13).map(|_| r.next(&not_yet)).collect();
        assert_eq!(delays[0], Duration::from_millis(25));
        assert_eq!(delays[1], Duration::from_millis(50));
        assert!(delays.windows(2).all(|w| w[1] >= w[0]), "{delays:?}");
        assert_eq!(delays[12], BACKOFF_MAX, "{delays:?}");

        let unreachable = SubnetError::Other("x".into());
        let mut r = LeaseRetry::default();
        assert_eq!(r.next(&unreachable), BACKOFF_MIN, "other failures keep the 1 s start");
        assert_eq!(r.next(&not_yet), 2 * BACKOFF_MIN);
    }
}
