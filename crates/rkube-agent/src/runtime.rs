//! The node's container runtime: a containerd the agent supervises (its config generated from the agent's:
//! CNI dirs, rkube's pause image, the host's cgroup driver) or the one given with
//! `--container-runtime-endpoint`; either way its cgroup driver is read back and must match the host's.

use std::sync::Arc;
use std::time::Duration;

use rkube_cri::cgroups::{self, CgroupDriver};
use rkube_cri::{ContainerdConfig, Runtime, Supervisor};

use crate::config::{AgentConfig, RuntimeSource};
use crate::{Error, Result};

/// How long an existing runtime gets to report ready.
const EXISTING_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The runtime the agent runs pods on.
pub(crate) struct NodeRuntime {
    /// CRI client.
    pub(crate) runtime: Runtime,
    /// The supervised containerd (`None` with `--container-runtime-endpoint`).
    pub(crate) supervisor: Option<Arc<Supervisor>>,
    /// Whether pod cgroups are named for systemd.
    pub(crate) systemd_cgroup: bool,
}

/// The supervised containerd's configuration for this agent.
pub(crate) fn containerd_config(config: &AgentConfig) -> Result<ContainerdConfig> {
    let mut c = ContainerdConfig::new(config.containerd_dir()).map_err(Error::runtime("configuring containerd"))?;
    c.cni_conf_dir = config.cni_conf_dir();
    c.sandbox_image = rkube_cri::pause::IMAGE.to_owned();
    c.systemd_cgroup = cgroups::host_driver() == CgroupDriver::Systemd;
    Ok(c)
}

/// Starts (or connects to) the runtime and checks its cgroup driver against the host's.
pub(crate) async fn start(config: &AgentConfig) -> Result<NodeRuntime> {
    let host = cgroups::host_driver();
    let (runtime, supervisor) = match &config.runtime {
        RuntimeSource::Supervised => {
            let c = containerd_config(config)?;
            let supervisor = Supervisor::start(c).await.map_err(Error::runtime("starting containerd"))?;
            let runtime =
                Runtime::connect(&supervisor.endpoint()).await.map_err(Error::runtime("connecting to containerd"))?;
            (runtime, Some(supervisor))
        }
        RuntimeSource::Endpoint(socket) => {
            let what = format!("connecting to the container runtime at {}", socket.display());
            let runtime = Runtime::connect(socket).await.map_err(Error::runtime(what.clone()))?;
            runtime.wait_ready(EXISTING_READY_TIMEOUT).await.map_err(Error::runtime(what))?;
            (runtime, None)
        }
    };
    let (driver, source) =
        cgroups::runtime_driver(&runtime).await.map_err(Error::runtime("reading the runtime's cgroup driver"))?;
    let host_source = match host {
        CgroupDriver::Systemd => "the host runs systemd (/run/systemd/system exists)",
        CgroupDriver::Cgroupfs => "the host does not run systemd (no /run/systemd/system)",
    };
    cgroups::check((host, host_source), (driver, &source)).map_err(Error::runtime("checking the cgroup driver"))?;
    Ok(NodeRuntime { runtime, supervisor: supervisor.map(Arc::new), systemd_cgroup: driver == CgroupDriver::Systemd })
}
