//! The container runtime: reachable at its socket, and using the same cgroup driver as the agent will.

use std::path::Path;
use std::time::Duration;

use rkube_cri::cgroups::{self, CgroupDriver};

use crate::{Finding, Host};

const G: &str = "runtime";

pub(crate) async fn check(host: &dyn Host, endpoint: &Path) -> Vec<Finding> {
    let shown = endpoint.display().to_string();
    let connect = tokio::time::timeout(Duration::from_secs(5), rkube_cri::Runtime::connect(endpoint)).await;
    let runtime = match connect {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return vec![unreachable(&shown, &e.to_string())],
        Err(_) => return vec![unreachable(&shown, "no answer within 5s")],
    };
    let mut out = vec![Finding::ok(G, "container runtime", format!("a CRI runtime answers at {shown}"))];
    // The agent picks systemd exactly when systemd runs the host, as rkube_cri::cgroups::host_driver does.
    let agent = if host.exists("/run/systemd/system") { CgroupDriver::Systemd } else { CgroupDriver::Cgroupfs };
    let driver = tokio::time::timeout(Duration::from_secs(5), cgroups::runtime_driver(&runtime)).await;
    out.push(match driver {
        Ok(Ok((runtime_driver, source))) => {
            match cgroups::check((agent, "the agent (from /run/systemd/system)"), (runtime_driver, &source)) {
                Ok(()) => Finding::ok(G, "cgroup driver", format!("agent and runtime both use {agent}")),
                Err(e) => Finding::fail(G, "cgroup driver", e.to_string(), fix_of(agent)),
            }
        }
        Ok(Err(e)) => Finding::warn(G, "cgroup driver", format!("cannot read the runtime's driver: {e}"), "-"),
        Err(_) => Finding::warn(G, "cgroup driver", "the runtime's status did not answer within 5s", "-"),
    });
    out
}

fn fix_of(agent: CgroupDriver) -> String {
    format!(
        "set SystemdCgroup = {} under [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options] in \
        /etc/containerd/config.toml, then restart containerd",
        agent == CgroupDriver::Systemd
    )
}

fn unreachable(shown: &str, why: &str) -> Finding {
    Finding::fail(
        G,
        "container runtime",
        format!("no CRI runtime answers at {shown}: {why}"),
        "containerd --config /etc/containerd/config.toml & (or drop --container-runtime-endpoint: rkube runs its own)",
    )
}
