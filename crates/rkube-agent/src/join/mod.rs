//! Joining a cluster with a token, as the kubelet's TLS bootstrap with kubeadm's token discovery: fetch the
//! cluster CA without trusting it, check it against the hash the token pins, then (trusting it) ask for the
//! node's client certificate with the bootstrap token, and for the agent API's serving certificate with the
//! node's new identity. Certificates are kept under `<data-dir>/agent` and reused across restarts; each is
//! renewed (a new request, as the node itself) once 80% of its lifetime has passed.

mod csr;
mod discover;
mod files;
pub mod token;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub use files::Paths;
pub use token::{EXPECTED_FORM, JoinToken, ca_hash};

use files::{CertState, read_optional, write_atomic};

/// Why joining failed, each with what to do.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The token text is not a join token.
    #[error("invalid join token: {why}; expected {EXPECTED_FORM}")]
    BadToken {
        /// What is wrong.
        why: String,
    },
    /// A `--server` value is not a URL.
    #[error("--server {server:?} is not a URL: {detail}")]
    BadServer {
        /// The value.
        server: String,
        /// Why.
        detail: String,
    },
    /// No server answered.
    #[error("cannot reach the API server at {server}: {detail}")]
    Unreachable {
        /// The server.
        server: String,
        /// The connection error.
        detail: String,
    },
    /// The server answered, but not as an rkube (Kubernetes) API server.
    #[error("{server} is not an rkube server (or not a Kubernetes API server nodes can join): {detail}")]
    NotRkube {
        /// The server.
        server: String,
        /// What it answered.
        detail: String,
    },
    /// The CA offered does not hash to the pinned value.
    #[error(
        "the cluster CA offered by {server} has sha256 {got}, but the join token pins {pinned}: refusing to trust \
         it and sending no credential (a different cluster, or a man-in-the-middle); check --server and the token"
    )]
    CaMismatch {
        /// The server.
        server: String,
        /// The token's hash.
        pinned: String,
        /// The CA's hash.
        got: String,
    },
    /// The bootstrap token was refused (401).
    #[error(
        "{server} refused the join token (401 Unauthorized): it is invalid or has expired; create a new one on a \
         server with `rkube token create` and pass it with --token"
    )]
    TokenRefused {
        /// The server.
        server: String,
    },
    /// The credential may not request certificates (403).
    #[error("{server} does not let this identity request certificates: {detail}")]
    Forbidden {
        /// The server.
        server: String,
        /// The server's message.
        detail: String,
    },
    /// The request was denied.
    #[error("the certificate request {name} was denied: {message}")]
    Denied {
        /// The CSR.
        name: String,
        /// The Denied condition's message.
        message: String,
    },
    /// The signer refused the request.
    #[error("the certificate request {name} failed: {message}")]
    Failed {
        /// The CSR.
        name: String,
        /// The Failed condition's message.
        message: String,
    },
    /// Nobody approved the request in time.
    #[error(
        "the certificate request {name} was not approved and signed within {}s; approve it on a server with \
         `kubectl certificate approve {name}`", waited.as_secs()
    )]
    NotApproved {
        /// The CSR.
        name: String,
        /// How long the agent waited.
        waited: Duration,
    },
    /// Another API failure.
    #[error("{what}: {detail}")]
    Api {
        /// What was being done.
        what: String,
        /// The error.
        detail: String,
    },
    /// Neither saved credentials nor a token.
    #[error(
        "no valid node certificate in {dir} and no --token to get one: give --token (from `rkube token create` on \
         a server), or --kubeconfig with the TLS files"
    )]
    NoCredentials {
        /// The agent's directory.
        dir: String,
    },
    /// A local failure (keys, requests).
    #[error("{0}")]
    Local(String),
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// The operation and path.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// What joining needs.
#[derive(Clone, Debug)]
pub struct JoinOptions {
    /// The agent's data directory (files go under `agent/`).
    pub data_dir: PathBuf,
    /// The API servers' URLs: joining and certificate requests go through the first that answers.
    pub servers: Vec<String>,
    /// The join token (needed only when no valid saved certificate exists).
    pub token: Option<JoinToken>,
    /// This node's name.
    pub node_name: String,
    /// This node's IP.
    pub node_ip: IpAddr,
}

/// The node's credentials, ready for use.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The files.
    pub paths: Paths,
    /// When the first of the two certificates is due for renewal.
    pub renew_at: SystemTime,
}

const CLIENT_USAGES: &[&str] = &["digital signature", "client auth"];
const SERVING_USAGES: &[&str] = &["digital signature", "server auth"];

fn node_user(name: &str) -> String {
    crate::identity::node_user(name)
}

async fn client_from_yaml(yaml: &str) -> Result<kube::Client, JoinError> {
    let bad = |e: &dyn std::fmt::Display| JoinError::Local(format!("building a client: {e}"));
    let parsed = kube::config::Kubeconfig::from_yaml(yaml).map_err(|e| bad(&e))?;
    let config = kube::Config::from_custom_kubeconfig(parsed, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| bad(&e))?;
    kube::Client::try_from(config).map_err(|e| bad(&e))
}

fn pem_text(bytes: &[u8]) -> Result<&str, JoinError> {
    std::str::from_utf8(bytes).map_err(|_| JoinError::Local("the cluster CA is not PEM text".to_owned()))
}

/// Saves the client certificate and the kubeconfig made of it.
fn save_client(paths: &Paths, server: &str, ca: &[u8], issued: &csr::Issued) -> Result<(), JoinError> {
    write_atomic(&paths.client_key, issued.key_pem.as_bytes(), 0o600)?;
    write_atomic(&paths.client_cert, issued.cert_pem.as_bytes(), 0o644)?;
    let kc = rkube_pki::Kubeconfig::with_client_cert(server, pem_text(ca)?, "node", &issued.cert_pem, &issued.key_pem);
    kc.write(&paths.kubeconfig).map_err(|e| JoinError::Local(format!("writing {}: {e}", paths.kubeconfig.display())))
}

/// Joins through the first server (in the order given) that answers: discovery of the CA it proves, then the
/// client certificate requested with the bootstrap token. A server that cannot be reached, or goes away
/// mid-request, passes the join to the next one; any answer (a refused token, a CA that does not match) stops
/// it. When none could be reached, they are all tried again after a pause, a few times (a network that is
/// just coming up, servers restarting), before giving up. Returns the server, the CA and the certificate.
async fn join_first_answering(
    servers: &[String],
    token: &token::JoinToken,
    ask: &csr::Ask<'_>,
) -> Result<(String, Vec<u8>, csr::Issued), JoinError> {
    let mut last = None;
    for pause in UNREACHABLE_PAUSES {
        if let Some(e) = &last {
            tracing::warn!(error = %e, "no server could be reached; trying them all again in {}s", pause.as_secs());
            tokio::time::sleep(pause).await;
        }
        match join_round(servers, token, ask).await {
            Err(e @ JoinError::Unreachable { .. }) => last = Some(e),
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| JoinError::Local("--server is required to join with --token".to_owned())))
}

/// The pauses before each round of [`join_first_answering`] (none before the first).
const UNREACHABLE_PAUSES: [Duration; 3] = [Duration::ZERO, Duration::from_secs(1), Duration::from_secs(3)];

/// One try of every server, in order.
async fn join_round(
    servers: &[String],
    token: &token::JoinToken,
    ask: &csr::Ask<'_>,
) -> Result<(String, Vec<u8>, csr::Issued), JoinError> {
    let mut last = None;
    for server in servers {
        let attempt = async {
            let ca = discover::cluster_ca(server, token).await?;
            tracing::info!(%server, ca_sha256 = token.ca_hash(), "the server's CA matches the token; joining");
            let yaml = rkube_pki::Kubeconfig::with_token(server, pem_text(&ca)?, "bootstrap", &token.bootstrap_token())
                .to_yaml()
                .map_err(|e| JoinError::Local(e.to_string()))?;
            let bootstrap = client_from_yaml(&yaml).await?;
            let issued = csr::request(&bootstrap, server, ask).await?;
            Ok::<_, JoinError>((ca, issued))
        };
        match attempt.await {
            Ok((ca, issued)) => return Ok((server.clone(), ca, issued)),
            Err(e @ JoinError::Unreachable { .. }) => {
                tracing::warn!(%server, error = %e, "trying the next server");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| JoinError::Local("--server is required to join with --token".to_owned())))
}

/// Requests a certificate as the node (its saved kubeconfig) through the first server that answers. A client
/// per server, tried in turn, rather than the agent's failover balancer: a balancer lives as long as the
/// process, and these requests are rare and short.
async fn request_as_node(paths: &Paths, servers: &[String], ask: &csr::Ask<'_>) -> Result<csr::Issued, JoinError> {
    let mut last = None;
    for server in servers {
        let client = crate::identity::kubeconfig_client(&paths.kubeconfig, std::slice::from_ref(server))
            .await
            .map_err(|e| JoinError::Local(e.to_string()))?;
        match csr::request(&client, server, ask).await {
            Ok(issued) => return Ok(issued),
            Err(e @ JoinError::Unreachable { .. }) => {
                tracing::warn!(%server, error = %e, "trying the next server");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| JoinError::Local("--server is required to request certificates".to_owned())))
}

/// Makes sure the node has a valid client certificate (joining with the token when it has none, renewing it
/// as itself when due) and a serving certificate for its name and IP. Returns the files to use.
pub async fn ensure_credentials(opts: &JoinOptions) -> Result<Credentials, JoinError> {
    let paths = Paths::new(&opts.data_dir);
    let now = SystemTime::now();
    let cn = node_user(&opts.node_name);
    let server = opts.servers.first().cloned().unwrap_or_default();
    let saved_ca = read_optional(&paths.ca)?;
    // A token pinning another CA means another cluster (or a rebuilt one): the saved identity is not for it.
    let same_cluster = match (&saved_ca, &opts.token) {
        (Some(ca), Some(t)) => ca_hash(ca) == t.ca_hash(),
        (Some(_), None) => true,
        (None, _) => false,
    };
    let saved = match (&saved_ca, same_cluster, read_optional(&paths.client_cert)?, paths.kubeconfig.exists()) {
        (Some(ca), true, Some(cert), true) => CertState::read(&cert, ca).filter(|s| s.valid_at(now) && s.cn == cn),
        _ => None,
    };
    let (ca, client_state) = match (saved, saved_ca) {
        (Some(state), Some(ca)) => {
            if now >= state.renew_at() {
                tracing::info!("the node's client certificate is due for renewal");
                let ask = csr::Ask { signer: csr::CLIENT_SIGNER, cn: &cn, dns: &[], ips: &[], usages: CLIENT_USAGES };
                match request_as_node(&paths, &opts.servers, &ask).await {
                    Ok(issued) => save_client(&paths, &server, &ca, &issued)?,
                    // The current certificate still works: keep it, try again at the next start or renewal.
                    Err(e) => tracing::warn!(error = %e, "renewing the node's client certificate failed"),
                }
            }
            let state = read_optional(&paths.client_cert)?.and_then(|c| CertState::read(&c, &ca)).unwrap_or(state);
            (ca, state)
        }
        _ => {
            let token = opts.token.as_ref().ok_or_else(|| JoinError::NoCredentials {
                dir: paths.ca.parent().map(|p| p.display().to_string()).unwrap_or_default(),
            })?;
            let ask = csr::Ask { signer: csr::CLIENT_SIGNER, cn: &cn, dns: &[], ips: &[], usages: CLIENT_USAGES };
            let (server, ca, issued) = join_first_answering(&opts.servers, token, &ask).await?;
            write_atomic(&paths.ca, &ca, 0o644)?;
            save_client(&paths, &server, &ca, &issued)?;
            let state = CertState::read(issued.cert_pem.as_bytes(), &ca)
                .ok_or_else(|| JoinError::Local("the issued client certificate cannot be read".to_owned()))?;
            (ca, state)
        }
    };
    let serving = ensure_serving(opts, &paths, &ca, &cn, now).await?;
    Ok(Credentials { paths, renew_at: client_state.renew_at().min(serving.renew_at()) })
}

async fn ensure_serving(
    opts: &JoinOptions,
    paths: &Paths,
    ca: &[u8],
    cn: &str,
    now: SystemTime,
) -> Result<CertState, JoinError> {
    let (dns, ips) = match opts.node_name.parse::<IpAddr>() {
        Ok(ip) if ip != opts.node_ip => (Vec::new(), vec![opts.node_ip, ip]),
        Ok(_) => (Vec::new(), vec![opts.node_ip]),
        Err(_) => (vec![opts.node_name.clone()], vec![opts.node_ip]),
    };
    let current = match (read_optional(&paths.serving_cert)?, paths.serving_key.exists()) {
        (Some(cert), true) => CertState::read(&cert, ca),
        _ => None,
    };
    if let Some(state) = current.filter(|s| {
        s.valid_at(now)
            && now < s.renew_at()
            && dns.iter().all(|d| s.dns.contains(d))
            && ips.iter().all(|i| s.ips.contains(i))
    }) {
        return Ok(state);
    }
    let ask = csr::Ask { signer: csr::SERVING_SIGNER, cn, dns: &dns, ips: &ips, usages: SERVING_USAGES };
    let issued = request_as_node(paths, &opts.servers, &ask).await?;
    write_atomic(&paths.serving_key, issued.key_pem.as_bytes(), 0o600)?;
    write_atomic(&paths.serving_cert, issued.cert_pem.as_bytes(), 0o644)?;
    CertState::read(issued.cert_pem.as_bytes(), ca)
        .ok_or_else(|| JoinError::Local("the issued serving certificate cannot be read".to_owned()))
}

/// The CA bundle of a `cluster-info` kubeconfig (what a join token's hash covers).
pub fn cluster_info_ca(kubeconfig: &str) -> Result<Vec<u8>, String> {
    discover::ca_of_kubeconfig(kubeconfig)
}

/// The least time between two renewals: a signer issuing certificates already due (a very short
/// `--cluster-signing-duration`) must not make the agent request certificates in a loop.
const MIN_RENEWAL_INTERVAL: Duration = Duration::from_secs(30);

/// Waits until `creds` are due for renewal (checking the clock at least hourly, as it may jump; at least
/// [`MIN_RENEWAL_INTERVAL`]), then renews them. The caller restarts what uses the old files.
pub async fn renew_when_due(opts: &JoinOptions, creds: &Credentials) -> Result<Credentials, JoinError> {
    tokio::time::sleep(MIN_RENEWAL_INTERVAL).await;
    loop {
        let left = creds.renew_at.duration_since(SystemTime::now()).unwrap_or_default();
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(left.min(Duration::from_secs(3600))).await;
    }
    ensure_credentials(opts).await
}
