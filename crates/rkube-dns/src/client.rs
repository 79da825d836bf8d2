//! A small DNS client (one question over UDP or TCP) and the query benchmark built on it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Client-side failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Socket trouble.
    #[error("DNS query to {server} failed: {source}")]
    Io {
        /// The server asked.
        server: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("DNS query to {server} timed out")]
    Timeout {
        /// The server asked.
        server: SocketAddr,
    },
    /// A name or message that does not parse.
    #[error("bad DNS name or message: {0}")]
    Proto(#[from] hickory_proto::ProtoError),
}

fn request(name: &str, rtype: RecordType, id: u16) -> Result<Vec<u8>, ClientError> {
    let mut m = Message::new();
    m.set_id(id).set_message_type(MessageType::Query).set_op_code(OpCode::Query).set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name)?, rtype));
    Ok(m.to_vec()?)
}

/// Asks `server` one question over UDP (names are taken as absolute; a trailing dot is optional).
pub async fn query(server: SocketAddr, name: &str, rtype: RecordType) -> Result<Message, ClientError> {
    let io = |source| ClientError::Io { server, source };
    let id = rand_id();
    let req = request(name, rtype, id)?;
    let bind: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(bind).await.map_err(io)?;
    socket.connect(server).await.map_err(io)?;
    socket.send(&req).await.map_err(io)?;
    let mut buf = vec![0u8; 4096];
    let recv = async {
        loop {
            let n = socket.recv(&mut buf).await?;
            if buf.get(..2) == Some(&id.to_be_bytes()[..]) {
                return Ok::<_, std::io::Error>(n);
            }
        }
    };
    let n = tokio::time::timeout(Duration::from_secs(3), recv).await.map_err(|_| ClientError::Timeout { server })?;
    Ok(Message::from_vec(&buf[..n.map_err(io)?])?)
}

/// Asks `server` one question over TCP.
pub async fn query_tcp(server: SocketAddr, name: &str, rtype: RecordType) -> Result<Message, ClientError> {
    let io = |source| ClientError::Io { server, source };
    let req = request(name, rtype, rand_id())?;
    let exchange = async {
        let mut s = TcpStream::connect(server).await?;
        let mut framed = (req.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&req);
        s.write_all(&framed).await?;
        let n = s.read_u16().await?;
        let mut buf = vec![0u8; usize::from(n)];
        s.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .map_err(|_| ClientError::Timeout { server })?
        .map_err(io)?;
    Ok(Message::from_vec(&buf)?)
}

fn rand_id() -> u16 {
    // Uniqueness within one socket is all the ID needs here; the clock's nanoseconds are plenty.
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos() as u16).unwrap_or(1)
}

/// The result of [`bench`].
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Queries answered.
    pub queries: u64,
    /// Queries that failed or timed out.
    pub errors: u64,
    /// Answered queries per second over the whole run.
    pub qps: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

/// Runs `clients` concurrent UDP clients for `duration`, each asking the `names` in turn (one question in
/// flight per client), and reports throughput and latency percentiles.
pub async fn bench(
    server: SocketAddr,
    names: &[(String, RecordType)],
    clients: usize,
    duration: Duration,
) -> BenchReport {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients.max(1) {
        let names = names.to_vec();
        tasks.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut i = c;
            while Instant::now() < deadline && !names.is_empty() {
                let (name, rtype) = &names[i % names.len()];
                i += 1;
                let t = Instant::now();
                match query(server, name, *rtype).await {
                    Ok(_) => lat.push(t.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        });
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    while let Some(r) = tasks.join_next().await {
        if let Ok((l, e)) = r {
            lat.extend(l);
            errors += e;
        }
    }
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or_default()
    };
    BenchReport {
        queries: lat.len() as u64,
        errors,
        qps: lat.len() as f64 / start.elapsed().as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
    }
}
