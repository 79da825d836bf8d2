//! The `kube-ipvs0` dummy device that holds the service addresses (so the node accepts their packets and
//! hands them to IPVS), through rtnetlink: created when missing and left down as upstream leaves it (a down
//! dummy's addresses still get local routes), addresses added and removed as /32s. Behind `ServiceDevice`
//! so the sync's tests can record the address changes without a kernel.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};

use super::desired::DUMMY_DEVICE;
use crate::Error;

const ENOENT: i32 = 2;
const EEXIST: i32 = 17;
const EOPNOTSUPP: i32 = 95;
const EADDRNOTAVAIL: i32 = 99;

/// The addresses of the service device.
pub trait ServiceDevice: Send {
    /// The IPv4 addresses on the device.
    fn addresses(&mut self) -> impl Future<Output = Result<BTreeSet<Ipv4Addr>, Error>> + Send;
    /// Adds `ip/32` (present already is fine).
    fn add(&mut self, ip: Ipv4Addr) -> impl Future<Output = Result<(), Error>> + Send;
    /// Removes `ip/32` (absent already is fine).
    fn del(&mut self, ip: Ipv4Addr) -> impl Future<Output = Result<(), Error>> + Send;
}

/// What ipvs mode says when the kernel cannot make a dummy link.
pub fn no_dummy_message() -> String {
    format!(
        "can't use the IPVS proxier: the kernel has no dummy link driver (module dummy), needed for the \
         {DUMMY_DEVICE} device that holds the service addresses; load it with `modprobe -- dummy` (and list it in \
         /etc/modules-load.d/ipvs.conf), or run with --proxy-mode=iptables or --proxy-mode=nftables"
    )
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| c.get().abs()),
        _ => None,
    }
}

fn nl(what: String, e: rtnetlink::Error) -> Error {
    Error::Netlink { what, source: std::io::Error::other(e.to_string()) }
}

/// `kube-ipvs0` in the calling thread's network namespace.
#[derive(Debug)]
pub struct DummyDevice {
    handle: rtnetlink::Handle,
    index: u32,
}

fn named(m: &LinkMessage, name: &str) -> bool {
    m.attributes.iter().any(|a| matches!(a, LinkAttribute::IfName(n) if n == name))
}

impl DummyDevice {
    /// Finds `kube-ipvs0` or creates it as a dummy link (needs a tokio runtime). A kernel without the dummy
    /// driver fails with a message naming the module.
    pub async fn ensure() -> Result<DummyDevice, Error> {
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|source| Error::Netlink { what: "opening rtnetlink".into(), source })?;
        tokio::spawn(conn);
        if let Some(index) = Self::find(&handle).await? {
            return Ok(DummyDevice { handle, index });
        }
        let msg = rtnetlink::LinkDummy::new(DUMMY_DEVICE).build();
        match handle.link().add(msg).execute().await {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(EOPNOTSUPP) => return Err(Error::Ipvs(no_dummy_message())),
            Err(e) if errno(&e) == Some(EEXIST) => {}
            Err(e) => return Err(nl(format!("creating {DUMMY_DEVICE}"), e)),
        }
        let index = Self::find(&handle)
            .await?
            .ok_or_else(|| Error::Ipvs(format!("{DUMMY_DEVICE} was created but is not listed")))?;
        Ok(DummyDevice { handle, index })
    }

    async fn find(h: &rtnetlink::Handle) -> Result<Option<u32>, Error> {
        let links: Vec<LinkMessage> =
            h.link().get().execute().try_collect().await.map_err(|e| nl("listing links".into(), e))?;
        Ok(links.iter().find(|m| named(m, DUMMY_DEVICE)).map(|m| m.header.index))
    }

    async fn messages(&self) -> Result<Vec<(Ipv4Addr, AddressMessage)>, Error> {
        let ms: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(self.index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl(format!("listing the addresses of {DUMMY_DEVICE}"), e))?;
        Ok(ms
            .into_iter()
            .filter(|m| m.header.family == AddressFamily::Inet && m.header.index == self.index)
            .filter_map(|m| {
                let ip = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(IpAddr::V4(ip)) | AddressAttribute::Address(IpAddr::V4(ip)) => Some(*ip),
                    _ => None,
                })?;
                Some((ip, m))
            })
            .collect())
    }
}

impl ServiceDevice for DummyDevice {
    async fn addresses(&mut self) -> Result<BTreeSet<Ipv4Addr>, Error> {
        Ok(self.messages().await?.into_iter().map(|(ip, _)| ip).collect())
    }

    async fn add(&mut self, ip: Ipv4Addr) -> Result<(), Error> {
        match self.handle.address().add(self.index, IpAddr::V4(ip), 32).execute().await {
            Err(e) if errno(&e) != Some(EEXIST) => Err(nl(format!("adding {ip}/32 to {DUMMY_DEVICE}"), e)),
            _ => Ok(()),
        }
    }

    async fn del(&mut self, ip: Ipv4Addr) -> Result<(), Error> {
        for (a, m) in self.messages().await? {
            if a != ip {
                continue;
            }
            match self.handle.address().del(m).execute().await {
                Err(e) if !matches!(errno(&e), Some(ENOENT | EADDRNOTAVAIL)) => {
                    return Err(nl(format!("removing {ip}/32 from {DUMMY_DEVICE}"), e));
                }
                _ => {}
            }
        }
        Ok(())
    }
}
