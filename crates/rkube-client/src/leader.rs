//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it, so that
//! several servers on one store run one set of controllers: take the lease when it is free or its holder
//! has not renewed it for a lease duration (measured on the local clock, never by comparing clocks),
//! renew it every retry period, stop acting when renewal fails for the renew deadline, release it on
//! shutdown.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::api::{is_already_exists, is_conflict, is_not_found};
use crate::error::{Error, Result};
use crate::stopped;

/// The namespace of the components' leases (upstream's).
pub const LEASE_NAMESPACE: &str = "kube-system";
/// How long a holder's lease lasts without renewal (upstream's `--leader-elect-lease-duration`).
const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long the leader keeps acting while renewals fail (`--leader-elect-renew-deadline`).
const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often candidates try and the leader renews (`--leader-elect-retry-period`).
const RETRY_PERIOD: Duration = Duration::from_secs(2);
/// How long stopping controllers may take before their task is aborted.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The last lease record seen and when it was first seen unchanged (local clock).
struct Observed {
    holder: String,
    renew: Option<MicroTime>,
    at: Instant,
}

/// One candidate's view of the lease.
struct Elector {
    api: Api<Lease>,
    name: &'static str,
    identity: String,
    observed: Option<Observed>,
    /// The lease as this process last wrote it, while it holds it.
    last: Option<Lease>,
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

impl Elector {
    fn new(client: Client, name: &'static str, identity: String) -> Elector {
        Elector { api: Api::namespaced(client, LEASE_NAMESPACE), name, identity, observed: None, last: None }
    }

    /// One attempt: `Ok(true)` when this process holds the lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool> {
        // The leader renews from the lease it last wrote (one request, as client-go's optimistic renewal);
        // a conflict means someone else wrote it, and the full path below reads it again.
        if let Some(mut mine) = self.last.take() {
            if let Some(spec) = mine.spec.as_mut() {
                spec.renew_time = Some(now());
            }
            match self.api.replace(self.name, &PostParams::default(), &mine).await {
                Ok(l) => {
                    self.observe_own(&l);
                    return Ok(true);
                }
                Err(e) if is_conflict(&e) || is_not_found(&e) => {}
                Err(e) => return Err(Error::api("renewing the leader-election lease", e)),
            }
        }
        let current = match self.api.get(self.name).await {
            Ok(l) => l,
            Err(e) if is_not_found(&e) => return self.create().await,
            Err(e) => return Err(Error::api("reading the leader-election lease", e)),
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let changed = self.observed.as_ref().is_none_or(|o| o.holder != holder || o.renew != spec.renew_time);
        if changed {
            self.observed =
                Some(Observed { holder: holder.clone(), renew: spec.renew_time.clone(), at: Instant::now() });
        }
        let duration = spec.lease_duration_seconds.map_or(LEASE_DURATION, |s| Duration::from_secs(s.max(1) as u64));
        let seen_for = self.observed.as_ref().map_or(Duration::ZERO, |o| o.at.elapsed());
        if !may_take(&holder, &self.identity, seen_for, duration) {
            return Ok(false);
        }
        let mut next = current;
        let ours = holder == self.identity;
        next.spec = Some(LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: if ours { spec.acquire_time.clone() } else { Some(now()) },
            renew_time: Some(now()),
            lease_transitions: Some(if ours {
                spec.lease_transitions.unwrap_or(0)
            } else {
                spec.lease_transitions.unwrap_or(0) + 1
            }),
            ..spec
        });
        // The update carries the resourceVersion read: a concurrent candidate's write makes it a 409.
        match self.api.replace(self.name, &PostParams::default(), &next).await {
            Ok(l) => {
                self.observe_own(&l);
                Ok(true)
            }
            Err(e) if is_conflict(&e) || is_not_found(&e) => Ok(false),
            Err(e) => Err(Error::api("updating the leader-election lease", e)),
        }
    }

    async fn create(&mut self) -> Result<bool> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.to_owned()),
                namespace: Some(LEASE_NAMESPACE.to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(l) => {
                self.observe_own(&l);
                Ok(true)
            }
            Err(e) if is_already_exists(&e) => Ok(false),
            Err(e) => Err(Error::api("creating the leader-election lease", e)),
        }
    }

    /// Remembers the lease this process just wrote.
    fn observe_own(&mut self, lease: &Lease) {
        let renew = lease.spec.as_ref().and_then(|s| s.renew_time.clone());
        self.observed = Some(Observed { holder: self.identity.clone(), renew, at: Instant::now() });
        self.last = Some(lease.clone());
    }

    /// Gives the lease up (holder emptied, as client-go's ReleaseOnCancel) so that a standby takes over
    /// at once instead of after a lease duration. Best effort: the lease expires anyway.
    async fn release(&mut self) {
        self.last = None;
        let Ok(mut lease) = self.api.get(self.name).await else { return };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        lease.spec = Some(spec);
        match self.api.replace(self.name, &PostParams::default(), &lease).await {
            Ok(_) => tracing::info!(identity = %self.identity, lease = self.name, "released the lease"),
            Err(e) => tracing::warn!(error = %e, lease = self.name, "could not release the lease"),
        }
    }
}

/// Whether `me` may write the lease now held by `holder` (empty: released), whose record has looked the
/// same for `seen_for` on the local clock: it is free, ours, or its holder stopped renewing a lease duration ago.
fn may_take(holder: &str, me: &str, seen_for: Duration, lease_duration: Duration) -> bool {
    holder.is_empty() || holder == me || seen_for >= lease_duration
}

/// How a term as leader ended.
enum Term<E> {
    Shutdown,
    Lost,
    Ended(Result<(), E>),
}

/// Runs `lead` only while holding the lease `kube-system/<lease>` (e.g. `kube-controller-manager`,
/// `kube-scheduler`) as `identity` (unique per process, as upstream's `hostname_uuid`). `lead` gets a stop signal: it is set when leadership is lost
/// (the controllers stop, and this process becomes a candidate again) or at shutdown. Returns when
/// `shutdown` is set, or with the error of `lead` (controllers never end on their own).
pub async fn run_elected<F, Fut, E>(
    client: Client,
    lease: &'static str,
    identity: String,
    mut shutdown: watch::Receiver<bool>,
    mut lead: F,
) -> Result<(), E>
where
    F: FnMut(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: From<Error> + Send + 'static,
{
    let mut elector = Elector::new(client, lease, identity.clone());
    loop {
        loop {
            match elector.try_acquire_or_renew().await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election"),
            }
            tokio::select! {
                _ = tokio::time::sleep(RETRY_PERIOD) => {}
                _ = stopped(&mut shutdown) => return Ok(()),
            }
        }
        tracing::info!(%identity, lease = %format!("{LEASE_NAMESPACE}/{lease}"), "became leader");
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut task = tokio::spawn(lead(stop_rx));
        let mut renewed = Instant::now();
        let term = loop {
            tokio::select! {
                _ = tokio::time::sleep(RETRY_PERIOD) => match elector.try_acquire_or_renew().await {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => break Term::Lost,
                    Err(e) if renewed.elapsed() >= RENEW_DEADLINE => {
                        tracing::warn!(error = %e, "could not renew the lease within the renew deadline");
                        break Term::Lost;
                    }
                    Err(e) => tracing::warn!(error = %e, "renewing the lease"),
                },
                r = &mut task => break Term::Ended(r.unwrap_or_else(|_| Err(Error::Stopped("the elected task").into()))),
                _ = stopped(&mut shutdown) => break Term::Shutdown,
            }
        };
        match term {
            Term::Ended(r) => {
                elector.release().await;
                return match r {
                    Ok(()) => Err(Error::Stopped("the elected task").into()),
                    Err(e) => Err(e),
                };
            }
            Term::Shutdown | Term::Lost => {
                let _ = stop_tx.send(true);
                if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
                    task.abort();
                }
                if matches!(term, Term::Shutdown) {
                    elector.release().await;
                    return Ok(());
                }
                tracing::warn!(%identity, lease, "lost the lease: stopped, standing by");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_taken_when_free_ours_or_expired_on_our_clock() {
        let d = LEASE_DURATION;
        assert!(may_take("", "me", Duration::ZERO, d));
        assert!(may_take("me", "me", Duration::ZERO, d));
        assert!(!may_take("other", "me", Duration::from_secs(14), d));
        assert!(may_take("other", "me", Duration::from_secs(15), d));
    }
}
