//! Deleting everything in a namespace: every namespaced resource that discovery lists with `delete`,
//! by `deletecollection` where served (else list and delete one by one), then a list to see what is
//! left and which finalizers hold it.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::core::PartialObjectMeta;

use super::conditions::Findings;
use crate::discovery::Resource;
use rkube_client::api::{is_method_not_allowed, is_not_found};

/// Upstream's guess of how long pending finalizers take (`finalizerEstimateSeconds`).
const FINALIZER_ESTIMATE: Duration = Duration::from_secs(15);

/// What a pass did: the findings for the status conditions, and when content should be gone.
#[derive(Debug, Default)]
pub(crate) struct Pass {
    /// Remaining content and errors.
    pub(crate) findings: Findings,
    /// Upstream's estimate of how long the remaining content takes to go.
    pub(crate) estimate: Duration,
}

impl Pass {
    /// Whether the namespace is empty and every resource answered.
    pub(crate) fn done(&self) -> bool {
        self.findings.remaining.values().all(|n| *n == 0) && self.findings.content_errors.is_empty()
    }
}

/// Deletes the content of `namespace` once over `resources`.
pub(crate) async fn delete_all_content(client: &Client, resources: &[Resource], namespace: &str) -> Pass {
    let mut pass = Pass::default();
    for r in resources.iter().filter(|r| r.namespaced && r.supports("delete")) {
        if let Err(e) = delete_resource(client, r, namespace, &mut pass).await {
            pass.findings.content_errors.push(format!("failed to delete {}: {e}", r.display()));
        }
    }
    pass
}

async fn delete_resource(client: &Client, r: &Resource, namespace: &str, pass: &mut Pass) -> Result<(), kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &r.ar);
    // Background, as upstream: the garbage collector takes care of what these objects own.
    let dp = DeleteParams::background();
    let mut each = !r.supports("deletecollection");
    if !each {
        match api.delete_collection(&dp, &ListParams::default()).await {
            Ok(_) => {}
            Err(e) if is_method_not_allowed(&e) || is_not_found(&e) => each = true,
            Err(e) => return Err(e),
        }
    }
    if !r.supports("list") {
        return Ok(());
    }
    let meta: Api<PartialObjectMeta<DynamicObject>> = Api::namespaced_with(client.clone(), namespace, &r.ar);
    let mut items = meta.list(&ListParams::default()).await?.items;
    if each && !items.is_empty() {
        for item in &items {
            let Some(name) = item.metadata.name.as_deref() else { continue };
            match api.delete(name, &dp).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        items = meta.list(&ListParams::default()).await?.items;
    }
    if items.is_empty() {
        return Ok(());
    }
    *pass.findings.remaining.entry(r.display()).or_default() += items.len();
    for item in &items {
        let finalizers = item.metadata.finalizers.as_deref().unwrap_or_default();
        for f in finalizers {
            *pass.findings.finalizers.entry(f.clone()).or_default() += 1;
        }
        let grace = item.metadata.deletion_grace_period_seconds.unwrap_or(0).max(0) as u64;
        let estimate = if finalizers.is_empty() {
            Duration::from_secs(grace)
        } else {
            FINALIZER_ESTIMATE.max(Duration::from_secs(grace))
        };
        pass.estimate = pass.estimate.max(estimate);
    }
    Ok(())
}
