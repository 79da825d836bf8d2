//! The systemd unit `rkube install` writes, shaped like the guides' and k3s's units: the service owns its
//! cgroup subtree (`Delegate=yes`) and only the main process is killed on stop (`KillMode=process`), so
//! containerd's shims and the pods they run survive a restart of rkube; limits are lifted because every
//! container inherits them.

use std::path::{Path, PathBuf};

/// Which rkube the unit runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `rkube server`.
    Server,
    /// `rkube agent`.
    Agent,
}

impl Role {
    /// The subcommand (`server`, `agent`).
    pub fn subcommand(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Agent => "agent",
        }
    }

    /// The unit's file name (`rkube-server.service`).
    pub fn unit_name(self) -> String {
        format!("rkube-{}.service", self.subcommand())
    }
}

/// Both roles, for uninstall.
pub const ROLES: [Role; 2] = [Role::Server, Role::Agent];

/// Where units go on the installed system.
pub const UNIT_DIR: &str = "/etc/systemd/system";

/// The unit's path on the installed system.
pub fn unit_path(role: Role) -> PathBuf {
    Path::new(UNIT_DIR).join(role.unit_name())
}

/// The unit file running `binary role` (the binary path as the installed system sees it). Settings come from
/// /etc/rkube/config.yaml, and RKUBE_* variables from /etc/default/<unit> when that file exists.
pub fn render(role: Role, binary: &Path) -> String {
    let sub = role.subcommand();
    let what = match role {
        Role::Server => "control plane (and node agent unless disable-agent)",
        Role::Agent => "node agent",
    };
    // Type=exec, not notify: rkube does not send sd_notify, so systemd counts it started once it has exec'd.
    // The modprobes carry `-`: a kernel with the modules built in, or without modprobe, must still start
    // (rkube's preflight names what is really missing).
    format!(
        "[Unit]\n\
         Description=rkube {sub}: {what}\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n\
         \n\
         [Service]\n\
         Type=exec\n\
         EnvironmentFile=-/etc/default/%N\n\
         KillMode=process\n\
         Delegate=yes\n\
         User=root\n\
         LimitNOFILE=1048576\n\
         LimitNPROC=infinity\n\
         LimitCORE=infinity\n\
         TasksMax=infinity\n\
         TimeoutStartSec=0\n\
         Restart=always\n\
         RestartSec=5s\n\
         ExecStartPre=-/sbin/modprobe br_netfilter\n\
         ExecStartPre=-/sbin/modprobe overlay\n\
         ExecStart={} {sub}\n",
        binary.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_unit_has_the_guides_settings() {
        let u = render(Role::Server, Path::new("/usr/local/bin/rkube"));
        for line in [
            "Delegate=yes",
            "KillMode=process",
            "Restart=always",
            "LimitNOFILE=1048576",
            "LimitNPROC=infinity",
            "TasksMax=infinity",
            "Type=exec",
            "After=network-online.target",
            "ExecStart=/usr/local/bin/rkube server",
            "WantedBy=multi-user.target",
        ] {
            assert!(u.lines().any(|l| l == line), "{line} missing:\n{u}");
        }
        assert_eq!(unit_path(Role::Agent), Path::new("/etc/systemd/system/rkube-agent.service"));
    }
}
