//! The sysctls the pod network needs, set in the calling thread's network namespace (or reported with the fix).

use std::path::Path;

/// (path, what it is for, how to fix it when it cannot be set).
const NEEDED: [(&str, &str); 2] = [
    ("/proc/sys/net/ipv4/ip_forward", "forward pod traffic between nodes"),
    (
        "/proc/sys/net/bridge/bridge-nf-call-iptables",
        "let iptables see bridged pod traffic (load br_netfilter: modprobe br_netfilter)",
    ),
];

/// Sets each needed sysctl to 1; returns one line per sysctl that could not be set (empty when all are).
pub fn ensure() -> Vec<String> {
    NEEDED
        .iter()
        .filter_map(|(path, why)| {
            let p = Path::new(path);
            if std::fs::read_to_string(p).is_ok_and(|v| v.trim() == "1") {
                return None;
            }
            std::fs::write(p, "1").err().map(|e| format!("cannot set {path} to 1 ({e}); it is needed to {why}"))
        })
        .collect()
}
