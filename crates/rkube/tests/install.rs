//! `rkube install`, `rkube uninstall` and the config file, through the built binary: install into a `--root`
//! temp dir (the unit checked by `systemd-analyze verify`), the file < RKUBE_* < flag precedence seen on a real
//! `rkube server`, bad files rejected with the file, key and remedy named, and uninstall run inside a network
//! namespace this test makes (never against the host's namespace, /etc or /var/lib/rkube).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_rkube");

fn rkube(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env_remove("RKUBE_CONFIG").output().expect("run rkube")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Installs `role` with `flags` under a fresh root; returns the root.
fn install(role: &str, flags: &[&str]) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    let mut args = vec!["install", role, "--root", s(root.path())];
    args.extend(flags);
    let out = ok(rkube(&args), "rkube install");
    assert!(out.contains("installed under"), "--root must not touch systemd:\n{out}");
    root
}

/// `systemd-analyze verify` on the unit, under `root` (given the host's system units, so the unit's
/// dependencies resolve there, and ExecStart resolves to the binary installed under the root).
fn verify(root: &Path, unit: &str) -> Output {
    let units = root.join("usr/lib/systemd");
    std::fs::create_dir_all(&units).expect("mkdir");
    let cp = Command::new("cp").args(["-r", "/usr/lib/systemd/system"]).arg(&units).status().expect("cp");
    assert!(cp.success());
    Command::new("systemd-analyze")
        .args(["verify", "--man=no", &format!("--root={}", s(root)), &format!("/etc/systemd/system/{unit}")])
        .current_dir(root)
        .output()
        .expect("systemd-analyze")
}

#[test]
fn install_writes_unit_config_and_binary_and_the_unit_verifies() {
    let root = install(
        "server",
        &[
            "--tls-san",
            "a.example,10.0.0.9",
            "--node-label",
            "x=y",
            "--node-label=z=w",
            "--disable-agent",
            "--https-listen-port",
            "7443",
        ],
    );
    let r = root.path();
    let unit = std::fs::read_to_string(r.join("etc/systemd/system/rkube-server.service")).expect("unit");
    for line in [
        "Type=exec",
        "Delegate=yes",
        "KillMode=process",
        "Restart=always",
        "RestartSec=5s",
        "LimitNOFILE=1048576",
        "LimitNPROC=infinity",
        "LimitCORE=infinity",
        "TasksMax=infinity",
        "TimeoutStartSec=0",
        "Wants=network-online.target",
        "After=network-online.target",
        "ExecStartPre=-/sbin/modprobe br_netfilter",
        "ExecStartPre=-/sbin/modprobe overlay",
        "ExecStart=/usr/local/bin/rkube server",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing from the unit:\n{unit}");
    }
    assert!(!unit.contains("tls-san"), "flags go into the config file, not the unit:\n{unit}");

    let config = std::fs::read_to_string(r.join("etc/rkube/config.yaml")).expect("config");
    let yaml: serde_json::Value = serde_yaml_value(&config);
    assert_eq!(yaml["tls-san"], serde_json::json!(["a.example", "10.0.0.9"]), "{config}");
    assert_eq!(yaml["node-label"], serde_json::json!(["x=y", "z=w"]), "{config}");
    assert_eq!(yaml["disable-agent"], serde_json::json!(true), "{config}");
    assert_eq!(yaml["https-listen-port"], serde_json::json!(7443), "{config}");
    assert_eq!(yaml.as_object().map(|o| o.len()), Some(4), "only the flags given are written:\n{config}");

    let bin = r.join("usr/local/bin/rkube");
    assert_eq!(std::fs::metadata(&bin).expect("binary").len(), std::fs::metadata(BIN).expect("built").len());
    let v = ok(Command::new(&bin).arg("version").output().expect("run installed"), "installed rkube version");
    assert!(v.starts_with("rkube "), "{v}");

    // The installed binary reads the installed file: it is `rkube server`'s own config.
    let out = Command::new(&bin)
        .args(["server", "--config", s(&r.join("etc/rkube/config.yaml")), "--https-listen-port", "notaport"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("invalid value 'notaport'"), "{}", text(&out.stderr));

    let v = verify(r, "rkube-server.service");
    assert!(v.status.success() && v.stderr.is_empty(), "systemd-analyze verify: {}\n{}", v.status, text(&v.stderr));

    // The check has teeth: without the binary it names the missing ExecStart.
    std::fs::remove_file(&bin).expect("rm");
    let v = verify(r, "rkube-server.service");
    assert!(!v.status.success(), "verify must fail without the binary");
    assert!(text(&v.stderr).contains("/usr/local/bin/rkube"), "{}", text(&v.stderr));
}

#[test]
fn agent_unit_verifies_and_bad_install_flags_are_refused() {
    let root = install("agent", &["--server", "https://10.0.0.1:6443", "--node-name", "n2", "--no-start"]);
    let r = root.path();
    let unit = std::fs::read_to_string(r.join("etc/systemd/system/rkube-agent.service")).expect("unit");
    assert!(unit.contains("ExecStart=/usr/local/bin/rkube agent\n"), "{unit}");
    let config = std::fs::read_to_string(r.join("etc/rkube/config.yaml")).expect("config");
    let yaml = serde_yaml_value(&config);
    assert_eq!(yaml["server"], serde_json::json!(["https://10.0.0.1:6443"]), "{config}");
    assert_eq!(yaml["node-name"], serde_json::json!("n2"), "{config}");
    let v = verify(r, "rkube-agent.service");
    assert!(v.status.success() && v.stderr.is_empty(), "systemd-analyze verify: {}\n{}", v.status, text(&v.stderr));

    let bad = tempfile::tempdir().expect("tempdir");
    let out = rkube(&["install", "server", "--root", s(bad.path()), "--disable-agnet"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("the flags for `rkube server`") && err.contains("--disable-agnet"), "{err}");
    assert!(!bad.path().join("etc").exists(), "nothing is written when the flags are wrong");
    let out = rkube(&["install", "agent", "--root", s(bad.path()), "--disable-agent"]);
    assert!(!out.status.success(), "--disable-agent is a server flag");
}

/// YAML parsed into JSON values (for `[]` indexing).
fn serde_yaml_value(y: &str) -> serde_json::Value {
    serde_yaml::from_str(y).expect("valid YAML")
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A child process stopped (by PID) when the test ends, however it ends.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        common::stop_child(&mut self.0);
    }
}

#[test]
fn flags_win_over_variables_which_win_over_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let data = d.join("data");
    let (file_port, env_port) = (common::free_port(), common::free_port());
    let kc = |w: &str| d.join(format!("kubeconfig-{w}.yaml"));
    let config = d.join("config.yaml");
    write(
        &config,
        &format!(
            "data-dir: {}\nhttps-listen-port: {file_port}\nwrite-kubeconfig: {}\nnode-name: test-node\n\
             bind-address: 127.0.0.1\ntls-san: [file-san.example, 10.9.8.7]\n",
            s(&data),
            s(&kc("file"))
        ),
    );
    let log = d.join("server.log");
    let mut cmd = Command::new(BIN);
    cmd.args(["server", "--disable-agent", "--write-kubeconfig", s(&kc("flag"))])
        .env("RKUBE_CONFIG", &config)
        .env("RKUBE_HTTPS_LISTEN_PORT", env_port.to_string())
        .env("RKUBE_WRITE_KUBECONFIG", kc("env"))
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).expect("log"));
    let tail = || std::fs::read_to_string(&log).unwrap_or_default();
    let _server = Stopped(common::spawn_until_ready(&mut cmd, 60, &tail));

    // write-kubeconfig: file, variable and flag all set it; the flag wins.
    let kubeconfig = std::fs::read_to_string(kc("flag")).expect("the flag's kubeconfig");
    assert!(!kc("env").exists() && !kc("file").exists(), "only the flag's kubeconfig is written");
    // https-listen-port: file and variable set it; the variable wins.
    assert!(
        kubeconfig.contains(&format!(":{env_port}")),
        "the server listens on RKUBE_HTTPS_LISTEN_PORT:\n{kubeconfig}"
    );
    // data-dir and tls-san: only the file sets them; a list becomes repeated flags.
    let crt = data.join("server/tls/serving-kube-apiserver.crt");
    let out = Command::new("openssl").args(["x509", "-noout", "-ext", "subjectAltName", "-in", s(&crt)]).output();
    let sans = ok(out.expect("openssl"), "openssl x509");
    assert!(sans.contains("DNS:file-san.example") && sans.contains("IP Address:10.9.8.7"), "{sans}");
    let o = common::kubectl_with("1.33", &kc("flag"), &["get", "--raw", "/readyz"], None);
    assert_eq!(ok(o, "kubectl get --raw /readyz"), "ok");
}

#[test]
fn bad_config_files_name_the_file_the_key_and_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("config.yaml");
    let cases: &[(&str, &[&str])] = &[
        ("node-labels: [a=b]\n", &["unknown key \"node-labels\" for `rkube server`", "did you mean `node-label`?"]),
        ("disable-agent: maybe\n", &["key disable-agent is a switch and takes true or false"]),
        ("data-dir: [a, b]\n", &["key data-dir takes one value, not a list; write `data-dir: VALUE`"]),
        ("https-listen-port: many\n", &["key https-listen-port: invalid value 'many'"]),
        ("node-label: {a: b}\n", &["key node-label has a map"]),
        ("- a\n", &["the file holds a list; it must be a map of flag names to values"]),
        ("a: [b\n", &["not valid YAML"]),
    ];
    for (body, wanted) in cases {
        write(&f, body);
        let out = rkube(&["server", "--config", s(&f), "--disable-agent"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}: {err}");
        assert!(err.contains(s(&f)), "{body}: the file is named: {err}");
        for w in *wanted {
            assert!(err.contains(w), "{body}: {w:?} missing from: {err}");
        }
    }
    // The agent has no disable-agent.
    write(&f, "disable-agent: true\n");
    let out = Command::new(BIN).args(["agent"]).env("RKUBE_CONFIG", &f).output().expect("run");
    assert!(text(&out.stderr).contains("unknown key \"disable-agent\" for `rkube agent`"), "{}", text(&out.stderr));
    // A file named explicitly must exist.
    let out = rkube(&["server", "--config", "/nonexistent/rkube.yaml"]);
    assert!(text(&out.stderr).contains("config file /nonexistent/rkube.yaml does not exist"), "{}", text(&out.stderr));
    // Only server and agent read the file.
    let out = rkube(&["version", "--config", s(&f)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A network namespace made for the test, deleted when it ends.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("rkube-uninst-{}", std::process::id());
        let st = Command::new("ip").args(["netns", "add", &name]).status().expect("ip netns add");
        assert!(st.success(), "ip netns add {name}");
        Netns(name)
    }

    fn sh(&self, script: &str) -> String {
        let out = Command::new("ip").args(["netns", "exec", &self.0, "sh", "-ec", script]).output().expect("sh");
        ok(out, script)
    }

    /// Runs the built rkube in the namespace (nsenter --net: the test's own mount namespace and files).
    fn rkube(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.0))
            .arg(BIN)
            .args(args)
            .env_remove("RKUBE_DATA_DIR")
            .output()
            .expect("nsenter rkube")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "delete", &self.0]).status();
    }
}

/// Chains and rules as the proxy and flannel name them, plus some that are not rkube's.
const RULES: &str = "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n\
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]\n:KUBE-SEP-PQOD2E5VFTQM3LFC - [0:0]\n:FLANNEL-POSTRTG - [0:0]\n:MINE - [0:0]\n\
-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n\
-A POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG\n\
-A POSTROUTING -j MINE\n-A MINE -d 10.254.0.1/32 -j KUBE-SVC-XPGD46QRK7WJZT7O\n-A MINE -j RETURN\n\
-A KUBE-SERVICES -d 10.254.0.1/32 -p tcp --dport 443 -j KUBE-SVC-XPGD46QRK7WJZT7O\n\
-A KUBE-SVC-XPGD46QRK7WJZT7O -j KUBE-SEP-PQOD2E5VFTQM3LFC\n\
-A KUBE-SEP-PQOD2E5VFTQM3LFC -s 10.0.0.1/32 -j KUBE-MARK-MASQ\n\
-A KUBE-MARK-MASQ -j RETURN\nCOMMIT\n\
*filter\n:KUBE-FORWARD - [0:0]\n:KUBE-SERVICES - [0:0]\n:FLANNEL-FWD - [0:0]\n:KUBE-FIREWALL - [0:0]\n\
-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n\
-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD\n\
-A INPUT -j KUBE-FIREWALL\n-A OUTPUT -m conntrack --ctstate NEW -j KUBE-SERVICES\n\
-A FLANNEL-FWD -s 172.30.0.0/16 -j ACCEPT\n-A KUBE-FIREWALL -m mark --mark 0x8000/0x8000 -j DROP\nCOMMIT\n";

#[test]
fn uninstall_removes_what_rkube_made_in_its_namespace_and_is_idempotent() {
    let ns = Netns::new();
    ns.sh("ip link add br-rk type bridge; ip link add cni0 type bridge; \
         ip link add flannel.1 type vxlan id 1 dstport 8472 nolearning; ip link add kube-ipvs0 type bridge; \
         ip link add keep0 type bridge; \
         nft add table ip kube-proxy; nft add chain ip kube-proxy services; nft add table ip other");
    let restore = Command::new("ip")
        .args(["netns", "exec", &ns.0, "iptables-restore", "--noflush"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().expect("stdin").write_all(RULES.as_bytes())?;
            c.wait()
        })
        .expect("iptables-restore");
    assert!(restore.success());

    let root = install(
        "server",
        &["--data-dir", "/var/lib/rk-test", "--cni-bridge", "br-rk", "--cni-conf-dir", "/etc/cni/net.d"],
    );
    let r = root.path();
    let at = |p: &str| -> PathBuf { r.join(p) };
    for f in [
        "var/lib/rk-test/server/db.sqlite",
        "var/lib/rk-test/agent/pods/x",
        "etc/cni/net.d/10-flannel.conflist",
        "etc/cni/net.d/99-other.conf",
        "run/flannel/subnet.env",
        "run/flannel/docker",
    ] {
        write(&at(f), "x");
    }

    // A server still running in the namespace stops uninstall before anything is touched (a stand-in whose
    // command line reads `rkube … server`: tail keeps following /dev/null past the missing file "server").
    let fake = Stopped(
        Command::new("ip")
            .args(["netns", "exec", &ns.0, "bash", "-c", "exec -a rkube tail -f server /dev/null"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn the stand-in"),
    );
    let fake_pid = fake.0.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // Polled: `ip netns exec` and bash need a moment to exec into the final command line.
    while !std::fs::read(format!("/proc/{fake_pid}/cmdline")).is_ok_and(|c| c.starts_with(b"rkube\0-f\0server")) {
        assert!(std::time::Instant::now() < deadline, "the stand-in did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = ns.rkube(&["uninstall", "--root", s(r)]);
    let refused = text(&out.stderr);
    assert!(!out.status.success(), "uninstall must refuse: {}", text(&out.stdout));
    assert!(refused.contains(&format!("rkube server (PID {fake_pid}) running")), "{refused}");
    assert!(refused.contains("stop it first"), "{refused}");
    assert!(ns.sh("ip -o link show").contains("cni0") && at("etc/rkube/config.yaml").exists(), "nothing was removed");
    drop(fake);

    let out = ns.rkube(&["uninstall", "--root", s(r)]);
    let first = ok(out, "rkube uninstall");
    for line in [
        "removed link br-rk",
        "removed link cni0",
        "removed link flannel.1",
        "removed link kube-ipvs0",
        "removed iptables nat chain KUBE-SERVICES",
        "removed iptables nat chain KUBE-SVC-XPGD46QRK7WJZT7O",
        "removed iptables nat chain KUBE-SEP-PQOD2E5VFTQM3LFC",
        "removed iptables nat chain FLANNEL-POSTRTG",
        "removed iptables filter chain FLANNEL-FWD",
        "removed iptables filter chain KUBE-FORWARD",
        "removed iptables nat rule MINE -d 10.254.0.1/32 -j KUBE-SVC-XPGD46QRK7WJZT7O",
        "removed nftables table ip kube-proxy",
    ] {
        assert!(first.lines().any(|l| l == line), "{line:?} missing from:\n{first}");
    }
    for f in [
        "etc/cni/net.d/10-flannel.conflist",
        "run/flannel/subnet.env",
        "run/flannel/docker",
        "run/flannel",
        "etc/systemd/system/rkube-server.service",
        "etc/rkube/config.yaml",
        "etc/rkube",
        "usr/local/bin/rkube",
        "var/lib/rk-test",
    ] {
        assert!(!at(f).exists(), "{f} should be gone");
        assert!(first.contains(&format!("removed {}", s(&at(f)))), "{f} not reported:\n{first}");
    }
    assert!(at("etc/cni/net.d/99-other.conf").exists(), "another network's CNI config stays");

    // What is not rkube's stays: links, chains, jumps, tables.
    let links = ns.sh("ip -o link show");
    assert!(links.contains("keep0") && !links.contains("cni0") && !links.contains("kube-ipvs0"), "{links}");
    let nat = ns.sh("iptables-save -t nat");
    assert!(!nat.contains("KUBE-") && !nat.contains("FLANNEL-"), "{nat}");
    assert!(nat.contains("-A POSTROUTING -j MINE") && nat.contains("-A MINE -j RETURN"), "{nat}");
    let filter = ns.sh("iptables-save -t filter");
    assert!(filter.contains(":KUBE-FIREWALL") && filter.contains("-A INPUT -j KUBE-FIREWALL"), "{filter}");
    assert!(
        !filter.contains("KUBE-FORWARD") && !filter.contains("FLANNEL") && !filter.contains("KUBE-SERVICES"),
        "{filter}"
    );
    let tables = ns.sh("nft list tables");
    assert!(tables.contains("table ip other") && !tables.contains("kube-proxy"), "{tables}");

    let second = ok(ns.rkube(&["uninstall", "--root", s(r)]), "second rkube uninstall");
    assert!(!second.contains("removed"), "a second run removes nothing:\n{second}");
    assert!(second.contains("nothing to remove"), "{second}");
}
