//! The namespace controller: when a namespace is being deleted, delete everything in it, wait until it is
//! gone, then remove the `kubernetes` finalizer through the `finalize` subresource; the API server then
//! deletes the namespace. Status conditions say what the deletion waits for, as upstream's.

mod conditions;
mod deleter;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::sync::watch;

use crate::discovery::Resources;
use crate::error::{Error, Result};
use conditions::Findings;
use rkube_client::api::is_not_found;
use rkube_client::backoff::KeyedBackoff;

/// The finalizer this controller owns in `spec.finalizers` (upstream's `FinalizerKubernetes`).
const FINALIZER: &str = "kubernetes";

struct Ctx {
    client: Client,
    backoff: KeyedBackoff<String>,
}

fn ours_to_finalize(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_some()
        && ns.spec.as_ref().and_then(|s| s.finalizers.as_ref()).is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

/// Runs until `stop` is set.
pub(crate) async fn run(client: Client, stop: watch::Receiver<bool>) -> Result<()> {
    let api = Api::<Namespace>::all(client.clone());
    let ctx = Arc::new(Ctx { client, backoff: KeyedBackoff::new(Duration::from_secs(1), Duration::from_secs(60)) });
    let controller =
        Controller::new(api, watcher::Config::default()).run(reconcile, error_policy, ctx).for_each(|r| async move {
            if let Err(
                kube::runtime::controller::Error::ObjectNotFound(_)
                | kube::runtime::controller::Error::ReconcilerFailed(..),
            ) = r
            {
                // Reconcile failures are logged by the error policy.
            } else if let Err(e) = r {
                tracing::warn!(error = %e, "namespace controller");
            }
        });
    crate::until_stopped("namespace", controller, stop).await
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action> {
    let name = ns.name_any();
    if !ours_to_finalize(&ns) {
        ctx.backoff.reset(&name);
        return Ok(Action::await_change());
    }
    let api = Api::<Namespace>::all(ctx.client.clone());
    // The cached copy may be stale (another finalize, a re-created namespace): act on the live one.
    let mut latest = match api.get(&name).await {
        Ok(n) => n,
        Err(e) if is_not_found(&e) => return Ok(Action::await_change()),
        Err(e) => return Err(Error::api(format!("reading namespace {name}"), e)),
    };
    if !ours_to_finalize(&latest) {
        return Ok(Action::await_change());
    }
    let discovered = Resources::discover(&ctx.client).await;
    let pass = match &discovered {
        Ok(resources) => deleter::delete_all_content(&ctx.client, &resources.preferred(), &name).await,
        Err(e) => deleter::Pass {
            findings: Findings { discovery_error: Some(e.to_string()), ..Findings::default() },
            ..Default::default()
        },
    };
    let status = latest.status.clone().unwrap_or_default();
    let mut conds = status.conditions.clone().unwrap_or_default();
    let changed = conditions::update(&mut conds, &pass.findings);
    if changed || status.phase.as_deref() != Some("Terminating") {
        let patch = json!({ "status": { "phase": "Terminating", "conditions": conds } });
        latest = match api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(n) => n,
            Err(e) if is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(Error::api(format!("updating the status of namespace {name}"), e)),
        };
    }
    discovered?;
    if !pass.done() {
        // Upstream waits half the estimate plus a second before looking again.
        let retry_after = pass.estimate / 2 + Duration::from_secs(1);
        return Err(Error::ContentRemaining { namespace: name, retry_after });
    }
    let mut finalized = latest;
    if let Some(spec) = finalized.spec.as_mut() {
        spec.finalizers =
            Some(spec.finalizers.take().unwrap_or_default().into_iter().filter(|f| f != FINALIZER).collect());
    }
    match api.replace_subresource("finalize", &name, &PostParams::default(), &finalized).await {
        Ok(_) => tracing::info!(namespace = %name, "namespace content deleted; finalized"),
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(Error::api(format!("finalizing namespace {name}"), e)),
    }
    ctx.backoff.reset(&name);
    Ok(Action::await_change())
}

fn error_policy(ns: Arc<Namespace>, err: &Error, ctx: Arc<Ctx>) -> Action {
    let delay = ctx.backoff.next(&ns.name_any());
    match err {
        Error::ContentRemaining { retry_after, .. } => {
            tracing::debug!(namespace = %ns.name_any(), "content remains");
            Action::requeue(delay.max(*retry_after))
        }
        e => {
            tracing::warn!(namespace = %ns.name_any(), error = %e, retry_in = ?delay, "namespace deletion");
            Action::requeue(delay)
        }
    }
}
