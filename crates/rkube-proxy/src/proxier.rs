//! One proxier: renders a `ProxyState` with the chosen backend, applies it in one atomic tool run, and only
//! then records it as applied (a failed `iptables-restore`/`nft -f` changes nothing in the kernel, so the
//! previous baseline stays and the next sync re-renders against it). Also flushes stale UDP conntrack
//! entries and keeps the metrics.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::Error;
use crate::conntrack::stale_udp_flushes;
use crate::exec::Exec;
use crate::iptables::{Iptables, JUMPS, RuleOptions};
use crate::ipvs::{DummyDevice, IpvsBackend, NetlinkSocket};
use crate::metrics::Metrics;
use crate::model::ProxyState;
use crate::nftables::Nftables;

/// Which rule backend a proxier drives.
#[derive(Debug)]
enum Backend {
    Iptables(Iptables),
    Nftables(Nftables),
    Ipvs(Box<IpvsBackend<NetlinkSocket, DummyDevice>>),
}

/// What one successful sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Per-service chains (re)written.
    pub written: Vec<String>,
    /// Stale chains deleted.
    pub deleted: Vec<String>,
    /// Bytes of rule text applied.
    pub bytes: usize,
    /// Time to render and apply.
    pub duration: Duration,
    /// The rendered input (kept for debugging and tests).
    pub text: String,
}

/// Renders and applies rules, remembering the last applied state.
#[derive(Debug)]
pub struct Proxier {
    backend: Backend,
    exec: Exec,
    metrics: Arc<Metrics>,
    last: ProxyState,
    jumps_ensured: bool,
    conntrack: Option<bool>,
}

/// Splits a rule written with double-quoted comments into argv words.
pub(crate) fn words(rule: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut cur, mut quoted, mut any) = (String::new(), false, false);
    for c in rule.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

impl Proxier {
    /// An iptables-mode proxier.
    pub fn iptables(opts: RuleOptions, exec: Exec, metrics: Arc<Metrics>) -> Proxier {
        Proxier::with(Backend::Iptables(Iptables::new(opts)), exec, metrics)
    }

    /// An nftables-mode proxier.
    pub fn nftables(opts: RuleOptions, exec: Exec, metrics: Arc<Metrics>) -> Proxier {
        Proxier::with(Backend::Nftables(Nftables::new(opts)), exec, metrics)
    }

    /// An ipvs-mode proxier over an opened backend (`ipvs::open`).
    pub fn ipvs(backend: IpvsBackend<NetlinkSocket, DummyDevice>, exec: Exec, metrics: Arc<Metrics>) -> Proxier {
        Proxier::with(Backend::Ipvs(Box::new(backend)), exec, metrics)
    }

    fn with(backend: Backend, exec: Exec, metrics: Arc<Metrics>) -> Proxier {
        Proxier { backend, exec, metrics, last: ProxyState::default(), jumps_ensured: false, conntrack: None }
    }

    /// The state last applied successfully.
    pub fn applied(&self) -> &ProxyState {
        &self.last
    }

    /// Renders `state` (everything when `full`, else only what changed) and applies it atomically. On
    /// failure nothing is recorded and the failure is counted.
    pub async fn sync(&mut self, state: &ProxyState, full: bool) -> Result<SyncReport, Error> {
        let start = Instant::now();
        let result = self.apply(state, full).await;
        let duration = start.elapsed();
        self.metrics.observe(duration);
        let mut report = match result {
            Ok(r) => r,
            Err(e) => {
                self.metrics.restore_failures.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        report.duration = duration;
        self.metrics.synced();
        self.flush_conntrack(state).await;
        self.last = state.clone();
        Ok(report)
    }

    async fn apply(&mut self, state: &ProxyState, full: bool) -> Result<SyncReport, Error> {
        match &mut self.backend {
            Backend::Iptables(ipt) => {
                if !self.jumps_ensured {
                    // First sync of this process: chains an earlier run left behind are cleaned up too.
                    if let Ok(saved) = self.exec.run(&["iptables-save", "-t", "nat"], None).await {
                        ipt.adopt(&saved);
                    }
                }
                let r = ipt.render(state, full);
                self.exec.run(&["iptables-restore", "-w", "5", "--noflush", "--counters"], Some(&r.text)).await?;
                let report = SyncReport {
                    written: r.written.clone(),
                    deleted: r.deleted.clone(),
                    bytes: r.text.len(),
                    duration: Duration::ZERO,
                    text: r.text.clone(),
                };
                self.metrics.rules_filter.store(r.rules.0 as u64, Ordering::Relaxed);
                self.metrics.rules_nat.store(r.rules.1 as u64, Ordering::Relaxed);
                ipt.commit(r);
                if full || !self.jumps_ensured {
                    self.ensure_jumps().await?;
                }
                Ok(report)
            }
            Backend::Nftables(nft) => {
                let r = nft.render(state, full);
                self.exec.run(&["nft", "-f", "-"], Some(&r.text)).await?;
                let report = SyncReport {
                    written: r.written.clone(),
                    deleted: r.deleted.clone(),
                    bytes: r.text.len(),
                    duration: Duration::ZERO,
                    text: r.text.clone(),
                };
                nft.commit(r);
                self.metrics.rules_filter.store(nft.rule_count() as u64, Ordering::Relaxed);
                Ok(report)
            }
            Backend::Ipvs(ipvs) => {
                let r = ipvs.sync(state, full).await?;
                let text = r.rules.as_ref().map(|x| x.text.clone()).unwrap_or_default();
                if let Some(rules) = &r.rules {
                    self.metrics.rules_filter.store(rules.filter as u64, Ordering::Relaxed);
                    self.metrics.rules_nat.store(rules.nat as u64, Ordering::Relaxed);
                }
                Ok(SyncReport {
                    written: r.ops,
                    deleted: Vec::new(),
                    bytes: text.len(),
                    duration: Duration::ZERO,
                    text,
                })
            }
        }
    }

    /// Upstream's jump rules from the built-in chains, inserted at the top when missing.
    async fn ensure_jumps(&mut self) -> Result<(), Error> {
        for (table, chain, rule) in JUMPS {
            let rest = words(rule);
            let mut check: Vec<&str> = vec!["iptables", "-w", "5", "-t", table, "-C", chain];
            check.extend(rest.iter().map(String::as_str));
            if self.exec.run(&check, None).await.is_err() {
                let mut insert: Vec<&str> = vec!["iptables", "-w", "5", "-t", table, "-I", chain];
                insert.extend(rest.iter().map(String::as_str));
                self.exec.run(&insert, None).await?;
            }
        }
        self.jumps_ensured = true;
        Ok(())
    }

    async fn flush_conntrack(&mut self, state: &ProxyState) {
        let flushes = stale_udp_flushes(&self.last, state);
        if flushes.is_empty() {
            return;
        }
        if self.conntrack.is_none() {
            self.conntrack = Some(self.exec.available("conntrack").await);
            if self.conntrack == Some(false) {
                tracing::warn!("the conntrack tool is missing: stale UDP conntrack entries are not flushed");
            }
        }
        if self.conntrack != Some(true) {
            self.metrics.conntrack_failures.fetch_add(flushes.len() as u64, Ordering::Relaxed);
            return;
        }
        for args in flushes {
            let mut argv = vec!["conntrack"];
            argv.extend(args.iter().map(String::as_str));
            // Exit status 1 with "0 flow entries have been deleted" is the common, harmless case.
            if let Err(e) = self.exec.run(&argv, None).await
                && !e.to_string().contains("0 flow entries")
            {
                self.metrics.conntrack_failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "conntrack flush failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn words_keep_quoted_comments_whole() {
        assert_eq!(
            super::words("-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"),
            vec!["-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"]
        );
    }
}
