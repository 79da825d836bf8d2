//! The `default/kubernetes` Endpoints and EndpointSlice list every live API server, as upstream's lease endpoint
//! reconciler (`--endpoint-reconciler-type=lease`) does: each server renews a lease of its own every 10 s, with a
//! 15 s lifetime, and writes the addresses of the servers whose lease is current. Upstream keeps its leases as
//! TTL keys under `/masterleases/` in etcd; the `Store` has no TTLs, so here they are coordination Leases
//! (`kube-system/rkube-apiserver-<ip>`, labelled [`LABEL`]) judged on the local clock, which also lets
//! `kubectl get leases` show them. A server that stops removes its lease and itself from the endpoints; one
//! that crashes drops out when its lease expires.

use std::time::{Duration, SystemTime};

use rkube_apimachinery::ApiError;
use rkube_apimachinery::labels::Selector;
use serde_json::{Value, json};

use crate::bootstrap::def;
use crate::registry::{DeleteOpts, ListQuery, Registry, WriteCtx};

/// The label of the API servers' endpoint leases.
pub(crate) const LABEL: &str = "rkube.io/apiserver-endpoint";
/// The annotation holding a server's advertised `ip:port`.
const ADDRESS: &str = "rkube.io/advertise-address";
/// How often each server renews its lease and reconciles (upstream's `--endpoint-reconciler` interval).
pub(crate) const INTERVAL: Duration = Duration::from_secs(10);
/// How long a lease lasts without renewal (upstream's master lease TTL).
pub(crate) const LEASE_SECONDS: u64 = 15;

/// This server's advertised address as `(ip, port)`; `None` for a loopback address, which pods cannot reach
/// (bootstrap warns about it).
fn parse_advertise(advertise: &str) -> Option<(String, u16)> {
    let (ip, port) = advertise.rsplit_once(':')?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let parsed: std::net::IpAddr = ip.parse().ok()?;
    (!parsed.is_loopback()).then(|| (ip.to_owned(), port.parse().unwrap_or(6443)))
}

fn lease_name(ip: &str) -> String {
    format!("rkube-apiserver-{}", ip.replace(['.', ':'], "-"))
}

/// Runs until `shutdown`; then removes this server's lease and address.
pub(crate) async fn run(registry: &Registry, advertise: &str, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let Some((ip, port)) = parse_advertise(advertise) else { return };
    loop {
        if let Err(e) = reconcile(registry, &ip, port, SystemTime::now()).await {
            tracing::warn!(error = %e, "reconciling the kubernetes service's endpoints");
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    if let Err(e) = remove(registry, &ip, port, SystemTime::now()).await {
        tracing::warn!(error = %e, "removing this API server from the kubernetes service's endpoints");
    }
}

/// Renews this server's lease and writes the live servers into the Endpoints and EndpointSlice (only when
/// they changed).
pub(crate) async fn reconcile(registry: &Registry, ip: &str, port: u16, now: SystemTime) -> Result<(), ApiError> {
    renew(registry, ip, port, now).await?;
    let live = live_servers(registry, now).await?;
    write_endpoints(registry, &live, port).await
}

/// On shutdown: this server's lease goes, and the endpoints list the others still live.
async fn remove(registry: &Registry, ip: &str, port: u16, now: SystemTime) -> Result<(), ApiError> {
    if let Some(leases) = def("coordination.k8s.io", "leases") {
        match registry.delete(&leases, Some("kube-system"), &lease_name(ip), &DeleteOpts::default()).await {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let live = live_servers(registry, now).await?;
    let others: Vec<String> = live.into_iter().filter(|a| a != ip).collect();
    if others.is_empty() {
        // The last server leaves the endpoints as they are: nobody else would ever correct an empty list.
        return Ok(());
    }
    write_endpoints(registry, &others, port).await
}

async fn renew(registry: &Registry, ip: &str, port: u16, now: SystemTime) -> Result<(), ApiError> {
    let Some(leases) = def("coordination.k8s.io", "leases") else { return Ok(()) };
    let name = lease_name(ip);
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name, "namespace": "kube-system",
            "labels": { LABEL: "true" },
            "annotations": { ADDRESS: format!("{ip}:{port}") },
        },
        "spec": { "holderIdentity": ip, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": humantime::format_rfc3339_micros(now).to_string() },
    });
    match registry.create(&leases, Some("kube-system"), lease.clone(), &WriteCtx::default()).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => registry
            .update_with(&leases, Some("kube-system"), &name, None, &WriteCtx::default(), |_| Ok(lease.clone()))
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    }
}

/// The IPs of the servers whose lease is current at `now`, sorted.
async fn live_servers(registry: &Registry, now: SystemTime) -> Result<Vec<String>, ApiError> {
    let Some(leases) = def("coordination.k8s.io", "leases") else { return Ok(Vec::new()) };
    let labels = Selector::parse(LABEL).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let q = ListQuery { labels, ..Default::default() };
    let list = registry.list(&leases, Some("kube-system"), &q).await?;
    let mut live: Vec<String> = list.item_values().iter().filter(|l| current(l, now)).filter_map(address_ip).collect();
    live.sort();
    live.dedup();
    Ok(live)
}

fn current(lease: &Value, now: SystemTime) -> bool {
    let spec = &lease["spec"];
    let renewed = spec["renewTime"].as_str().and_then(|t| humantime::parse_rfc3339_weak(t).ok());
    let lasts = Duration::from_secs(spec["leaseDurationSeconds"].as_u64().unwrap_or(LEASE_SECONDS));
    renewed.is_some_and(|r| r + lasts > now)
}

fn address_ip(lease: &Value) -> Option<String> {
    let address = lease["metadata"]["annotations"][ADDRESS].as_str()?;
    let (ip, _) = address.rsplit_once(':')?;
    Some(ip.trim_start_matches('[').trim_end_matches(']').to_owned())
}

async fn write_endpoints(registry: &Registry, ips: &[String], port: u16) -> Result<(), ApiError> {
    if ips.is_empty() {
        return Ok(());
    }
    let addresses: Vec<Value> = ips.iter().map(|ip| json!({ "ip": ip })).collect();
    let subsets = json!([{ "addresses": addresses, "ports": [{ "name": "https", "port": port, "protocol": "TCP" }] }]);
    if let Some(endpoints) = def("", "endpoints") {
        let current = registry.get(&endpoints, Some("default"), "kubernetes").await.ok();
        if current.as_ref().map(|c| &c["subsets"]) != Some(&subsets) {
            let desired = json!({
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {
                    "name": "kubernetes", "namespace": "default",
                    "labels": { "endpointslice.kubernetes.io/skip-mirror": "true" },
                },
                "subsets": subsets,
            });
            upsert(registry, &endpoints, "kubernetes", desired).await?;
        }
    }
    let Some(slices) = def("discovery.k8s.io", "endpointslices") else { return Ok(()) };
    let family = if ips[0].contains(':') { "IPv6" } else { "IPv4" };
    let endpoints: Vec<Value> =
        ips.iter().map(|ip| json!({ "addresses": [ip], "conditions": { "ready": true } })).collect();
    let current = registry.get(&slices, Some("default"), "kubernetes").await.ok();
    if current.as_ref().map(|c| &c["endpoints"]) == Some(&Value::Array(endpoints.clone())) {
        return Ok(());
    }
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes", "namespace": "default",
            "labels": { "kubernetes.io/service-name": "kubernetes" },
        },
        "addressType": family,
        "endpoints": endpoints,
        "ports": [{ "name": "https", "port": port, "protocol": "TCP" }],
    });
    upsert(registry, &slices, "kubernetes", slice).await
}

async fn upsert(registry: &Registry, d: &crate::resource::ResourceDef, name: &str, obj: Value) -> Result<(), ApiError> {
    match registry.create(d, Some("default"), obj.clone(), &WriteCtx::default()).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => registry
            .update_with(d, Some("default"), name, None, &WriteCtx::default(), |_| Ok(obj.clone()))
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    async fn registry() -> Registry {
        let store: Arc<dyn rkube_store::Store> = Arc::new(rkube_store::memory::MemoryStore::new());
        let keys = rkube_store::KeyLayout::new("/registry");
        let (_tx, shutdown) = tokio::sync::watch::channel(false);
        // The sender is leaked so the cache's watch never sees a shutdown during the test.
        std::mem::forget(_tx);
        let cache =
            crate::cache::Cache::start(store.clone(), "/registry/".into(), crate::DEFAULT_WATCH_CACHE_SIZE, shutdown)
                .await
                .unwrap();
        let ranges = crate::services::ServiceRanges::parse("10.254.0.0/16").unwrap();
        let r = Registry::new(store, keys, cache, ranges);
        for ns in ["default", "kube-system"] {
            let obj = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
            crate::bootstrap::ensure(&r, "", "namespaces", None, obj).await.unwrap();
        }
        r
    }

    fn subset_ips(registry_value: &Value) -> Vec<String> {
        registry_value["subsets"][0]["addresses"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["ip"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn lists_every_live_server_and_drops_expired_and_stopped_ones() {
        let r = registry().await;
        let now = SystemTime::now();
        reconcile(&r, "192.168.77.11", 6443, now).await.unwrap();
        reconcile(&r, "192.168.77.12", 6443, now).await.unwrap();
        reconcile(&r, "192.168.77.13", 6443, now).await.unwrap();
        let ep = r.get(&def("", "endpoints").unwrap(), Some("default"), "kubernetes").await.unwrap();
        assert_eq!(subset_ips(&ep), ["192.168.77.11", "192.168.77.12", "192.168.77.13"]);
        assert_eq!(ep["subsets"][0]["ports"][0]["port"], 6443);
        let slice = r.get(&def("discovery.k8s.io", "endpointslices").unwrap(), Some("default"), "kubernetes").await;
        assert_eq!(slice.unwrap()["endpoints"].as_array().unwrap().len(), 3);
        let rv = ep["metadata"]["resourceVersion"].clone();

        // Nothing changed: the Endpoints are not written again.
        reconcile(&r, "192.168.77.11", 6443, now).await.unwrap();
        let same = r.get(&def("", "endpoints").unwrap(), Some("default"), "kubernetes").await.unwrap();
        assert_eq!(same["metadata"]["resourceVersion"], rv);

        // 20 s later only .11 renewed: the others' leases (15 s) expired.
        let later = now + Duration::from_secs(20);
        reconcile(&r, "192.168.77.11", 6443, later).await.unwrap();
        let ep = r.get(&def("", "endpoints").unwrap(), Some("default"), "kubernetes").await.unwrap();
        assert_eq!(subset_ips(&ep), ["192.168.77.11"]);
        let leases = def("coordination.k8s.io", "leases").unwrap();
        let lease = r.get(&leases, Some("kube-system"), "rkube-apiserver-192-168-77-11").await.unwrap();
        assert_eq!(lease["spec"]["holderIdentity"], "192.168.77.11");
        assert_eq!(lease["metadata"]["labels"][LABEL], "true");
        // .12 comes back.
        reconcile(&r, "192.168.77.12", 6443, later + Duration::from_secs(1)).await.unwrap();
        let ep = r.get(&def("", "endpoints").unwrap(), Some("default"), "kubernetes").await.unwrap();
        assert_eq!(subset_ips(&ep), ["192.168.77.11", "192.168.77.12"]);

        // A server that stops takes itself and its lease out; the last one leaves the list as it is.
        remove(&r, "192.168.77.12", 6443, later + Duration::from_secs(2)).await.unwrap();
        let ep = r.get(&def("", "endpoints").unwrap(), Some("default"), "kubernetes").await.unwrap();
        assert_eq!(subset_ips(&ep), ["192.168.77.11"]);
        assert!(r.get(&leases, Some("kube-system"), "rkube-apiserver-192-168-77-12").await.is_err());
        remove(&r, "192.168.77.11", 6443, later + Duration::from_secs(3)).await.unwrap();
        let ep = r.get(&def("", "endpoints").unwrap(), Some("default"), "kubernetes").await.unwrap();
        assert_eq!(subset_ips(&ep), ["192.168.77.11"]);
    }

    #[test]
    fn advertise_addresses() {
        assert_eq!(parse_advertise("192.168.77.11:6443"), Some(("192.168.77.11".into(), 6443)));
        assert_eq!(parse_advertise("[fd00::1]:6443"), Some(("fd00::1".into(), 6443)));
        assert_eq!(parse_advertise("127.0.0.1:6443"), None);
        assert_eq!(lease_name("fd00::1"), "rkube-apiserver-fd00--1");
    }
}
