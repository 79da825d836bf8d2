//! The data plane: vxlan (`flannel.1` plus a route, a permanent neighbour and an FDB entry per peer) and
//! host-gw (a plain route per peer via its PublicIP), all over netlink in the calling thread's namespace.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::link::{InfoData, InfoVxlan, LinkAttribute, LinkInfo};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{RouteProtocol, RouteType};
use rtnetlink::{Handle, LinkVxlan, RouteMessageBuilder};

use crate::cidr::Ipv4Net;
use crate::config;
use crate::lease::{Lease, LeaseAttrs, VxlanData, format_mac, parse_mac};
use crate::nl::{self, ENOENT, ESRCH, NlError, errno_is, nl};
use crate::uplink::Uplink;

/// The vxlan device's name (flannel's, VNI 1).
pub const VXLAN_DEVICE: &str = "flannel.1";
/// Bytes vxlan adds to each packet (outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14).
pub const VXLAN_OVERHEAD: u32 = 50;
/// The smallest MTU IPv4 allows inside the tunnel.
const MIN_INNER_MTU: u32 = 68;

/// A backend failure; messages name the value and the fix.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Netlink failed.
    #[error(transparent)]
    Netlink(#[from] NlError),
    /// A refusal worded for the operator.
    #[error("{0}")]
    Refused(String),
}

/// A running backend on this node.
pub struct Backend {
    handle: Handle,
    uplink: Uplink,
    kind: Kind,
}

enum Kind {
    Vxlan { index: u32, mac: Vec<u8>, vni: u32 },
    HostGw,
}

impl Backend {
    /// Prepares the backend before the lease exists: for vxlan, creates (or reuses, keeping its MAC) `flannel.1`.
    pub async fn new(handle: Handle, uplink: Uplink, cfg: &config::Backend) -> Result<Self, BackendError> {
        let kind = match cfg {
            config::Backend::HostGw => Kind::HostGw,
            config::Backend::Vxlan { vni, port } => {
                if uplink.mtu < VXLAN_OVERHEAD + MIN_INNER_MTU {
                    return Err(BackendError::Refused(format!(
                        "uplink {} MTU {} is too small for vxlan, which needs at least {} ({} bytes of encapsulation + {}); raise it (ip link set {} mtu 1500) or use the host-gw backend",
                        uplink.name,
                        uplink.mtu,
                        VXLAN_OVERHEAD + MIN_INNER_MTU,
                        VXLAN_OVERHEAD,
                        MIN_INNER_MTU,
                        uplink.name
                    )));
                }
                let (index, mac) = ensure_vxlan(&handle, &uplink, *vni, *port).await?;
                Kind::Vxlan { index, mac, vni: *vni }
            }
        };
        Ok(Self { handle, uplink, kind })
    }

    /// The MTU pods get (uplink's, minus vxlan's overhead).
    pub fn mtu(&self) -> u32 {
        match self.kind {
            Kind::Vxlan { .. } => self.uplink.mtu - VXLAN_OVERHEAD,
            Kind::HostGw => self.uplink.mtu,
        }
    }

    /// The uplink in use.
    pub fn uplink(&self) -> &Uplink {
        &self.uplink
    }

    /// What this node publishes in its lease.
    pub fn lease_attrs(&self) -> LeaseAttrs {
        let (backend_type, backend_data) = match &self.kind {
            Kind::Vxlan { mac, vni, .. } => {
                ("vxlan", serde_json::to_value(VxlanData { vni: *vni, vtep_mac: format_mac(mac) }).unwrap_or_default())
            }
            Kind::HostGw => ("host-gw", serde_json::Value::Null),
        };
        LeaseAttrs { public_ip: self.uplink.ip, public_ipv6: None, backend_type: backend_type.into(), backend_data }
    }

    /// Configures the node's own side once it holds `lease`: `flannel.1` gets `<subnet>.0/32` and goes up.
    pub async fn configure(&self, lease: &Lease) -> Result<(), BackendError> {
        if let Kind::Vxlan { index, .. } = self.kind {
            nl::set_only_address(&self.handle, index, lease.subnet.addr(), 32, VXLAN_DEVICE).await?;
        }
        Ok(())
    }

    /// Adds (or updates) everything that reaches `peer`.
    pub async fn add_peer(&self, peer: &Lease) -> Result<(), BackendError> {
        let h = &self.handle;
        let s = peer.subnet;
        match &self.kind {
            Kind::Vxlan { index, .. } => {
                let data = peer.attrs.vxlan().filter(|_| peer.attrs.backend_type == "vxlan").ok_or_else(|| {
                    BackendError::Refused(format!(
                        "peer {s} publishes backend {:?} without vxlan data; every node must run the same backend",
                        peer.attrs.backend_type
                    ))
                })?;
                let mac = parse_mac(&data.vtep_mac).ok_or_else(|| {
                    BackendError::Refused(format!("peer {s} has a malformed VtepMAC {:?}", data.vtep_mac))
                })?;
                h.neighbours()
                    .add(*index, IpAddr::V4(s.addr()))
                    .link_layer_address(&mac)
                    .state(NeighbourState::Permanent)
                    .replace()
                    .execute()
                    .await
                    .map_err(nl(format!(
                        "adding neighbour {} lladdr {} dev {VXLAN_DEVICE}",
                        s.addr(),
                        data.vtep_mac
                    )))?;
                h.neighbours()
                    .add_bridge(*index, &mac)
                    .destination(IpAddr::V4(peer.attrs.public_ip))
                    .flags(NeighbourFlags::Own)
                    .state(NeighbourState::Permanent)
                    .replace()
                    .execute()
                    .await
                    .map_err(nl(format!(
                        "adding fdb {} dst {} dev {VXLAN_DEVICE}",
                        data.vtep_mac, peer.attrs.public_ip
                    )))?;
                let r = route()
                    .destination_prefix(s.addr(), s.prefix())
                    .gateway(s.addr())
                    .output_interface(*index)
                    .onlink()
                    .build();
                h.route()
                    .add(r)
                    .replace()
                    .execute()
                    .await
                    .map_err(nl(format!("adding route {s} via {} dev {VXLAN_DEVICE} onlink", s.addr())))?;
            }
            Kind::HostGw => {
                let gw = peer.attrs.public_ip;
                if !self.uplink.network.contains(gw) {
                    return Err(BackendError::Refused(format!(
                        "host-gw cannot reach peer {s}: its PublicIP {gw} is not on uplink {}'s network {}, and host-gw needs every node on one L2 network; put the nodes on one network or use the vxlan backend",
                        self.uplink.name, self.uplink.network
                    )));
                }
                let r = route()
                    .destination_prefix(s.addr(), s.prefix())
                    .gateway(gw)
                    .output_interface(self.uplink.index)
                    .build();
                h.route()
                    .add(r)
                    .replace()
                    .execute()
                    .await
                    .map_err(nl(format!("adding route {s} via {gw} dev {}", self.uplink.name)))?;
            }
        }
        Ok(())
    }

    /// Removes what [`Backend::add_peer`] added for `peer` (missing entries are fine).
    pub async fn remove_peer(&self, peer: &Lease) -> Result<(), BackendError> {
        let h = &self.handle;
        let s = peer.subnet;
        let gone = |e: &rtnetlink::Error| errno_is(e, &[ENOENT, ESRCH]);
        let oif = match self.kind {
            Kind::Vxlan { index, .. } => index,
            Kind::HostGw => self.uplink.index,
        };
        let r = route().destination_prefix(s.addr(), s.prefix()).output_interface(oif).build();
        if let Err(e) = h.route().del(r).execute().await
            && !gone(&e)
        {
            return Err(nl(format!("removing route {s}"))(e).into());
        }
        if let Kind::Vxlan { index, .. } = self.kind {
            let mut arp = NeighbourMessage::default();
            arp.header.family = AddressFamily::Inet;
            arp.header.ifindex = index;
            arp.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(s.addr())));
            if let Err(e) = h.neighbours().del(arp).execute().await
                && !gone(&e)
            {
                return Err(nl(format!("removing neighbour {}", s.addr()))(e).into());
            }
            if let Some(mac) = peer.attrs.vxlan().and_then(|d| parse_mac(&d.vtep_mac)) {
                self.del_fdb(index, &mac, peer.attrs.public_ip).await?;
            }
        }
        Ok(())
    }

    async fn del_fdb(&self, index: u32, mac: &[u8], dst: Ipv4Addr) -> Result<(), BackendError> {
        let mut fdb = NeighbourMessage::default();
        fdb.header.family = AddressFamily::Bridge;
        fdb.header.ifindex = index;
        fdb.header.flags = NeighbourFlags::Own;
        fdb.header.kind = RouteType::Unspec;
        fdb.attributes.push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        fdb.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(dst)));
        match self.handle.neighbours().del(fdb).execute().await {
            Err(e) if !errno_is(&e, &[ENOENT, ESRCH]) => {
                Err(nl(format!("removing fdb {} dst {dst} dev {VXLAN_DEVICE}", format_mac(mac)))(e).into())
            }
            _ => Ok(()),
        }
    }

    /// Removes FDB entries on `flannel.1` that point at none of `keep` (peers that left while this node was
    /// down; a reused device keeps them). No-op for host-gw.
    pub async fn prune_fdb(&self, keep: &[Ipv4Addr]) -> Result<(), BackendError> {
        let Kind::Vxlan { index, .. } = self.kind else { return Ok(()) };
        let all: Vec<NeighbourMessage> = self
            .handle
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Bridge)
            .execute()
            .try_collect()
            .await
            .map_err(nl(format!("listing the fdb of {VXLAN_DEVICE}")))?;
        let entries = all.iter().filter(|m| m.header.ifindex == index && m.header.family == AddressFamily::Bridge);
        for m in entries {
            let (mut dst, mut mac) = (None, None);
            for a in &m.attributes {
                match a {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => dst = Some(*ip),
                    // The parser cannot tell an AF_BRIDGE entry's NDA_DST family: four bytes are IPv4.
                    NeighbourAttribute::Destination(NeighbourAddress::Other(b)) if b.len() == 4 => {
                        dst = Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
                    }
                    NeighbourAttribute::LinkLayerAddress(l) => mac = Some(l.clone()),
                    _ => {}
                }
            }
            let (Some(dst), Some(mac)) = (dst, mac) else { continue };
            if !keep.contains(&dst) {
                self.del_fdb(index, &mac, dst).await?;
            }
        }
        Ok(())
    }

    /// Removes the vxlan device (its routes, neighbours and FDB entries go with it); host-gw routes are
    /// removed peer by peer by the caller.
    pub async fn teardown(&self) -> Result<(), BackendError> {
        if let Kind::Vxlan { index, .. } = self.kind
            && let Err(e) = self.handle.link().del(index).execute().await
            && !errno_is(&e, &[ENOENT, 19])
        {
            return Err(nl(format!("deleting {VXLAN_DEVICE}"))(e).into());
        }
        Ok(())
    }
}

/// Routes as `ip route add` makes them (protocol boot), so `ip route` shows exactly flannel's lines.
fn route() -> RouteMessageBuilder<Ipv4Addr> {
    RouteMessageBuilder::<Ipv4Addr>::new().protocol(RouteProtocol::Boot)
}

/// Creates `flannel.1`, or keeps an existing one whose VNI, port and local address match (so its MAC, which
/// peers know, survives a restart); an outdated one is replaced.
async fn ensure_vxlan(h: &Handle, up: &Uplink, vni: u32, port: u16) -> Result<(u32, Vec<u8>), BackendError> {
    if let Some(l) = nl::link_by_name(h, VXLAN_DEVICE).await? {
        let infos: Vec<InfoVxlan> = l
            .msg
            .attributes
            .iter()
            .filter_map(|a| if let LinkAttribute::LinkInfo(i) = a { Some(i) } else { None })
            .flatten()
            .filter_map(|i| if let LinkInfo::Data(InfoData::Vxlan(v)) = i { Some(v.clone()) } else { None })
            .flatten()
            .collect();
        let same = infos.contains(&InfoVxlan::Id(vni))
            && infos.contains(&InfoVxlan::Port(port))
            && infos.contains(&InfoVxlan::Local(up.ip))
            && infos.contains(&InfoVxlan::Link(up.index));
        if same && l.mtu == up.mtu - VXLAN_OVERHEAD {
            return Ok((l.index, l.mac));
        }
        tracing::info!(device = VXLAN_DEVICE, "replacing the vxlan device: its VNI, port, uplink or MTU changed");
        h.link().del(l.index).execute().await.map_err(nl(format!("deleting outdated {VXLAN_DEVICE}")))?;
    }
    let msg = LinkVxlan::new(VXLAN_DEVICE, vni)
        .dev(up.index)
        .local(up.ip)
        .port(port)
        .learning(false)
        .mtu(up.mtu - VXLAN_OVERHEAD)
        .build();
    h.link().add(msg).execute().await.map_err(nl(format!(
        "creating {VXLAN_DEVICE} (vxlan id {vni} dstport {port} local {} dev {} nolearning)",
        up.ip, up.name
    )))?;
    let l = nl::link_by_name(h, VXLAN_DEVICE)
        .await?
        .ok_or_else(|| BackendError::Refused(format!("{VXLAN_DEVICE} vanished right after its creation")))?;
    Ok((l.index, l.mac))
}

/// Whether the calling thread's namespace has [`VXLAN_DEVICE`] (one an earlier run left up, with its pods).
pub async fn vxlan_device_present(h: &Handle) -> Result<bool, NlError> {
    Ok(nl::link_by_name(h, VXLAN_DEVICE).await?.is_some())
}

/// Routes in the main table for subnets inside `network` (what a backend installed), for checks and cleanup.
pub async fn routes_in(h: &Handle, network: Ipv4Net) -> Result<Vec<Ipv4Net>, NlError> {
    let q = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let rs: Vec<_> = h.route().get(q).execute().try_collect().await.map_err(nl("listing routes"))?;
    Ok(rs
        .iter()
        .filter(|r| r.header.table == 254 && r.header.kind == RouteType::Unicast)
        .filter_map(nl::route_dst)
        .filter(|d| network.contains_net(d) && d.prefix() > network.prefix())
        .collect())
}
