//! tcpSocket probes and the TCP dialer every network probe uses, with Go's dial error texts
//! (`dial tcp 10.0.0.5:80: connect: connection refused`), as upstream's messages carry them.

use std::time::Duration;

use tokio::net::TcpStream;

use crate::gostr;
use crate::outcome::Outcome;

/// Connects to `host:port` within `timeout`. An empty host is the local system, as Go dials `:port`.
pub(crate) async fn dial(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let shown = gostr::join_host_port(host, port);
    let target = if host.is_empty() { "127.0.0.1" } else { host.trim_start_matches('[').trim_end_matches(']') };
    let addrs = match tokio::time::timeout(timeout, tokio::net::lookup_host((target, port))).await {
        Ok(Ok(addrs)) => addrs.collect::<Vec<_>>(),
        Ok(Err(e)) => return Err(format!("dial tcp: lookup {target}: {}", gostr::os_error(&e))),
        Err(_) => return Err(format!("dial tcp {shown}: i/o timeout")),
    };
    let connect = async {
        let mut last = None;
        for addr in &addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no addresses")))
    };
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(format!("dial tcp {shown}: connect: {}", gostr::os_error(&e))),
        Err(_) => Err(format!("dial tcp {shown}: i/o timeout")),
    }
}

/// A tcpSocket probe: a connection that opens is a success (it is closed at once).
pub(crate) async fn probe(host: &str, port: u16, timeout: Duration) -> Outcome {
    match dial(host, port, timeout).await {
        Ok(stream) => {
            drop(stream);
            Outcome::Success(String::new())
        }
        Err(message) => Outcome::Failure(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_port_succeeds_and_closed_port_fails_with_gos_text() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(probe("127.0.0.1", port, Duration::from_secs(1)).await, Outcome::Success(String::new()));
        drop(listener);
        assert_eq!(
            probe("127.0.0.1", port, Duration::from_secs(1)).await,
            Outcome::Failure(format!("dial tcp 127.0.0.1:{port}: connect: connection refused"))
        );
    }
}
