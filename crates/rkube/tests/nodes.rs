//! The node controllers against a real `rkube server` and real kubectl 1.33, with nodes the test plays
//! the kubelet for (Node objects, their Leases in `kube-node-lease`, Ready conditions through the status
//! subresource): silent nodes turn `Unknown` and get the unreachable taints, their pods are marked not
//! Ready and evicted as their tolerations say, nodes heard from again lose the taints; NoExecute taints
//! evict untolerating pods at once and cancel pending evictions when removed; cordoned nodes get the
//! unschedulable taint, and the beta os label follows the GA one; node IPAM gives distinct ranges, keeps
//! them across a server restart, reports an exhausted pool and reuses released ranges. Waits are polls
//! with deadlines.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Server, eventually};
use serde_json::{Value, json};

const V: &str = "1.33";

/// Days since 1970-01-01 → (year, month, day) (the proleptic Gregorian calendar, Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2006-01-02T15:04:05.000000Z` for now (a MicroTime; also a valid Time).
fn now_rfc3339() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970");
    let secs = t.as_secs() as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let r = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z", r / 3600, r / 60 % 60, r % 60, t.subsec_micros())
}

/// Seconds since the epoch of an RFC 3339 UTC time (`...Z`, fractions ignored).
fn epoch(t: &str) -> i64 {
    let n = |a: usize, b: usize| t.get(a..b).and_then(|s| s.parse::<i64>().ok()).expect("an RFC 3339 time");
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    // Inverse of `civil`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)
}

/// kubectl with a kubeconfig, stdout if it succeeded.
fn try_kubectl(kubeconfig: &Path, args: &[&str]) -> Option<String> {
    let out = common::kubectl_with(V, kubeconfig, args, None);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn get_json(s: &Server, args: &[&str]) -> Option<Value> {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    try_kubectl(&s.kubeconfig, &all).and_then(|o| serde_json::from_str(&o).ok())
}

fn create(s: &Server, obj: &Value) {
    let out = s.kubectl_stdin(V, &["create", "-f", "-"], &obj.to_string());
    assert!(out.status.success(), "create {obj}: {}\n{}", String::from_utf8_lossy(&out.stderr), s.log_tail());
}

/// A node as a kubelet registers it (no conditions yet).
fn create_node(s: &Server, name: &str, extra_spec: Value) {
    create(s, &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": extra_spec}));
}

fn create_lease(s: &Server, name: &str) {
    create(
        s,
        &json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now_rfc3339()}}),
    );
}

fn renew_lease(kubeconfig: &Path, name: &str) -> bool {
    let patch = json!({"spec": {"renewTime": now_rfc3339()}}).to_string();
    try_kubectl(kubeconfig, &["-n", "kube-node-lease", "patch", "lease", name, "--type=merge", "-p", &patch]).is_some()
}

/// Posts Ready=True with a fresh heartbeat, as a kubelet does.
fn post_ready(s: &Server, name: &str) {
    let now = now_rfc3339();
    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
        "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}]}});
    s.ok(V, &["patch", "node", name, "--subresource=status", "--type=merge", "-p", &patch.to_string()]);
}

/// A thread renewing the Leases of the nodes in its list every second, until dropped.
struct Renewer {
    nodes: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Renewer {
    fn start(kubeconfig: &Path, nodes: &[&str]) -> Renewer {
        let list = Arc::new(Mutex::new(nodes.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, st, kc) = (list.clone(), stop.clone(), kubeconfig.to_path_buf());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let names = l.lock().expect("renewer list").clone();
                for n in names {
                    renew_lease(&kc, &n);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        Renewer { nodes: list, stop }
    }

    fn add(&self, node: &str) {
        self.nodes.lock().expect("renewer list").push(node.to_owned());
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A registered node that renews its Lease and posts Ready.
fn ready_node(s: &Server, name: &str) {
    create_node(s, name, json!({}));
    create_lease(s, name);
    post_ready(s, name);
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == kind)
}

fn taints(node: &Value) -> Vec<String> {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|t| format!("{}:{}", t["key"].as_str().unwrap_or(""), t["effect"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default()
}

fn pod(name: &str, node: &str, tolerations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "tolerations": tolerations,
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}})
}

fn toleration(key: &str, seconds: Option<i64>) -> Value {
    let mut t = json!({"key": key, "operator": "Exists", "effect": "NoExecute"});
    if let Some(s) = seconds {
        t["tolerationSeconds"] = json!(s);
    }
    t
}

/// The pod if it exists and is not being deleted.
fn live_pod(s: &Server, name: &str) -> Option<Value> {
    get_json(s, &["-n", "default", "get", "pod", name]).filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
}

/// Whether the taint eviction deleted the pod (gone, or terminating: no kubelet confirms the deletion).
fn evicted(s: &Server, name: &str) -> bool {
    live_pod(s, name).is_none()
}

fn events(s: &Server, ns: &str) -> String {
    s.ok(V, &["-n", ns, "get", "events", "-o", "json"])
}

fn wait_for_default_service_account(s: &Server) {
    eventually(s, 30, "the default ServiceAccount", || {
        try_kubectl(&s.kubeconfig, &["-n", "default", "get", "serviceaccount", "default"]).is_some()
    });
}

#[test]
fn silent_nodes_turn_unknown_get_unreachable_taints_and_lose_their_pods() {
    let s = Server::start_with(&["--node-monitor-grace-period", "5s"]);
    wait_for_default_service_account(&s);
    ready_node(&s, "fresh");
    ready_node(&s, "stale");
    let renewer = Renewer::start(&s.kubeconfig, &["fresh"]);
    let unreachable = "node.kubernetes.io/unreachable";
    create(&s, &pod("tolerate-2s", "stale", json!([toleration(unreachable, Some(2))])));
    create(&s, &pod("tolerate-forever", "stale", json!([toleration(unreachable, None)])));
    create(&s, &pod("on-fresh", "fresh", json!([toleration(unreachable, Some(2))])));
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}).to_string();
    s.ok(
        V,
        &["-n", "default", "patch", "pod", "tolerate-forever", "--subresource=status", "--type=merge", "-p", &ready],
    );

    // The stale node turns Unknown with upstream's reason and message.
    eventually(&s, 30, "stale node Ready=Unknown", || {
        get_json(&s, &["get", "node", "stale"])
            .and_then(|n| condition(&n, "Ready").cloned())
            .is_some_and(|c| c["status"] == "Unknown")
    });
    let node = get_json(&s, &["get", "node", "stale"]).expect("stale node");
    let c = condition(&node, "Ready").expect("Ready");
    assert_eq!(c["reason"], "NodeStatusUnknown", "{c}");
    assert_eq!(c["message"], "Kubelet stopped posting node status.", "{c}");
    assert_eq!(condition(&node, "MemoryPressure").expect("MemoryPressure")["status"], "Unknown");

    eventually(&s, 20, "unreachable NoSchedule and NoExecute taints", || {
        get_json(&s, &["get", "node", "stale"]).is_some_and(|n| {
            let t = taints(&n);
            t.contains(&format!("{unreachable}:NoSchedule")) && t.contains(&format!("{unreachable}:NoExecute"))
        })
    });
    // The tolerated-for-2-seconds pod is still there right after the taint...
    let node = get_json(&s, &["get", "node", "stale"]).expect("stale node");
    let added = node["spec"]["taints"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["key"] == unreachable && t["effect"] == "NoExecute"))
        .and_then(|t| t["timeAdded"].as_str())
        .map(epoch)
        .expect("the NoExecute taint has timeAdded");
    // ...and evicted about 2 s after the taint was added, with the DisruptionTarget condition.
    eventually(&s, 20, "tolerate-2s evicted", || evicted(&s, "tolerate-2s"));
    if let Some(p) = get_json(&s, &["-n", "default", "get", "pod", "tolerate-2s"]) {
        let dt = condition(&p, "DisruptionTarget").expect("DisruptionTarget condition");
        assert_eq!(dt["reason"], "DeletionByTaintManager", "{dt}");
        assert_eq!(dt["message"], "Taint manager: deleting due to NoExecute taint", "{dt}");
        let at = epoch(dt["lastTransitionTime"].as_str().expect("lastTransitionTime"));
        assert!(at > added, "evicted at {at}, taint added at {added}: before tolerationSeconds passed");
    }
    let ev = events(&s, "default");
    let list: Value = serde_json::from_str(&ev).expect("events JSON");
    let marking = list["items"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["message"] == "Marking for deletion Pod default/tolerate-2s"))
        .unwrap_or_else(|| panic!("no eviction event for tolerate-2s: {ev}"));
    assert_eq!(marking["reason"], "TaintManagerEviction");
    assert_eq!(marking["source"]["component"], "taint-eviction-controller");
    let at = epoch(marking["firstTimestamp"].as_str().expect("firstTimestamp"));
    assert!(at > added, "evicted at {at}, taint added at {added}: before tolerationSeconds passed");
    assert!(ev.contains("Node is not ready"), "no NodeNotReady event on the pods: {ev}");
    assert!(ev.contains("Node stale status is now: NodeNotReady"), "{ev}");
    assert!(ev.contains("Registered Node fresh in Controller"), "{ev}");

    // The pod tolerating forever stays, marked not Ready (MarkPodsNotReady); the fresh node is untouched.
    std::thread::sleep(Duration::from_secs(3));
    let forever = live_pod(&s, "tolerate-forever").expect("tolerate-forever must stay");
    assert_eq!(condition(&forever, "Ready").expect("Ready")["status"], "False", "{forever}");
    assert!(live_pod(&s, "on-fresh").is_some(), "a pod on the healthy node was evicted");
    let fresh = get_json(&s, &["get", "node", "fresh"]).expect("fresh node");
    assert_eq!(condition(&fresh, "Ready").expect("Ready")["status"], "True", "{fresh}");
    assert!(taints(&fresh).is_empty(), "the healthy node got taints: {:?}", taints(&fresh));

    // Heard from again (Lease renewed, Ready posted): the taints go.
    renewer.add("stale");
    post_ready(&s, "stale");
    eventually(&s, 20, "taints removed from the recovered node", || {
        get_json(&s, &["get", "node", "stale"]).is_some_and(|n| taints(&n).is_empty())
    });
    assert!(live_pod(&s, "tolerate-forever").is_some());
}

#[test]
fn no_execute_taints_evict_untolerating_pods_at_once_and_removal_cancels() {
    let s = Server::start_with(&["--node-monitor-grace-period", "40s"]);
    wait_for_default_service_account(&s);
    ready_node(&s, "worker");
    let key = "example.com/evict";
    create(&s, &pod("no-toleration", "worker", json!([])));
    create(&s, &pod("tolerate-30s", "worker", json!([toleration(key, Some(30))])));
    create(&s, &pod("tolerate-forever", "worker", json!([toleration(key, None)])));
    std::thread::sleep(Duration::from_secs(1));
    assert!(live_pod(&s, "no-toleration").is_some(), "evicted before any NoExecute taint");

    s.ok(V, &["taint", "nodes", "worker", &format!("{key}=now:NoExecute")]);
    eventually(&s, 15, "the untolerating pod evicted", || evicted(&s, "no-toleration"));
    if let Some(p) = get_json(&s, &["-n", "default", "get", "pod", "no-toleration"]) {
        assert_eq!(condition(&p, "DisruptionTarget").expect("DisruptionTarget")["reason"], "DeletionByTaintManager");
    }
    assert!(live_pod(&s, "tolerate-30s").is_some());
    assert!(live_pod(&s, "tolerate-forever").is_some());

    // The taint goes: the pending eviction is cancelled.
    s.ok(V, &["taint", "nodes", "worker", &format!("{key}=now:NoExecute-")]);
    eventually(&s, 15, "the eviction of tolerate-30s cancelled", || {
        events(&s, "default").contains("Cancelling deletion of Pod default/tolerate-30s")
    });
    let ev = events(&s, "default");
    assert!(ev.contains("Marking for deletion Pod default/no-toleration"), "{ev}");
    assert!(!ev.contains("Marking for deletion Pod default/tolerate-forever"), "{ev}");
    assert!(live_pod(&s, "tolerate-30s").is_some());

    // Cordoned: the unschedulable taint comes and goes with spec.unschedulable.
    s.ok(V, &["cordon", "worker"]);
    eventually(&s, 15, "unschedulable taint", || {
        get_json(&s, &["get", "node", "worker"])
            .is_some_and(|n| taints(&n).contains(&"node.kubernetes.io/unschedulable:NoSchedule".to_owned()))
    });
    s.ok(V, &["uncordon", "worker"]);
    eventually(&s, 15, "unschedulable taint removed", || {
        get_json(&s, &["get", "node", "worker"]).is_some_and(|n| taints(&n).is_empty())
    });

    // The beta os label follows the GA one, as upstream's label reconciliation keeps it.
    s.ok(V, &["label", "node", "worker", "kubernetes.io/os=linux"]);
    eventually(&s, 15, "beta.kubernetes.io/os label", || {
        get_json(&s, &["get", "node", "worker"])
            .is_some_and(|n| n.pointer("/metadata/labels/beta.kubernetes.io~1os") == Some(&json!("linux")))
    });
}

fn pod_cidrs(kubeconfig: &Path, node: &str) -> Option<(String, Vec<String>)> {
    let out = try_kubectl(kubeconfig, &["get", "node", node, "-o", "json"])?;
    let n: Value = serde_json::from_str(&out).ok()?;
    let cidr = n.pointer("/spec/podCIDR")?.as_str()?.to_owned();
    let cidrs = n.pointer("/spec/podCIDRs")?.as_array()?.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect();
    Some((cidr, cidrs))
}

fn wait_cidr(s: &Server, kubeconfig: &Path, node: &str) -> String {
    let mut got = None;
    eventually(s, 30, &format!("podCIDR of {node}"), || {
        got = pod_cidrs(kubeconfig, node);
        got.is_some()
    });
    let (cidr, cidrs) = got.expect("podCIDR");
    assert_eq!(cidrs, vec![cidr.clone()], "podCIDRs of {node}");
    cidr
}

fn in_cluster_range(cidr: &str) -> bool {
    cidr.starts_with("172.30.") && cidr.ends_with(".0/24")
}

#[test]
fn nodes_get_distinct_pod_cidrs_that_survive_a_restart() {
    let mut s = Server::start();
    // A range set by the user is respected (and counted as used).
    create_node(&s, "preset", json!({"podCIDR": "172.30.1.0/24"}));
    for n in ["a", "b", "c"] {
        create_node(&s, n, json!({}));
    }
    let kc = s.kubeconfig.clone();
    let before: Vec<String> = ["preset", "a", "b", "c"].iter().map(|n| wait_cidr(&s, &kc, n)).collect();
    assert_eq!(before[0], "172.30.1.0/24");
    let mut distinct = before.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "ranges are not distinct: {before:?}");
    assert!(before.iter().all(|c| in_cluster_range(c)), "{before:?}");

    // A new server on the same store counts the ranges on the nodes before allocating.
    s.stop();
    // Keep the data dir, and forget the stopped server: its Drop would signal the already reaped PID again.
    let placeholder = tempfile::Builder::new().tempdir_in(s.dir.path()).expect("tempdir");
    let dir = std::mem::replace(&mut s.dir, placeholder);
    std::mem::forget(s);
    // A server on the same data dir (and so the same store) as the stopped one.
    let r = common::Peer::start(dir.path());
    create_with(&r.kubeconfig, &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "d"}}));
    let mut d = None;
    let deadline = Instant::now() + Duration::from_secs(45);
    while d.is_none() {
        assert!(Instant::now() < deadline, "node d got no podCIDR after the restart");
        std::thread::sleep(Duration::from_millis(200));
        d = pod_cidrs(&r.kubeconfig, "d").map(|(c, _)| c);
    }
    let d = d.expect("podCIDR of d");
    assert!(in_cluster_range(&d) && !before.contains(&d), "d got {d}, already in use: {before:?}");
    for (n, c) in ["preset", "a", "b", "c"].iter().zip(&before) {
        assert_eq!(pod_cidrs(&r.kubeconfig, n).map(|(c, _)| c).as_ref(), Some(c), "{n} changed range");
    }
}

/// `kubectl create -f -` with a kubeconfig (the restarted server's).
fn create_with(kubeconfig: &Path, obj: &Value) {
    let out = common::kubectl_with(V, kubeconfig, &["create", "-f", "-"], Some(&obj.to_string()));
    assert!(out.status.success(), "create {obj}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn an_exhausted_pool_is_reported_and_released_ranges_are_reused() {
    let s = Server::start_with(&["--cluster-cidr", "10.99.0.0/23", "--node-cidr-mask-size", "24"]);
    create_node(&s, "a", json!({}));
    create_node(&s, "b", json!({}));
    let kc = s.kubeconfig.clone();
    let a = wait_cidr(&s, &kc, "a");
    let b = wait_cidr(&s, &kc, "b");
    let mut both = vec![a.clone(), b];
    both.sort();
    assert_eq!(both, ["10.99.0.0/24", "10.99.1.0/24"]);

    create_node(&s, "c", json!({}));
    eventually(&s, 30, "CIDRNotAvailable event for c", || {
        events(&s, "default").contains("Node c status is now: CIDRNotAvailable")
    });
    assert!(pod_cidrs(&kc, "c").is_none(), "c got a range from an exhausted pool");

    s.ok(V, &["delete", "node", "a"]);
    let c = wait_cidr(&s, &kc, "c");
    assert_eq!(c, a, "the released range goes to the waiting node");
}

#[test]
fn pods_of_a_deleted_node_are_collected() {
    let s = Server::start();
    wait_for_default_service_account(&s);
    ready_node(&s, "doomed");
    create(&s, &pod("stranded", "doomed", json!([])));
    s.ok(V, &["delete", "node", "doomed"]);
    // Upstream's pod GC waits out a 40 s quarantine, looks every 20 s, and confirms the node is gone.
    eventually(&s, 90, "the pod of the deleted node collected", || {
        get_json(&s, &["-n", "default", "get", "pod", "stranded"]).is_none()
    });
}
