//! The whole proxy loop against a real API server (root only): `rkube server --disable-agent` (the binary
//! built by `cargo build -p rkube`, at the workspace's target/debug/rkube), a selector-less Service with a
//! hand-written EndpointSlice pointing at a pod netns, and `rkube_proxy::run` programming nftables then
//! iptables inside the test's node netns. Checks ClusterIP traffic, `ready`, `/healthz`, and that emptying
//! the slice makes the ClusterIP refuse within the min-sync-period.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Lab;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use rkube_proxy::{ProxyConfig, ProxyMode};

/// A running `rkube server`, stopped (SIGTERM by PID, then SIGKILL) and its directory removed on drop.
struct ApiServer {
    child: Child,
    dir: PathBuf,
}

impl ApiServer {
    /// A ready server. The port is picked free, then released for the server to bind: another process may
    /// take it in between (it is in the ephemeral range outgoing connections use), so a server that exits
    /// before it is ready is started again on a fresh port, twice at most, its log shown each time.
    fn start() -> ApiServer {
        let mut failures = Vec::new();
        for _ in 0..3 {
            match ApiServer::start_once() {
                Ok(server) => return server,
                Err(log) => {
                    eprintln!("rkube server did not come up; its log:\n{log}");
                    failures.push(log);
                }
            }
        }
        panic!("rkube server never came up in 3 attempts; the last log:\n{}", failures.pop().unwrap_or_default());
    }

    fn start_once() -> Result<ApiServer, String> {
        let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/rkube");
        assert!(bin.exists(), "{} is missing: run `cargo build -p rkube` first", bin.display());
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("rkp-api-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let mut child = Command::new(bin)
            .args(["server", "--disable-agent", "--node-name", "proxy-node", "--bind-address", "127.0.0.1"])
            .arg("--data-dir")
            .arg(&dir)
            .args(["--https-listen-port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start rkube server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("is ready") {
                    let _ = tx.send(());
                }
            }
        });
        let server = ApiServer { child, dir };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(()) => Ok(server),
            Err(e) => {
                Err(format!("({e})\n{}", std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default()))
            }
        }
    }

    async fn client(&self) -> Client {
        let kc = Kubeconfig::read_from(self.dir.join("kubeconfig.yaml")).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.unwrap();
        Client::try_from(cfg).unwrap()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn slice(endpoints: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
    .unwrap()
}

async fn wait_for(lab: &Lab, ip: &str, want: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = tokio::task::block_in_place(|| lab.connect(ip, 80));
        if got == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{ip}:80 gave {got:?}, wanted {want:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_follows_services_and_endpointslices() {
    let api = ApiServer::start();
    let client = api.client().await;
    let mut lab = Lab::new("watch");
    lab.serve();

    let svc: Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }))
    .unwrap();
    let svc = Api::<Service>::namespaced(client.clone(), "default").create(&PostParams::default(), &svc).await.unwrap();
    let cip = svc.spec.unwrap().cluster_ip.unwrap();
    common::sh(&["ip", "-n", &lab.node, "route", "add", &format!("{cip}/32"), "dev", "vn"]);
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), "default");
    let up =
        serde_json::json!([{"addresses": ["172.30.9.2"], "conditions": {"ready": true}, "nodeName": "proxy-node"}]);
    slices.create(&PostParams::default(), &slice(up.clone())).await.unwrap();

    for mode in [ProxyMode::Nftables, ProxyMode::Iptables] {
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = ProxyConfig {
            mode,
            hostname: "proxy-node".into(),
            cluster_cidr: Some("172.30.0.0/16".into()),
            metrics_addr: Some(([127, 0, 0, 1], metrics_port).into()),
            exec: lab.exec(),
            ..ProxyConfig::default()
        };
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(rkube_proxy::run(config, client.clone(), stop, ready_tx));
        tokio::time::timeout(Duration::from_secs(20), ready).await.expect("ready in 20 s").unwrap();
        wait_for(&lab, &cip, "ok", Duration::from_secs(5)).await;
        let health = tokio::task::block_in_place(|| {
            common::sh(&[
                "python3",
                "-c",
                &format!(
                    "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:{metrics_port}/healthz').status)"
                ),
            ])
        });
        assert_eq!(health.trim(), "200");

        // Scale to zero: the change is applied within the min-sync-period (1 s) plus the watch latency; how
        // fast is for a benchmark to say, the deadline here only bounds a hang.
        let patch = serde_json::json!({"endpoints": []});
        slices.patch("web-1", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
        wait_for(&lab, &cip, "refused", Duration::from_secs(15)).await;
        let patch = serde_json::json!({"endpoints": up});
        slices.patch("web-1", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
        wait_for(&lab, &cip, "ok", Duration::from_secs(5)).await;

        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task).await.expect("run stops").unwrap().unwrap();
        if mode == ProxyMode::Nftables {
            // The next mode starts from a clean node (upstream's --cleanup between modes).
            lab.in_node(&["nft", "delete", "table", "ip", "kube-proxy"]);
        }
    }
}

/// A sync that fails (here every rule tool fails: `false` as the command prefix) is retried, counted in
/// `/metrics`, and reported once as a Warning event about the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_syncs_are_counted_and_reported_as_an_event() {
    let api = ApiServer::start();
    let client = api.client().await;
    let svc: Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), "default").create(&PostParams::default(), &svc).await.unwrap();
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = ProxyConfig {
        hostname: "proxy-node".into(),
        min_sync_period: Duration::from_millis(100),
        metrics_addr: Some(([127, 0, 0, 1], metrics_port).into()),
        exec: rkube_proxy::Exec { prefix: vec!["false".into()] },
        ..ProxyConfig::default()
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (ready_tx, mut ready) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(rkube_proxy::run(config, client.clone(), stop, ready_tx));
    let events = Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), "default");
    let deadline = Instant::now() + Duration::from_secs(20);
    let found = loop {
        let list = events.list(&Default::default()).await.unwrap();
        let mine: Vec<_> =
            list.items.into_iter().filter(|e| e.reason.as_deref() == Some(rkube_proxy::SYNC_FAILED_REASON)).collect();
        if !mine.is_empty() {
            break mine;
        }
        assert!(Instant::now() < deadline, "no {} event in 20 s", rkube_proxy::SYNC_FAILED_REASON);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Several failed retries by now; still one event (with a count), about the node, as a Warning.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let list = events.list(&Default::default()).await.unwrap();
    let mine: Vec<_> =
        list.items.iter().filter(|e| e.reason.as_deref() == Some(rkube_proxy::SYNC_FAILED_REASON)).collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    let e = &found[0];
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(e.involved_object.kind.as_deref(), Some("Node"));
    assert_eq!(e.involved_object.name.as_deref(), Some("proxy-node"));
    assert!(e.message.as_deref().unwrap_or("").contains("previous rules stay in force"), "{e:?}");
    let text = tokio::task::block_in_place(|| {
        let out =
            Command::new("curl").args(["-s", &format!("http://127.0.0.1:{metrics_port}/metrics")]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    let failures: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("kubeproxy_sync_proxy_rules_iptables_restore_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the failures counter");
    assert!(failures >= 2, "{text}");
    assert!(ready.try_recv().is_err(), "ready fired without a successful sync");
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("run stops").unwrap().unwrap();
}
