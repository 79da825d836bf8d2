//! The API forwarder (`rkube cluster forward`, started detached by `up`): kubectl on the host reaches the API
//! server inside node 1's namespace without any route, address or NAT rule in the host's namespace. It binds
//! its listener on the host's 127.0.0.1, then moves into node 1's network namespace: a socket keeps the
//! namespace it was made in, so the listener stays on the host's loopback while every connection it opens to
//! 192.168.77.11:6443 is made inside. Bytes are relayed as they are (TLS end to end). With several servers it
//! fails over among them (`rkube_client::failover`, the agents' balancer), so kubectl sees what agents see.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::Path;

use crate::process::netns_path;
use crate::{Error, Result};

/// Runs the forwarder until killed. Must be called before any other thread exists (setns moves only the
/// calling thread; the runtime's threads are made after, and inherit it).
pub fn run(netns: &str, to: &[SocketAddr], port_file: &Path) -> Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(Error::io("binding 127.0.0.1:0"))?;
    let port = listener.local_addr().map_err(Error::io("reading the listener's port"))?.port();
    listener.set_nonblocking(true).map_err(Error::io("configuring the listener"))?;
    let path = netns_path(netns);
    let ns = std::fs::File::open(&path).map_err(Error::io(format!("opening {}", path.display())))?;
    rustix::thread::move_into_link_name_space(ns.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
        .map_err(|e| Error::Io { context: format!("entering {}", path.display()), source: e.into() })?;
    drop(ns);
    // Written after the move: whoever reads the port can connect and be forwarded at once.
    let tmp = port_file.with_extension("tmp");
    std::fs::write(&tmp, format!("{port}\n")).map_err(Error::io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, port_file).map_err(Error::io(format!("writing {}", port_file.display())))?;
    tracing::info!(%port, ?to, %netns, "forwarding 127.0.0.1:{port} on the host to {to:?} in {netns}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("starting the forwarder's runtime"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(Error::io("listening"))?;
        rkube_client::failover::serve(listener, to.to_vec()).await;
        Ok(())
    })
}

/// Reads the port a forwarder wrote.
pub fn read_port(port_file: &Path) -> Option<u16> {
    std::fs::read_to_string(port_file).ok()?.trim().parse().ok()
}
