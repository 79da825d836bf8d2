//! The shape shared by controllers that keep one named object in every active namespace (the `default`
//! ServiceAccount, the `kube-root-ca.crt` ConfigMap): reconcile a namespace when it appears or changes and
//! when its object changes or goes, back off per namespace on failures.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tokio::sync::watch;

use crate::error::{Error, Result};
use rkube_client::backoff::KeyedBackoff;

/// Makes one namespace's object right.
pub(crate) trait Ensure: Send + Sync + 'static {
    /// Creates or repairs the object in `namespace` (an active namespace).
    fn ensure(&self, client: &Client, namespace: &str) -> impl Future<Output = Result<()>> + Send;
}

/// Whether objects may be created in `ns` (not being deleted).
pub(crate) fn active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

struct Ctx<E> {
    client: Client,
    ensure: E,
    name: &'static str,
    backoff: KeyedBackoff<String>,
}

/// Runs controller `name`, keeping the object `child` of kind `K` right in every active namespace with
/// `ensure`, until `stop` is set.
pub(crate) async fn run<K, E>(
    name: &'static str,
    client: Client,
    child: &'static str,
    ensure: E,
    stop: watch::Receiver<bool>,
) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
    E: Ensure,
{
    let namespaces = Api::<Namespace>::all(client.clone());
    let children = Api::<K>::all(client.clone());
    let ctx = Arc::new(Ctx {
        client,
        ensure,
        name,
        backoff: KeyedBackoff::new(Duration::from_millis(200), Duration::from_secs(300)),
    });
    let controller = Controller::new(namespaces, watcher::Config::default())
        // Only the one object per namespace is watched, not every object of the kind.
        .watches(children, watcher::Config::default().fields(&format!("metadata.name={child}")), |o: K| {
            o.namespace().map(|ns| ObjectRef::new(&ns))
        })
        .run(reconcile::<E>, error_policy::<E>, ctx)
        .for_each(move |r| async move {
            if let Err(e) = r
                && !matches!(
                    e,
                    kube::runtime::controller::Error::ReconcilerFailed(..)
                        | kube::runtime::controller::Error::ObjectNotFound(_)
                )
            {
                tracing::warn!(controller = name, error = %e, "watch");
            }
        });
    crate::until_stopped(name, controller, stop).await
}

async fn reconcile<E: Ensure>(ns: Arc<Namespace>, ctx: Arc<Ctx<E>>) -> Result<Action> {
    if active(&ns) {
        ctx.ensure.ensure(&ctx.client, &ns.name_any()).await?;
    }
    ctx.backoff.reset(&ns.name_any());
    Ok(Action::await_change())
}

fn error_policy<E: Ensure>(ns: Arc<Namespace>, err: &Error, ctx: Arc<Ctx<E>>) -> Action {
    let delay = ctx.backoff.next(&ns.name_any());
    tracing::warn!(controller = ctx.name, namespace = %ns.name_any(), error = %err, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    #[test]
    fn terminating_namespaces_are_not_active() {
        let mut ns = Namespace::default();
        assert!(active(&ns));
        ns.status = Some(NamespaceStatus { phase: Some("Terminating".into()), ..Default::default() });
        assert!(!active(&ns));
        ns.status = None;
        ns.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert!(!active(&ns));
    }
}
