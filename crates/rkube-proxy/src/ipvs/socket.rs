//! The generic-netlink socket ipvs mode talks through, behind `GenlSocket` so tests can put a fake kernel
//! that records every request in its place (this machine's kernel has no ip_vs). `NetlinkSocket` is the real
//! one: netlink-sys over tokio, opened in the calling thread's network namespace.

use std::future::Future;
use std::io;
use std::time::Duration;

use netlink_sys::protocols::NETLINK_GENERIC;
use netlink_sys::{AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket};

use super::wire::{Reply, split};

/// How long the kernel may take to answer one request (it answers in microseconds; this only bounds a bug).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// One request at a time to the kernel's generic netlink.
pub trait GenlSocket: Send {
    /// Sends `msg` (a complete `nlmsghdr`-framed request) and returns every message answering it, up to and
    /// including its acknowledgement, refusal or end of dump.
    fn request(&mut self, msg: Vec<u8>) -> impl Future<Output = io::Result<Vec<Reply>>> + Send;
}

/// A real `NETLINK_GENERIC` socket.
pub struct NetlinkSocket {
    sock: TokioSocket,
}

impl std::fmt::Debug for NetlinkSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NetlinkSocket")
    }
}

impl NetlinkSocket {
    /// Opens and binds a socket (needs a tokio runtime).
    pub fn open() -> io::Result<NetlinkSocket> {
        let mut sock = TokioSocket::new(NETLINK_GENERIC)?;
        sock.socket_mut().bind_auto()?;
        Ok(NetlinkSocket { sock })
    }

    async fn exchange(&mut self, msg: Vec<u8>) -> io::Result<Vec<Reply>> {
        let seq = msg.get(8..12).and_then(|b| b.try_into().ok()).map(u32::from_ne_bytes).unwrap_or(0);
        self.sock.send_to(&msg, &SocketAddr::new(0, 0)).await?;
        let mut out = Vec::new();
        loop {
            let (buf, _) = self.sock.recv_from_full().await?;
            let replies =
                split(&buf).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed netlink reply"))?;
            for r in replies {
                // Late answers to an earlier request (one that timed out) are not ours.
                if r.seq() != seq {
                    continue;
                }
                let last = !matches!(r, Reply::Data { .. });
                out.push(r);
                if last {
                    return Ok(out);
                }
            }
        }
    }
}

impl GenlSocket for NetlinkSocket {
    async fn request(&mut self, msg: Vec<u8>) -> io::Result<Vec<Reply>> {
        match tokio::time::timeout(ANSWER_TIMEOUT, self.exchange(msg)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the kernel did not answer a netlink request")),
        }
    }
}
