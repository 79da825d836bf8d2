//! rkube servers and agents running in this network namespace: uninstall must not pull their files, links
//! and rules out from under them (they would put the rules back, and lose their data).

use std::path::Path;

/// A running `rkube server` or `rkube agent`.
#[derive(Debug, PartialEq, Eq)]
pub struct Running {
    /// Its PID.
    pub pid: u32,
    /// `server` or `agent`.
    pub role: String,
}

/// The role of a process from its NUL-separated command line, if it is `rkube server` or `rkube agent` (not
/// `rkube agent clean`, nor any other subcommand).
fn role(cmdline: &[u8]) -> Option<String> {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_rkube = args.first().is_some_and(|a| a.rsplit(|b| *b == b'/').next() == Some(b"rkube"));
    // The first word that is not a flag; `--config FILE` is the one global flag taking a separate value.
    let mut words = args.iter().skip(1);
    let sub = loop {
        match words.next()? {
            a if *a == b"--config" => {
                words.next();
            }
            a if a.starts_with(b"-") => {}
            a => break *a,
        }
    };
    let clean = args.iter().any(|a| *a == b"clean");
    match (is_rkube, sub) {
        (true, b"server") => Some("server".into()),
        (true, b"agent") if !clean => Some("agent".into()),
        _ => None,
    }
}

/// rkube servers and agents sharing this process's network namespace.
pub fn running() -> Vec<Running> {
    let own = std::fs::read_link("/proc/self/ns/net").ok();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            if pid == me {
                return None;
            }
            let dir = Path::new("/proc").join(pid.to_string());
            let role = role(&std::fs::read(dir.join("cmdline")).ok()?)?;
            (std::fs::read_link(dir.join("ns/net")).ok() == own).then_some(Running { pid, role })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::role;

    #[test]
    fn only_servers_and_agents_count() {
        assert_eq!(role(b"/usr/local/bin/rkube\0server\0--disable-agent\0").as_deref(), Some("server"));
        assert_eq!(role(b"rkube\0--config\0/x\0agent\0").as_deref(), Some("agent"));
        assert_eq!(role(b"rkube\0agent\0clean\0"), None);
        assert_eq!(role(b"rkube\0uninstall\0"), None);
        assert_eq!(role(b"/bin/not-rkube\0server\0"), None);
        assert_eq!(role(b""), None);
    }
}
