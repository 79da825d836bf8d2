//! The resource quota controller: keeps every ResourceQuota's `status.hard` (its `spec.hard`) and
//! `status.used` (what the namespace's objects use, from `usage.rs`) current, as upstream's
//! `pkg/controller/resourcequota`. Quotas are recomputed when they change, when an object of a kind
//! they count changes (the shared informers for the common kinds other controllers cache anyway,
//! metadata-only watches of Secrets and ConfigMaps), and on a full resync every 5 minutes.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, ResourceQuotaStatus, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::core::{GroupVersionKind, PartialObjectMeta};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use rkube_client::api::{is_conflict, is_not_found};
use rkube_client::informer::{Change, Informer, SharedInformers};
use rkube_client::queue::WorkQueue;
use rkube_client::{Error, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;

use crate::usage::{self, Kind};

/// Upstream's `--resource-quota-sync-period` default.
const RESYNC: Duration = Duration::from_secs(300);

/// Kinds watched for changes (others are counted at resync): group, version, kind, plural.
const MONITORED: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "Pod", "pods"),
    ("", "v1", "Service", "services"),
    ("", "v1", "ConfigMap", "configmaps"),
    ("", "v1", "Secret", "secrets"),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    ("", "v1", "ReplicationController", "replicationcontrollers"),
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "ReplicaSet", "replicasets"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("apps", "v1", "DaemonSet", "daemonsets"),
    ("batch", "v1", "Job", "jobs"),
    ("batch", "v1", "CronJob", "cronjobs"),
];

type Key = (String, String);

fn api_resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn key_of(q: &ResourceQuota) -> Key {
    (q.namespace().unwrap_or_default(), q.name_any())
}

/// Queues the quotas of `ns` (`None`: of every namespace) that count `kind` (`None`: every quota).
fn enqueue(queue: &WorkQueue<Key>, quotas: &Informer<ResourceQuota>, ns: Option<&str>, kind: Option<&Kind>) {
    let candidates = match ns {
        Some(ns) => quotas.list_namespace(ns),
        None => quotas.list(),
    };
    for q in candidates {
        let counts = || {
            let hard = q.spec.as_ref().and_then(|s| s.hard.as_ref());
            hard.into_iter().flatten().any(|(name, _)| usage::kind_of(name).as_ref() == kind)
        };
        if kind.is_none() || counts() {
            queue.add(key_of(&q));
        }
    }
}

/// Queues the quotas counting `counted` as objects of the shared informer of `K` change.
fn on_shared<K>(
    informers: &SharedInformers,
    queue: &Arc<WorkQueue<Key>>,
    quotas: &Informer<ResourceQuota>,
    counted: Kind,
) where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default,
{
    let (q, quotas) = (queue.clone(), quotas.clone());
    informers.get::<K>().on_change(move |c| match c {
        Change::Object { old, new } => {
            if let Some(o) = new.or(old) {
                enqueue(&q, &quotas, Some(o.meta().namespace.as_deref().unwrap_or_default()), Some(&counted))
            }
        }
        Change::Relisted => enqueue(&q, &quotas, None, Some(&counted)),
    });
}

/// Follows changes of the monitored kind `counted` through the shared informers when another controller
/// of the process caches its objects in full anyway; `false` for the kinds nobody else caches.
fn watch_shared(
    informers: &SharedInformers,
    queue: &Arc<WorkQueue<Key>>,
    quotas: &Informer<ResourceQuota>,
    counted: &Kind,
) -> bool {
    let watch = match (counted.0.as_str(), counted.1.as_str()) {
        ("", "pods") => on_shared::<Pod>,
        ("", "services") => on_shared::<Service>,
        ("", "persistentvolumeclaims") => on_shared::<PersistentVolumeClaim>,
        ("", "replicationcontrollers") => on_shared::<ReplicationController>,
        ("apps", "deployments") => on_shared::<Deployment>,
        ("apps", "replicasets") => on_shared::<ReplicaSet>,
        ("apps", "statefulsets") => on_shared::<StatefulSet>,
        ("apps", "daemonsets") => on_shared::<DaemonSet>,
        ("batch", "jobs") => on_shared::<Job>,
        ("batch", "cronjobs") => on_shared::<CronJob>,
        _ => return false,
    };
    watch(informers, queue, quotas, counted.clone());
    true
}

/// A metadata-only watch of `ar` queueing the quotas counting `counted`: for the kinds (Secrets,
/// ConfigMaps) no controller caches in full, so that none is held whole just to notice changes.
async fn watch_metadata(
    client: Client,
    ar: ApiResource,
    queue: Arc<WorkQueue<Key>>,
    quotas: Informer<ResourceQuota>,
    counted: Kind,
) {
    let api = Api::<PartialObjectMeta<DynamicObject>>::all_with(client, &ar);
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o)) => {
                enqueue(&queue, &quotas, Some(o.metadata.namespace.as_deref().unwrap_or_default()), Some(&counted))
            }
            Ok(watcher::Event::InitDone) => enqueue(&queue, &quotas, None, Some(&counted)),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "watch failed; retrying"),
        }
    }
}

/// Runs the resource quota controller on the shared informers until `stop` is set.
pub(crate) async fn run(informers: SharedInformers, stop: watch::Receiver<bool>) -> Result<()> {
    let queue = WorkQueue::<Key>::new(Duration::from_millis(5), Duration::from_secs(300));
    let client = informers.client().clone();
    let quotas = informers.get::<ResourceQuota>();
    let (q, reader) = (queue.clone(), quotas.clone());
    let quotas_kind: Kind = (String::new(), "resourcequotas".into());
    quotas.on_change(move |c| {
        if let Change::Object { old, new } = c
            && let Some(quota) = new.or(old)
        {
            q.add(key_of(quota));
            // Quotas counting quotas see this one come and go.
            enqueue(&q, &reader, quota.namespace().as_deref(), Some(&quotas_kind));
        }
    });
    let mut watches = Vec::new();
    for (group, version, kind, plural) in MONITORED {
        let counted: Kind = ((*group).to_owned(), (*plural).to_owned());
        if !watch_shared(&informers, &queue, &quotas, &counted) {
            let ar = api_resource(group, version, kind, plural);
            watches.push(Box::pin(watch_metadata(client.clone(), ar, queue.clone(), quotas.clone(), counted)));
        }
    }
    let ctx = Arc::new((client, quotas.clone(), queue.clone()));
    let work = async move {
        ctx.1.wait_synced().await;
        let resync = {
            let ctx = ctx.clone();
            async move {
                loop {
                    enqueue(&ctx.2, &ctx.1, None, None);
                    tokio::time::sleep(RESYNC).await;
                }
            }
        };
        let worker = async {
            while let Some(key) = ctx.2.get().await {
                match sync(&ctx.0, &ctx.1, &key).await {
                    Ok(()) => ctx.2.forget(&key),
                    Err(e) => {
                        if matches!(e, Error::Conflict(_)) {
                            // The quota changed meanwhile: read it again.
                            tracing::debug!(error = %e, "status write conflicted");
                        } else {
                            let quota = format!("{}/{}", key.0, key.1);
                            tracing::info!(%quota, error = %e, "syncing ResourceQuota");
                        }
                        ctx.2.add_rate_limited(key.clone());
                    }
                }
                ctx.2.done(&key);
            }
        };
        tokio::join!(resync, worker);
    };
    let all = Box::pin(async {
        tokio::join!(futures::future::join_all(watches), Box::pin(work));
    });
    let result = rkube_client::until_stopped("resource quota controller", all, stop).await;
    queue.shutdown();
    result
}

/// The API resource of a counted kind: the monitored table, else discovery (`None`: not served).
async fn resolve(client: &Client, kind: &Kind) -> Result<Option<ApiResource>> {
    if let Some((g, v, k, p)) = MONITORED.iter().find(|(g, _, _, p)| *g == kind.0 && *p == kind.1) {
        return Ok(Some(api_resource(g, v, k, p)));
    }
    if kind.0.is_empty() && kind.1 == "resourcequotas" {
        return Ok(Some(api_resource("", "v1", "ResourceQuota", "resourcequotas")));
    }
    match kube::discovery::group(client, &kind.0).await {
        Ok(g) => Ok(g.recommended_resources().into_iter().map(|(ar, _)| ar).find(|ar| ar.plural == kind.1)),
        Err(kube::Error::Discovery(_)) => Ok(None),
        Err(e) => Err(Error::api(format!("discovering API group {:?}", kind.0), e)),
    }
}

async fn sync(client: &Client, quotas: &Informer<ResourceQuota>, key: &Key) -> Result<()> {
    let Some(quota) = quotas.get(&key.0, &key.1) else { return Ok(()) };
    let quota_json = serde_json::to_value(quota.as_ref()).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut objects: HashMap<Kind, Vec<Value>> = HashMap::new();
    for kind in usage::kinds_needed(&quota_json) {
        let Some(ar) = resolve(client, &kind).await? else { continue };
        let list =
            Api::<DynamicObject>::namespaced_with(client.clone(), &key.0, &ar).list(&ListParams::default()).await;
        let list = match list {
            Ok(l) => l,
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(Error::api(format!("listing {} in {}", kind.1, key.0), e)),
        };
        let items = list.items.iter().filter_map(|o| serde_json::to_value(o).ok()).collect();
        objects.insert(kind, items);
    }
    let empty: Vec<Value> = Vec::new();
    let computed = usage::used(&quota_json, |k| objects.get(k).unwrap_or(&empty).as_slice(), Timestamp::now());
    // Names no evaluator computed keep what was observed before (upstream masks old and new by hard).
    let hard = quota.spec.as_ref().and_then(|s| s.hard.clone()).unwrap_or_default();
    let old = quota.status.clone().unwrap_or_default();
    let mut used: BTreeMap<String, Quantity> =
        old.used.clone().unwrap_or_default().into_iter().filter(|(k, _)| hard.contains_key(k)).collect();
    for (name, amount) in computed {
        used.insert(name, Quantity(amount.render()));
    }
    let dirty =
        old.hard.is_none() || old.used.is_none() || !same(old.hard.as_ref(), &hard) || !same(old.used.as_ref(), &used);
    if !dirty {
        return Ok(());
    }
    let mut next = quota.as_ref().clone();
    next.metadata.managed_fields = None;
    next.status = Some(ResourceQuotaStatus { hard: Some(hard), used: Some(used) });
    let api = Api::<ResourceQuota>::namespaced(client.clone(), &key.0);
    match api.replace_status(&key.1, &PostParams::default(), &next).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) if is_conflict(&e) => Err(Error::Conflict(format!("updating status of ResourceQuota {}", key.1))),
        Err(e) => Err(Error::api(format!("updating status of ResourceQuota {}/{}", key.0, key.1), e)),
    }
}

/// Whether two resource lists hold the same names with equal quantities (compared as numbers).
fn same(a: Option<&BTreeMap<String, Quantity>>, b: &BTreeMap<String, Quantity>) -> bool {
    let Some(a) = a else { return b.is_empty() };
    let num = |q: &Quantity| usage::milli(&Value::String(q.0.clone()));
    a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| num(v).is_some() && num(v) == num(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_compare_as_numbers() {
        let a =
            BTreeMap::from([("cpu".to_owned(), Quantity("1".into())), ("memory".to_owned(), Quantity("1Gi".into()))]);
        let b = BTreeMap::from([
            ("cpu".to_owned(), Quantity("1000m".into())),
            ("memory".to_owned(), Quantity("1024Mi".into())),
        ]);
        assert!(same(Some(&a), &b));
        let c =
            BTreeMap::from([("cpu".to_owned(), Quantity("2".into())), ("memory".to_owned(), Quantity("1Gi".into()))]);
        assert!(!same(Some(&a), &c));
        assert!(!same(None, &a));
    }
}
