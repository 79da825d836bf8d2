//! Clock skew against the API server, from the `Date` header of its `/version` (tokens and certificates are
//! checked against clocks: a node minutes off sees valid tokens as expired or not yet valid).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Finding;

const G: &str = "clock";

pub(crate) async fn check(server: &str) -> Finding {
    match tokio::time::timeout(Duration::from_secs(10), server_date(server)).await {
        Ok(Ok(date)) => judge(server, date, SystemTime::now()),
        Ok(Err(e)) => Finding::warn(
            G,
            "clock skew",
            format!("cannot read {server}/version: {e}"),
            format!("curl -kI {server}/version"),
        ),
        Err(_) => Finding::warn(
            G,
            "clock skew",
            format!("{server} did not answer within 10s"),
            format!("curl -kI {server}/version"),
        ),
    }
}

fn judge(server: &str, theirs: SystemTime, ours: SystemTime) -> Finding {
    let skew = ours.duration_since(theirs).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default().as_secs();
    let seen = format!("this clock and {server}'s differ by {skew}s");
    let remedy = "apt-get install -y chrony && chronyc -a makestep";
    // The Date header has one-second resolution; a few seconds is noise.
    if skew > 60 {
        Finding::fail(G, "clock skew", seen, remedy)
    } else if skew > 5 {
        Finding::warn(G, "clock skew", seen, remedy)
    } else {
        Finding::ok(G, "clock skew", seen)
    }
}

/// One HTTPS (or HTTP) GET of `/version`, returning the `Date` header. The certificate is not verified: only
/// the time is read, and the node may not have the cluster's CA yet.
async fn server_date(server: &str) -> Result<SystemTime, String> {
    let url = url::Url::parse(server).map_err(|e| format!("bad URL: {e}"))?;
    let host = url.host_str().ok_or("no host in URL")?.to_string();
    let port = url.port_or_known_default().unwrap_or(6443);
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)).await.map_err(|e| e.to_string())?;
    let request = format!("GET /version HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let mut response = Vec::new();
    if url.scheme() == "https" {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth();
        let name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let mut tls =
            tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.map_err(|e| e.to_string())?;
        tls.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        // A server may close without close_notify; what arrived is enough.
        let _ = tls.read_to_end(&mut response).await;
    } else {
        let mut tcp = tcp;
        tcp.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let _ = tcp.read_to_end(&mut response).await;
    }
    let text = String::from_utf8_lossy(&response);
    let date = text
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("date")).map(|(_, v)| v.trim().to_string())
        })
        .ok_or("no Date header in the answer")?;
    httpdate::parse_http_date(&date).map_err(|e| format!("bad Date {date:?}: {e}"))
}

/// Accepts any certificate (signatures are still checked, so the handshake is a real TLS one).
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use crate::Status;

    #[test]
    fn skew_floors() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(super::judge("s", t, t + Duration::from_secs(2)).status, Status::Ok);
        assert_eq!(super::judge("s", t + Duration::from_secs(30), t).status, Status::Warn);
        let f = super::judge("s", t, t + Duration::from_secs(600));
        assert_eq!((f.status, f.seen.as_str()), (Status::Fail, "this clock and s's differ by 600s"));
    }
}
