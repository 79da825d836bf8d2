//! Registering the node with the API server (created, or an existing one of our name taken over), retried
//! with back-off until it works or the agent is stopped, as upstream's `registerWithAPIServer`.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PostParams};
use rkube_client::api::{is_already_exists, is_conflict, is_not_found};
use tokio::sync::watch;

use crate::node::{self, Facts};
use crate::{Error, Result};

/// Upstream's registration back-off ceiling.
const MAX_BACKOFF: Duration = Duration::from_secs(7);

/// Creates or takes over our Node; returns it as the server has it.
pub(crate) async fn register(client: &kube::Client, facts: &Facts, stop: &mut watch::Receiver<bool>) -> Result<Node> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut delay = Duration::from_millis(100);
    loop {
        match try_once(&nodes, facts).await {
            Ok(n) => return Ok(n),
            Err(e) => {
                tracing::warn!(node = %facts.name, "unable to register node with the API server: {e}; retrying in {delay:?}");
            }
        }
        if crate::sleep_or_stop(delay, stop).await {
            return Err(Error::Cancelled);
        }
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

async fn try_once(nodes: &Api<Node>, facts: &Facts) -> Result<Node, kube::Error> {
    match nodes.create(&PostParams::default(), &node::initial(facts)).await {
        Ok(n) => {
            tracing::info!(node = %facts.name, "successfully registered node");
            return Ok(n);
        }
        Err(e) if is_already_exists(&e) => {}
        Err(e) => return Err(e),
    }
    // A node of our name exists (this agent restarted, or the node was registered before): take it over.
    loop {
        let existing = nodes.get(&facts.name).await?;
        let Some(changed) = node::reconciled(facts, &existing) else { return Ok(existing) };
        match nodes.replace(&facts.name, &PostParams::default(), &changed).await {
            Ok(n) => return Ok(n),
            Err(e) if is_conflict(&e) || is_not_found(&e) => continue,
            Err(e) => return Err(e),
        }
    }
}
