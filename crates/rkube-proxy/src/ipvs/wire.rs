//! The kernel's netlink replies read back: a datagram split into messages, acknowledgements and refusals
//! (`NLMSG_ERROR` with its errno), the end of a dump (`NLMSG_DONE`), the controller's family id, and the IPVS
//! dump entries in the layout of `ip_vs_genl_fill_service`/`_dest` (`net/netfilter/ipvs/ip_vs_ctl.c`):
//! addresses as the 16-byte `nf_inet_addr`, ports and the netmask big-endian, other integers in host order.

use std::net::Ipv4Addr;

use super::desired::{RealServer, ServiceAttrs, VirtualServer};
use super::genl::{AF_INET, CTRL_ATTR_FAMILY_ID, IPVS_CMD_ATTR_DEST, IPVS_CMD_ATTR_SERVICE};
use crate::model::Protocol;

/// `NLMSG_ERROR`: an acknowledgement (errno 0) or a refusal.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// `IP_VS_SVC_F_HASHED`: set by the kernel on every listed service, never by us (left out when comparing).
const IP_VS_SVC_F_HASHED: u32 = 0x0002;

/// One netlink message of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A generic-netlink message: its command and its attributes (after the 4-byte `genlmsghdr`).
    Data {
        /// The sequence number it answers.
        seq: u32,
        /// `genlmsghdr.cmd`.
        cmd: u8,
        /// The attribute bytes.
        attrs: Vec<u8>,
    },
    /// `NLMSG_ERROR` with errno 0.
    Ack {
        /// The sequence number acknowledged.
        seq: u32,
    },
    /// `NLMSG_ERROR` with a non-zero errno (positive here, as `errno` spells it).
    Refused {
        /// The sequence number refused.
        seq: u32,
        /// The errno.
        errno: i32,
    },
    /// `NLMSG_DONE`.
    Done {
        /// The sequence number of the dump.
        seq: u32,
    },
}

impl Reply {
    /// The sequence number this message answers.
    pub fn seq(&self) -> u32 {
        match self {
            Reply::Data { seq, .. } | Reply::Ack { seq } | Reply::Refused { seq, .. } | Reply::Done { seq } => *seq,
        }
    }
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Splits one received datagram into its messages; `None` when it is truncated or malformed.
pub fn split(mut buf: &[u8]) -> Option<Vec<Reply>> {
    let mut out = Vec::new();
    while buf.len() >= 16 {
        let len = u32_at(buf, 0)? as usize;
        if len < 16 || len > buf.len() {
            return None;
        }
        let (ty, seq) = (u16_at(buf, 4)?, u32_at(buf, 8)?);
        let body = &buf[16..len];
        out.push(match ty {
            NLMSG_ERROR => {
                // struct nlmsgerr { int error; struct nlmsghdr msg; ... }: error is minus the errno.
                let code = i32::from_ne_bytes(body.get(0..4)?.try_into().ok()?);
                if code == 0 { Reply::Ack { seq } } else { Reply::Refused { seq, errno: -code } }
            }
            NLMSG_DONE => Reply::Done { seq },
            _ => Reply::Data { seq, cmd: *body.first()?, attrs: body.get(4..)?.to_vec() },
        });
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
    }
    Some(out)
}

/// The attributes of a run: (type without the NESTED/BYTEORDER flags, payload).
pub fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((u16::from_ne_bytes([b[2], b[3]]) & 0x3fff, &b[4..len]));
        b = &b[len.next_multiple_of(4).min(b.len())..];
    }
    out
}

fn get<'a>(a: &[(u16, &'a [u8])], ty: u16) -> Option<&'a [u8]> {
    a.iter().find(|(t, _)| *t == ty).map(|(_, p)| *p)
}

fn ne_u16(b: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(..2)?.try_into().ok()?))
}

fn ne_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

fn be_port(b: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(..2)?.try_into().ok()?))
}

fn v4(b: &[u8]) -> Option<Ipv4Addr> {
    let o: [u8; 4] = b.get(..4)?.try_into().ok()?;
    Some(Ipv4Addr::from(o))
}

/// The family id in the controller's reply to CTRL_CMD_GETFAMILY.
pub fn family_id(attrs_bytes: &[u8]) -> Option<u16> {
    ne_u16(get(&attrs(attrs_bytes), CTRL_ATTR_FAMILY_ID)?)
}

/// A virtual server from a GET_SERVICE dump entry; `None` for what rkube never programs (IPv6, fwmark
/// services, other protocols).
pub fn service(attrs_bytes: &[u8]) -> Option<(VirtualServer, ServiceAttrs)> {
    let top = attrs(attrs_bytes);
    let s = attrs(get(&top, IPVS_CMD_ATTR_SERVICE)?);
    if ne_u16(get(&s, 1)?)? != AF_INET {
        return None;
    }
    let protocol = match ne_u16(get(&s, 2)?)? {
        6 => Protocol::Tcp,
        17 => Protocol::Udp,
        132 => Protocol::Sctp,
        _ => return None,
    };
    let vs = VirtualServer { protocol, addr: v4(get(&s, 3)?)?, port: be_port(get(&s, 4)?)? };
    let sched = get(&s, 6).unwrap_or_default();
    let sched = sched.split(|c| *c == 0).next().unwrap_or_default();
    let flags = get(&s, 7).and_then(ne_u32).unwrap_or(0) & !IP_VS_SVC_F_HASHED;
    let timeout = get(&s, 8).and_then(ne_u32).unwrap_or(0);
    Some((vs, ServiceAttrs { scheduler: String::from_utf8_lossy(sched).into_owned(), flags, timeout }))
}

/// A real server and its weight from a GET_DEST dump entry (`None` for IPv6).
pub fn dest(attrs_bytes: &[u8]) -> Option<(RealServer, u32)> {
    let top = attrs(attrs_bytes);
    let d = attrs(get(&top, IPVS_CMD_ATTR_DEST)?);
    if get(&d, 11).and_then(ne_u16).is_some_and(|af| af != AF_INET) {
        return None;
    }
    let rs = RealServer { addr: v4(get(&d, 1)?)?, port: be_port(get(&d, 2)?)? };
    Some((rs, get(&d, 4).and_then(ne_u32).unwrap_or(0)))
}
