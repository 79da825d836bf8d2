//! The node's container runtime: CRI v1 clients over a Unix socket, a containerd supervised by the agent
//! (generated config, restarts), the cgroup driver as the host and the runtime each see it, offline image
//! import from OCI/docker archives, and rkube's own pause image.
//!
//! Every other node crate reaches the runtime only through [`Runtime`] (CRI, as a kubelet does); `ctr` and
//! containerd's own API are used here only where CRI has no call (importing archives).

pub mod labels;

mod error;

pub use error::{Error, Result};
/// The CRI v1 messages and gRPC clients (generated from upstream's `api.proto` by the `k8s-cri` crate).
pub use k8s_cri::v1 as api;

use std::path::{Path, PathBuf};

use api::image_service_client::ImageServiceClient;
use api::runtime_service_client::RuntimeServiceClient;

/// A connection to a CRI runtime: its runtime and image services over one gRPC channel. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Runtime {
    /// `RuntimeService`: sandboxes, containers, exec, stats.
    pub runtime: RuntimeServiceClient<tonic::transport::Channel>,
    /// `ImageService`: list, pull, remove images.
    pub images: ImageServiceClient<tonic::transport::Channel>,
    endpoint: PathBuf,
}

impl Runtime {
    /// Connects to the CRI socket at `endpoint` (a path, or `unix://` followed by one).
    pub async fn connect(endpoint: &Path) -> Result<Runtime> {
        let _ = endpoint;
        todo!("rkube-cri helper")
    }

    /// The socket this runtime was reached at.
    pub fn endpoint(&self) -> &Path {
        &self.endpoint
    }
}
