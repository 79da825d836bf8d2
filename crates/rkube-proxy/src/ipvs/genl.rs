//! IPVS changes encoded as the kernel's generic-netlink requests (family "IPVS", version 1): the command
//! numbers and attribute numbers are those of `include/uapi/linux/ip_vs.h`; field byte orders follow the
//! kernel's parser (`ip_vs_genl_parse_service`/`_dest` in `net/netfilter/ipvs/ip_vs_ctl.c`): ports and the
//! netmask big-endian, every other integer in host order.
//!
//! The encoder is hand-written rather than built on `netlink-packet-generic`: that crate is not in the tree
//! and would need a `GenlFamily` plus one `Nla` impl per attribute, more code than the dozen fixed-layout
//! attributes written here, and the exact bytes are what the transcript test pins down. Also the read side's
//! requests (the controller's CTRL_CMD_GETFAMILY, the GET_SERVICE/GET_DEST dumps); replies are read by `wire`.

use std::net::Ipv4Addr;

use super::desired::{RealServer, ServiceAttrs, VirtualServer};
use super::diff::Op;
use crate::model::Protocol;

/// The generic-netlink family name the kernel registers for IPVS (resolved to an id with CTRL_CMD_GETFAMILY).
pub const IPVS_GENL_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub const IPVS_GENL_VERSION: u8 = 1;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_DUMP` (ROOT|MATCH): every object of the kind.
const NLM_F_DUMP: u16 = 0x300;
const NLA_F_NESTED: u16 = 0x8000;
pub(crate) const AF_INET: u16 = 2;

/// `GENL_ID_CTRL`: the generic-netlink controller's fixed family id.
pub const GENL_ID_CTRL: u16 = 0x10;
/// `CTRL_CMD_GETFAMILY`.
pub const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID` (u16, in the controller's reply).
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// `IPVS_CMD_GET_SERVICE`.
pub const IPVS_CMD_GET_SERVICE: u8 = 4;
/// `IPVS_CMD_GET_DEST`.
pub const IPVS_CMD_GET_DEST: u8 = 8;

/// Commands (`IPVS_CMD_*`).
pub const IPVS_CMD_NEW_SERVICE: u8 = 1;
/// `IPVS_CMD_SET_SERVICE`.
pub const IPVS_CMD_SET_SERVICE: u8 = 2;
/// `IPVS_CMD_DEL_SERVICE`.
pub const IPVS_CMD_DEL_SERVICE: u8 = 3;
/// `IPVS_CMD_NEW_DEST`.
pub const IPVS_CMD_NEW_DEST: u8 = 5;
/// `IPVS_CMD_SET_DEST`.
pub const IPVS_CMD_SET_DEST: u8 = 6;
/// `IPVS_CMD_DEL_DEST`.
pub const IPVS_CMD_DEL_DEST: u8 = 7;

pub(crate) const IPVS_CMD_ATTR_SERVICE: u16 = 1;
pub(crate) const IPVS_CMD_ATTR_DEST: u16 = 2;

const IPVS_SVC_ATTR_AF: u16 = 1;
const IPVS_SVC_ATTR_PROTOCOL: u16 = 2;
const IPVS_SVC_ATTR_ADDR: u16 = 3;
const IPVS_SVC_ATTR_PORT: u16 = 4;
const IPVS_SVC_ATTR_SCHED_NAME: u16 = 6;
const IPVS_SVC_ATTR_FLAGS: u16 = 7;
const IPVS_SVC_ATTR_TIMEOUT: u16 = 8;
const IPVS_SVC_ATTR_NETMASK: u16 = 9;

const IPVS_DEST_ATTR_ADDR: u16 = 1;
const IPVS_DEST_ATTR_PORT: u16 = 2;
const IPVS_DEST_ATTR_FWD_METHOD: u16 = 3;
const IPVS_DEST_ATTR_WEIGHT: u16 = 4;
const IPVS_DEST_ATTR_U_THRESH: u16 = 5;
const IPVS_DEST_ATTR_L_THRESH: u16 = 6;
const IPVS_DEST_ATTR_ADDR_FAMILY: u16 = 11;

/// `IP_VS_CONN_F_MASQ`: real servers are reached by NAT, as upstream's ipvs mode does.
const IP_VS_CONN_F_MASQ: u32 = 0;

fn ip_proto(p: Protocol) -> u16 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    }
}

/// A run of netlink attributes.
#[derive(Default)]
struct Attrs(Vec<u8>);

impl Attrs {
    /// One attribute: 4-byte header (length without padding, type), payload, padding to 4 bytes.
    fn put(&mut self, ty: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(payload);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
    }

    fn nested(&mut self, ty: u16, inner: Attrs) {
        self.put(ty | NLA_F_NESTED, &inner.0);
    }
}

/// The service identity every command carries.
fn service_key(vs: &VirtualServer) -> Attrs {
    let mut a = Attrs::default();
    a.put(IPVS_SVC_ATTR_AF, &AF_INET.to_ne_bytes());
    a.put(IPVS_SVC_ATTR_PROTOCOL, &ip_proto(vs.protocol).to_ne_bytes());
    a.put(IPVS_SVC_ATTR_ADDR, &vs.addr.octets());
    a.put(IPVS_SVC_ATTR_PORT, &vs.port.to_be_bytes());
    a
}

/// The full service entry the kernel requires for NEW/SET_SERVICE.
fn service_full(vs: &VirtualServer, attrs: &ServiceAttrs) -> Attrs {
    let mut a = service_key(vs);
    let mut sched = attrs.scheduler.as_bytes().to_vec();
    sched.push(0);
    a.put(IPVS_SVC_ATTR_SCHED_NAME, &sched);
    // struct ip_vs_flags { flags, mask }: the mask says every flag is ours to set or clear.
    let mut flags = attrs.flags.to_ne_bytes().to_vec();
    flags.extend_from_slice(&u32::MAX.to_ne_bytes());
    a.put(IPVS_SVC_ATTR_FLAGS, &flags);
    a.put(IPVS_SVC_ATTR_TIMEOUT, &attrs.timeout.to_ne_bytes());
    // Persistence groups clients by their whole address, as upstream's /32 netmask.
    a.put(IPVS_SVC_ATTR_NETMASK, &Ipv4Addr::BROADCAST.octets());
    a
}

fn dest(rs: &RealServer, weight: Option<u32>) -> Attrs {
    let mut a = Attrs::default();
    a.put(IPVS_DEST_ATTR_ADDR, &rs.addr.octets());
    a.put(IPVS_DEST_ATTR_PORT, &rs.port.to_be_bytes());
    a.put(IPVS_DEST_ATTR_ADDR_FAMILY, &AF_INET.to_ne_bytes());
    if let Some(w) = weight {
        a.put(IPVS_DEST_ATTR_FWD_METHOD, &IP_VS_CONN_F_MASQ.to_ne_bytes());
        a.put(IPVS_DEST_ATTR_WEIGHT, &w.to_ne_bytes());
        a.put(IPVS_DEST_ATTR_U_THRESH, &0u32.to_ne_bytes());
        a.put(IPVS_DEST_ATTR_L_THRESH, &0u32.to_ne_bytes());
    }
    a
}

/// The command and top-level attributes of `op`.
fn body(op: &Op) -> (u8, Attrs) {
    let mut top = Attrs::default();
    let cmd = match op {
        Op::NewService(vs, a) | Op::SetService(vs, a) => {
            top.nested(IPVS_CMD_ATTR_SERVICE, service_full(vs, a));
            if matches!(op, Op::NewService(..)) { IPVS_CMD_NEW_SERVICE } else { IPVS_CMD_SET_SERVICE }
        }
        Op::DelService(vs) => {
            top.nested(IPVS_CMD_ATTR_SERVICE, service_key(vs));
            IPVS_CMD_DEL_SERVICE
        }
        Op::NewDest(vs, rs, w) | Op::SetDest(vs, rs, w) => {
            top.nested(IPVS_CMD_ATTR_SERVICE, service_key(vs));
            top.nested(IPVS_CMD_ATTR_DEST, dest(rs, Some(*w)));
            if matches!(op, Op::NewDest(..)) { IPVS_CMD_NEW_DEST } else { IPVS_CMD_SET_DEST }
        }
        Op::DelDest(vs, rs) => {
            top.nested(IPVS_CMD_ATTR_SERVICE, service_key(vs));
            top.nested(IPVS_CMD_ATTR_DEST, dest(rs, None));
            IPVS_CMD_DEL_DEST
        }
    };
    (cmd, top)
}

/// A request with header fields spelled out: `nlmsghdr`, `genlmsghdr` (`cmd`, `version`), attributes.
fn message(ty: u16, flags: u16, seq: u32, cmd: u8, version: u8, attrs: &Attrs) -> Vec<u8> {
    let len = 16 + 4 + attrs.0.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[cmd, version, 0, 0]);
    m.extend_from_slice(&attrs.0);
    m
}

/// The controller request that resolves the "IPVS" family name to its id (version 1 of the controller).
pub fn get_family(name: &str, seq: u32) -> Vec<u8> {
    let mut a = Attrs::default();
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    a.put(CTRL_ATTR_FAMILY_NAME, &n);
    message(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq, CTRL_CMD_GETFAMILY, 1, &a)
}

/// A dump of every virtual server.
pub fn dump_services(family: u16, seq: u32) -> Vec<u8> {
    message(family, NLM_F_REQUEST | NLM_F_DUMP, seq, IPVS_CMD_GET_SERVICE, IPVS_GENL_VERSION, &Attrs::default())
}

/// A dump of the real servers of `vs`.
pub fn dump_dests(vs: &VirtualServer, family: u16, seq: u32) -> Vec<u8> {
    let mut top = Attrs::default();
    top.nested(IPVS_CMD_ATTR_SERVICE, service_key(vs));
    message(family, NLM_F_REQUEST | NLM_F_DUMP, seq, IPVS_CMD_GET_DEST, IPVS_GENL_VERSION, &top)
}

/// One complete request for `op`: `nlmsghdr` (type `family`, the id the kernel gave "IPVS"; flags
/// REQUEST|ACK so every change is acknowledged or refused; sequence `seq`; port 0), `genlmsghdr`, attributes.
pub fn encode(op: &Op, family: u16, seq: u32) -> Vec<u8> {
    let (cmd, attrs) = body(op);
    message(family, NLM_F_REQUEST | NLM_F_ACK, seq, cmd, IPVS_GENL_VERSION, &attrs)
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    /// One message written out byte by byte from the header layouts, independently of `Attrs`.
    #[test]
    fn del_dest_bytes_match_the_kernel_layout() {
        let vs = VirtualServer { protocol: Protocol::Udp, addr: Ipv4Addr::new(10, 96, 0, 10), port: 53 };
        let rs = RealServer { addr: Ipv4Addr::new(10, 244, 1, 2), port: 5353 };
        let got = encode(&Op::DelDest(vs, rs), 0x24, 7);
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            84, 0, 0, 0, 0x24, 0, 5, 0, 7, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr: len 16 + 4 + 36 + 28, type, REQUEST|ACK, seq, pid
            7, 1, 0, 0,                                         // genlmsghdr: DEL_DEST, version 1
            36, 0, 0x01, 0x80,                                  // SERVICE | NESTED, 4 + 32
            6, 0, 1, 0, 2, 0, 0, 0,                             // AF = AF_INET (u16, padded)
            6, 0, 2, 0, 17, 0, 0, 0,                            // PROTOCOL = UDP
            8, 0, 3, 0, 10, 96, 0, 10,                          // ADDR
            6, 0, 4, 0, 0, 53, 0, 0,                            // PORT, big-endian
            28, 0, 0x02, 0x80,                                  // DEST | NESTED, 4 + 24
            8, 0, 1, 0, 10, 244, 1, 2,                          // ADDR
            6, 0, 2, 0, 0x14, 0xe9, 0, 0,                       // PORT 5353, big-endian
            6, 0, 11, 0, 2, 0, 0, 0,                            // ADDR_FAMILY = AF_INET
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn new_service_carries_the_full_entry() {
        let vs = VirtualServer { protocol: Protocol::Tcp, addr: Ipv4Addr::new(10, 96, 0, 1), port: 443 };
        let attrs = ServiceAttrs { scheduler: "sh".into(), flags: 1, timeout: 10800 };
        let got = encode(&Op::NewService(vs, attrs), 0x24, 1);
        assert_eq!(got[16], IPVS_CMD_NEW_SERVICE);
        let tail = &got[20 + 4 + 32..];
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            7, 0, 6, 0, b's', b'h', 0, 0,                   // SCHED_NAME "sh\0"
            12, 0, 7, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // FLAGS { PERSISTENT, mask all }
            8, 0, 8, 0, 0x30, 0x2a, 0, 0,                   // TIMEOUT 10800
            8, 0, 9, 0, 0xff, 0xff, 0xff, 0xff,             // NETMASK /32
        ];
        assert_eq!(tail, &want[..]);
        assert_eq!(got.len(), u32::from_ne_bytes(got[0..4].try_into().unwrap()) as usize);
    }
}
