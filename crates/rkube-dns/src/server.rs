//! The DNS listeners (UDP and TCP) and the per-message handling: parse, answer or forward, count, reply.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;

use crate::answer::{Outcome, Zone, answer};
use crate::index::Index;
use crate::metrics::{Metrics, rcode_name};

/// A TCP client that sends nothing for this long is dropped.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// The EDNS buffer size we advertise (the DNS flag day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;

/// Everything a query needs; shared by all listeners.
pub(crate) struct Handler {
    pub(crate) index: Arc<RwLock<Index>>,
    pub(crate) zone: Zone,
    pub(crate) upstreams: Vec<SocketAddr>,
    pub(crate) metrics: Arc<Metrics>,
}

impl Handler {
    /// The raw answer to one raw message, or `None` for garbage not worth an answer.
    pub(crate) async fn handle(&self, raw: &[u8], tcp: bool) -> Option<Vec<u8>> {
        let reply = self.reply(raw, tcp).await?;
        if let Some(b) = reply.get(3) {
            self.metrics.count(rcode_name(b & 0x0f));
        }
        Some(reply)
    }

    async fn reply(&self, raw: &[u8], tcp: bool) -> Option<Vec<u8>> {
        let req = match Message::from_vec(raw) {
            Ok(m) => m,
            Err(_) => {
                // Unparsable: FORMERR if there is at least a header to answer to.
                let id = u16::from_be_bytes([*raw.first()?, *raw.get(1)?]);
                return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr).to_vec().ok();
            }
        };
        if req.message_type() != MessageType::Query {
            return None;
        }
        if req.op_code() != OpCode::Query {
            return Message::error_msg(req.id(), req.op_code(), ResponseCode::NotImp).to_vec().ok();
        }
        let [q] = req.queries() else {
            return Message::error_msg(req.id(), OpCode::Query, ResponseCode::FormErr).to_vec().ok();
        };
        let outcome = {
            let index = self.index.read().unwrap_or_else(|e| e.into_inner());
            answer(&index, &self.zone, q.name(), q.query_type())
        };
        let reply = match outcome {
            Outcome::Forward => {
                if let Some(bytes) = crate::forward::forward(&self.upstreams, raw, tcp).await {
                    // An answer the upstream gave over TCP may not fit the client's UDP buffer: TC, and the
                    // client comes back over TCP (as CoreDNS's forward plugin answers).
                    if !tcp && bytes.len() > udp_limit(&req) {
                        return Message::from_vec(&bytes).ok()?.truncate().to_vec().ok();
                    }
                    return Some(bytes);
                }
                let mut m = Message::error_msg(req.id(), OpCode::Query, ResponseCode::ServFail);
                m.add_query(q.clone());
                return m.to_vec().ok();
            }
            Outcome::Local(reply) => reply,
        };
        let mut m = Message::new();
        m.set_id(req.id())
            .set_message_type(MessageType::Response)
            .set_op_code(OpCode::Query)
            .set_authoritative(true)
            .set_recursion_desired(req.recursion_desired())
            .set_recursion_available(true)
            .set_response_code(reply.rcode)
            .add_query(q.clone());
        m.insert_answers(reply.answers);
        m.insert_name_servers(reply.authority);
        m.insert_additionals(reply.additionals);
        if req.extensions().is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_PAYLOAD);
            m.set_edns(edns);
        }
        let bytes = m.to_vec().ok()?;
        if !tcp && bytes.len() > udp_limit(&req) {
            // The client retries over TCP on TC, as a pod's resolver does.
            return m.truncate().to_vec().ok();
        }
        Some(bytes)
    }
}

/// The largest UDP answer the client takes: its EDNS buffer size, else the classic 512 bytes.
fn udp_limit(req: &Message) -> usize {
    usize::from(if req.extensions().is_some() { req.max_payload().max(512) } else { 512 })
}

/// Serves UDP on `socket` until dropped; each datagram is handled in its own task.
pub(crate) async fn serve_udp(socket: UdpSocket, handler: Arc<Handler>) {
    let socket = Arc::new(socket);
    let mut buf = vec![0u8; 4096];
    let mut tasks = JoinSet::new();
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors from earlier replies surface here; they concern one peer, not the socket.
                tracing::debug!(error = %e, "DNS UDP receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let raw = buf[..n].to_vec();
        let (socket, handler) = (socket.clone(), handler.clone());
        tasks.spawn(async move {
            if let Some(reply) = handler.handle(&raw, false).await {
                let _ = socket.send_to(&reply, peer).await;
            }
        });
        while tasks.try_join_next().is_some() {}
    }
}

/// Serves TCP on `listener` until dropped (connections are dropped with it).
pub(crate) async fn serve_tcp(listener: TcpListener, handler: Arc<Handler>) {
    let mut conns = JoinSet::new();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                conns.spawn(connection(stream, handler.clone()));
            }
            Err(e) => {
                tracing::debug!(error = %e, "DNS TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        while conns.try_join_next().is_some() {}
    }
}

async fn connection(mut stream: TcpStream, handler: Arc<Handler>) {
    loop {
        let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, stream.read_u16()).await else { return };
        let mut raw = vec![0u8; usize::from(len)];
        if stream.read_exact(&mut raw).await.is_err() {
            return;
        }
        let Some(reply) = handler.handle(&raw, true).await else { continue };
        let Ok(n) = u16::try_from(reply.len()) else { return };
        let mut framed = n.to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}
