//! The cgroup driver as the host and the runtime each see it, and the check that they agree (the founding
//! guides' pit: "kubelet cgroup driver: cgroupfs is different from docker cgroup driver: systemd").

use std::fmt;
use std::path::Path;

use serde_json::Value;

use crate::{Error, Result, Runtime, api};

/// How containers' cgroups are managed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupDriver {
    /// Directly in the cgroup filesystem (hosts without systemd as PID 1).
    Cgroupfs,
    /// Through systemd's slices and scopes.
    Systemd,
}

impl CgroupDriver {
    /// The name kubelet's `--cgroup-driver` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupDriver::Cgroupfs => "cgroupfs",
            CgroupDriver::Systemd => "systemd",
        }
    }
}

impl fmt::Display for CgroupDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The driver this host calls for: systemd only when systemd runs the host (PID 1 is systemd, which
/// `/run/systemd/system` shows, as `sd_booted()` checks).
pub fn host_driver() -> CgroupDriver {
    driver_for(Path::new("/run/systemd/system"))
}

fn driver_for(marker: &Path) -> CgroupDriver {
    if marker.is_dir() { CgroupDriver::Systemd } else { CgroupDriver::Cgroupfs }
}

/// The driver the runtime uses, read from its own configuration: CRI `Status` with `verbose` (containerd
/// answers its CRI config as JSON in `info["config"]`): the default runtime's `options.SystemdCgroup`, else the
/// top-level `systemdCgroup`. Returns the driver and where it was read.
pub async fn runtime_driver(runtime: &Runtime) -> Result<(CgroupDriver, String)> {
    let response = runtime.runtime.clone().status(api::StatusRequest { verbose: true }).await;
    let status = response.map_err(Error::cri("Status (verbose)"))?.into_inner();
    let config = status.info.get("config").ok_or_else(|| Error::RuntimeConfig {
        what: "the cgroup driver",
        reason: "its verbose status has no \"config\" (not containerd?)".into(),
    })?;
    driver_from_config(config)
}

fn driver_from_config(config: &str) -> Result<(CgroupDriver, String)> {
    let bad = |reason: String| Error::RuntimeConfig { what: "the cgroup driver", reason };
    let config: Value = serde_json::from_str(config).map_err(|e| bad(format!("its \"config\" is not JSON: {e}")))?;
    let containerd = &config["containerd"];
    let name = containerd["defaultRuntimeName"].as_str().unwrap_or("runc");
    let from_runtime = containerd["runtimes"][name]["options"]["SystemdCgroup"].as_bool();
    // The top-level `systemdCgroup` is the deprecated setting of the v1 runtime: it only counts when the runc
    // options say nothing.
    let (systemd, source) = match (from_runtime, config["systemdCgroup"].as_bool()) {
        (Some(v), _) => (v, format!("containerd runtime {name:?} options SystemdCgroup={v}")),
        (None, Some(v)) => (v, format!("containerd CRI config systemdCgroup={v}")),
        (None, None) => (false, format!("containerd default (runtime {name:?} sets no SystemdCgroup)")),
    };
    Ok((if systemd { CgroupDriver::Systemd } else { CgroupDriver::Cgroupfs }, source))
}

/// Fails unless the agent's driver and the runtime's agree; the error says which side says what and how to
/// make them agree. `kubelet_side` and `runtime_side` carry where each value came from.
pub fn check(kubelet_side: (CgroupDriver, &str), runtime_side: (CgroupDriver, &str)) -> Result<()> {
    let ((kubelet, kubelet_source), (runtime, runtime_source)) = (kubelet_side, runtime_side);
    if kubelet == runtime {
        return Ok(());
    }
    let fix = match runtime {
        CgroupDriver::Systemd => {
            "set SystemdCgroup = false in the runtime's runc options (containerd config.toml \
            [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]), then restart \
            the runtime (rkube takes its own driver from the host's init system, so the runtime must follow it)"
        }
        CgroupDriver::Cgroupfs => {
            "set SystemdCgroup = true in the runtime's runc options (containerd config.toml \
            [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]), then restart \
            the runtime (rkube takes its own driver from the host's init system, so the runtime must follow it)"
        }
    };
    Err(Error::CgroupDriverMismatch {
        kubelet: kubelet.to_string(),
        kubelet_source: kubelet_source.to_string(),
        runtime: runtime.to_string(),
        runtime_source: runtime_source.to_string(),
        fix: fix.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_marker() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(driver_for(dir.path()), CgroupDriver::Systemd);
        assert_eq!(driver_for(&dir.path().join("absent")), CgroupDriver::Cgroupfs);
    }

    #[test]
    fn reads_containerd_config() {
        let runc = |v: &str| {
            format!(
                r#"{{"containerd":{{"defaultRuntimeName":"runc","runtimes":{{"runc":{{"options":{{"SystemdCgroup":{v}}}}}}}}},"systemdCgroup":false}}"#
            )
        };
        assert_eq!(driver_from_config(&runc("true")).unwrap().0, CgroupDriver::Systemd);
        let (driver, source) = driver_from_config(&runc("false")).unwrap();
        assert_eq!(driver, CgroupDriver::Cgroupfs);
        assert!(source.contains("SystemdCgroup=false"), "{source}");
        assert_eq!(driver_from_config(r#"{"systemdCgroup":true}"#).unwrap().0, CgroupDriver::Systemd);
        assert_eq!(driver_from_config("{}").unwrap().0, CgroupDriver::Cgroupfs);
        assert!(driver_from_config("nope").is_err());
    }

    #[test]
    fn mismatch_names_both_sides() {
        assert!(check((CgroupDriver::Cgroupfs, "host"), (CgroupDriver::Cgroupfs, "runtime")).is_ok());
        let err = check((CgroupDriver::Cgroupfs, "--cgroup-driver"), (CgroupDriver::Systemd, "runc options"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("kubelet cgroup driver: cgroupfs (--cgroup-driver) is different from"), "{err}");
        assert!(
            err.contains("cgroup driver: systemd (runc options)") && err.contains("SystemdCgroup = false"),
            "{err}"
        );
    }
}
