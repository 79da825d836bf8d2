//! The kernel's IPVS table through a `GenlSocket`: the "IPVS" family resolved with the controller (its
//! absence is the kernel's way of saying ip_vs is not loaded), the table read back with GET_SERVICE and
//! GET_DEST dumps, and one change sent and acknowledged at a time.

use std::io;

use super::desired::{IpvsTable, VirtualServer, VsEntry};
use super::diff::Op;
use super::genl::{IPVS_GENL_NAME, dump_dests, dump_services, encode, get_family};
use super::socket::GenlSocket;
use super::wire::{self, Reply};
use crate::Error;

/// `ENOENT`: the controller knows no such family.
const ENOENT: i32 = 2;

/// What ipvs mode says when the kernel has no IPVS family.
pub fn no_ip_vs_message() -> String {
    "can't use the IPVS proxier: the kernel has no IPVS generic-netlink family (the ip_vs module is not loaded \
     and could not be loaded on demand); load it with `modprobe -- ip_vs`, or run with --proxy-mode=iptables or \
     --proxy-mode=nftables"
        .to_string()
}

/// A resolved IPVS family on a socket.
#[derive(Debug)]
pub struct Kernel<S> {
    sock: S,
    family: u16,
    seq: u32,
}

fn io_err(what: &str, source: io::Error) -> Error {
    Error::Netlink { what: what.to_string(), source }
}

impl<S: GenlSocket> Kernel<S> {
    /// Resolves the "IPVS" family on `sock`; a kernel without ip_vs fails with a message naming it.
    pub async fn open(mut sock: S) -> Result<Kernel<S>, Error> {
        let replies = sock.request(get_family(IPVS_GENL_NAME, 1)).await.map_err(|e| io_err("resolving IPVS", e))?;
        let mut family = None;
        for r in replies {
            match r {
                Reply::Data { attrs, .. } => family = family.or(wire::family_id(&attrs)),
                Reply::Refused { errno: ENOENT, .. } => return Err(Error::Ipvs(no_ip_vs_message())),
                Reply::Refused { errno, .. } => {
                    return Err(io_err("resolving IPVS", io::Error::from_raw_os_error(errno)));
                }
                Reply::Ack { .. } | Reply::Done { .. } => {}
            }
        }
        let family =
            family.ok_or_else(|| Error::Ipvs("the controller's answer for IPVS carried no family id".into()))?;
        Ok(Kernel { sock, family, seq: 1 })
    }

    /// The id the kernel gave the "IPVS" family.
    pub fn family(&self) -> u16 {
        self.family
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// A dump: its data messages' attributes, or the kernel's refusal.
    async fn dump(&mut self, msg: Vec<u8>, what: &str) -> Result<Vec<Vec<u8>>, Error> {
        let mut out = Vec::new();
        for r in self.sock.request(msg).await.map_err(|e| io_err(what, e))? {
            match r {
                Reply::Data { attrs, .. } => out.push(attrs),
                Reply::Refused { errno, .. } => return Err(io_err(what, io::Error::from_raw_os_error(errno))),
                Reply::Ack { .. } | Reply::Done { .. } => {}
            }
        }
        Ok(out)
    }

    /// The kernel's whole IPv4 IPVS table (fwmark and IPv6 services left out: rkube never makes them).
    pub async fn read_table(&mut self) -> Result<IpvsTable, Error> {
        let mut table = IpvsTable::default();
        let seq = self.next_seq();
        for attrs in self.dump(dump_services(self.family, seq), "listing IPVS services").await? {
            if let Some((vs, attrs)) = wire::service(&attrs) {
                table.services.insert(vs, VsEntry { attrs, dests: Default::default() });
            }
        }
        let keys: Vec<VirtualServer> = table.services.keys().copied().collect();
        for vs in keys {
            let seq = self.next_seq();
            let what = format!("listing the real servers of {vs}");
            let dests = self.dump(dump_dests(&vs, self.family, seq), &what).await?;
            if let Some(e) = table.services.get_mut(&vs) {
                e.dests = dests.iter().filter_map(|a| wire::dest(a)).collect();
            }
        }
        Ok(table)
    }

    /// Sends one change and waits for the kernel's acknowledgement.
    pub async fn send(&mut self, op: &Op) -> Result<(), Error> {
        let seq = self.next_seq();
        let replies = self.sock.request(encode(op, self.family, seq)).await.map_err(|e| io_err(&op.to_string(), e))?;
        match replies.iter().find_map(|r| if let Reply::Refused { errno, .. } = r { Some(*errno) } else { None }) {
            Some(errno) => Err(Error::IpvsOp { op: op.to_string(), source: io::Error::from_raw_os_error(errno) }),
            None => Ok(()),
        }
    }
}
