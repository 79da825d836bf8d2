//! Forwarding names outside the cluster to the upstream resolvers: UDP first, TCP when the answer is truncated.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

/// How long one upstream gets before the next one is tried (CoreDNS's forward plugin waits a few seconds).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest UDP answer we accept from an upstream (EDNS buffer sizes stay below this).
const MAX_UDP: usize = 4096;

/// Sends `query` (raw wire bytes) to each upstream in turn and returns the first answer, raw, or `None`
/// when every upstream failed (the caller answers SERVFAIL).
pub(crate) async fn forward(upstreams: &[SocketAddr], query: &[u8], over_tcp: bool) -> Option<Vec<u8>> {
    for upstream in upstreams {
        let result = if over_tcp {
            timeout(UPSTREAM_TIMEOUT, tcp(*upstream, query)).await
        } else {
            match timeout(UPSTREAM_TIMEOUT, udp(*upstream, query)).await {
                // TC bit set: the full answer only fits over TCP.
                Ok(Ok(reply)) if reply.get(2).is_some_and(|b| b & 0x02 != 0) => {
                    timeout(UPSTREAM_TIMEOUT, tcp(*upstream, query)).await
                }
                other => other,
            }
        };
        match result {
            Ok(Ok(reply)) => return Some(reply),
            Ok(Err(e)) => tracing::debug!(%upstream, error = %e, "upstream DNS server failed"),
            Err(_) => tracing::debug!(%upstream, "upstream DNS server timed out"),
        }
    }
    None
}

fn same_id(query: &[u8], reply: &[u8]) -> bool {
    reply.len() >= 12 && query.get(..2) == reply.get(..2)
}

async fn udp(upstream: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let bind: SocketAddr = if upstream.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(bind).await?;
    // A connected socket only receives from the upstream it asked.
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; MAX_UDP];
    loop {
        let n = socket.recv(&mut buf).await?;
        if same_id(query, &buf[..n]) {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn tcp(upstream: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    let len = u16::try_from(query.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "query too long"))?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let n = stream.read_u16().await?;
    let mut buf = vec![0u8; usize::from(n)];
    stream.read_exact(&mut buf).await?;
    if !same_id(query, &buf) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "answer for another query"));
    }
    Ok(buf)
}
