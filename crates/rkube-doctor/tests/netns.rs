//! `rkube-doctor` on this machine and inside network namespaces this test creates, with real states injected
//! there (FORWARD DROP, ip_forward off, a listener on 10250). The host namespace's iptables and sysctls are
//! never changed. Needs root and `ip`; the same binary code runs as `rkube doctor`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const DOCTOR: &str = env!("CARGO_BIN_EXE_rkube-doctor");

/// A network namespace, deleted (with the processes the test started in it) on drop.
struct Netns {
    name: String,
    children: Vec<Child>,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("rkdoc-{tag}-{}", std::process::id());
        sh("ip", &["netns", "add", &name]);
        Netns { name, children: Vec::new() }
    }

    /// Runs a command inside the namespace; panics when it fails.
    fn exec(&self, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", &self.name];
        all.extend(args);
        sh("ip", &all)
    }

    /// `rkube-doctor --json` inside the namespace: (exit code, findings).
    fn doctor(&self, extra: &[&str]) -> (i32, Vec<Value>) {
        let mut args = vec!["netns", "exec", &self.name, DOCTOR, "--json"];
        args.extend(extra);
        doctor_output(Command::new("ip").args(&args).output().expect("run ip netns exec"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "delete", &self.name]).status();
    }
}

fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect("spawn");
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn doctor_output(out: std::process::Output) -> (i32, Vec<Value>) {
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    let code = out.status.code().expect("exit code");
    assert_eq!(doc["exitCode"], code, "the JSON's exitCode is the process's");
    (code, doc["findings"].as_array().expect("findings").clone())
}

fn finding<'a>(findings: &'a [Value], check: &str) -> &'a Value {
    findings.iter().find(|f| f["check"] == check).unwrap_or_else(|| panic!("no {check}: {findings:#?}"))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

#[test]
fn host_report_names_this_machines_state() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (code, findings) = doctor_output(Command::new(DOCTOR).arg("--json").output().expect("run"));
    // The exit code follows the documented rule: 1 exactly when something FAILs.
    let fails = findings.iter().any(|f| f["status"] == "FAIL");
    assert_eq!(code, i32::from(fails), "{findings:#?}");
    // ip_forward as this namespace really has it, and the remedy when it is off.
    let real = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read ip_forward");
    let f = finding(&findings, "net.ipv4.ip_forward");
    assert_eq!(f["seen"], format!("net.ipv4.ip_forward = {}", real.trim()));
    if real.trim() != "1" {
        assert_eq!(f["status"], "FAIL");
        assert!(f["remedy"].as_str().expect("remedy").starts_with("sysctl -w net.ipv4.ip_forward=1"));
    }
    // This kernel's version as uname shows it.
    let release = sh("uname", &["-r"]);
    assert_eq!(finding(&findings, "kernel version")["seen"], format!("kernel {}", release.trim()));
    // ip_vs only matters with --proxy-mode ipvs.
    assert!(findings.iter().all(|f| f["check"] != "kernel config: ipvs"));
    let (_, ipvs) = doctor_output(Command::new(DOCTOR).args(["--json", "--proxy-mode", "ipvs"]).output().expect("run"));
    let has_ipvs = Command::new("sh").args(["-c", "zcat /proc/config.gz | grep -q '^CONFIG_IP_VS=[ym]'"]).status();
    let v = finding(&ipvs, "kernel config: ipvs");
    if has_ipvs.is_ok_and(|s| !s.success()) {
        assert_eq!(v["status"], "FAIL");
        assert!(v["seen"].as_str().expect("seen").starts_with("failed to load kernel modules: [ip_vs "), "{v}");
    }
}

#[test]
fn injected_faults_in_a_namespace_fire_with_their_remedies() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let mut ns = Netns::new("faults");
    // Healthy first, so each check is seen to change with the state, not to fire always.
    ns.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    ns.exec(&["iptables", "-P", "FORWARD", "ACCEPT"]);
    let (_, before) = ns.doctor(&[]);
    assert_eq!(finding(&before, "net.ipv4.ip_forward")["status"], "OK");
    assert_eq!(finding(&before, "FORWARD policy")["status"], "OK");
    assert_eq!(finding(&before, "port 10250/tcp")["status"], "OK");

    ns.exec(&["iptables", "-P", "FORWARD", "DROP"]);
    ns.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    ns.exec(&["ip", "link", "set", "lo", "up"]);
    let listener = Command::new("ip")
        .args(["netns", "exec", &ns.name, "/usr/bin/python3", "-c"])
        .arg("import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',10250))\ns.listen()\ntime.sleep(120)")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn listener");
    let pid = listener.id();
    // Owned by the guard at once, so a failed wait below still kills it.
    ns.children.push(listener);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ns.exec(&["cat", "/proc/net/tcp"]).contains(":280A 00000000:0000 0A") {
        assert!(Instant::now() < deadline, "listener never came up");
        assert!(ns.children[0].try_wait().expect("wait").is_none(), "listener exited");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (code, after) = ns.doctor(&[]);
    assert_eq!(code, 1, "FAILs exit 1");
    let fwd = finding(&after, "FORWARD policy");
    assert_eq!(fwd["status"], "WARN");
    assert_eq!(fwd["remedy"], "iptables -P FORWARD ACCEPT");
    let ipf = finding(&after, "net.ipv4.ip_forward");
    assert_eq!((&ipf["status"], &ipf["seen"]), (&Value::from("FAIL"), &Value::from("net.ipv4.ip_forward = 0")));
    assert!(ipf["remedy"].as_str().expect("remedy").starts_with("sysctl -w net.ipv4.ip_forward=1"));
    let port = finding(&after, "port 10250/tcp");
    assert_eq!(port["status"], "FAIL");
    let seen = port["seen"].as_str().expect("seen");
    assert!(seen.contains(&format!("python3 (pid {pid})")), "{seen}");
    assert!(port["remedy"].as_str().expect("remedy").contains(&format!("kill {pid}")));
    // Ignored FAILs become WARNs; the exit code follows what still FAILs (`ip netns exec` mounts a fresh /sys
    // without cgroups, which the doctor rightly reports).
    let (code, ignored) = ns.doctor(&["--ignore-preflight-errors", "net.ipv4.ip_forward,port 10250/tcp"]);
    assert_eq!(finding(&ignored, "net.ipv4.ip_forward")["status"], "WARN");
    assert_eq!(finding(&ignored, "port 10250/tcp")["status"], "WARN");
    assert_eq!(code, i32::from(ignored.iter().any(|f| f["status"] == "FAIL")));
    let cg = finding(&ignored, "cgroup controllers");
    // The host's cgroups are mounted (init's mount namespace has them): the remedy is to enter only the network
    // namespace, not to mount cgroups.
    if cg["status"] == "FAIL" {
        assert_eq!(cg["remedy"], "enter only the network namespace: nsenter --net=/run/netns/<name> rkube ...");
        assert!(cg["seen"].as_str().expect("seen").contains("hidden in this mount namespace"), "{cg}");
    }
    // The other ports in the namespace stay free.
    assert_eq!(finding(&after, "port 6443/tcp")["status"], "OK");

    // The host namespace was not touched: its findings for these are not the namespace's.
    let (_, host) = doctor_output(Command::new(DOCTOR).arg("--json").output().expect("run"));
    let host_fwd = sh("iptables", &["-S", "FORWARD"]);
    if host_fwd.contains("-P FORWARD ACCEPT") {
        assert_eq!(finding(&host, "FORWARD policy")["status"], "OK");
    }
}

#[test]
fn table_output_shows_remedies_under_problems() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let ns = Netns::new("table");
    ns.exec(&["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1"]);
    let out = Command::new("ip").args(["netns", "exec", &ns.name, DOCTOR]).output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().position(|l| l.contains("[WARN] net.ipv4.conf.all.rp_filter")).expect(&text);
    let next = text.lines().nth(line + 1).unwrap_or("");
    assert!(next.trim_start().starts_with("fix: sysctl -w net.ipv4.conf.all.rp_filter=2"), "{text}");
    assert!(text.contains("network:\n"), "{text}");
}
