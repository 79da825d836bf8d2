//! Names, addresses and paths of a cluster, all derived from its name and state directory.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Where clusters keep their state unless `RKUBE_CLUSTER_DIR` says otherwise.
pub const DEFAULT_PARENT: &str = "/var/lib/rkube/clusters";
/// The environment variable naming the parent of clusters' state directories.
pub const PARENT_ENV: &str = "RKUBE_CLUSTER_DIR";
/// Longest cluster name (it is part of namespace names and shows in `ip netns`).
pub const MAX_NAME: usize = 16;
/// Most nodes in one cluster.
pub const MAX_NODES: u32 = 40;
/// The API server's port on node 1.
pub const API_PORT: u16 = 6443;
/// Most API servers in one cluster.
pub const MAX_SERVERS: u32 = 7;
/// Most etcd members in one cluster (their addresses, 192.168.77.2 to .8, sit below the nodes').
pub const MAX_ETCD_MEMBERS: u32 = 7;
/// The bridge's name inside the cluster namespace.
pub const BRIDGE: &str = "br0";

/// The cluster's "physical" network, 192.168.77.0/24 (every cluster has its own, so clusters may repeat it).
const NET: [u8; 3] = [192, 168, 77];

/// The parent of clusters' state directories: `$RKUBE_CLUSTER_DIR` or [`DEFAULT_PARENT`].
pub fn parent_dir() -> PathBuf {
    std::env::var_os(PARENT_ENV).filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| DEFAULT_PARENT.into())
}

/// Checks a cluster name: 1 to 16 of `a-z`, `0-9`, `-`, starting and ending with a letter or digit, and not
/// ending in `-n<digits>` (its namespace would be another cluster's node namespace).
pub fn check_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::Invalid(format!(
            "cluster name {name:?} {why}; use up to {MAX_NAME} lowercase letters, digits and '-', e.g. dev or lab-2"
        )))
    };
    if name.is_empty() || name.len() > MAX_NAME {
        return bad(&format!("must be 1 to {MAX_NAME} characters long"));
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return bad("has characters other than a-z, 0-9 and '-'");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return bad("must start and end with a letter or digit");
    }
    if let Some((_, tail)) = name.rsplit_once("-n")
        && !tail.is_empty()
        && tail.bytes().all(|b| b.is_ascii_digit())
    {
        return bad("must not end in -n<number> (node namespaces are named rkc-<cluster>-n<number>)");
    }
    Ok(())
}

/// Parses a node given as `n2` or `2` into its index (1-based), checked against the cluster's size.
pub fn parse_node(node: &str, nodes: u32) -> Result<u32> {
    let i = node.strip_prefix('n').unwrap_or(node).parse::<u32>().ok().filter(|i| (1..=nodes).contains(i));
    i.ok_or_else(|| Error::Invalid(format!("no node {node:?} in this cluster: its nodes are n1 to n{nodes}")))
}

/// One cluster's names and paths.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The cluster's name.
    pub name: String,
    /// Its state directory (`<parent>/<name>` unless `--state-dir`).
    pub dir: PathBuf,
}

impl Layout {
    /// The layout of cluster `name` under `parent` (see [`parent_dir`]); the name must be valid.
    pub fn new(parent: &Path, name: &str) -> Result<Layout> {
        check_name(name)?;
        Ok(Layout { name: name.to_owned(), dir: parent.join(name) })
    }

    /// The layout of cluster `name` with its state in `dir`.
    pub fn with_dir(dir: &Path, name: &str) -> Result<Layout> {
        check_name(name)?;
        Ok(Layout { name: name.to_owned(), dir: dir.to_path_buf() })
    }

    /// The cluster's own namespace (the bridge, etcd).
    pub fn cluster_netns(&self) -> String {
        format!("rkc-{}", self.name)
    }

    /// Node `i`'s namespace.
    pub fn node_netns(&self, i: u32) -> String {
        format!("rkc-{}-n{i}", self.name)
    }

    /// Whether `netns` is one of this cluster's node namespaces.
    pub fn is_node_netns(&self, netns: &str) -> bool {
        netns
            .strip_prefix(&format!("rkc-{}-n", self.name))
            .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
    }

    /// Node `i`'s name (`n1`, `n2`, ...).
    pub fn node_name(i: u32) -> String {
        format!("n{i}")
    }

    /// Node `i`'s address on the cluster network.
    pub fn node_ip(i: u32) -> Ipv4Addr {
        Ipv4Addr::new(NET[0], NET[1], NET[2], 10 + i as u8)
    }

    /// The bridge's address (every node's default gateway).
    pub fn bridge_ip() -> Ipv4Addr {
        Ipv4Addr::new(NET[0], NET[1], NET[2], 1)
    }

    /// etcd's address (a second address on the bridge), with `--etcd`: member 1's.
    pub fn etcd_ip() -> Ipv4Addr {
        Layout::etcd_member_ip(1)
    }

    /// etcd's client URL (member 1's).
    pub fn etcd_url() -> String {
        Layout::etcd_member_url(1)
    }

    /// etcd member `m`'s address (1-based: 192.168.77.(1+m), an address of the bridge).
    pub fn etcd_member_ip(m: u32) -> Ipv4Addr {
        Ipv4Addr::new(NET[0], NET[1], NET[2], 1 + m as u8)
    }

    /// etcd member `m`'s client URL.
    pub fn etcd_member_url(m: u32) -> String {
        format!("http://{}:2379", Layout::etcd_member_ip(m))
    }

    /// etcd member `m`'s peer URL.
    pub fn etcd_peer_url(m: u32) -> String {
        format!("http://{}:2380", Layout::etcd_member_ip(m))
    }

    /// etcd member `m`'s name (also how `rkube cluster stop|start` names it).
    pub fn etcd_member_name(m: u32) -> String {
        format!("etcd{m}")
    }

    /// The client URLs of members 1 to `members`.
    pub fn etcd_urls(members: u32) -> Vec<String> {
        (1..=members).map(Layout::etcd_member_url).collect()
    }

    /// The API server's URL inside the cluster network (node 1's).
    pub fn server_url() -> String {
        Layout::server_url_of(1)
    }

    /// Node `i`'s API server URL (when it is a server).
    pub fn server_url_of(i: u32) -> String {
        format!("https://{}:{API_PORT}", Layout::node_ip(i))
    }

    /// The URLs of servers n1 to n`servers`.
    pub fn server_urls(servers: u32) -> Vec<String> {
        (1..=servers).map(Layout::server_url_of).collect()
    }

    /// Node `i`'s data directory.
    pub fn node_dir(&self, i: u32) -> PathBuf {
        self.dir.join(Layout::node_name(i))
    }

    /// Node `i`'s log (its rkube process's stdout and stderr).
    pub fn node_log(&self, i: u32) -> PathBuf {
        self.node_dir(i).join("node.log")
    }

    /// Node `i`'s PID file.
    pub fn node_pid(&self, i: u32) -> PathBuf {
        self.node_dir(i).join("node.pid")
    }

    /// The saved description of the cluster.
    pub fn state_file(&self) -> PathBuf {
        self.dir.join("cluster.json")
    }

    /// The admin kubeconfig for kubectl on the host.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig.yaml")
    }

    /// The forwarder's PID file, log and the file it writes its port into.
    pub fn forward_files(&self) -> (PathBuf, PathBuf, PathBuf) {
        (self.dir.join("forward.pid"), self.dir.join("forward.log"), self.dir.join("forward.port"))
    }

    /// etcd's data directory, PID file and log (member 1's).
    pub fn etcd_files(&self) -> (PathBuf, PathBuf, PathBuf) {
        self.etcd_member_files(1)
    }

    /// etcd member `m`'s data directory, PID file and log (member 1's are `etcd`, `etcd.pid`, `etcd.log`, as a
    /// single etcd's were; member `m`'s `etcd<m>`, ...).
    pub fn etcd_member_files(&self, m: u32) -> (PathBuf, PathBuf, PathBuf) {
        let base = if m == 1 { "etcd".to_owned() } else { format!("etcd{m}") };
        (self.dir.join(&base), self.dir.join(format!("{base}.pid")), self.dir.join(format!("{base}.log")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "dev", "lab-2", "x1-n", "n1", "abcdefghijklmnop"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "Dev", "a_b", "a.b", "abcdefghijklmnopq", "a-n1", "x-n23"] {
            let e = check_name(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn nodes_and_namespaces() {
        let l = Layout::new(Path::new("/s"), "dev").unwrap();
        assert_eq!(l.cluster_netns(), "rkc-dev");
        assert_eq!(l.node_netns(3), "rkc-dev-n3");
        assert!(l.is_node_netns("rkc-dev-n12"));
        assert!(!l.is_node_netns("rkc-dev-n"));
        assert!(!l.is_node_netns("rkc-dev-x-n1"));
        assert_eq!(Layout::node_ip(1).to_string(), "192.168.77.11");
        assert_eq!(l.node_dir(2), Path::new("/s/dev/n2"));
        assert_eq!(parse_node("n2", 3).unwrap(), 2);
        assert_eq!(parse_node("3", 3).unwrap(), 3);
        assert!(parse_node("n4", 3).unwrap_err().to_string().contains("n1 to n3"));
        assert!(parse_node("x", 3).is_err());
        assert_eq!(Layout::etcd_urls(3)[2], "http://192.168.77.4:2379");
        assert_eq!(Layout::etcd_peer_url(1), "http://192.168.77.2:2380");
        assert_eq!(Layout::server_urls(2), ["https://192.168.77.11:6443", "https://192.168.77.12:6443"]);
        assert_eq!(l.etcd_member_files(1).1, Path::new("/s/dev/etcd.pid"));
        assert_eq!(l.etcd_member_files(3).0, Path::new("/s/dev/etcd3"));
    }
}
