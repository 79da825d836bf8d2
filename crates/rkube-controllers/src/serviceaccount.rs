//! The service-account controller: a `default` ServiceAccount in every active namespace, created again
//! when deleted (upstream's `serviceaccount-controller`).

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::per_namespace::{self, Ensure};
use rkube_client::api::{is_already_exists, is_namespace_terminating, is_not_found};

/// The account every namespace gets.
pub(crate) const DEFAULT: &str = "default";

struct DefaultAccount;

impl Ensure for DefaultAccount {
    async fn ensure(&self, client: &Client, namespace: &str) -> Result<()> {
        let api = Api::<ServiceAccount>::namespaced(client.clone(), namespace);
        match api.get_opt(DEFAULT).await {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => {}
            Err(e) => return Err(Error::api(format!("reading serviceaccount {namespace}/{DEFAULT}"), e)),
        }
        let sa = ServiceAccount {
            metadata: ObjectMeta { name: Some(DEFAULT.to_owned()), ..ObjectMeta::default() },
            ..ServiceAccount::default()
        };
        match api.create(&PostParams::default(), &sa).await {
            Ok(_) => {
                tracing::info!(%namespace, "created the default service account");
                Ok(())
            }
            // Someone else created it, or the namespace went or is going: nothing to retry.
            Err(e) if is_already_exists(&e) || is_not_found(&e) || is_namespace_terminating(&e) => Ok(()),
            Err(e) => Err(Error::api(format!("creating serviceaccount {namespace}/{DEFAULT}"), e)),
        }
    }
}

/// Runs until `stop` is set.
pub(crate) async fn run(client: Client, stop: watch::Receiver<bool>) -> Result<()> {
    per_namespace::run::<ServiceAccount, _>("serviceaccount", client, DEFAULT, DefaultAccount, stop).await
}
