//! The changes that turn the applied IPVS table into the desired one (only what differs: new, changed and
//! removed virtual servers and real servers), `IpvsTable::apply`, which records one acknowledged change (the
//! live sync in `backend` remembers changes one by one), and `Programmer`, which plans whole syncs against a
//! remembered state (the recorded transcript is made with it).

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;

use super::desired::{Desired, IpvsTable, RealServer, ServiceAttrs, VirtualServer, VsEntry, desired};
use crate::model::ProxyState;

/// One IPVS change, in the order it must be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `IPVS_CMD_NEW_SERVICE`.
    NewService(VirtualServer, ServiceAttrs),
    /// `IPVS_CMD_SET_SERVICE` (scheduler, flags or timeout changed).
    SetService(VirtualServer, ServiceAttrs),
    /// `IPVS_CMD_DEL_SERVICE` (the kernel drops its real servers with it).
    DelService(VirtualServer),
    /// `IPVS_CMD_NEW_DEST` with its weight.
    NewDest(VirtualServer, RealServer, u32),
    /// `IPVS_CMD_SET_DEST` (weight changed).
    SetDest(VirtualServer, RealServer, u32),
    /// `IPVS_CMD_DEL_DEST`.
    DelDest(VirtualServer, RealServer),
}

impl fmt::Display for Op {
    /// One readable line, the form the recorded transcript uses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attrs = |f: &mut fmt::Formatter<'_>, a: &ServiceAttrs| {
            write!(f, " sched={} flags={:#x} timeout={}", a.scheduler, a.flags, a.timeout)
        };
        match self {
            Op::NewService(vs, a) => {
                write!(f, "NEW_SERVICE {vs}")?;
                attrs(f, a)
            }
            Op::SetService(vs, a) => {
                write!(f, "SET_SERVICE {vs}")?;
                attrs(f, a)
            }
            Op::DelService(vs) => write!(f, "DEL_SERVICE {vs}"),
            Op::NewDest(vs, rs, w) => write!(f, "NEW_DEST {vs} -> {rs} weight={w}"),
            Op::SetDest(vs, rs, w) => write!(f, "SET_DEST {vs} -> {rs} weight={w}"),
            Op::DelDest(vs, rs) => write!(f, "DEL_DEST {vs} -> {rs}"),
        }
    }
}

impl Op {
    /// The virtual server the change is about.
    pub fn virtual_server(&self) -> VirtualServer {
        match self {
            Op::NewService(vs, _)
            | Op::SetService(vs, _)
            | Op::DelService(vs)
            | Op::NewDest(vs, _, _)
            | Op::SetDest(vs, _, _)
            | Op::DelDest(vs, _) => *vs,
        }
    }
}

impl IpvsTable {
    /// Records one acknowledged change, so what is remembered as applied is exactly what the kernel took even
    /// when a later change of the same sync was refused.
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::NewService(vs, a) => {
                self.services.insert(*vs, VsEntry { attrs: a.clone(), dests: Default::default() });
            }
            Op::SetService(vs, a) => {
                if let Some(e) = self.services.get_mut(vs) {
                    e.attrs = a.clone();
                }
            }
            Op::DelService(vs) => {
                self.services.remove(vs);
            }
            Op::NewDest(vs, rs, w) | Op::SetDest(vs, rs, w) => {
                if let Some(e) = self.services.get_mut(vs) {
                    e.dests.insert(*rs, *w);
                }
            }
            Op::DelDest(vs, rs) => {
                if let Some(e) = self.services.get_mut(vs) {
                    e.dests.remove(rs);
                }
            }
        }
    }
}

/// The operations that turn `current` into `want`: per virtual server (sorted) its creation or update,
/// then its stale real servers removed, new ones added and changed weights set; removed virtual servers
/// last, so traffic to a service that stays is never without its new endpoints.
pub fn diff(current: &IpvsTable, want: &IpvsTable) -> Vec<Op> {
    let mut ops = Vec::new();
    for (vs, w) in &want.services {
        let cur = current.services.get(vs);
        match cur {
            None => ops.push(Op::NewService(*vs, w.attrs.clone())),
            Some(c) if c.attrs != w.attrs => ops.push(Op::SetService(*vs, w.attrs.clone())),
            Some(_) => {}
        }
        if let Some(c) = cur {
            ops.extend(c.dests.keys().filter(|rs| !w.dests.contains_key(*rs)).map(|rs| Op::DelDest(*vs, *rs)));
        }
        for (rs, weight) in &w.dests {
            match cur.and_then(|c| c.dests.get(rs)) {
                None => ops.push(Op::NewDest(*vs, *rs, *weight)),
                Some(old) if old != weight => ops.push(Op::SetDest(*vs, *rs, *weight)),
                Some(_) => {}
            }
        }
    }
    ops.extend(current.services.keys().filter(|vs| !want.services.contains_key(*vs)).map(|vs| Op::DelService(*vs)));
    ops
}

/// One sync's work for ipvs mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// IPVS changes, in order.
    pub ops: Vec<Op>,
    /// Addresses to add to `kube-ipvs0`.
    pub bind: Vec<Ipv4Addr>,
    /// Addresses to remove from `kube-ipvs0`.
    pub unbind: Vec<Ipv4Addr>,
    /// The state once the plan is applied.
    pub next: Desired,
}

impl Plan {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.bind.is_empty() && self.unbind.is_empty()
    }
}

/// Keeps what was applied and plans the changes for each new state.
#[derive(Debug, Clone, Default)]
pub struct Programmer {
    scheduler: String,
    node_addrs: Vec<Ipv4Addr>,
    applied: Desired,
}

impl Programmer {
    /// A programmer for `--ipvs-scheduler` `scheduler` whose NodePorts listen on `node_addrs`.
    pub fn new(scheduler: &str, node_addrs: Vec<Ipv4Addr>) -> Programmer {
        Programmer { scheduler: scheduler.to_string(), node_addrs, applied: Desired::default() }
    }

    /// What was last recorded as applied.
    pub fn applied(&self) -> &Desired {
        &self.applied
    }

    /// The changes `state` needs against what was applied.
    pub fn plan(&self, state: &ProxyState) -> Plan {
        let next = desired(state, &self.scheduler, &self.node_addrs);
        let cur = &self.applied;
        let diff_set = |a: &BTreeSet<Ipv4Addr>, b: &BTreeSet<Ipv4Addr>| a.difference(b).copied().collect::<Vec<_>>();
        Plan {
            ops: diff(&cur.table, &next.table),
            bind: diff_set(&next.bind_addrs, &cur.bind_addrs),
            unbind: diff_set(&cur.bind_addrs, &next.bind_addrs),
            next,
        }
    }

    /// A full resync: what was read back from the kernel (its IPVS table, the addresses on `kube-ipvs0`)
    /// replaces what we remember, so the next plan repairs changes made behind our back.
    pub fn adopt(&mut self, kernel: Desired) {
        self.applied = kernel;
    }

    /// Records `plan` as applied (call only after every message was acknowledged).
    pub fn commit(&mut self, plan: Plan) {
        self.applied = plan.next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ep, spn, state, svc};

    fn lines(ops: &[Op]) -> Vec<String> {
        ops.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn first_sync_adds_everything_and_a_repeat_adds_nothing() {
        let st = state(vec![(spn("ns", "a", ""), svc("10.96.0.1", 80), vec![ep("10.244.0.5", 8080, false)])]);
        let mut p = Programmer::new("rr", vec![]);
        let plan = p.plan(&st);
        assert_eq!(
            lines(&plan.ops),
            vec![
                "NEW_SERVICE tcp 10.96.0.1:80 sched=rr flags=0x0 timeout=0",
                "NEW_DEST tcp 10.96.0.1:80 -> 10.244.0.5:8080 weight=1"
            ]
        );
        assert_eq!(plan.bind, vec!["10.96.0.1".parse::<Ipv4Addr>().unwrap()]);
        p.commit(plan);
        assert!(p.plan(&st).is_empty());
        // A resync that finds the kernel's table empty re-sends everything.
        p.adopt(Desired::default());
        assert_eq!(p.plan(&st).ops.len(), 2);
    }

    #[test]
    fn only_changes_are_planned() {
        let a = spn("ns", "a", "");
        let b = spn("ns", "b", "");
        let st1 = state(vec![
            (a.clone(), svc("10.96.0.1", 80), vec![ep("10.244.0.5", 80, false), ep("10.244.0.6", 80, false)]),
            (b.clone(), svc("10.96.0.2", 53), vec![ep("10.244.0.7", 53, false)]),
        ]);
        let mut p = Programmer::new("", vec![]);
        let plan = p.plan(&st1);
        p.commit(plan);
        let mut affine = svc("10.96.0.1", 80);
        affine.affinity_seconds = Some(30);
        let st2 = state(vec![(a, affine, vec![ep("10.244.0.5", 80, false), ep("10.244.0.8", 80, false)])]);
        let plan = p.plan(&st2);
        assert_eq!(
            lines(&plan.ops),
            vec![
                "SET_SERVICE tcp 10.96.0.1:80 sched=rr flags=0x1 timeout=30",
                "DEL_DEST tcp 10.96.0.1:80 -> 10.244.0.6:80",
                "NEW_DEST tcp 10.96.0.1:80 -> 10.244.0.8:80 weight=1",
                "DEL_SERVICE tcp 10.96.0.2:53",
            ]
        );
        assert_eq!(plan.unbind, vec!["10.96.0.2".parse::<Ipv4Addr>().unwrap()]);
        assert!(plan.bind.is_empty());
    }

    #[test]
    fn changed_weight_is_a_set_dest() {
        let vs = VirtualServer { protocol: crate::model::Protocol::Udp, addr: [10, 0, 0, 1].into(), port: 53 };
        let rs = RealServer { addr: [10, 1, 0, 1].into(), port: 53 };
        let attrs = ServiceAttrs { scheduler: "rr".into(), flags: 0, timeout: 0 };
        let mk = |w| {
            let mut t = IpvsTable::default();
            t.services.insert(vs, VsEntry { attrs: attrs.clone(), dests: [(rs, w)].into() });
            t
        };
        assert_eq!(diff(&mk(1), &mk(0)), vec![Op::SetDest(vs, rs, 0)]);
        assert!(diff(&mk(1), &mk(1)).is_empty());
    }
}
