//! UDP services end to end on a 1-node `rkube cluster` with the service proxy on: when a UDP service's
//! endpoint is replaced, the proxy deletes the conntrack entries that DNAT to the old pod, so a client that
//! keeps sending from the same socket (same 5-tuple, which conntrack would otherwise keep steering to the dead
//! pod for as long as it keeps sending) reaches the new pod.

mod common;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use common::cluster::Cluster;

const IMAGE: &str = "rkube.io/test/busybox:udp";
const PORT: u16 = 9999;
/// The client's fixed source port: every datagram belongs to one conntrack entry.
const CLIENT_PORT: u16 = 41999;

/// Child processes (the UDP server and client) killed on drop, also when the test fails.
#[derive(Default)]
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A pod labelled as the service's endpoint; its httpd's command line holds a unique directory so the test
/// finds its network namespace among other clusters' pods (pod IPs repeat across clusters).
fn echo_pod(c: &Cluster, name: &str) -> String {
    let dir = format!("/w-{name}-{}", c.name);
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: udp-echo}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: "{IMAGE}"
    imagePullPolicy: Never
    command: ["sh", "-c", "mkdir -p {dir} && exec httpd -f -p 8080 -h {dir}"]
"#
    )
}

const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: udp-echo}
spec:
  selector: {app: udp-echo}
  ports: [{name: echo, protocol: UDP, port: 9999, targetPort: 9999}]
"#;

fn field(c: &Cluster, kind: &str, name: &str, path: &str) -> String {
    let out = c.kubectl_out(&["get", kind, name, "-o", &format!("jsonpath={path}")]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts pod `name` and returns its IP once it runs.
fn start_pod(c: &Cluster, name: &str) -> String {
    c.apply(&echo_pod(c, name));
    c.eventually(60, &format!("{name} Running"), || field(c, "pod", name, "{.status.phase}") == "Running");
    field(c, "pod", name, "{.status.podIP}")
}

/// A UDP echo server answering `pong <pod>` in pod `pod`'s network namespace (busybox nc has no UDP mode; the
/// host's python3 runs there instead). Returns once it listens.
fn echo_server(c: &Cluster, pod: &str) -> Child {
    let script = format!(
        r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", {PORT})); s.settimeout(90)
print("listening", flush=True)
while True:
    data, peer = s.recvfrom(100)
    s.sendto(b"pong {pod}", peer)
"#
    );
    let mut child = Command::new("nsenter")
        .arg(format!("--net={}", c.pod_netns(pod)))
        .args(["--", "python3", "-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("UDP server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("server output");
    assert_eq!(line.trim(), "listening", "the UDP server in {pod} did not start");
    child
}

/// A client in node n1's namespace sending to `vip:PORT` every 200 ms from one socket bound to CLIENT_PORT
/// for up to 90 s; the answers it gets are collected in the returned list.
fn client(c: &Cluster, vip: &str) -> (Child, Arc<Mutex<Vec<String>>>) {
    let script = format!(
        r#"
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.2)
s.bind(("0.0.0.0", {CLIENT_PORT}))
end = time.time() + 90
while time.time() < end:
    try:
        # While the service has no endpoint its REJECT rule fails the send itself (the client is on the node).
        s.sendto(b"ping", ("{vip}", {PORT}))
        print(s.recvfrom(100)[0].decode(), flush=True)
        time.sleep(0.2)
    except OSError:
        time.sleep(0.1)
"#
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", &c.netns("n1"), "python3", "-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("UDP client");
    let answers = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().expect("stdout");
    let sink = answers.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().expect("answers").push(line);
        }
    });
    (child, answers)
}

/// n1's UDP conntrack entries for the client's socket (the tool by its path: the test still works when the
/// nodes run with a PATH lacking it, which is how it was checked that it fails without the proxy's flush).
fn entries(c: &Cluster) -> Vec<String> {
    let out = c.exec("n1", &["/usr/sbin/conntrack", "-L", "-p", "udp", "--sport", &CLIENT_PORT.to_string()]);
    out.lines().map(str::to_owned).collect()
}

/// How many of [`entries`] go to `vip` and are DNATed to `ip` (the reply comes from `ip`).
fn entries_to(c: &Cluster, vip: &str, ip: &str) -> usize {
    let (dst, src) = (format!("dst={vip} "), format!("src={ip} "));
    entries(c).iter().filter(|l| l.contains(&dst) && l.contains(&src)).count()
}

/// Pod u1 behind a UDP service answers a client on the node (a conntrack entry DNATs the client's socket to
/// u1); u1 is deleted and u2 takes its place: the entry to u1 is gone within seconds (the proxy flushed it;
/// on its own it would live as long as the client keeps sending) and the same socket's datagrams reach u2.
#[test]
fn udp_conntrack_entries_follow_a_replaced_endpoint() {
    let c = Cluster::up(&["--nodes", "1"]);
    let mut children = Children::default();
    c.load_busybox(IMAGE);
    c.apply(SERVICE);
    let vip = field(&c, "service", "udp-echo", "{.spec.clusterIP}");
    assert!(!vip.is_empty(), "the service has no ClusterIP");
    let u1 = start_pod(&c, "u1");
    children.0.push(echo_server(&c, "u1"));
    let (client, answers) = client(&c, &vip);
    children.0.push(client);
    let answered = |who: &str| answers.lock().expect("answers").iter().any(|l| l == &format!("pong {who}"));
    c.eventually(30, "the client answered by u1 through the ClusterIP", || answered("u1"));
    let to_u1 = || entries_to(&c, &vip, &u1);
    // Eventually, not at once: the proxy's first-endpoint flush (run just after the rules are in place) may
    // delete the entry of an early answer; the client's next datagram makes a new one.
    c.eventually(10, &format!("one conntrack entry DNATs the client to u1 ({u1})"), || to_u1() == 1);

    // u1 goes away (its server first, so nothing answers for it any more); the client keeps sending.
    let mut server = children.0.remove(0);
    let _ = server.kill();
    let _ = server.wait();
    c.kubectl(&["delete", "pod", "u1", "--wait=false"]);
    c.eventually(15, "the conntrack entry to u1 flushed", || to_u1() == 0);

    let u2 = start_pod(&c, "u2");
    assert_ne!(u1, u2, "u2 got u1's address; the test could not tell them apart");
    children.0.push(echo_server(&c, "u2"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !answered("u2") {
        assert!(
            std::time::Instant::now() < deadline,
            "the client socket was not answered by u2 ({u2}) within 20 s; its entries: {:?}; the service's rules:\n{}",
            entries(&c),
            c.exec("n1", &["iptables-save"]).lines().filter(|l| l.contains("udp-echo")).collect::<Vec<_>>().join("\n")
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    c.eventually(10, &format!("one conntrack entry DNATs the client to u2 ({u2})"), || entries_to(&c, &vip, &u2) == 1);
    assert_eq!(to_u1(), 0, "an entry to u1 came back: {:?}", entries(&c));
    drop(children);
    c.down();
}
