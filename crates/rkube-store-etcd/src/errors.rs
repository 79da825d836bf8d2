//! Turning etcd-client failures into `rkube_store::Error`s that say which endpoint, which operation and what to do.

use std::error::Error as StdError;
use std::time::Duration;

use rkube_store::Error;

/// What an etcd failure means for the caller, before it is given its context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `mvcc: required revision has been compacted`.
    Compacted,
    /// `mvcc: required revision is a future revision`.
    FutureRevision,
    /// The server refused a request over its `--max-request-bytes`.
    TooLarge,
    /// The connection could not be made, broke, or timed out.
    Unreachable,
    /// Any other answer from etcd.
    Other,
}

/// Classifies an etcd-client error by the etcd server's error strings (they are its API: clientv3 compares them too).
pub(crate) fn classify(e: &etcd_client::Error) -> Kind {
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            let msg = status.message();
            if msg.contains("required revision has been compacted") {
                Kind::Compacted
            } else if msg.contains("required revision is a future revision") {
                Kind::FutureRevision
            } else if msg.contains("request is too large")
                || (status.code() == tonic::Code::ResourceExhausted && msg.contains("larger than max"))
            {
                Kind::TooLarge
            } else {
                match status.code() {
                    tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => Kind::Unreachable,
                    // Transport failures below gRPC (TLS alerts, HTTP/2 errors, a closed connection) surface with
                    // these codes and the transport error as their source.
                    tonic::Code::Unknown | tonic::Code::Internal | tonic::Code::Cancelled
                        if status.source().is_some() =>
                    {
                        Kind::Unreachable
                    }
                    _ => Kind::Other,
                }
            }
        }
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => Kind::Unreachable,
        _ => Kind::Other,
    }
}

/// The full chain of an error's messages, without the repetitions that layered errors produce.
/// A gRPC status is told by its message and causes: its own `Display` repeats them in debug form.
pub(crate) fn chain(e: &etcd_client::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = match e {
        etcd_client::Error::GRpcStatus(status) => {
            parts.push(status.message().to_owned());
            status.source()
        }
        other => Some(other),
    };
    while let Some(err) = cur {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// Whether a failure happened before the request reached etcd (TCP connect, TLS handshake), so that it is safe to
/// send it to another member even if it writes.
pub(crate) fn unsent(e: &etcd_client::Error) -> bool {
    // tonic reports failures to establish a connection as a `ConnectError` inside its transport error; it exposes
    // no accessor for that, so its debug form is the only way to tell.
    format!("{e:?}").contains("ConnectError")
}

/// The TLS setup, so that an error can suggest the right fix.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// All endpoints, comma-separated: the `location` of errors that concern the whole cluster.
    pub(crate) location: String,
    /// Whether the endpoints are https://.
    pub(crate) https: bool,
    /// The TLS files, described for messages.
    pub(crate) tls_files: String,
    /// Whether a client certificate is configured.
    pub(crate) client_cert: bool,
}

impl Context {
    /// The error for `op` (e.g. "get /registry/pods/x") that failed at `endpoint` with an answer from etcd
    /// (anything but a connection failure).
    pub(crate) fn error(&self, endpoint: &str, op: &str, e: etcd_client::Error) -> Error {
        let text = chain(&e);
        if classify(&e) == Kind::TooLarge {
            return Error::Backend {
                location: endpoint.to_owned(),
                message: format!(
                    "{op}: etcd refused the request as too large ({text}); start etcd with --max-request-bytes of at least {} so values up to rkube's limit of {} bytes fit",
                    rkube_store::MAX_VALUE_SIZE + 512 * 1024,
                    rkube_store::MAX_VALUE_SIZE
                ),
                source: Some(Box::new(e)),
            };
        }
        let hint = if text.contains("database space exceeded") {
            "; etcd's backend quota is full: compact and defragment etcd (etcdctl compact, etcdctl defrag, etcdctl alarm disarm) or raise --quota-backend-bytes"
        } else {
            ""
        };
        Error::Backend {
            location: endpoint.to_owned(),
            message: format!("{op}: {text}{hint}"),
            source: Some(Box::new(e)),
        }
    }

    /// Why one endpoint could not be reached, with the likely fix.
    pub(crate) fn unreachable(&self, e: &etcd_client::Error, at_connect: bool) -> String {
        let text = chain(e);
        format!("{text}; {}", self.remedy(&text, at_connect))
    }

    /// Why one endpoint did not answer in time, with the likely fix.
    pub(crate) fn silent(&self, waited: Duration) -> String {
        format!("no answer within {waited:?}; {}", self.remedy("timed out", false))
    }

    /// The error for `op` when no endpoint could be reached, each endpoint with its own diagnosis.
    pub(crate) fn none_reachable(&self, op: &str, failures: Vec<(String, String)>) -> Error {
        let details: Vec<String> = failures.into_iter().map(|(ep, why)| format!("{ep}: {why}")).collect();
        Error::Unavailable {
            location: self.location.clone(),
            message: format!("{op}: no etcd endpoint answered ({})", details.join("; ")),
            source: None,
        }
    }

    /// The error for a write whose connection broke after it was sent: etcd may or may not have applied it.
    pub(crate) fn write_outcome_unknown(&self, endpoint: &str, op: &str, why: &str) -> Error {
        Error::Unavailable {
            location: endpoint.to_owned(),
            message: format!(
                "{op}: the connection to etcd failed after the request was sent, so it may or may not have been applied ({why})"
            ),
            source: None,
        }
    }

    /// The most likely fix for a connection failure, from the error text and the TLS setup; `at_connect` when the
    /// failure is the first request on a new connection (so TLS settings are suspect, not a server going away).
    pub(crate) fn remedy(&self, text: &str, at_connect: bool) -> String {
        let lower = text.to_ascii_lowercase();
        let files = &self.tls_files;
        if lower.contains("connection refused") {
            "nothing accepts connections there: check that etcd is running and listens on that address (its --listen-client-urls), and that the URL is right".to_owned()
        } else if lower.contains("unknownissuer")
            || lower.contains("invalid peer certificate")
            || lower.contains("badsignature")
        {
            format!(
                "etcd's server certificate is not trusted with the configured {files}: give the CA that signed etcd's server certificate (--etcd-cafile), and check the certificate names this address"
            )
        } else if lower.contains("certificaterequired")
            || lower.contains("certificate required")
            || (lower.contains("alert") && lower.contains("certificate"))
            // With TLS 1.3 the server checks the client certificate after the handshake; its alert often loses the
            // race with the connection's close, which is then all the client sees. Only at connect: later, a
            // closed connection is more likely a server going away.
            || (at_connect
                && self.https
                && ["connection closed", "canceled", "reset", "broken pipe"].iter().any(|w| lower.contains(w)))
        {
            if self.client_cert {
                format!(
                    "etcd refused the connection after the TLS handshake, most likely rejecting the client certificate ({files}): give a client certificate signed by a CA in etcd's --trusted-ca-file (--etcd-certfile, --etcd-keyfile)"
                )
            } else {
                format!(
                    "etcd refused the connection after the TLS handshake, most likely because it requires a client certificate (its --client-cert-auth) and none was given ({files}): set the client certificate and key (--etcd-certfile, --etcd-keyfile)"
                )
            }
        } else if self.https
            && (lower.contains("handshake")
                || lower.contains("corrupt message")
                || lower.contains("invalidcontenttype"))
        {
            format!(
                "the TLS handshake failed ({files}): check that etcd serves TLS on this port (its --cert-file/--key-file); if it does not, use an http:// URL"
            )
        } else if at_connect
            && !self.https
            && ["frame", "protocol", "connection reset", "broken pipe", "connection closed", "http2"]
                .iter()
                .any(|w| lower.contains(w))
        {
            "the server does not speak plain HTTP/2 there: if etcd serves TLS, use an https:// URL with the CA file (--etcd-cafile) and, if it checks client certificates, --etcd-certfile/--etcd-keyfile".to_owned()
        } else if lower.contains("timed out") || lower.contains("deadline") {
            "no answer in time: check that etcd is running, reachable from here and has a leader (etcdctl endpoint health)".to_owned()
        } else {
            "check that etcd is running and healthy (etcdctl endpoint health) and that the URL and TLS files are right"
                .to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(https: bool, client_cert: bool) -> Context {
        Context { location: "x".into(), https, tls_files: "CA /ca.pem".into(), client_cert }
    }

    #[test]
    fn revision_errors_are_recognised_by_etcds_messages() {
        let status = |msg: &str| etcd_client::Error::GRpcStatus(tonic::Status::out_of_range(msg));
        assert_eq!(classify(&status("etcdserver: mvcc: required revision has been compacted")), Kind::Compacted);
        assert_eq!(classify(&status("etcdserver: mvcc: required revision is a future revision")), Kind::FutureRevision);
        let too_large =
            etcd_client::Error::GRpcStatus(tonic::Status::invalid_argument("etcdserver: request is too large"));
        assert_eq!(classify(&too_large), Kind::TooLarge);
        let down = etcd_client::Error::GRpcStatus(tonic::Status::unavailable("tcp connect error"));
        assert_eq!(classify(&down), Kind::Unreachable);
    }

    #[test]
    fn remedies_follow_the_symptom_and_the_setup() {
        assert!(ctx(false, false).remedy("Connection refused (os error 111)", true).contains("etcd is running"));
        assert!(ctx(true, true).remedy("invalid peer certificate: UnknownIssuer", true).contains("--etcd-cafile"));
        assert!(ctx(true, false).remedy("connection closed", true).contains("--etcd-certfile"));
        assert!(ctx(true, true).remedy("received fatal alert: BadCertificate", true).contains("--trusted-ca-file"));
        assert!(ctx(false, false).remedy("stream closed because of a broken pipe", true).contains("https://"));
        // A connection that breaks later says nothing about certificates or schemes.
        assert!(!ctx(true, false).remedy("connection reset", false).contains("certificate"));
        assert!(!ctx(false, false).remedy("broken pipe", false).contains("https://"));
    }
}
