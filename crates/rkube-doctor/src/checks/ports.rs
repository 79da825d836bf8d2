//! Ports rkube will listen on must be free; a taken one is named with the process holding it (found by the
//! socket's inode in `/proc/<pid>/fd`).

use crate::{Config, Finding, Host, Port, default_ports};

const G: &str = "ports";

pub(crate) fn run(host: &dyn Host, config: &Config, out: &mut Vec<Finding>) {
    let ports = config.ports.clone().unwrap_or_else(|| default_ports(config.role));
    for Port { port, udp, what, required } in ports {
        let proto = if udp { "udp" } else { "tcp" };
        let check = format!("port {port}/{proto}");
        match holder(host, port, proto) {
            None => out.push(Finding::ok(G, check, format!("{port}/{proto} is free ({what})"))),
            Some(inodes) => {
                let who = processes(host, &inodes);
                let (seen, remedy) = if who.is_empty() {
                    (
                        format!("{port}/{proto} ({what}) is taken by a kernel socket (a vxlan device?)"),
                        format!("ip -d link show | grep -B2 'dstport {port}'; ip link delete <that device>"),
                    )
                } else {
                    let pids: Vec<String> = who.iter().map(|(pid, _)| pid.to_string()).collect();
                    let names: Vec<String> = who.iter().map(|(pid, name)| format!("{name} (pid {pid})")).collect();
                    (
                        format!("{port}/{proto} ({what}) is taken by {}", names.join(", ")),
                        format!("stop it: kill {} (or move rkube to another port)", pids.join(" ")),
                    )
                };
                out.push(if required {
                    Finding::fail(G, check, seen, remedy)
                } else {
                    Finding::warn(G, check, seen, remedy)
                });
            }
        }
    }
}

/// The socket inodes bound to `port` (TCP: listening; UDP: bound), `None` when it is free.
fn holder(host: &dyn Host, port: u16, proto: &str) -> Option<Vec<u64>> {
    let hex = format!(":{port:04X}");
    let mut inodes = Vec::new();
    for table in [proto.to_string(), format!("{proto}6")] {
        let text = host.read(&format!("/proc/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else { continue };
            // TCP 0A is LISTEN; a bound UDP socket has no remote (state 07, unconnected).
            let listening = if proto == "tcp" { *state == "0A" } else { *state == "07" };
            if listening && local.ends_with(&hex) {
                inodes.push(inode.parse().unwrap_or(0));
            }
        }
    }
    (!inodes.is_empty()).then_some(inodes)
}

/// (pid, command name) of every process with one of `inodes` open.
fn processes(host: &dyn Host, inodes: &[u64]) -> Vec<(u32, String)> {
    let targets: Vec<String> = inodes.iter().filter(|i| **i != 0).map(|i| format!("socket:[{i}]")).collect();
    let mut found = Vec::new();
    for pid in host.read_dir("/proc").iter().filter_map(|p| p.parse::<u32>().ok()) {
        let fds = host.read_dir(&format!("/proc/{pid}/fd"));
        if fds.iter().any(|fd| host.read_link(&format!("/proc/{pid}/fd/{fd}")).is_some_and(|l| targets.contains(&l))) {
            let name = host.read(&format!("/proc/{pid}/comm")).map(|c| c.trim().to_string()).unwrap_or_default();
            found.push((pid, name));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use crate::fake::FakeHost;
    use crate::{Config, Status, check_host};

    #[test]
    fn taken_port_names_the_process() {
        let mut h = FakeHost::healthy();
        let tcp = "  sl  local_address rem_address   st\n   0: 00000000:280A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1\n";
        h.file("/proc/net/tcp", tcp);
        h.links.insert("/proc/77/fd/3".into(), "socket:[4242]".into());
        h.file("/proc/77/comm", "nc\n");
        let f = check_host(&h, &Config::default());
        let p = f.iter().find(|x| x.check == "port 10250/tcp").unwrap();
        assert_eq!(p.status, Status::Fail);
        assert_eq!(p.seen, "10250/tcp (kubelet API) is taken by nc (pid 77)");
        assert!(p.remedy.as_deref().unwrap().starts_with("stop it: kill 77"));
        assert_eq!(f.iter().find(|x| x.check == "port 6443/tcp").unwrap().status, Status::Ok);
    }
}
