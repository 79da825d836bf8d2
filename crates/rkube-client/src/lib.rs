//! What every rkube component that talks to the API server shares: client configurations (in-process
//! identities issued by the cluster CA), API error classification, a client-go style work queue with
//! per-key backoff, leader election on `coordination.k8s.io` Leases, core/v1 event recording with
//! aggregation and a spam filter, and the pod/owner facts controllers read alike.
//!
//! **Architecture Invariant:** nothing here touches the store; every call goes to the API server over HTTPS.

pub mod api;
pub mod backoff;
pub mod config;
mod error;
pub mod events;
pub mod failover;
pub mod informer;
pub mod leader;
pub mod lean;
pub mod pods;
pub mod queue;

use std::future::Future;

use tokio::sync::watch;

pub use error::{Error, Result};

/// Resolves once `stop` is set (or its sender is gone). Holds no borrow of the channel when done, so it
/// can sit in `select!` arms next to `.await`s.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Drives `task` (a controller stream, a loop that never ends on its own) until `stop` is set; `task`
/// ending by itself is an error naming `name`.
pub async fn until_stopped<E: From<Error>>(
    name: &'static str,
    task: impl Future<Output = ()>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), E> {
    tokio::select! {
        _ = task => Err(Error::Stopped(name).into()),
        _ = stopped(&mut stop) => Ok(()),
    }
}
