//! The node's container runtime: CRI v1 clients over a Unix socket, a containerd supervised by the agent
//! (generated config, restarts), the cgroup driver as the host and the runtime each see it, offline image
//! import from OCI/docker archives, and rkube's own pause image.
//!
//! Every other node crate reaches the runtime only through [`Runtime`] (CRI, as a kubelet does); `ctr` and
//! containerd's own API are used here only where CRI has no call (importing archives).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cgroups;
pub mod containerd;
pub mod images;
pub mod labels;
pub mod oci;
pub mod pause;
pub mod podcgroups;

mod error;
mod runtime;
mod supervisor;

pub use containerd::{ContainerdConfig, Supervisor, remove_all_pods};
pub use error::{Error, Result};
/// The CRI v1 messages and gRPC clients (generated from upstream's `api.proto` by the `k8s-cri` crate).
pub use k8s_cri::v1 as api;
pub use runtime::Runtime;
