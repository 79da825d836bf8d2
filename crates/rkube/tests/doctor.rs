//! `rkube doctor` end to end: on this machine, and inside network namespaces the test creates with real faults
//! injected there (FORWARD DROP, ip_forward off, a listener on 10250). The host namespace's iptables and sysctls
//! are never changed. Needs root.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn rkube() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rkube"))
}

/// A network namespace, deleted with the processes started in it on drop.
struct Netns {
    name: String,
    children: Vec<Child>,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("rkdoc-e2e-{tag}-{}", std::process::id());
        run("ip", &["netns", "add", &name]);
        Netns { name, children: Vec::new() }
    }

    fn exec(&self, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", self.name.as_str()];
        all.extend(args);
        run("ip", &all)
    }

    fn doctor(&self, extra: &[&str]) -> (i32, Vec<Value>) {
        let bin = rkube();
        let mut args = vec!["netns", "exec", self.name.as_str(), bin.to_str().expect("path"), "doctor", "--json"];
        args.extend(extra);
        parse(Command::new("ip").args(&args).output().expect("ip netns exec"))
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

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect("spawn");
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn parse(out: Output) -> (i32, Vec<Value>) {
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    let code = out.status.code().expect("exit code");
    assert_eq!(doc["exitCode"], code);
    (code, doc["findings"].as_array().expect("findings").clone())
}

fn get<'a>(findings: &'a [Value], check: &str) -> &'a Value {
    findings.iter().find(|f| f["check"] == check).unwrap_or_else(|| panic!("no {check}: {findings:#?}"))
}

fn root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

#[test]
fn doctor_on_this_host_exits_as_documented() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (code, findings) = parse(Command::new(rkube()).args(["doctor", "--json"]).output().expect("run"));
    assert_eq!(code, i32::from(findings.iter().any(|f| f["status"] == "FAIL")), "{findings:#?}");
    let real = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("ip_forward");
    let f = get(&findings, "net.ipv4.ip_forward");
    assert_eq!(f["seen"], format!("net.ipv4.ip_forward = {}", real.trim()));
    if real.trim() != "1" {
        assert!(f["remedy"].as_str().expect("remedy").starts_with("sysctl -w net.ipv4.ip_forward=1"));
    }
    assert!(findings.iter().all(|f| f["check"] != "kernel config: ipvs"), "ip_vs is only checked in ipvs mode");
    let table = Command::new(rkube()).arg("doctor").output().expect("run");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("kernel:\n") && text.contains(" OK, "), "{text}");
    assert_eq!(table.status.code(), Some(code));
}

#[test]
fn doctor_names_faults_injected_in_a_namespace() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let mut ns = Netns::new("faults");
    ns.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    ns.exec(&["iptables", "-P", "FORWARD", "ACCEPT"]);
    let (_, before) = ns.doctor(&[]);
    for check in ["net.ipv4.ip_forward", "FORWARD policy", "port 10250/tcp"] {
        assert_eq!(get(&before, check)["status"], "OK", "{check}");
    }

    ns.exec(&["iptables", "-P", "FORWARD", "DROP"]);
    ns.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    let listener = Command::new("ip")
        .args(["netns", "exec", &ns.name, "/usr/bin/python3", "-c"])
        .arg("import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',10250))\ns.listen()\ntime.sleep(120)")
        .stdout(Stdio::null())
        .spawn()
        .expect("listener");
    let pid = listener.id();
    ns.children.push(listener);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ns.exec(&["cat", "/proc/net/tcp"]).contains(":280A 00000000:0000 0A") {
        assert!(Instant::now() < deadline, "listener never came up");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (code, after) = ns.doctor(&[]);
    assert_eq!(code, 1);
    assert_eq!(get(&after, "FORWARD policy")["status"], "WARN");
    assert_eq!(get(&after, "FORWARD policy")["remedy"], "iptables -P FORWARD ACCEPT");
    let ipf = get(&after, "net.ipv4.ip_forward");
    assert_eq!(ipf["status"], "FAIL");
    assert!(ipf["remedy"].as_str().expect("remedy").starts_with("sysctl -w net.ipv4.ip_forward=1"));
    let port = get(&after, "port 10250/tcp");
    assert_eq!(port["status"], "FAIL");
    assert!(port["seen"].as_str().expect("seen").contains(&format!("python3 (pid {pid})")), "{port}");

    // Ignored FAILs become WARNs; the exit code follows what still FAILs (under `ip netns exec` a fresh /sys
    // has no cgroup mounts, which the doctor rightly reports).
    let (code, ignored) = ns.doctor(&["--ignore-preflight-errors", "net.ipv4.ip_forward,port 10250/tcp"]);
    assert_eq!(get(&ignored, "net.ipv4.ip_forward")["status"], "WARN");
    assert_eq!(get(&ignored, "port 10250/tcp")["status"], "WARN");
    assert_eq!(code, i32::from(ignored.iter().any(|f| f["status"] == "FAIL")));
}

/// `rkube server` runs the doctor quietly before it starts: a FAIL stops it with the remedy, before the store
/// or certificates are made; `--ignore-preflight-errors` lets it go on (here to the listener's own error).
#[test]
fn server_start_is_refused_by_a_failing_preflight() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let taken = std::net::TcpListener::bind("0.0.0.0:0").expect("listener");
    let port = taken.local_addr().expect("addr").port().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let server = |extra: &[&str]| {
        let mut args = vec!["server", "--disable-agent", "--data-dir", data, "--https-listen-port", &port];
        args.extend(extra);
        Command::new(rkube()).args(&args).output().expect("run rkube server")
    };
    let out = server(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("host preflight failed"), "{err}");
    assert!(err.contains(&format!("port {port}/tcp")), "{err}");
    assert!(err.contains("--ignore-preflight-errors"), "{err}");
    assert!(!dir.path().join("server").exists(), "nothing is made before the preflight passes");

    let out = server(&["--ignore-preflight-errors", &format!("port {port}/tcp")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains("host preflight failed"), "{err}");

    // Under `ip netns exec` the host's cgroups are hidden: the preflight says so and how to start instead.
    let ns = Netns::new("preflight");
    let bin = rkube();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, bin.to_str().expect("path"), "server", "--disable-agent", "--data-dir", data])
        .output()
        .expect("ip netns exec");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("hidden in this mount namespace") && err.contains("nsenter --net="), "{err}");
}
