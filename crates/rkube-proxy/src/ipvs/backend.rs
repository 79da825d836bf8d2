//! One ipvs-mode sync against the kernel: the desired table and device addresses for the state; on the first
//! sync and every full resync, the kernel's table and `kube-ipvs0` addresses read back and adopted (so a
//! restart continues from what an earlier run left, and changes made behind our back are repaired); then the
//! difference applied — service addresses bound first, IPVS changes per virtual server (a refused change
//! skips the rest of that virtual server's changes, the other services still sync), addresses of removed
//! services unbound last — and the iptables rules rewritten. Only acknowledged changes are remembered as
//! applied, so the next sync retries exactly what failed.
//!
//! Ownership, as upstream: virtual servers on addresses bound to `kube-ipvs0` or on the node's NodePort
//! addresses are rkube's; any other virtual server in the kernel is someone else's and is never touched.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use super::desired::{Desired, desired};
use super::device::ServiceDevice;
use super::diff::diff;
use super::kernel::Kernel;
use super::rules::{self, Rules};
use super::socket::GenlSocket;
use crate::Error;
use crate::exec::Exec;
use crate::iptables::RuleOptions;
use crate::model::ProxyState;

/// What one ipvs sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpvsReport {
    /// IPVS changes acknowledged, as the transcript spells them.
    pub ops: Vec<String>,
    /// Addresses added to `kube-ipvs0`.
    pub bound: Vec<Ipv4Addr>,
    /// Addresses removed from `kube-ipvs0`.
    pub unbound: Vec<Ipv4Addr>,
    /// Whether the kernel's state was read back and adopted first.
    pub adopted: bool,
    /// The iptables rules written (absent when this backend writes none).
    pub rules: Option<Rules>,
}

/// The ipvs backend: a kernel IPVS family, the service device and (optionally) the iptables rules.
#[derive(Debug)]
pub struct IpvsBackend<S, D> {
    kernel: Kernel<S>,
    device: D,
    rules: Option<Exec>,
    scheduler: String,
    opts: RuleOptions,
    applied: Desired,
    adopted: bool,
}

/// This namespace's IPv4 addresses a NodePort listens on when `--nodeport-addresses` is empty: every one but
/// loopback and the service addresses on `kube-ipvs0`.
fn local_node_addrs(on_device: &BTreeSet<Ipv4Addr>) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.ip() {
            IpAddr::V4(a) if !a.is_loopback() && !on_device.contains(&a) => Some(a),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

impl<S: GenlSocket, D: ServiceDevice> IpvsBackend<S, D> {
    /// A backend over a resolved `kernel` and `device`; `rules` runs the iptables tools (`None`: no rules).
    pub fn new(kernel: Kernel<S>, device: D, rules: Option<Exec>, scheduler: &str, opts: RuleOptions) -> Self {
        IpvsBackend {
            kernel,
            device,
            rules,
            scheduler: scheduler.to_string(),
            opts,
            applied: Desired::default(),
            adopted: false,
        }
    }

    /// What is remembered as applied (the kernel's state after the last sync, as far as rkube owns it).
    pub fn applied(&self) -> &Desired {
        &self.applied
    }

    /// The device, for tests that inspect it.
    pub fn device(&self) -> &D {
        &self.device
    }

    fn node_addrs(&self) -> Vec<Ipv4Addr> {
        if self.opts.nodeport_addresses.is_empty() {
            local_node_addrs(&self.applied.bind_addrs)
        } else {
            self.opts.nodeport_addresses.clone()
        }
    }

    async fn adopt(&mut self, want: &Desired, node_addrs: &[Ipv4Addr]) -> Result<(), Error> {
        let on_device = self.device.addresses().await?;
        let mut table = self.kernel.read_table().await?;
        table.services.retain(|vs, _| {
            want.table.services.contains_key(vs) || on_device.contains(&vs.addr) || node_addrs.contains(&vs.addr)
        });
        self.applied = Desired { table, bind_addrs: on_device };
        self.adopted = true;
        Ok(())
    }

    /// Brings the kernel to `state` (reading it back first when `full` or on the first sync).
    pub async fn sync(&mut self, state: &ProxyState, full: bool) -> Result<IpvsReport, Error> {
        let node_addrs = self.node_addrs();
        let want = desired(state, &self.scheduler, &node_addrs);
        let mut report = IpvsReport::default();
        if full || !self.adopted {
            self.adopt(&want, &node_addrs).await?;
            report.adopted = true;
        }
        let mut errors = Vec::new();
        let to_bind: Vec<Ipv4Addr> = want.bind_addrs.difference(&self.applied.bind_addrs).copied().collect();
        for ip in to_bind {
            match self.device.add(ip).await {
                Ok(()) => {
                    self.applied.bind_addrs.insert(ip);
                    report.bound.push(ip);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        let mut failed = BTreeSet::new();
        for op in diff(&self.applied.table, &want.table) {
            let vs = op.virtual_server();
            if failed.contains(&vs) {
                continue;
            }
            match self.kernel.send(&op).await {
                Ok(()) => {
                    self.applied.table.apply(&op);
                    report.ops.push(op.to_string());
                }
                Err(e) => {
                    failed.insert(vs);
                    errors.push(e.to_string());
                }
            }
        }
        // An address stays bound while a virtual server on it is still in the kernel (its removal failed).
        let to_unbind: Vec<Ipv4Addr> = self
            .applied
            .bind_addrs
            .difference(&want.bind_addrs)
            .filter(|ip| !self.applied.table.services.keys().any(|vs| vs.addr == **ip))
            .copied()
            .collect();
        for ip in to_unbind {
            match self.device.del(ip).await {
                Ok(()) => {
                    self.applied.bind_addrs.remove(&ip);
                    report.unbound.push(ip);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        if let Some(exec) = &self.rules {
            let r = rules::render(state, &self.opts);
            match rules::apply(exec, &r).await {
                Ok(()) => report.rules = Some(r),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if errors.is_empty() { Ok(report) } else { Err(Error::IpvsPartial(errors)) }
    }
}
