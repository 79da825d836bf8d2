//! Service ClusterIP and NodePort allocation. Each allocated address or port is one store key created
//! atomically (`<prefix>/ipaddresses/<ip>`, `<prefix>/servicenodeports/<port>`), as upstream's IPAddress
//! objects do for IPs: two services can never get the same one, and deletion releases it.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rkube_apimachinery::{ApiError, Cause};
use rkube_store::{KeyLayout, Store};
use serde_json::{Value, json};

/// The ranges services allocate from.
#[derive(Debug, Clone)]
pub struct ServiceRanges {
    /// Network address of the service CIDR.
    pub network: Ipv4Addr,
    /// Prefix length.
    pub prefix_len: u8,
    /// NodePort range, inclusive.
    pub node_ports: (u16, u16),
}

impl ServiceRanges {
    /// Parses `10.254.0.0/16` (IPv4 only for now) with the default NodePort range 30000-32767.
    pub fn parse(cidr: &str) -> Result<Self, String> {
        let (ip, len) = cidr.split_once('/').ok_or_else(|| format!("{cidr:?} is not a CIDR"))?;
        let network: Ipv4Addr = ip.parse().map_err(|_| format!("{cidr:?}: only IPv4 service ranges are supported"))?;
        let prefix_len: u8 = len.parse().map_err(|_| format!("{cidr:?}: bad prefix length"))?;
        if !(8..=30).contains(&prefix_len) {
            return Err(format!("{cidr:?}: the prefix length must be between 8 and 30"));
        }
        Ok(ServiceRanges { network, prefix_len, node_ports: (30000, 32767) })
    }

    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix_len)
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix_len);
        (u32::from(ip) & mask) == (u32::from(self.network) & mask)
    }

    /// The first usable IP: the `kubernetes` service's address.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }
}

/// Allocates and releases service addresses and ports.
pub(crate) struct Allocator {
    store: Arc<dyn Store>,
    keys: KeyLayout,
    ranges: ServiceRanges,
}

fn ip_key(keys: &KeyLayout, ip: Ipv4Addr) -> String {
    format!("{}/ipaddresses/{ip}", keys.prefix())
}

fn port_key(keys: &KeyLayout, port: u16) -> String {
    format!("{}/servicenodeports/{port}", keys.prefix())
}

fn needs_node_ports(svc: &Value) -> bool {
    matches!(svc.pointer("/spec/type").and_then(Value::as_str), Some("NodePort" | "LoadBalancer"))
}

/// The node ports a service holds.
pub(crate) fn node_ports(svc: &Value) -> Vec<u16> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .filter_map(|p| u16::try_from(p).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn cluster_ip(svc: &Value) -> Option<Ipv4Addr> {
    svc.pointer("/spec/clusterIP").and_then(Value::as_str).and_then(|s| s.parse().ok())
}

impl Allocator {
    pub(crate) fn new(store: Arc<dyn Store>, keys: KeyLayout, ranges: ServiceRanges) -> Self {
        Allocator { store, keys, ranges }
    }

    /// Reserves `key` for `owner`: true if it is theirs now. Only keys this call created go into `claimed`
    /// (what a failed create may release): a key that was the owner's already belongs to an existing service
    /// of that name (a create that will fail with AlreadyExists, e.g. two servers bootstrapping
    /// `default/kubernetes` at once) or to a crashed earlier attempt, and releasing it would free a live
    /// service's address.
    async fn claim(&self, key: String, owner: &str, claimed: &mut Vec<String>) -> Result<bool, ApiError> {
        match self.store.create(&key, json!({ "service": owner }).to_string().into_bytes()).await {
            Ok(_) => {
                claimed.push(key);
                Ok(true)
            }
            // Ours already (a retried create, or a restart after a crash between claim and create): still ours.
            Err(rkube_store::Error::AlreadyExists { .. }) => match self.store.get(&key).await {
                Ok(Some(kv)) => {
                    Ok(serde_json::from_slice::<Value>(&kv.value).ok().and_then(|v| v.get("service").cloned())
                        == Some(json!(owner)))
                }
                _ => Ok(false),
            },
            Err(e) => Err(ApiError::internal(format!("allocating {key}: {e}"))),
        }
    }

    async fn release_key(&self, key: String) {
        if let Err(e) = self.store.delete(&key, None).await
            && !matches!(e, rkube_store::Error::NotFound { .. })
        {
            tracing::warn!(key, error = %e, "could not release a service allocation; it stays reserved");
        }
    }

    /// Fills in and reserves `spec.clusterIP(s)` and node ports of a new service; returns the reservations this
    /// call made, for [`Allocator::release_claimed`] if the service is then not stored. On error nothing it
    /// made stays reserved.
    pub(crate) async fn allocate(&self, svc: &mut Value, owner: &str, name: &str) -> Result<Vec<String>, ApiError> {
        let ty = svc.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP").to_owned();
        let mut claimed: Vec<String> = Vec::new();
        match self.allocate_inner(svc, owner, name, &ty, &mut claimed).await {
            Ok(()) => Ok(claimed),
            Err(e) => {
                self.release_claimed(claimed).await;
                Err(e)
            }
        }
    }

    /// Releases reservations [`Allocator::allocate`] made for a service that was not stored.
    pub(crate) async fn release_claimed(&self, claimed: Vec<String>) {
        for k in claimed {
            self.release_key(k).await;
        }
    }

    async fn allocate_inner(
        &self,
        svc: &mut Value,
        owner: &str,
        name: &str,
        ty: &str,
        claimed: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        if ty != "ExternalName" {
            let requested = svc.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or_default().to_owned();
            if requested == "None" {
                svc["spec"]["clusterIPs"] = json!(["None"]);
            } else if !requested.is_empty() {
                let ip: Ipv4Addr = requested.parse().map_err(|_| {
                    ApiError::invalid(
                        "",
                        "Service",
                        name,
                        vec![Cause::invalid(
                            "spec.clusterIPs",
                            &json!([requested]),
                            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                        )],
                    )
                })?;
                if !self.ranges.contains(ip) {
                    return Err(ApiError::invalid(
                        "",
                        "Service",
                        name,
                        vec![Cause::invalid(
                            "spec.clusterIPs",
                            &json!([requested]),
                            &format!(
                                "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}/{}",
                                self.ranges.network, self.ranges.prefix_len
                            ),
                        )],
                    ));
                }
                let key = ip_key(&self.keys, ip);
                if !self.claim(key, owner, claimed).await? {
                    return Err(ApiError::invalid(
                        "",
                        "Service",
                        name,
                        vec![Cause::invalid(
                            "spec.clusterIPs",
                            &json!([requested]),
                            &format!("failed to allocate IP {ip}: provided IP is already allocated"),
                        )],
                    ));
                }
                svc["spec"]["clusterIPs"] = json!([requested]);
            } else {
                let ip = self.pick_ip(owner, claimed).await?;
                svc["spec"]["clusterIP"] = json!(ip.to_string());
                svc["spec"]["clusterIPs"] = json!([ip.to_string()]);
            }
        }
        if needs_node_ports(svc) {
            let count = svc.pointer("/spec/ports").and_then(Value::as_array).map_or(0, Vec::len);
            for i in 0..count {
                let wanted = svc.pointer(&format!("/spec/ports/{i}/nodePort")).and_then(Value::as_u64);
                let port = match wanted {
                    Some(p) => {
                        let p = u16::try_from(p).unwrap_or(0);
                        let (lo, hi) = self.ranges.node_ports;
                        if p < lo || p > hi {
                            return Err(ApiError::invalid(
                                "",
                                "Service",
                                name,
                                vec![Cause::invalid(
                                    &format!("spec.ports[{i}].nodePort"),
                                    &json!(p),
                                    &format!(
                                        "provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
                                    ),
                                )],
                            ));
                        }
                        let key = port_key(&self.keys, p);
                        if !self.claim(key, owner, claimed).await? {
                            return Err(ApiError::invalid(
                                "",
                                "Service",
                                name,
                                vec![Cause::invalid(
                                    &format!("spec.ports[{i}].nodePort"),
                                    &json!(p),
                                    "provided port is already allocated",
                                )],
                            ));
                        }
                        p
                    }
                    None => self.pick_port(owner, claimed).await?,
                };
                svc["spec"]["ports"][i]["nodePort"] = json!(port);
            }
        }
        Ok(())
    }

    async fn pick_ip(&self, owner: &str, claimed: &mut Vec<String>) -> Result<Ipv4Addr, ApiError> {
        let size = self.ranges.size();
        let base = u32::from(self.ranges.network);
        // Start at a random offset as upstream does, skipping the network address, the first IP (the
        // `kubernetes` service) and the broadcast address; wrap around once.
        let start = 2 + (uuid::Uuid::new_v4().as_u128() % u128::from(size - 3)) as u32;
        for i in 0..size - 3 {
            let offset = 2 + (start - 2 + i) % (size - 3);
            let ip = Ipv4Addr::from(base + offset);
            let key = ip_key(&self.keys, ip);
            if self.claim(key, owner, claimed).await? {
                return Ok(ip);
            }
        }
        Err(ApiError::internal("failed to allocate a serviceIP: range is full"))
    }

    async fn pick_port(&self, owner: &str, claimed: &mut Vec<String>) -> Result<u16, ApiError> {
        let (lo, hi) = self.ranges.node_ports;
        let span = u32::from(hi - lo) + 1;
        let start = (uuid::Uuid::new_v4().as_u128() % u128::from(span)) as u32;
        for i in 0..span {
            let port = lo + ((start + i) % span) as u16;
            let key = port_key(&self.keys, port);
            if self.claim(key, owner, claimed).await? {
                return Ok(port);
            }
        }
        Err(ApiError::internal("failed to allocate a nodePort: range is full"))
    }

    /// The `kubernetes` service's IP: the first of the range, never picked for other services.
    pub(crate) fn first(&self) -> Ipv4Addr {
        self.ranges.first()
    }

    /// On update: keeps the ClusterIP (immutable), allocates node ports the new spec needs and
    /// returns (ports to release once the update is stored, ports to release if it is not).
    pub(crate) async fn reallocate(
        &self,
        new: &mut Value,
        old: &Value,
        owner: &str,
        name: &str,
    ) -> Result<(Vec<u16>, Vec<u16>), ApiError> {
        let old_ip = old.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or_default().to_owned();
        let new_ip = new.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or_default().to_owned();
        if !old_ip.is_empty() {
            if !new_ip.is_empty() && new_ip != old_ip {
                return Err(ApiError::invalid(
                    "",
                    "Service",
                    name,
                    vec![Cause::invalid("spec.clusterIPs[0]", &json!(new_ip), "may not change once set")],
                ));
            }
            new["spec"]["clusterIP"] = json!(old_ip);
            if let Some(ips) = old.pointer("/spec/clusterIPs") {
                new["spec"]["clusterIPs"] = ips.clone();
            }
        }
        let held = node_ports(old);
        let mut keep = Vec::new();
        let mut fresh = Vec::new();
        if needs_node_ports(new) {
            let count = new.pointer("/spec/ports").and_then(Value::as_array).map_or(0, Vec::len);
            let mut claimed = Vec::new();
            for i in 0..count {
                let wanted = new
                    .pointer(&format!("/spec/ports/{i}/nodePort"))
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok());
                let port = match wanted {
                    Some(p) if held.contains(&p) => p,
                    Some(p) => {
                        let key = port_key(&self.keys, p);
                        if !self.claim(key, owner, &mut claimed).await? {
                            for k in claimed {
                                self.release_key(k).await;
                            }
                            return Err(ApiError::invalid(
                                "",
                                "Service",
                                name,
                                vec![Cause::invalid(
                                    &format!("spec.ports[{i}].nodePort"),
                                    &json!(p),
                                    "provided port is already allocated",
                                )],
                            ));
                        }
                        p
                    }
                    None => self.pick_port(owner, &mut claimed).await?,
                };
                if !held.contains(&port) {
                    fresh.push(port);
                }
                new["spec"]["ports"][i]["nodePort"] = json!(port);
                keep.push(port);
            }
        } else if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                p.remove("nodePort");
            }
        }
        Ok((held.into_iter().filter(|p| !keep.contains(p)).collect(), fresh))
    }

    /// Releases node ports no longer held.
    pub(crate) async fn release_ports(&self, ports: &[u16]) {
        for p in ports {
            self.release_key(port_key(&self.keys, *p)).await;
        }
    }

    /// Releases everything a deleted service held.
    pub(crate) async fn release(&self, svc: &Value) {
        if let Some(ip) = cluster_ip(svc) {
            self.release_key(ip_key(&self.keys, ip)).await;
        }
        self.release_ports(&node_ports(svc)).await;
    }
}

/// Whether an address is in the service range (for tests and validation).
pub fn in_range(ranges: &ServiceRanges, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => ranges.contains(v4),
        IpAddr::V6(_) => false,
    }
}
