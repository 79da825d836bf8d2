//! Cluster DNS: CoreDNS's kubernetes plugin (as the kube-dns Corefile configures it: `pods insecure`,
//! reverse zones falling through, `forward . /etc/resolv.conf`) answering from watched Services and
//! EndpointSlices.
//!
//! Names under the cluster domain (default `cluster.local`):
//! - `svc.ns.svc.<domain>`: A/AAAA with the cluster IPs; for a headless service the ready endpoint IPs
//!   (NXDOMAIN while it has none); for an ExternalName service a CNAME to the external name.
//! - `label.svc.ns.svc.<domain>`: a ready endpoint whose hostname (pods with hostname + subdomain) or dashed IP
//!   is `label`.
//! - `_port._proto.svc.ns.svc.<domain>`: SRV for a named port; a cluster-IP service gives one record to
//!   `svc.ns.svc.<domain>`, a headless one a record per ready endpoint to `label.svc.ns.svc.<domain>`, with the
//!   addresses in the additional section. SRV at `svc.ns.svc.<domain>` lists every port.
//! - `a-b-c-d.ns.pod.<domain>`: A (or AAAA for a dashed IPv6 address) with that IP (`pods insecure`).
//! - PTR in `in-addr.arpa`/`ip6.arpa` for cluster IPs and headless endpoints; other reverse names are forwarded.
//! - `dns-version.<domain>` TXT, the SOA and NS at the apex.
//!
//! A name that does not exist is NXDOMAIN, an existing name without records of the asked type NOERROR with no
//! answers (NODATA); both carry the zone's SOA in the authority section. Everything outside the domain goes to
//! the upstream resolvers (UDP, TCP when the answer is truncated) and their answer is relayed unchanged;
//! SERVFAIL when none answers. Search-path expansions such as `svc.ns.svc.cluster.local.ns.svc.cluster.local`
//! are NXDOMAIN straight from the index.

mod answer;
pub mod bench;
pub mod client;
mod forward;
pub mod index;
pub mod metrics;
mod server;
mod watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};

pub use hickory_proto as proto;
pub use index::Index;
pub use metrics::Metrics;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch as tokio_watch;

/// Cluster DNS settings.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Where to listen, UDP and TCP on each (the agent: the kube-dns service address, default 10.254.0.2:53).
    pub listen: Vec<SocketAddr>,
    /// The cluster domain, without the trailing dot (`cluster.local`).
    pub domain: String,
    /// Resolvers for names outside the cluster (see [`upstreams_from_resolv_conf`]); empty means SERVFAIL.
    pub upstreams: Vec<SocketAddr>,
    /// TTL of every record we answer (the kube-dns Corefile's `ttl 30`).
    pub ttl: u32,
    /// Response counters by rcode; keep a clone to serve `/metrics`.
    pub metrics: Arc<Metrics>,
}

impl Default for DnsConfig {
    /// Upstream's defaults: `10.254.0.2:53` (the guides' DNS address), `cluster.local`, TTL 30, and the
    /// nameservers of `/etc/resolv.conf` (none if it cannot be read).
    fn default() -> Self {
        DnsConfig {
            listen: vec![SocketAddr::from(([10, 254, 0, 2], 53))],
            domain: "cluster.local".into(),
            upstreams: upstreams_from_resolv_conf(Path::new("/etc/resolv.conf")).unwrap_or_default(),
            ttl: 30,
            metrics: Arc::default(),
        }
    }
}

/// Errors of [`run`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listen address could not be bound.
    #[error("cluster DNS cannot listen on {addr} ({proto}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// `udp` or `tcp`.
        proto: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The resolv.conf could not be read.
    #[error("cannot read {path}: {source}")]
    ResolvConf {
        /// Its path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// The nameservers of a resolv.conf (port 53), in order, as CoreDNS's `forward . /etc/resolv.conf` uses them.
pub fn upstreams_from_resolv_conf(path: &Path) -> Result<Vec<SocketAddr>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| Error::ResolvConf { path: path.display().to_string(), source })?;
    Ok(parse_resolv_conf(&text))
}

fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|rest| rest.split_whitespace().next())
        // A scoped IPv6 address (`fe80::1%eth0`) loses its scope: good enough for a forwarder.
        .filter_map(|ip| ip.split('%').next()?.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Runs cluster DNS until `stop` turns true (or its sender is dropped).
///
/// Binds UDP and TCP on every `config.listen` address first (an error here is returned at once), watches every
/// Service and EndpointSlice through `client` (needs list/watch on both, cluster-wide), and sets `ready` to
/// true once both first lists are in the index; queries that arrive before that see an empty cluster.
/// Upstreams equal to a listen address are dropped (forwarding to ourselves would loop).
pub async fn run(
    config: DnsConfig,
    client: kube::Client,
    mut stop: tokio_watch::Receiver<bool>,
    ready: tokio_watch::Sender<bool>,
) -> Result<(), Error> {
    let index = Arc::new(RwLock::new(Index::default()));
    let upstreams: Vec<SocketAddr> = config.upstreams.iter().filter(|u| !config.listen.contains(u)).copied().collect();
    let handler = Arc::new(server::Handler {
        index: index.clone(),
        zone: answer::Zone { domain: config.domain.trim_end_matches('.').to_ascii_lowercase(), ttl: config.ttl },
        upstreams,
        metrics: config.metrics.clone(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for addr in &config.listen {
        let udp = UdpSocket::bind(addr).await.map_err(|source| Error::Bind { addr: *addr, proto: "udp", source })?;
        let tcp = TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr: *addr, proto: "tcp", source })?;
        tasks.spawn(server::serve_udp(udp, handler.clone()));
        tasks.spawn(server::serve_tcp(tcp, handler.clone()));
    }
    let (synced_tx, mut synced_rx) = tokio_watch::channel(0usize);
    tasks.spawn(watch::run(client, index, synced_tx));
    tracing::info!(listen = ?config.listen, domain = %config.domain, "cluster DNS started");
    let stopped = async { stop.wait_for(|s| *s).await.map(|_| ()) };
    tokio::pin!(stopped);
    tokio::select! {
        _ = &mut stopped => return Ok(()),
        _ = synced_rx.wait_for(|n| *n >= 2) => {}
    }
    ready.send_replace(true);
    tracing::info!("cluster DNS synced with the API");
    let _ = stopped.await;
    Ok(())
}

#[cfg(test)]
mod tests;
