//! The connection to etcd: one client per member, requests with a deadline, failover to the next member, errors
//! that name the endpoint and the operation.
//!
//! etcd-client's own multi-endpoint channel keeps sending requests to a member that is down (they fail with
//! "connection refused"), so failover is done here, as etcd's Go client does it: a request goes to the member that
//! last answered; on a connection failure it moves to the next. Reads and watch creations are retried on any
//! connection failure; writes only when the failure happened before the request was sent, since a write that
//! reached etcd may have been applied.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use etcd_client::{Client, GetOptions, KvClient, WatchClient};
use rkube_store::{Error, Result};

use crate::config::EtcdConfig;
use crate::errors::{Context, Kind, classify, unsent};

/// The largest gRPC message accepted from etcd: as upstream's clientv3 (`math.MaxInt32`), so that a list page of
/// large values or a watch response carrying many of them is never refused by the client.
const MAX_MESSAGE_SIZE: usize = i32::MAX as usize;

/// How long one request may wait for one member. etcd answers or fails requests itself within seconds (its own
/// request timeout is about 7 s); this only guards against a server that accepted the connection and went silent.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A request that failed, with the two etcd answers that callers turn into revision errors kept apart.
/// Each carries the error with its context, for callers that did not ask for an old revision.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The revision asked for was compacted.
    Compacted(Error),
    /// The revision asked for is newer than etcd's current one.
    FutureRevision(Error),
    /// Anything else.
    Other(Error),
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        match f {
            Failure::Compacted(e) | Failure::FutureRevision(e) | Failure::Other(e) => e,
        }
    }
}

/// Whether a request may be sent again to another member after a connection failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads and watch creations: always.
    Idempotent,
    /// Writes: only if the request never reached etcd.
    IfUnsent,
}

/// One etcd member's clients.
pub(crate) struct Member {
    pub(crate) endpoint: String,
    pub(crate) kv: KvClient,
    pub(crate) watch: WatchClient,
}

/// A connected client: cheap to clone, shared by the store and its watch tasks.
#[derive(Clone)]
pub(crate) struct Conn {
    members: Arc<[Member]>,
    /// The member that answered last: where requests go first.
    preferred: Arc<AtomicUsize>,
    pub(crate) ctx: Arc<Context>,
    /// The highest compacted revision this client has learnt of (see `compaction.rs`).
    pub(crate) compacted: Arc<AtomicI64>,
}

impl Conn {
    /// Connects to the endpoints; fails with [`Error::Unavailable`] naming each endpoint and its problem
    /// if none of them answers within the connect timeout.
    pub(crate) async fn connect(config: &EtcdConfig) -> Result<Conn> {
        let options = config.connect_options()?;
        let endpoints = config.normalized_endpoints();
        let ctx = Context {
            location: endpoints.join(","),
            https: endpoints.iter().any(|e| e.starts_with("https://")),
            tls_files: config.tls_files(),
            client_cert: config.cert_file.is_some(),
        };
        let mut members = Vec::with_capacity(endpoints.len());
        for endpoint in &endpoints {
            // No I/O here: channels connect on first use.
            let client = Client::connect([endpoint], Some(options.clone()))
                .await
                .map_err(|e| ctx.error(endpoint, "connecting", e))?;
            members.push(Member {
                endpoint: endpoint.clone(),
                kv: client.kv_client().max_decoding_message_size(MAX_MESSAGE_SIZE),
                watch: client.watch_client().max_decoding_message_size(MAX_MESSAGE_SIZE),
            });
        }
        // Probe every member, so that a wrong URL, a down server or a TLS mismatch shows now, per endpoint.
        let probes = members.iter().map(|m| async {
            let mut kv = m.kv.clone();
            match tokio::time::timeout(
                config.connect_timeout,
                kv.get(vec![0u8], Some(GetOptions::new().with_count_only())),
            )
            .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(ctx.unreachable(&e, true)),
                Err(_) => Err(ctx.silent(config.connect_timeout)),
            }
        });
        let results = futures::future::join_all(probes).await;
        let preferred = results.iter().position(|r| r.is_ok());
        let failures: Vec<(String, String)> =
            endpoints.iter().zip(results).filter_map(|(ep, r)| r.err().map(|why| (ep.clone(), why))).collect();
        let Some(preferred) = preferred else {
            return Err(ctx.none_reachable("connecting", failures));
        };
        for (ep, why) in &failures {
            // The cluster is usable through the others; requests fail over to this one when it is back.
            tracing::warn!(endpoint = %ep, "etcd endpoint does not answer: {why}");
        }
        Ok(Conn {
            members: members.into(),
            preferred: Arc::new(AtomicUsize::new(preferred)),
            ctx: Arc::new(ctx),
            compacted: Arc::new(AtomicI64::new(0)),
        })
    }

    /// Runs one request with a deadline, starting with the member that answered last and failing over to the
    /// others as `retry` allows. `op` names the request in errors ("get /registry/pods/x"); `call` makes the
    /// request on one member.
    pub(crate) async fn request<T, Fut>(
        &self,
        op: impl Fn() -> String,
        timeout: Duration,
        retry: Retry,
        mut call: impl FnMut(&Member) -> Fut,
    ) -> std::result::Result<T, Failure>
    where
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let first = self.preferred.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        for i in 0..self.members.len() {
            let index = (first + i) % self.members.len();
            let member = &self.members[index];
            let e = match tokio::time::timeout(timeout, call(member)).await {
                Ok(Ok(v)) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(v);
                }
                Ok(Err(e)) => e,
                Err(_) => {
                    let why = self.ctx.silent(timeout);
                    if retry == Retry::IfUnsent {
                        return Err(Failure::Other(self.ctx.write_outcome_unknown(&member.endpoint, &op(), &why)));
                    }
                    failures.push((member.endpoint.clone(), why));
                    continue;
                }
            };
            match classify(&e) {
                Kind::Compacted => return Err(Failure::Compacted(self.ctx.error(&member.endpoint, &op(), e))),
                Kind::FutureRevision => {
                    return Err(Failure::FutureRevision(self.ctx.error(&member.endpoint, &op(), e)));
                }
                Kind::Unreachable => {
                    let why = self.ctx.unreachable(&e, false);
                    if retry == Retry::IfUnsent && !unsent(&e) {
                        return Err(Failure::Other(self.ctx.write_outcome_unknown(&member.endpoint, &op(), &why)));
                    }
                    failures.push((member.endpoint.clone(), why));
                }
                Kind::TooLarge | Kind::Other => return Err(Failure::Other(self.ctx.error(&member.endpoint, &op(), e))),
            }
        }
        Err(Failure::Other(self.ctx.none_reachable(&op(), failures)))
    }
}
