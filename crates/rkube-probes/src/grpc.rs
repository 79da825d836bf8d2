//! grpc probes: `grpc.health.v1.Health/Check` over plaintext HTTP/2 (tonic-health's client), with upstream's
//! messages. As grpc-go's blocking dial does, a connection that cannot be made is retried until the probe's
//! deadline and reported as a timeout.

use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::gostr;
use crate::outcome::Outcome;

/// grpc-go's first reconnect backoff.
const RETRY: Duration = Duration::from_secs(1);

/// Checks `service` at `host:port` within `timeout`.
pub(crate) async fn probe(host: &str, port: u16, service: &str, timeout: Duration) -> Outcome {
    let addr = gostr::join_host_port(host, port);
    let deadline = Instant::now() + timeout;
    let connect_timeout = || {
        Outcome::Failure(format!(
            "timeout: failed to connect service {} within {}: context deadline exceeded",
            gostr::quote(&addr),
            gostr::duration(timeout)
        ))
    };
    // An empty host is the local system, as Go dials `:port`.
    let dial = format!("http://{}", gostr::join_host_port(if host.is_empty() { "127.0.0.1" } else { host }, port));
    let endpoint = match Endpoint::from_shared(dial) {
        Ok(e) => e,
        Err(e) => return Outcome::Failure(format!("error: failed to connect service at {}: {e}", gostr::quote(&addr))),
    };
    let endpoint = match endpoint.user_agent(format!("kube-probe/{}", crate::http::VERSION)) {
        Ok(e) => e.connect_timeout(timeout),
        Err(e) => return Outcome::Failure(format!("error: failed to connect service at {}: {e}", gostr::quote(&addr))),
    };
    let channel = loop {
        match tokio::time::timeout_at(deadline, endpoint.connect()).await {
            Ok(Ok(channel)) => break channel,
            Ok(Err(e)) => {
                tracing::debug!(%addr, error = %e, "grpc probe: connecting");
                let next = Instant::now() + RETRY;
                if next >= deadline {
                    tokio::time::sleep_until(deadline).await;
                    return connect_timeout();
                }
                tokio::time::sleep_until(next).await;
            }
            Err(_) => return connect_timeout(),
        }
    };
    let mut client = HealthClient::new(channel);
    let check = client.check(HealthCheckRequest { service: service.to_owned() });
    let response = match tokio::time::timeout_at(deadline, check).await {
        Err(_) => {
            return Outcome::Failure(format!(
                "timeout: health rpc did not complete within {}",
                gostr::duration(timeout)
            ));
        }
        Ok(Err(status)) => {
            return Outcome::Failure(match status.code() {
                tonic::Code::Unimplemented => format!(
                    "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                    status.message()
                ),
                tonic::Code::DeadlineExceeded => {
                    format!("timeout: health rpc did not complete within {}", gostr::duration(timeout))
                }
                code => {
                    format!("error: health rpc probe failed: rpc error: code = {code:?} desc = {}", status.message())
                }
            });
        }
        Ok(Ok(r)) => r.into_inner(),
    };
    match ServingStatus::try_from(response.status) {
        Ok(ServingStatus::Serving) => Outcome::Success("service is serving".to_owned()),
        Ok(other) => {
            Outcome::Failure(format!("service unhealthy (responded with {})", gostr::quote(other.as_str_name())))
        }
        Err(_) => Outcome::Failure(format!("service unhealthy (responded with \"{}\")", response.status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tonic-health server on loopback; `serving` and `sick` are the services it knows.
    async fn server() -> (u16, tokio::task::JoinHandle<()>) {
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter.set_service_status("serving", tonic_health::ServingStatus::Serving).await;
        reporter.set_service_status("sick", tonic_health::ServingStatus::NotServing).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await;
        });
        (port, task)
    }

    #[tokio::test]
    async fn serving_not_serving_unknown_and_unreachable() {
        let (port, task) = server().await;
        let t = Duration::from_secs(2);
        assert_eq!(probe("127.0.0.1", port, "serving", t).await, Outcome::Success("service is serving".into()));
        // The empty service is the server's overall health, SERVING in tonic-health.
        assert_eq!(probe("127.0.0.1", port, "", t).await, Outcome::Success("service is serving".into()));
        assert_eq!(
            probe("127.0.0.1", port, "sick", t).await,
            Outcome::Failure(r#"service unhealthy (responded with "NOT_SERVING")"#.into())
        );
        match probe("127.0.0.1", port, "nope", t).await {
            Outcome::Failure(m) => {
                assert!(m.starts_with("error: health rpc probe failed: rpc error: code = NotFound"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        task.abort();
        let _ = task.await;
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let started = std::time::Instant::now();
        assert_eq!(
            probe("127.0.0.1", port, "", Duration::from_secs(1)).await,
            Outcome::Failure(format!(
                "timeout: failed to connect service \"127.0.0.1:{port}\" within 1s: context deadline exceeded"
            ))
        );
        assert!(started.elapsed() >= Duration::from_millis(900));
    }
}
