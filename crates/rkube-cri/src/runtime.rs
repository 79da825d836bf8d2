//! The CRI client: one gRPC channel over the runtime's Unix socket, and the readiness wait.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::api;
use crate::api::image_service_client::ImageServiceClient;
use crate::api::runtime_service_client::RuntimeServiceClient;
use crate::{Error, Result};

/// The CRI API version we speak (sent in `Version`).
const CRI_VERSION: &str = "v1";

/// A connection to a CRI runtime: its runtime and image services over one gRPC channel. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Runtime {
    /// `RuntimeService`: sandboxes, containers, exec, stats.
    pub runtime: RuntimeServiceClient<Channel>,
    /// `ImageService`: list, pull, remove images.
    pub images: ImageServiceClient<Channel>,
    endpoint: PathBuf,
}

impl Runtime {
    /// Connects to the CRI socket at `endpoint` (a path, or `unix://` followed by one). Fails at once when the
    /// socket cannot be reached; later calls reconnect by themselves if the runtime restarts.
    pub async fn connect(endpoint: &Path) -> Result<Runtime> {
        let path = socket_path(endpoint)?;
        let channel = grpc_endpoint(&path)
            .connect_with_connector(connector(path.clone()))
            .await
            .map_err(|source| Error::Connect { endpoint: path.clone(), source })?;
        Ok(Runtime::over(channel, path))
    }

    /// Like [`Runtime::connect`] but without touching the socket: the first call connects (use this when the
    /// runtime may not be up yet, then [`Runtime::wait_ready`]).
    pub fn connect_lazy(endpoint: &Path) -> Result<Runtime> {
        let path = socket_path(endpoint)?;
        let channel = grpc_endpoint(&path).connect_with_connector_lazy(connector(path.clone()));
        Ok(Runtime::over(channel, path))
    }

    fn over(channel: Channel, endpoint: PathBuf) -> Runtime {
        Runtime {
            runtime: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20),
            images: ImageServiceClient::new(channel).max_decoding_message_size(64 << 20),
            endpoint,
        }
    }

    /// The socket this runtime was reached at.
    pub fn endpoint(&self) -> &Path {
        &self.endpoint
    }

    /// CRI `Version`: the runtime's name and version (e.g. `containerd`, `1.6.20`).
    pub async fn version(&self) -> Result<api::VersionResponse> {
        let request = api::VersionRequest { version: CRI_VERSION.to_string() };
        let response = self.runtime.clone().version(request).await;
        Ok(response.map_err(Error::cri(format!("Version of {}", self.endpoint.display())))?.into_inner())
    }

    /// One readiness check: CRI `Status` must report `RuntimeReady` (and `NetworkReady` is returned, not
    /// required: a node without a CNI config yet still runs host-network pods). Returns the whole status.
    pub async fn check_ready(&self) -> Result<api::StatusResponse> {
        let request = api::StatusRequest { verbose: false };
        let response = self.runtime.clone().status(request).await;
        let status = response.map_err(Error::cri(format!("Status of {}", self.endpoint.display())))?.into_inner();
        let conditions = status.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
        match conditions.iter().find(|c| c.r#type == "RuntimeReady") {
            Some(c) if c.status => Ok(status),
            Some(c) => Err(self.not_ready(None, format!("RuntimeReady=false: {} {}", c.reason, c.message))),
            None => Err(self.not_ready(None, "no RuntimeReady condition in its status".to_string())),
        }
    }

    /// Polls CRI `Version` and `Status` until the runtime reports `RuntimeReady`, for at most `timeout`.
    /// The error names the socket and the last thing that went wrong.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let last = match self.version().await {
                Ok(_) => match self.check_ready().await {
                    Ok(_) => return Ok(()),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            if start.elapsed() >= timeout {
                return Err(self.not_ready(Some(timeout), last.to_string()));
            }
            tokio::time::sleep(pause.min(timeout.saturating_sub(start.elapsed()))).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    fn not_ready(&self, waited: Option<Duration>, reason: String) -> Error {
        Error::NotReady { endpoint: self.endpoint.clone(), waited, reason }
    }
}

/// The socket path of an endpoint given as a path or a `unix://` URL.
pub(crate) fn socket_path(endpoint: &Path) -> Result<PathBuf> {
    let text = endpoint.to_string_lossy();
    let invalid = |reason| Error::InvalidEndpoint { endpoint: text.to_string(), reason };
    let path = match text.split_once("://") {
        Some(("unix", rest)) => PathBuf::from(rest),
        Some(_) => return Err(invalid("only unix sockets are supported (a path or unix:///path)")),
        None => endpoint.to_path_buf(),
    };
    if path.as_os_str().is_empty() {
        return Err(invalid("empty socket path"));
    }
    Ok(path)
}

fn grpc_endpoint(path: &Path) -> Endpoint {
    // The URI is only a placeholder for the HTTP/2 authority: the connector below ignores it.
    let _ = path;
    Endpoint::from_static("http://localhost")
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(false)
}

/// Dials the socket for each (re)connection of the channel.
fn connector(
    path: PathBuf,
) -> impl tower::Service<Uri, Response = TokioIo<UnixStream>, Error = std::io::Error, Future: Send> + Send + 'static {
    tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move { Ok(TokioIo::new(UnixStream::connect(&path).await?)) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(socket_path(Path::new("/run/c.sock")).unwrap(), PathBuf::from("/run/c.sock"));
        assert_eq!(socket_path(Path::new("unix:///run/c.sock")).unwrap(), PathBuf::from("/run/c.sock"));
        let err = socket_path(Path::new("tcp://1.2.3.4:5")).unwrap_err().to_string();
        assert!(err.contains("only unix sockets"), "{err}");
        assert!(socket_path(Path::new("unix://")).is_err());
    }

    #[tokio::test]
    async fn missing_socket_names_it() {
        let err = Runtime::connect(Path::new("/nonexistent/rkube-cri.sock")).await.unwrap_err().to_string();
        assert!(err.contains("/nonexistent/rkube-cri.sock"), "{err}");
        let lazy = Runtime::connect_lazy(Path::new("unix:///nonexistent/x.sock")).unwrap();
        let err = lazy.wait_ready(Duration::from_millis(300)).await.unwrap_err().to_string();
        assert!(err.contains("/nonexistent/x.sock") && err.contains("not ready after"), "{err}");
    }
}
