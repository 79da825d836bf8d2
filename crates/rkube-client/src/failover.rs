//! Client-side failover among several API servers: a TCP balancer on the loopback, as k3s's agent load
//! balancer. Clients talk to `https://127.0.0.1:<port>`; each connection they open is relayed to the first
//! server (in the order given) that accepts it, skipping those a health check found dead. A server that goes
//! away takes its relayed connections with it (its kernel resets them, or the health check closes them when it
//! stops answering), and the clients' next connection lands on the next server.
//!
//! Why a TCP balancer and not a tower layer in kube-rs: kube-rs builds its connector from one `cluster_url`
//! (TLS server name and all) and offers no hook to re-dial elsewhere; a watch that ended would have to be
//! retried by every caller. Relaying bytes keeps TLS end to end (every rkube serving certificate holds
//! 127.0.0.1), works for every protocol the clients speak (HTTP/2, upgrades for exec and port-forward), and the
//! same code serves `rkube cluster`'s forwarder for kubectl.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long one dial may take before the next server is tried.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);
/// How often each server is checked (a TCP connect).
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// How many checks in a row must fail before a server is marked down and its connections closed.
const FAILURES_TO_DOWN: u32 = 2;

/// Why the balancer could not start.
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    /// A server URL has no usable `host:port`.
    #[error("server URL {url:?}: {why}; write it as https://HOST:PORT")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The loopback listener could not be bound.
    #[error("listening on 127.0.0.1 for the API servers' balancer: {0}")]
    Listen(#[source] std::io::Error),
}

/// One API server behind the balancer.
struct Backend {
    addr: SocketAddr,
    healthy: AtomicBool,
    /// Bumped when the server is marked down: every connection relayed to it closes.
    epoch: watch::Sender<u64>,
}

/// The servers, in order of preference.
struct Backends(Vec<Backend>);

impl Backends {
    fn new(servers: &[SocketAddr]) -> Arc<Backends> {
        let all = servers
            .iter()
            .map(|a| Backend { addr: *a, healthy: AtomicBool::new(true), epoch: watch::Sender::new(0) })
            .collect();
        Arc::new(Backends(all))
    }

    /// The dial order: healthy servers first (in the given order), then the others (a check may be stale).
    fn order(&self) -> impl Iterator<Item = &Backend> {
        let healthy = self.0.iter().filter(|b| b.healthy.load(Ordering::Relaxed));
        healthy.chain(self.0.iter().filter(|b| !b.healthy.load(Ordering::Relaxed)))
    }
}

/// A balancer running on this process's runtime, listening on 127.0.0.1. Its task runs until the runtime
/// ends or the balancer is dropped.
pub struct Failover {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Failover {
    /// Binds 127.0.0.1 on a free port and relays to `servers` (in order of preference).
    pub async fn start(servers: Vec<SocketAddr>) -> Result<Failover, FailoverError> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(FailoverError::Listen)?;
        let addr = listener.local_addr().map_err(FailoverError::Listen)?;
        tracing::info!(%addr, ?servers, "API servers' balancer listening");
        let task = tokio::spawn(serve(listener, servers));
        Ok(Failover { addr, task })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Leaves the balancer running for the rest of the process (the runtime's) life.
    pub fn detach(self) {
        std::mem::forget(self);
    }
}

impl Drop for Failover {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Relays every connection `listener` accepts to the first of `servers` that answers, and health-checks them;
/// runs until cancelled. Connections are made from the network namespace of the thread the runtime runs on.
pub async fn serve(listener: TcpListener, servers: Vec<SocketAddr>) {
    let backends = Backends::new(&servers);
    let checker = tokio::spawn(health_checks(backends.clone()));
    // The checker stops with the listener loop (this future dropped or aborted).
    let _guard = AbortOnDrop(checker);
    loop {
        let client = match listener.accept().await {
            Ok((c, _)) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("balancer: accepting: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        tokio::spawn(relay(client, backends.clone()));
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Dials the servers in order; relays bytes until either side closes or the server is marked down.
async fn relay(mut client: TcpStream, backends: Arc<Backends>) {
    for backend in backends.order() {
        let mut down = backend.epoch.subscribe();
        let mut upstream = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(backend.addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(server = %backend.addr, "balancer: dialing: {e}");
                mark(backend, false);
                continue;
            }
            Err(_) => {
                tracing::debug!(server = %backend.addr, "balancer: dialing timed out");
                mark(backend, false);
                continue;
            }
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
            _ = down.changed() => tracing::debug!(server = %backend.addr, "balancer: server down, closing a connection"),
        }
        return;
    }
    tracing::warn!("balancer: no API server accepted a connection");
}

/// Records a server's health; a change to down closes its connections.
fn mark(backend: &Backend, healthy: bool) {
    let was = backend.healthy.swap(healthy, Ordering::Relaxed);
    if was && !healthy {
        tracing::warn!(server = %backend.addr, "API server unreachable; failing over");
        backend.epoch.send_modify(|e| *e += 1);
    } else if !was && healthy {
        tracing::info!(server = %backend.addr, "API server reachable again");
    }
}

/// Checks every server each [`HEALTH_INTERVAL`] with a TCP connect.
async fn health_checks(backends: Arc<Backends>) {
    let mut failures = vec![0u32; backends.0.len()];
    loop {
        let checks = backends.0.iter().map(|b| tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(b.addr)));
        let results = futures::future::join_all(checks).await;
        for ((backend, result), failed) in backends.0.iter().zip(results).zip(failures.iter_mut()) {
            match result {
                Ok(Ok(_)) => {
                    *failed = 0;
                    mark(backend, true);
                }
                _ => {
                    *failed += 1;
                    if *failed >= FAILURES_TO_DOWN {
                        mark(backend, false);
                    }
                }
            }
        }
        tokio::time::sleep(HEALTH_INTERVAL).await;
    }
}

/// The `host:port` of API server URLs (`https://HOST[:PORT][/...]`, port 443 by default), resolved.
pub async fn resolve(urls: &[String]) -> Result<Vec<SocketAddr>, FailoverError> {
    let mut out = Vec::new();
    for url in urls {
        let bad = |why: &str| FailoverError::Url { url: url.clone(), why: why.to_owned() };
        let rest = url.strip_prefix("https://").ok_or_else(|| bad("not an https:// URL"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        // `[v6]:port`, `[v6]`, `host:port` or `host`.
        let has_port = match authority.rfind(']') {
            Some(end) => authority[end..].contains(':'),
            None => authority.contains(':'),
        };
        let target = if has_port { authority.to_owned() } else { format!("{authority}:443") };
        let addrs = tokio::net::lookup_host(&target).await.map_err(|e| bad(&e.to_string()))?;
        out.extend(addrs.take(1));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server answering every connection with `tag`; returns its address and task.
    async fn tagged(tag: u8) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let _ = s.write_all(&[tag]).await;
                    let mut buf = [0u8; 16];
                    // Hold the connection open until the peer closes it.
                    while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                });
            }
        });
        (addr, task)
    }

    async fn first_byte(addr: SocketAddr) -> Option<u8> {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let mut b = [0u8; 1];
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await {
            Ok(Ok(1)) => Some(b[0]),
            _ => None,
        }
    }

    #[tokio::test]
    async fn prefers_the_first_and_skips_dead_servers() {
        // A port nothing listens on: bound, then closed.
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let (a, ta) = tagged(1).await;
        let (b, _tb) = tagged(2).await;
        let f = Failover::start(vec![dead, a, b]).await.unwrap();
        assert_eq!(first_byte(f.local_addr()).await, Some(1));
        // A connection relayed to `a` ends when `a` goes (its listener task aborted, connections dropped).
        let mut held = TcpStream::connect(f.local_addr()).await.unwrap();
        let mut byte = [0u8; 1];
        held.read_exact(&mut byte).await.unwrap();
        ta.abort();
        let _ = ta.await;
        // The health check marks `a` down within a few intervals: the held connection closes ...
        let mut rest = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(10), held.read(&mut rest)).await;
        assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
        // ... and new connections go to `b`.
        assert_eq!(first_byte(f.local_addr()).await, Some(2));
    }

    #[tokio::test]
    async fn urls() {
        let r = resolve(&["https://127.0.0.1:6443".into(), "https://127.0.0.1/x".into()]).await.unwrap();
        assert_eq!(r, vec!["127.0.0.1:6443".parse().unwrap(), "127.0.0.1:443".parse().unwrap()]);
        let e = resolve(&["http://x:1".into()]).await.unwrap_err().to_string();
        assert!(e.contains("https://"), "{e}");
    }
}
