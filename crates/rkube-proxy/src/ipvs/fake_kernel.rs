//! A fake kernel for the ipvs sync tests: this machine's kernel has no ip_vs, so this stands in for the
//! kernel's IPVS behind `GenlSocket`. It keeps a table, answers the controller and the dumps in the kernel's
//! reply layout (16-byte addresses, the HASHED flag set), applies changes with the kernel's errnos (EEXIST,
//! ESRCH, ENOENT), can be told to refuse one request, and records every request as a readable line (decoded
//! by `transcript_tests::decode`, which follows `ip_vs.h` independently of the encoder). `FakeDevice` records
//! the `kube-ipvs0` address changes the same way.

use std::collections::BTreeSet;
use std::io;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use super::desired::{IpvsTable, VsEntry};
use super::device::ServiceDevice;
use super::socket::GenlSocket;
use super::transcript_tests::decode;
use super::wire::{self, Reply};
use crate::Error;

/// The family id the fake gives "IPVS" (the transcript decoder expects it).
pub(super) const FAMILY: u16 = 0x24;
const EEXIST: i32 = 17;
const ESRCH: i32 = 3;
const ENOENT: i32 = 2;

/// What the fake kernel holds; shared with the test through an `Arc`.
#[derive(Debug, Default)]
pub(super) struct State {
    /// The kernel's IPVS table.
    pub(super) table: IpvsTable,
    /// Whether ip_vs is "loaded" (the family exists).
    pub(super) loaded: bool,
    /// Every request received, readable.
    pub(super) log: Vec<String>,
    /// A request (its readable line's prefix) to refuse once, with this errno.
    pub(super) refuse: Option<(String, i32)>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct FakeKernel(pub(super) Arc<Mutex<State>>);

impl FakeKernel {
    pub(super) fn with(table: IpvsTable) -> FakeKernel {
        FakeKernel(Arc::new(Mutex::new(State { table, loaded: true, ..State::default() })))
    }

    /// The requests since the last call.
    pub(super) fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap().log)
    }

    pub(super) fn table(&self) -> IpvsTable {
        self.0.lock().unwrap().table.clone()
    }
}

#[derive(Default)]
struct Attrs(Vec<u8>);

impl Attrs {
    fn put(&mut self, ty: u16, p: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&((4 + p.len()) as u16).to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(p);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        self
    }
}

fn addr16(a: Ipv4Addr) -> [u8; 16] {
    let mut b = [0; 16];
    b[..4].copy_from_slice(&a.octets());
    b
}

fn proto(p: crate::model::Protocol) -> u16 {
    match p {
        crate::model::Protocol::Tcp => 6,
        crate::model::Protocol::Udp => 17,
        crate::model::Protocol::Sctp => 132,
    }
}

impl State {
    /// The reply to one request, as `ip_vs_ctl.c` would give it.
    fn answer(&mut self, msg: &[u8]) -> Vec<Reply> {
        let (ty, seq, cmd) =
            (u16::from_ne_bytes([msg[4], msg[5]]), u32::from_ne_bytes(msg[8..12].try_into().unwrap()), msg[16]);
        let attrs = &msg[20..];
        if ty == super::genl::GENL_ID_CTRL {
            self.log.push("CTRL_CMD_GETFAMILY IPVS".into());
            if !self.loaded {
                return vec![Reply::Refused { seq, errno: ENOENT }];
            }
            let mut a = Attrs::default();
            a.put(super::genl::CTRL_ATTR_FAMILY_ID, &FAMILY.to_ne_bytes());
            return vec![Reply::Data { seq, cmd: 1, attrs: a.0 }, Reply::Ack { seq }];
        }
        assert_eq!(ty, FAMILY, "a request to another family");
        match cmd {
            4 => {
                self.log.push("GET_SERVICE dump".into());
                let mut out: Vec<Reply> = self
                    .table
                    .services
                    .iter()
                    .map(|(vs, e)| {
                        let mut s = Attrs::default();
                        let mut sched = e.attrs.scheduler.as_bytes().to_vec();
                        sched.push(0);
                        let mut flags = (e.attrs.flags | 0x2).to_ne_bytes().to_vec();
                        flags.extend_from_slice(&u32::MAX.to_ne_bytes());
                        s.put(1, &2u16.to_ne_bytes())
                            .put(2, &proto(vs.protocol).to_ne_bytes())
                            .put(3, &addr16(vs.addr))
                            .put(4, &vs.port.to_be_bytes())
                            .put(6, &sched)
                            .put(7, &flags)
                            .put(8, &e.attrs.timeout.to_ne_bytes())
                            .put(9, &[0xff; 4]);
                        let mut top = Attrs::default();
                        top.put(1 | 0x8000, &s.0);
                        Reply::Data { seq, cmd: 1, attrs: top.0 }
                    })
                    .collect();
                out.push(Reply::Done { seq });
                out
            }
            8 => {
                let (vs, _) = wire::service(attrs).expect("GET_DEST names its service");
                self.log.push(format!("GET_DEST dump {vs}"));
                let Some(e) = self.table.services.get(&vs) else { return vec![Reply::Refused { seq, errno: ESRCH }] };
                let mut out: Vec<Reply> = e
                    .dests
                    .iter()
                    .map(|(rs, w)| {
                        let mut d = Attrs::default();
                        d.put(1, &addr16(rs.addr))
                            .put(2, &rs.port.to_be_bytes())
                            .put(3, &0u32.to_ne_bytes())
                            .put(4, &w.to_ne_bytes())
                            .put(11, &2u16.to_ne_bytes());
                        let mut top = Attrs::default();
                        top.put(2 | 0x8000, &d.0);
                        Reply::Data { seq, cmd: 5, attrs: top.0 }
                    })
                    .collect();
                out.push(Reply::Done { seq });
                out
            }
            _ => {
                let line = decode(msg);
                self.log.push(line.clone());
                if let Some((prefix, errno)) = self.refuse.take() {
                    if line.starts_with(&prefix) {
                        return vec![Reply::Refused { seq, errno }];
                    }
                    self.refuse = Some((prefix, errno));
                }
                match self.change(cmd, attrs) {
                    Ok(()) => vec![Reply::Ack { seq }],
                    Err(errno) => vec![Reply::Refused { seq, errno }],
                }
            }
        }
    }

    fn change(&mut self, cmd: u8, attrs: &[u8]) -> Result<(), i32> {
        let (vs, sattrs) = wire::service(attrs).expect("every change names its service");
        let t = &mut self.table.services;
        match cmd {
            1 if t.contains_key(&vs) => Err(EEXIST),
            1 => {
                t.insert(vs, VsEntry { attrs: sattrs, dests: Default::default() });
                Ok(())
            }
            2 => t.get_mut(&vs).map(|e| e.attrs = sattrs).ok_or(ESRCH),
            3 => t.remove(&vs).map(|_| ()).ok_or(ESRCH),
            5..=7 => {
                let e = t.get_mut(&vs).ok_or(ESRCH)?;
                let (rs, w) = wire::dest(attrs).expect("a dest");
                match (cmd, e.dests.contains_key(&rs)) {
                    (5, true) => Err(EEXIST),
                    (6 | 7, false) => Err(ENOENT),
                    (7, true) => e.dests.remove(&rs).map(|_| ()).ok_or(ENOENT),
                    _ => {
                        e.dests.insert(rs, w);
                        Ok(())
                    }
                }
            }
            c => panic!("command {c}"),
        }
    }
}

impl GenlSocket for FakeKernel {
    async fn request(&mut self, msg: Vec<u8>) -> io::Result<Vec<Reply>> {
        Ok(self.0.lock().unwrap().answer(&msg))
    }
}

/// `kube-ipvs0` without a kernel: its addresses and a log of the changes.
#[derive(Debug, Default)]
pub(super) struct FakeDevice {
    pub(super) addrs: BTreeSet<Ipv4Addr>,
    pub(super) log: Vec<String>,
}

impl ServiceDevice for FakeDevice {
    async fn addresses(&mut self) -> Result<BTreeSet<Ipv4Addr>, Error> {
        Ok(self.addrs.clone())
    }

    async fn add(&mut self, ip: Ipv4Addr) -> Result<(), Error> {
        self.log.push(format!("addr add {ip}/32 dev kube-ipvs0"));
        self.addrs.insert(ip);
        Ok(())
    }

    async fn del(&mut self, ip: Ipv4Addr) -> Result<(), Error> {
        self.log.push(format!("addr del {ip}/32 dev kube-ipvs0"));
        self.addrs.remove(&ip);
        Ok(())
    }
}
