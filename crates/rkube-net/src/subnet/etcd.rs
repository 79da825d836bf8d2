//! The etcd subnet manager, in flanneld's layout: `<prefix>/config` and `<prefix>/subnets/<a.b.c.d>-<len>`
//! holding `LeaseAttrs` JSON, each key bound to an etcd lease of 24 h that the owner renews.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use etcd_client::{Client, Compare, CompareOp, EventType, GetOptions, PutOptions, Txn, TxnOp, WatchOptions};
use tokio::sync::mpsc;

use super::{SubnetError, SubnetManager};
use crate::cidr::Ipv4Net;
use crate::config::NetConfig;
use crate::lease::{LEASE_TTL_SECS, Lease, LeaseAttrs, LeaseEvent, pick_free};

/// flanneld's default `--etcd-prefix`.
pub const DEFAULT_PREFIX: &str = "/coreos.com/network";

/// Leases kept in etcd, readable (and writable) by a real flanneld using the same prefix.
pub struct EtcdSubnetManager {
    client: Client,
    prefix: String,
}

fn etcd(context: impl Into<String>) -> impl FnOnce(etcd_client::Error) -> SubnetError {
    let context = context.into();
    move |source| SubnetError::Etcd { context, source }
}

impl EtcdSubnetManager {
    /// A manager over `client` with keys under `prefix` (e.g. `/kube-centos/network`; trailing `/` ignored).
    pub fn new(client: Client, prefix: &str) -> Self {
        Self { client, prefix: prefix.trim_end_matches('/').to_string() }
    }

    fn config_key(&self) -> String {
        format!("{}/config", self.prefix)
    }
    fn subnets_prefix(&self) -> String {
        format!("{}/subnets/", self.prefix)
    }
    fn subnet_key(&self, s: &Ipv4Net) -> String {
        format!("{}{}", self.subnets_prefix(), s.key())
    }

    /// Stores `config` at `<prefix>/config` unless a config is already there (as an operator's `etcdctl put`
    /// would); returns whether it wrote.
    pub async fn put_config_if_absent(&self, config: &NetConfig) -> Result<bool, SubnetError> {
        let key = self.config_key();
        let txn = Txn::new().when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)]).and_then([TxnOp::put(
            key.clone(),
            config.to_json(),
            None,
        )]);
        let r = self.client.clone().txn(txn).await.map_err(etcd(format!("writing {key}")))?;
        Ok(r.succeeded())
    }

    async fn leases(&self) -> Result<(i64, Vec<(Lease, i64)>), SubnetError> {
        let p = self.subnets_prefix();
        let r = self
            .client
            .clone()
            .get(p.clone(), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(etcd(format!("listing {p}")))?;
        let rev = r.header().map(|h| h.revision()).unwrap_or(0);
        let leases =
            r.kvs().iter().filter_map(|kv| Some((parse_kv(&p, kv.key(), kv.value())?, kv.mod_revision()))).collect();
        Ok((rev, leases))
    }

    async fn put_lease(&self, subnet: Ipv4Net, attrs: &LeaseAttrs, cmp: Compare) -> Result<Option<Lease>, SubnetError> {
        let key = self.subnet_key(&subnet);
        let mut c = self.client.clone();
        let grant = c.lease_grant(LEASE_TTL_SECS, None).await.map_err(etcd("granting a 24h lease"))?;
        let txn = Txn::new().when([cmp]).and_then([TxnOp::put(
            key.clone(),
            attrs.to_json(),
            Some(PutOptions::new().with_lease(grant.id())),
        )]);
        let r = c.txn(txn).await.map_err(etcd(format!("writing {key}")))?;
        if !r.succeeded() {
            // Someone else won the race; drop the unused lease (failure only leaves it to expire).
            let _ = c.lease_revoke(grant.id()).await;
            return Ok(None);
        }
        let expiration = SystemTime::now() + Duration::from_secs(grant.ttl().max(0) as u64);
        Ok(Some(Lease { subnet, attrs: attrs.clone(), expiration: Some(expiration) }))
    }
}

fn parse_kv(prefix: &str, key: &[u8], value: &[u8]) -> Option<Lease> {
    let key = std::str::from_utf8(key).ok()?;
    let subnet = Ipv4Net::from_key(key.strip_prefix(prefix)?)?;
    let attrs: LeaseAttrs = serde_json::from_slice(value).ok()?;
    Some(Lease { subnet, attrs, expiration: None })
}

#[async_trait::async_trait]
impl SubnetManager for EtcdSubnetManager {
    async fn network_config(&self) -> Result<NetConfig, SubnetError> {
        let key = self.config_key();
        let r = self.client.clone().get(key.clone(), None).await.map_err(etcd(format!("reading {key}")))?;
        let Some(kv) = r.kvs().first() else {
            return Err(SubnetError::Other(format!(
                "no network config at {key} in etcd; store one, e.g. ETCDCTL_API=3 etcdctl put {key} '{{\"Network\":\"172.30.0.0/16\",\"SubnetLen\":24,\"Backend\":{{\"Type\":\"vxlan\"}}}}'"
            )));
        };
        let text = String::from_utf8_lossy(kv.value());
        // Name the key: the operator fixes it there (flannel reads it back on every start).
        NetConfig::parse(&text).map_err(|e| {
            SubnetError::Other(format!(
                "{key} in etcd: {e}; fix it with ETCDCTL_API=3 etcdctl put {key} '<config>' (it holds {text:?})"
            ))
        })
    }

    async fn acquire(&self, config: &NetConfig, attrs: &LeaseAttrs) -> Result<Lease, SubnetError> {
        for _ in 0..10 {
            let (_, leases) = self.leases().await?;
            // Take back our own lease (flannel matches on PublicIP), if the config still allows it.
            if let Some((own, rev)) =
                leases.iter().find(|(l, _)| l.attrs.public_ip == attrs.public_ip && config.allows(&l.subnet))
            {
                let cmp = Compare::mod_revision(self.subnet_key(&own.subnet), CompareOp::Equal, *rev);
                if let Some(l) = self.put_lease(own.subnet, attrs, cmp).await? {
                    return Ok(l);
                }
                continue;
            }
            let taken: HashSet<Ipv4Net> = leases.iter().map(|(l, _)| l.subnet).collect();
            let subnet = pick_free(config, &taken).map_err(SubnetError::Other)?;
            let cmp = Compare::create_revision(self.subnet_key(&subnet), CompareOp::Equal, 0);
            if let Some(l) = self.put_lease(subnet, attrs, cmp).await? {
                return Ok(l);
            }
        }
        Err(SubnetError::Other(format!(
            "could not lease a subnet under {}: lost 10 races in a row",
            self.subnets_prefix()
        )))
    }

    async fn renew(&self, lease: &Lease) -> Result<Lease, SubnetError> {
        // As flanneld does: a fresh 24h etcd lease, the same value rewritten onto it.
        let key = self.subnet_key(&lease.subnet);
        let cmp = Compare::create_revision(key.clone(), CompareOp::Greater, 0);
        self.put_lease(lease.subnet, &lease.attrs, cmp)
            .await?
            .ok_or_else(|| SubnetError::Other(format!("lease {key} disappeared from etcd before its renewal")))
    }

    async fn watch(&self, own: &Lease, events: mpsc::Sender<LeaseEvent>) -> Result<(), SubnetError> {
        let p = self.subnets_prefix();
        let (rev, leases) = self.leases().await?;
        let mut known: HashMap<Ipv4Net, Lease> = HashMap::new();
        let peers: Vec<Lease> = leases.into_iter().map(|(l, _)| l).filter(|l| l.subnet != own.subnet).collect();
        known.extend(peers.iter().map(|l| (l.subnet, l.clone())));
        if events.send(LeaseEvent::Snapshot(peers)).await.is_err() {
            return Ok(());
        }
        let opts = WatchOptions::new().with_prefix().with_start_revision(rev + 1);
        let mut stream =
            self.client.clone().watch(p.clone(), Some(opts)).await.map_err(etcd(format!("watching {p}")))?;
        while let Some(resp) = stream.message().await.map_err(etcd(format!("watching {p}")))? {
            if resp.canceled() {
                return Err(SubnetError::Other(format!("etcd cancelled the watch on {p}: {}", resp.cancel_reason())));
            }
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let Some(subnet) =
                    kv.key_str().ok().and_then(|k| k.strip_prefix(p.as_str())).and_then(Ipv4Net::from_key)
                else {
                    continue;
                };
                if subnet == own.subnet {
                    continue;
                }
                let event = match ev.event_type() {
                    EventType::Put => match parse_kv(&p, kv.key(), kv.value()) {
                        Some(l) if known.get(&subnet) != Some(&l) => {
                            known.insert(subnet, l.clone());
                            LeaseEvent::Added(l)
                        }
                        _ => continue,
                    },
                    EventType::Delete => {
                        known.remove(&subnet);
                        LeaseEvent::Removed(subnet)
                    }
                };
                if events.send(event).await.is_err() {
                    return Ok(());
                }
            }
        }
        Err(SubnetError::Other(format!("etcd closed the watch on {p}")))
    }
}
