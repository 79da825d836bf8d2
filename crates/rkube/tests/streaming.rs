//! `kubectl logs|exec|attach|port-forward|cp` end to end: a real `rkube server` with its embedded agent (its
//! own containerd), real kubectl 1.33 (WebSocket first, falling back to SPDY where containerd 1.6 refuses
//! v5 WebSockets) and 1.27 (SPDY only). The API server relays to the agent's port 10250, which relays to
//! containerd's streaming server. Waits are polls with deadlines; background kubectl processes are killed
//! by PID when their guard drops.

mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, eventually, json, kubectl_path};

const IMAGE: &str = "busybox:streaming-test";
const VERSIONS: [&str; 2] = ["1.33", "1.27"];

/// A kubectl running in the background; its output is collected; killed by PID on drop.
struct Bg {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Bg {
    fn spawn(mut cmd: Command) -> Bg {
        cmd.stdin(Stdio::null());
        Bg::spawn_piped(cmd)
    }

    /// Spawns with the stdin `cmd` already has (e.g. a pipe the test writes to).
    fn spawn_piped(mut cmd: Command) -> Bg {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        let out = Arc::new(Mutex::new(String::new()));
        for mut pipe in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.lock().expect("lock").push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Bg { child, out }
    }

    fn kubectl(s: &Server, version: &str, args: &[&str]) -> Bg {
        let mut cmd = Command::new(kubectl_path(version).expect("kubectl"));
        cmd.arg("--kubeconfig").arg(&s.kubeconfig).args(args).env_remove("KUBECONFIG").env("HOME", s.dir.path());
        Bg::spawn(cmd)
    }

    fn output(&self) -> String {
        self.out.lock().expect("lock").clone()
    }

    fn wait_for(&self, secs: u64, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let out = self.output();
            if check(&out) {
                return out;
            }
            assert!(Instant::now() < deadline, "not within {secs} s: {what}; output so far:\n{out}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the process to end; its exit success and output.
    fn finish(mut self, secs: u64) -> (bool, String) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader threads take the last bytes.
                std::thread::sleep(Duration::from_millis(200));
                return (status.success(), self.output());
            }
            assert!(Instant::now() < deadline, "process still running after {secs} s:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn wait_running(s: &Server, name: &str) {
    eventually(s, 60, &format!("pod {name} Running"), || {
        let p = json(s, &["get", "pod", name]);
        p["status"]["phase"] == "Running" && p["status"]["containerStatuses"][0]["ready"] == true
    });
}

fn pod(name: &str, script: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: "{IMAGE}"
    imagePullPolicy: Never
    command: ["sh", "-c", {script:?}]
"#
    )
}

#[test]
fn logs_follow_tail_and_previous() {
    let s = Server::start_with_agent(&[]);
    s.import_busybox(IMAGE);
    common::apply(&s, &pod("counter", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.3; done"));
    common::apply(&s, &pod("crasher", "echo instance-output; sleep 2; exit 1"));
    wait_running(&s, "counter");

    for v in VERSIONS {
        eventually(&s, 20, "a few lines", || s.ok(v, &["logs", "counter"]).lines().count() >= 3);
        let all = s.ok(v, &["logs", "counter"]);
        assert!(all.starts_with("line 0\nline 1\n"), "{all}");
        let tail = s.ok(v, &["logs", "counter", "--tail=2"]);
        assert_eq!(tail.lines().count(), 2, "{tail}");
        assert!(tail.lines().all(|l| l.starts_with("line ")), "{tail}");
        let stamped = s.ok(v, &["logs", "counter", "--timestamps", "--tail=1"]);
        let (ts, rest) = stamped.trim_end().split_once(' ').expect("timestamp and text");
        assert!(ts.contains('T') && ts.ends_with('Z'), "{stamped}");
        assert!(rest.starts_with("line "), "{stamped}");
        let limited = s.ok(v, &["logs", "counter", "--limit-bytes=3"]);
        assert_eq!(limited, "lin");

        // -f: the lines so far, then new ones as the container writes them.
        let follow = Bg::kubectl(&s, v, &["logs", "-f", "counter", "--tail=1"]);
        let first = follow.wait_for(20, "a followed line", |o| o.lines().count() >= 1);
        let n0: u64 =
            first.lines().next().and_then(|l| l.strip_prefix("line ")).and_then(|n| n.parse().ok()).expect("n");
        let later = follow.wait_for(20, "new lines while following", |o| o.lines().count() >= 4);
        let numbers: Vec<u64> = later.lines().filter_map(|l| l.strip_prefix("line ")?.parse().ok()).collect();
        assert_eq!(numbers[..4], [n0, n0 + 1, n0 + 2, n0 + 3], "{later}");
        drop(follow);
    }

    // --previous: refused for a container that never restarted; the dead instance's output once it did.
    let err = s.fails("1.33", &["logs", "counter", "--previous"]);
    assert!(err.contains(r#"previous terminated container "c" in pod "counter" not found"#), "{err}");
    eventually(&s, 60, "crasher restarted", || {
        json(&s, &["get", "pod", "crasher"])["status"]["containerStatuses"][0]["restartCount"].as_u64() >= Some(1)
    });
    for v in VERSIONS {
        assert_eq!(s.ok(v, &["logs", "crasher", "--previous"]), "instance-output\n");
        // -f ends by itself once the container exits (at most its 2 s of life, plus the agent's poll).
        let (ok, out) = Bg::kubectl(&s, v, &["logs", "-f", "crasher"]).finish(20);
        assert!(ok && out.contains("instance-output"), "kubectl {v}: {out}");
        assert_eq!(s.ok(v, &["logs", "counter", "--since-time=2999-01-01T00:00:00Z"]), "");
        assert!(s.ok(v, &["logs", "counter", "--since=1h"]).starts_with("line 0\n"));
    }
    let err = s.fails("1.33", &["logs", "counter", "-c", "nope"]);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn exec_attach_and_cp() {
    let s = Server::start_with_agent(&[]);
    s.import_busybox(IMAGE);
    common::apply(&s, &pod("shell", "while true; do echo tick; sleep 0.3; done"));
    common::apply(
        &s,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: interactive}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: "{IMAGE}", imagePullPolicy: Never, command: ["sh"], stdin: true, tty: true}}
"#
        ),
    );
    wait_running(&s, "shell");
    wait_running(&s, "interactive");

    // kubectl 1.33 asks for a v5 WebSocket first; containerd 1.6's streaming server does not speak v5 and
    // answers 403, which kubectl takes as an upgrade failure and retries over SPDY.
    let out = s.kubectl("1.33", &["exec", "-v=4", "shell", "--", "echo", "fell back"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fell back\n", "{stderr}");
    assert!(stderr.contains("RemoteCommand fallback"), "{stderr}");

    for v in VERSIONS {
        assert_eq!(s.ok(v, &["exec", "shell", "--", "sh", "-c", "echo $HOSTNAME"]), "shell\n", "kubectl {v}");
        // stdin, closed at its end (v5 WebSocket's close signal, or SPDY's stream half-close).
        let out = s.kubectl_stdin(v, &["exec", "-i", "shell", "--", "sh", "-c", "cat; echo done"], "from stdin\n");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "from stdin\ndone\n", "kubectl {v}");
        // The remote exit code comes back.
        let out = s.kubectl(v, &["exec", "shell", "--", "sh", "-c", "exit 7"]);
        assert_eq!(out.status.code(), Some(7), "kubectl {v}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("command terminated with exit code 7"));

        // -it under a pseudo-terminal: the remote side has a tty.
        let kubectl = kubectl_path(v).expect("kubectl");
        let line = format!(
            "{} --kubeconfig {} exec -it shell -- sh -c 'tty; echo pty-ok'",
            kubectl.display(),
            s.kubeconfig.display()
        );
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"]).env_remove("KUBECONFIG").env("HOME", s.dir.path());
        let (ok, out) = Bg::spawn(cmd).finish(30);
        assert!(ok, "kubectl {v} exec -it: {out}");
        assert!(out.contains("/dev/pts/") && out.contains("pty-ok"), "kubectl {v} exec -it: {out:?}");

        // attach: the running container's output.
        let attach = Bg::kubectl(&s, v, &["attach", "shell"]);
        attach.wait_for(20, &format!("kubectl {v} attach output"), |o| o.matches("tick").count() >= 2);
        drop(attach);

        // attach -it to a container that has stdin and a tty: typed input reaches its shell.
        let kubectl = kubectl_path(v).expect("kubectl");
        let line = format!("{} --kubeconfig {} attach -it interactive", kubectl.display(), s.kubeconfig.display());
        let mut cmd = Command::new("script");
        cmd.args(["-qfc", &line, "/dev/null"]).env_remove("KUBECONFIG").env("HOME", s.dir.path()).stdin(Stdio::piped());
        let mut attach = Bg::spawn_piped(cmd);
        let mut input = attach.child.stdin.take().expect("stdin");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !attach.output().contains("attached-42") {
            // Typed again until seen: the first keystrokes may arrive before the session is set up.
            input.write_all(b"echo attached-$((6*7))\r").expect("type");
            std::thread::sleep(Duration::from_millis(500));
            assert!(Instant::now() < deadline, "kubectl {v} attach -it: {}", attach.output());
        }
        drop(input);
        drop(attach);

        // cp both ways (tar over exec).
        let local = s.dir.path().join(format!("cp-{v}.txt"));
        std::fs::write(&local, format!("copied by {v}\n")).expect("write");
        let local_str = local.to_str().expect("utf-8");
        s.ok(v, &["cp", local_str, &format!("shell:/tmp/in-{v}.txt")]);
        assert_eq!(s.ok(v, &["exec", "shell", "--", "cat", &format!("/tmp/in-{v}.txt")]), format!("copied by {v}\n"));
        let back = s.dir.path().join(format!("back-{v}.txt"));
        s.ok(v, &["cp", &format!("shell:/tmp/in-{v}.txt"), back.to_str().expect("utf-8")]);
        assert_eq!(std::fs::read_to_string(&back).expect("copied back"), format!("copied by {v}\n"));
    }
}

#[test]
fn port_forward_to_a_pod() {
    let s = Server::start_with_agent(&[]);
    s.import_busybox(IMAGE);
    common::apply(
        &s,
        &pod("web", "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www"),
    );
    wait_running(&s, "web");

    for v in VERSIONS {
        let port = common::free_port();
        let fwd = Bg::kubectl(&s, v, &["port-forward", "pod/web", &format!("{port}:8080")]);
        fwd.wait_for(20, "port-forward to listen", |o| o.contains("Forwarding from"));
        // Two connections in a row through one port-forward session.
        for round in 0..2 {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the forwarded port");
            c.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
            c.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").expect("request");
            let mut answer = String::new();
            let _ = c.read_to_string(&mut answer);
            assert!(
                answer.starts_with("HTTP/1.") && answer.contains("hello-from-pod"),
                "kubectl {v} round {round}: {answer:?}\n{}",
                fwd.output()
            );
        }
        drop(fwd);
    }
}
