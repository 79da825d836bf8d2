//! What `rkube controller-manager` and `rkube scheduler` share as processes of their own: the status port,
//! waiting until the component reached the API, and a shutdown that releases its lease.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};

/// The status port's settings; `port` 0 serves none.
pub(crate) struct Status {
    pub(crate) bind: IpAddr,
    pub(crate) port: u16,
    /// Client certificates this CA signed may read `/metrics`.
    pub(crate) client_ca_pem: String,
}

/// Runs a component started by `start(stop, ready)` until it fails or the process is told to stop.
pub(crate) async fn run<E>(
    name: &str,
    status: Status,
    health: Arc<rkube_status::Health>,
    start: impl FnOnce(watch::Receiver<bool>, watch::Sender<bool>) -> JoinHandle<Result<(), E>>,
) -> anyhow::Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let (stop_tx, stop) = watch::channel(false);
    if status.port != 0 {
        let config = rkube_status::StatusConfig {
            addr: SocketAddr::new(status.bind, status.port),
            client_ca_pem: status.client_ca_pem,
            sans: vec![crate::netinfo::hostname()],
        };
        let server = rkube_status::bind(&config, health).await.context("the status port (--secure-port)")?;
        eprintln!("status: https://{}/healthz", server.local_addr());
        tokio::spawn(server.run(stop.clone()));
    }
    let stop_for_task = stop.clone();
    let mut task = self::start(name, |ready| start(stop_for_task, ready)).await?;
    println!("rkube {name} is ready");
    let outcome = tokio::select! {
        r = &mut task => Err(ended(name, r)),
        _ = crate::signals::terminated() => { tracing::info!("shutting down"); Ok(()) }
    };
    // Stopping releases the lease, so a standby takes over at once.
    let _ = stop_tx.send(true);
    if !task.is_finished() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), &mut task).await;
    }
    outcome
}

/// Spawns a component with `start` (given its readiness sender) and waits until it reached the API.
pub(crate) async fn start<E>(
    what: &str,
    start: impl FnOnce(watch::Sender<bool>) -> JoinHandle<Result<(), E>>,
) -> anyhow::Result<JoinHandle<Result<(), E>>>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let (ready_tx, mut ready) = watch::channel(false);
    let mut task = start(ready_tx);
    tokio::select! {
        r = ready.wait_for(|r| *r) => {
            if r.is_err() {
                // The component dropped its readiness sender: it failed; its error says why.
                (&mut task).await.with_context(|| format!("the {what} task panicked"))?.with_context(|| format!("starting the {what}"))?;
                anyhow::bail!("the {what} stopped before it was ready");
            }
        }
        r = &mut task => {
            r.with_context(|| format!("the {what} task panicked"))?.with_context(|| format!("starting the {what}"))?;
            anyhow::bail!("the {what} stopped");
        }
    }
    Ok(task)
}

/// Waits for a component that may not run here (then forever).
pub(crate) async fn finished<E>(task: Option<&mut JoinHandle<Result<(), E>>>) -> Result<Result<(), E>, JoinError> {
    match task {
        Some(t) => t.await,
        None => std::future::pending().await,
    }
}

/// Why a component that should run until shutdown ended.
pub(crate) fn ended<E>(what: &str, r: Result<Result<(), E>, JoinError>) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    match r {
        Ok(Err(e)) => anyhow::Error::new(e).context(format!("the {what} failed")),
        Ok(Ok(())) => anyhow::anyhow!("the {what} stopped"),
        Err(e) => anyhow::Error::new(e).context(format!("the {what} task panicked")),
    }
}
