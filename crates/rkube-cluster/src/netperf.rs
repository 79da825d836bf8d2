//! Measuring a TCP path between two network namespaces from this process: a server thread and a client thread,
//! each moved into its namespace (setns moves only the calling thread), one stream's throughput and 1-byte
//! round trips; and the baseline path, two namespaces joined directly by a veth.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::process::run;
use crate::{Error, Result};

/// What one path measured.
#[derive(Clone, Debug)]
pub struct Figures {
    /// One TCP stream's throughput, Gbit/s.
    pub gbit_s: f64,
    /// Median round trip of one byte each way.
    pub rtt_p50: Duration,
    /// 99th percentile round trip.
    pub rtt_p99: Duration,
}

/// The port the server listens on.
const PORT: u16 = 5201;
/// Size of each write of the throughput stream.
const CHUNK: usize = 128 * 1024;

/// Moves the calling thread into network namespace `netns`.
pub(crate) fn enter(netns: &Path) -> Result<()> {
    let f = std::fs::File::open(netns).map_err(Error::io(format!("opening {}", netns.display())))?;
    rustix::thread::move_into_link_name_space(f.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
        .map_err(|e| Error::Io { context: format!("entering {}", netns.display()), source: e.into() })
}

/// Measures from namespace `client` to `server_ip` in namespace `server`: a stream for `duration`, then
/// `pings` round trips.
pub fn measure(client: &Path, server: &Path, server_ip: Ipv4Addr, duration: Duration, pings: usize) -> Result<Figures> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server_ns = server.to_path_buf();
    let server_thread = std::thread::spawn(move || -> Result<u64> {
        enter(&server_ns)?;
        let listener = TcpListener::bind(SocketAddr::from((server_ip, PORT))).map_err(Error::io("binding"))?;
        let _ = ready_tx.send(());
        // First connection: the stream, counted to its end.
        let (mut s, _) = listener.accept().map_err(Error::io("accepting"))?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            match s.read(&mut buf).map_err(Error::io("reading the stream"))? {
                0 => break,
                n => total += n as u64,
            }
        }
        // Closing tells the client everything arrived.
        drop(s);
        // Second: echo one byte at a time.
        let (mut s, _) = listener.accept().map_err(Error::io("accepting"))?;
        s.set_nodelay(true).map_err(Error::io("nodelay"))?;
        let mut b = [0u8; 1];
        while s.read(&mut b).map_err(Error::io("reading a ping"))? == 1 {
            s.write_all(&b).map_err(Error::io("answering a ping"))?;
        }
        Ok(total)
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| Error::Invalid("the server thread did not listen".into()))?;
    let client_ns = client.to_path_buf();
    let client_thread = std::thread::spawn(move || -> Result<(u64, Duration, Vec<Duration>)> {
        enter(&client_ns)?;
        let to = SocketAddr::from((server_ip, PORT));
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5))
            .map_err(Error::io(format!("connecting to {to}")))?;
        let buf = vec![0x5au8; CHUNK];
        let began = Instant::now();
        let mut sent = 0u64;
        while began.elapsed() < duration {
            s.write_all(&buf).map_err(Error::io("writing the stream"))?;
            sent += CHUNK as u64;
        }
        s.shutdown(std::net::Shutdown::Write).map_err(Error::io("closing the stream"))?;
        // Wait for the server to have read everything (it closes when done).
        let _ = s.read(&mut [0u8; 1]);
        let elapsed = began.elapsed();
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).map_err(Error::io("connecting"))?;
        s.set_nodelay(true).map_err(Error::io("nodelay"))?;
        let mut rtts = Vec::with_capacity(pings);
        let mut b = [1u8; 1];
        for _ in 0..pings {
            let t = Instant::now();
            s.write_all(&b).map_err(Error::io("pinging"))?;
            s.read_exact(&mut b).map_err(Error::io("reading a pong"))?;
            rtts.push(t.elapsed());
        }
        Ok((sent, elapsed, rtts))
    });
    let (sent, elapsed, mut rtts) = joined(client_thread.join())?;
    let received = joined(server_thread.join())?;
    if received != sent {
        return Err(Error::Invalid(format!("sent {sent} bytes, the server read {received}")));
    }
    rtts.sort();
    let pct = |p: f64| rtts.get(((rtts.len() as f64 * p) as usize).min(rtts.len().saturating_sub(1))).copied();
    Ok(Figures {
        gbit_s: received as f64 * 8.0 / elapsed.as_secs_f64() / 1e9,
        rtt_p50: pct(0.5).unwrap_or_default(),
        rtt_p99: pct(0.99).unwrap_or_default(),
    })
}

/// A thread's result, a panic counted as an error.
fn joined<T>(r: std::thread::Result<Result<T>>) -> Result<T> {
    r.unwrap_or_else(|_| Err(Error::Invalid("a benchmark thread panicked".into())))
}

/// Two namespaces joined directly by a veth (10.250.0.1 and .2/30), deleted on drop.
pub struct VethPair {
    names: [String; 2],
}

impl VethPair {
    /// Makes the pair, named after this process.
    pub fn new() -> Result<VethPair> {
        let id = std::process::id();
        let pair = VethPair { names: [format!("rkb-{id}-a"), format!("rkb-{id}-b")] };
        let [a, b] = &pair.names;
        run("ip", &["netns", "add", a])?;
        run("ip", &["netns", "add", b])?;
        run("ip", &["-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b])?;
        for (ns, addr) in [(a, "10.250.0.1/30"), (b, "10.250.0.2/30")] {
            run("ip", &["-n", ns, "addr", "add", addr, "dev", "eth0"])?;
            run("ip", &["-n", ns, "link", "set", "eth0", "up"])?;
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(pair)
    }

    /// The namespaces' paths (client, server) and the server's address.
    pub fn ends(&self) -> (PathBuf, PathBuf, Ipv4Addr) {
        let path = crate::process::netns_path;
        (path(&self.names[0]), path(&self.names[1]), Ipv4Addr::new(10, 250, 0, 2))
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = run("ip", &["netns", "delete", n]);
        }
    }
}
