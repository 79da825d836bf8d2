//! Small netlink helpers over `rtnetlink`: a connection in the calling thread's network namespace, links,
//! addresses and the default route.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, RouteMessageBuilder};

use crate::cidr::Ipv4Net;

/// A netlink failure with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("netlink: {context}: {source}")]
pub struct NlError {
    /// What was being done (`adding route 172.30.2.0/24 via 172.30.2.0 dev flannel.1 onlink`).
    pub context: String,
    /// The kernel's answer.
    pub source: rtnetlink::Error,
}

pub(crate) fn nl(context: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NlError {
    let context = context.into();
    move |source| NlError { context, source }
}

/// Whether the error is the kernel's ENOENT/ESRCH (nothing to delete) or EEXIST.
pub(crate) fn errno_is(e: &rtnetlink::Error, codes: &[i32]) -> bool {
    match e {
        rtnetlink::Error::NetlinkError(m) => {
            m.code.is_some_and(|c| codes.contains(&-c.get()) || codes.contains(&c.get()))
        }
        _ => false,
    }
}
pub(crate) const ENOENT: i32 = 2;
pub(crate) const ESRCH: i32 = 3;

/// Opens a netlink connection in the calling thread's network namespace and drives it on the runtime.
pub fn connect() -> std::io::Result<Handle> {
    let (conn, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(conn);
    Ok(handle)
}

/// A link's name, index, MTU and MAC.
#[derive(Clone, Debug)]
pub(crate) struct Link {
    pub(crate) index: u32,
    pub(crate) name: String,
    pub(crate) mtu: u32,
    pub(crate) mac: Vec<u8>,
    pub(crate) msg: LinkMessage,
}

fn to_link(m: LinkMessage) -> Link {
    let mut l = Link { index: m.header.index, name: String::new(), mtu: 0, mac: Vec::new(), msg: m.clone() };
    for a in m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n,
            LinkAttribute::Mtu(v) => l.mtu = v,
            LinkAttribute::Address(a) => l.mac = a,
            _ => {}
        }
    }
    l
}

pub(crate) async fn links(h: &Handle) -> Result<Vec<Link>, NlError> {
    let ms: Vec<LinkMessage> = h.link().get().execute().try_collect().await.map_err(nl("listing links"))?;
    Ok(ms.into_iter().map(to_link).collect())
}

pub(crate) async fn link_by_name(h: &Handle, name: &str) -> Result<Option<Link>, NlError> {
    Ok(links(h).await?.into_iter().find(|l| l.name == name))
}

/// IPv4 addresses (with prefix) on a link, or on every link when `index` is None: (index, network-of-address, address).
pub(crate) async fn addresses(
    h: &Handle,
    index: Option<u32>,
) -> Result<Vec<(u32, Ipv4Addr, u8, AddressMessage)>, NlError> {
    let ms: Vec<AddressMessage> = h.address().get().execute().try_collect().await.map_err(nl("listing addresses"))?;
    Ok(ms
        .into_iter()
        .filter(|m| m.header.family == AddressFamily::Inet && index.is_none_or(|i| m.header.index == i))
        .filter_map(|m| {
            let ip = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            })?;
            Some((m.header.index, ip, m.header.prefix_len, m))
        })
        .collect())
}

/// The interface index of the IPv4 default route (main table), if any.
pub(crate) async fn default_route_link(h: &Handle) -> Result<Option<u32>, NlError> {
    let q = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let routes: Vec<_> = h.route().get(q).execute().try_collect().await.map_err(nl("listing routes"))?;
    Ok(routes
        .iter()
        .filter(|r| r.header.destination_prefix_length == 0 && r.header.table == 254)
        .find_map(|r| r.attributes.iter().find_map(|a| if let RouteAttribute::Oif(i) = a { Some(*i) } else { None })))
}

/// Ensures `net`'s address is exactly `ip/prefix` on the link (others removed) and the link is up.
pub(crate) async fn set_only_address(
    h: &Handle,
    index: u32,
    ip: Ipv4Addr,
    prefix: u8,
    name: &str,
) -> Result<(), NlError> {
    let mut present = false;
    for (_, a, p, m) in addresses(h, Some(index)).await? {
        if a == ip && p == prefix {
            present = true;
        } else {
            h.address().del(m).execute().await.map_err(nl(format!("removing {a}/{p} from {name}")))?;
        }
    }
    if !present {
        h.address()
            .add(index, IpAddr::V4(ip), prefix)
            .execute()
            .await
            .map_err(nl(format!("adding {ip}/{prefix} to {name}")))?;
    }
    let up = rtnetlink::LinkUnspec::new_with_index(index).up().build();
    h.link().set(up).execute().await.map_err(nl(format!("setting {name} up")))
}

/// A route's destination as our type, when it is an IPv4 network.
pub(crate) fn route_dst(r: &rtnetlink::packet_route::route::RouteMessage) -> Option<Ipv4Net> {
    let ip = r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
        _ => None,
    })?;
    Ipv4Net::new(ip, r.header.destination_prefix_length)
}
