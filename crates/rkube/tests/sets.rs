//! The DaemonSet and StatefulSet controllers against a real `rkube server` (with its scheduler), simulated
//! nodes (`rkube sim nodes`) and real kubectl 1.33: one daemon pod per eligible node (new nodes get one,
//! tainted ones only when tolerated), daemon rolling updates and rollbacks; StatefulSet pods created in
//! ordinal order each after its predecessor is Ready, claims from templates, scale-down in reverse order,
//! rolling updates. Simulator processes are killed by PID when a test ends, failed or not. Waits are polls
//! with deadlines.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::{Server, Sim, apply, eventually, json};
use serde_json::Value;

const V: &str = "1.33";

/// The pods with label `app=<app>`.
fn pods(s: &Server, app: &str) -> Vec<Value> {
    json(s, &["get", "pods", "-l", &format!("app={app}")])["items"].as_array().cloned().unwrap_or_default()
}

fn name(v: &Value) -> String {
    v["metadata"]["name"].as_str().unwrap_or_default().to_owned()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn daemonset(name: &str, image: &str, tolerate: bool) -> String {
    let tolerations =
        if tolerate { r#","tolerations":[{"key":"dedicated","operator":"Exists","effect":"NoSchedule"}]"# } else { "" };
    format!(
        r#"{{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{{"name":"{name}"}},
           "spec":{{"selector":{{"matchLabels":{{"app":"{name}"}}}},
                    "updateStrategy":{{"type":"RollingUpdate","rollingUpdate":{{"maxUnavailable":2}}}},
                    "template":{{"metadata":{{"labels":{{"app":"{name}"}}}},
                                 "spec":{{"containers":[{{"name":"app","image":"{image}"}}]{tolerations}}}}}}}}}"#
    )
}

/// Node name → pod names of the running (bound, Running, not deleting) pods of `app`.
fn placement(s: &Server, app: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for p in pods(s, app) {
        if p["metadata"]["deletionTimestamp"].is_null() && p["status"]["phase"] == "Running" {
            let node = p["spec"]["nodeName"].as_str().unwrap_or_default().to_owned();
            m.entry(node).or_default().push(name(&p));
        }
    }
    m
}

fn one_per_node(s: &Server, app: &str, nodes: &[&str]) -> bool {
    let m = placement(s, app);
    m.len() == nodes.len() && nodes.iter().all(|n| m.get(*n).is_some_and(|p| p.len() == 1))
}

#[test]
fn daemonset_runs_one_pod_per_eligible_node_and_follows_nodes() {
    let s = Server::start();
    let _five = Sim::start(&s, &["--count", "5"]);
    apply(&s, &daemonset("agent", "agent:1", false));
    let five = ["sim-0", "sim-1", "sim-2", "sim-3", "sim-4"];
    eventually(&s, 30, "one running agent pod on each of 5 nodes", || one_per_node(&s, "agent", &five));
    s.ok(V, &["rollout", "status", "daemonset/agent", "--timeout=30s"]);

    let pod = &pods(&s, "agent")[0];
    let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
    let terms =
        &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    assert_eq!(terms[0]["matchFields"][0]["key"], "metadata.name", "{pod}");
    assert_eq!(terms[0]["matchFields"][0]["values"][0], node, "pinned to the node it runs on");
    let tolerations = pod["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
    for key in ["not-ready", "unreachable", "disk-pressure", "memory-pressure", "pid-pressure", "unschedulable"] {
        let t = tolerations.iter().find(|t| t["key"] == format!("node.kubernetes.io/{key}"));
        assert!(
            t.is_some_and(|t| t["operator"] == "Exists" && t["tolerationSeconds"].is_null()),
            "{key}: {tolerations:?}"
        );
    }
    assert!(pod["metadata"]["generateName"] == "agent-", "{pod}");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
    let hash = pod["metadata"]["labels"]["controller-revision-hash"].as_str().unwrap_or_default().to_owned();
    let revision = json(&s, &["get", "controllerrevision", &format!("agent-{hash}")]);
    assert_eq!(revision["revision"], 1);
    assert_eq!(revision["data"]["spec"]["template"]["$patch"], "replace");
    let st = json(&s, &["get", "daemonset", "agent"])["status"].clone();
    for (field, want) in [
        ("desiredNumberScheduled", 5),
        ("currentNumberScheduled", 5),
        ("numberReady", 5),
        ("numberAvailable", 5),
        ("updatedNumberScheduled", 5),
        ("numberMisscheduled", 0),
    ] {
        assert_eq!(st[field], want, "{field}: {st}");
    }
    let events = s.ok(
        V,
        &["get", "events", "--field-selector", "involvedObject.name=agent", "-o", "jsonpath={.items[*].message}"],
    );
    assert!(events.contains(&format!("Created pod: {}", name(pod))), "{events}");

    // A sixth node joins: it gets a pod.
    let _sixth = Sim::start(&s, &["--count", "1", "--first-index", "5"]);
    let six = ["sim-0", "sim-1", "sim-2", "sim-3", "sim-4", "sim-5"];
    eventually(&s, 30, "an agent pod on the sixth node", || one_per_node(&s, "agent", &six));

    // A node tainted NoSchedule gets pods only from DaemonSets that tolerate the taint.
    let _tainted = Sim::start(&s, &["--count", "1", "--first-index", "6", "--taint", "dedicated=db:NoSchedule"]);
    apply(&s, &daemonset("tolerant", "agent:1", true));
    let seven = ["sim-0", "sim-1", "sim-2", "sim-3", "sim-4", "sim-5", "sim-6"];
    eventually(&s, 30, "a tolerant pod on all seven nodes", || one_per_node(&s, "tolerant", &seven));
    eventually(&s, 10, "agent counts the tainted node out", || {
        json(&s, &["get", "daemonset", "agent"])["status"]["desiredNumberScheduled"] == 6
    });
    assert!(one_per_node(&s, "agent", &six), "no agent pod on the tainted node: {:?}", placement(&s, "agent"));

    // NoExecute evicts the pods that do not tolerate it.
    s.ok(V, &["taint", "node", "sim-5", "evict=now:NoExecute"]);
    eventually(&s, 30, "the agent pod on sim-5 removed", || one_per_node(&s, "agent", &five));
}

#[test]
fn daemonset_rolling_update_replaces_every_pod_and_rolls_back() {
    let s = Server::start();
    let _sim = Sim::start(&s, &["--count", "4"]);
    apply(&s, &daemonset("agent", "agent:1", false));
    let nodes = ["sim-0", "sim-1", "sim-2", "sim-3"];
    eventually(&s, 30, "one agent pod per node", || one_per_node(&s, "agent", &nodes));
    s.ok(V, &["rollout", "status", "daemonset/agent", "--timeout=30s"]);
    let before: Vec<String> = pods(&s, "agent").iter().map(name).collect();

    s.ok(V, &["set", "image", "daemonset/agent", "app=agent:2"]);
    s.ok(V, &["rollout", "status", "daemonset/agent", "--timeout=45s"]);
    let after = pods(&s, "agent");
    let running: Vec<&Value> = after.iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).collect();
    assert_eq!(running.len(), 4, "{after:?}");
    for p in &running {
        assert!(!before.contains(&name(p)), "{} replaced", name(p));
        assert_eq!(p["spec"]["containers"][0]["image"], "agent:2");
    }
    let history = s.ok(V, &["rollout", "history", "daemonset/agent"]);
    let revisions: Vec<&str> =
        history.lines().filter_map(|l| l.split_whitespace().next()).filter(|w| w.parse::<u32>().is_ok()).collect();
    assert_eq!(revisions, ["1", "2"], "{history}");

    s.ok(V, &["rollout", "undo", "daemonset/agent"]);
    s.ok(V, &["rollout", "status", "daemonset/agent", "--timeout=45s"]);
    let image = s.ok(V, &["get", "daemonset", "agent", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]);
    assert_eq!(image, "agent:1");
    eventually(&s, 30, "every pod back on agent:1", || {
        let ps = pods(&s, "agent");
        ps.len() == 4 && ps.iter().all(|p| p["spec"]["containers"][0]["image"] == "agent:1" && is_ready(p))
    });
    let history = s.ok(V, &["rollout", "history", "daemonset/agent"]);
    let revisions: Vec<&str> =
        history.lines().filter_map(|l| l.split_whitespace().next()).filter(|w| w.parse::<u32>().is_ok()).collect();
    assert_eq!(revisions, ["2", "3"], "the first revision renumbered: {history}");
}

/// A `kubectl get -w` of pods with label `app=<app>`, streaming every change; killed by PID when dropped.
struct PodWatch {
    child: Child,
    events: Receiver<Value>,
}

impl PodWatch {
    fn start(s: &Server, app: &str) -> PodWatch {
        let bin = common::kubectl_path(V).expect("kubectl 1.33");
        let mut child = Command::new(bin)
            .arg("--kubeconfig")
            .arg(&s.kubeconfig)
            .args(["get", "pods", "-l", &format!("app={app}"), "-w", "--output-watch-events", "-o", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl get -w");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for v in serde_json::Deserializer::from_reader(stdout).into_iter::<Value>().map_while(Result::ok) {
                let _ = tx.send(v);
            }
        });
        PodWatch { child, events }
    }

    /// Every event received so far.
    fn drain(&self) -> Vec<Value> {
        self.events.try_iter().collect()
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn daemonset_surge_update_keeps_a_ready_pod_on_every_node() {
    let s = Server::start();
    let _sim = Sim::start(&s, &["--count", "3"]);
    let manifest =
        daemonset("agent", "agent:1", false).replace(r#""maxUnavailable":2"#, r#""maxUnavailable":0,"maxSurge":1"#);
    apply(&s, &manifest);
    let nodes = ["sim-0", "sim-1", "sim-2"];
    eventually(&s, 30, "one agent pod per node", || one_per_node(&s, "agent", &nodes));
    s.ok(V, &["rollout", "status", "daemonset/agent", "--timeout=30s"]);
    eventually(&s, 10, "every agent pod ready", || pods(&s, "agent").iter().all(is_ready));

    let watch = PodWatch::start(&s, "agent");
    let mut events: Vec<Value> = Vec::new();
    eventually(&s, 10, "the watch lists the three pods", || {
        events.extend(watch.drain());
        events.len() >= 3
    });
    s.ok(V, &["set", "image", "daemonset/agent", "app=agent:2"]);
    s.ok(V, &["rollout", "status", "daemonset/agent", "--timeout=45s"]);
    eventually(&s, 20, "every pod on agent:2 and ready, and the watch caught up", || {
        events.extend(watch.drain());
        let ps = pods(&s, "agent");
        let done = ps.len() == 3 && ps.iter().all(|p| p["spec"]["containers"][0]["image"] == "agent:2" && is_ready(p));
        // The watch has seen the last change once it saw every current pod ready.
        done && ps.iter().all(|p| {
            events.iter().rev().find(|e| name(&e["object"]) == name(p)).is_some_and(|e| is_ready(&e["object"]))
        })
    });
    // Replay the changes in order: every node keeps a ready pod throughout, and new pods start next to the
    // old ones (never more than maxSurge=1 node with two).
    let mut live: std::collections::BTreeMap<String, (String, bool)> = Default::default();
    let mut surged = false;
    for (i, ev) in events.iter().enumerate() {
        let obj = &ev["object"];
        let pod = name(obj);
        let gone = ev["type"] == "DELETED" || !obj["metadata"]["deletionTimestamp"].is_null();
        let node = obj["spec"]["nodeName"].as_str().unwrap_or_default().to_owned();
        if gone || node.is_empty() {
            live.remove(&pod);
        } else {
            live.insert(pod, (node, is_ready(obj)));
        }
        let mut per_node: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
        for (node, ready) in live.values() {
            let e = per_node.entry(node.as_str()).or_default();
            e.0 += 1;
            e.1 += usize::from(*ready);
        }
        surged |= per_node.values().any(|(n, _)| *n == 2);
        assert!(per_node.values().filter(|(n, _)| *n > 1).count() <= 1, "at most one node surging: {per_node:?}");
        if i >= 2 {
            for n in nodes {
                assert!(per_node.get(n).is_some_and(|(_, r)| *r >= 1), "{n} keeps a ready pod: {per_node:?}");
            }
        }
    }
    assert!(surged, "new pods started next to old ones: {} events", events.len());
}

fn statefulset(replicas: u32, image: &str) -> String {
    format!(
        r#"{{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{{"name":"web"}},
           "spec":{{"serviceName":"web","replicas":{replicas},"selector":{{"matchLabels":{{"app":"web"}}}},
                    "template":{{"metadata":{{"labels":{{"app":"web"}}}},
                                 "spec":{{"containers":[{{"name":"app","image":"{image}",
                                          "volumeMounts":[{{"name":"www","mountPath":"/data"}}]}}]}}}},
                    "volumeClaimTemplates":[{{"metadata":{{"name":"www"}},
                        "spec":{{"accessModes":["ReadWriteOnce"],"resources":{{"requests":{{"storage":"1Gi"}}}}}}}}]}}}}"#
    )
}

/// The names of web's pods not being deleted, sorted by ordinal.
fn web_pods(s: &Server) -> (Vec<String>, Vec<Value>) {
    let mut ps = pods(s, "web");
    ps.sort_by_key(|p| name(p).rsplit('-').next().and_then(|o| o.parse::<u32>().ok()).unwrap_or(u32::MAX));
    (ps.iter().map(name).collect(), ps)
}

fn ready_since(pod: &Value) -> String {
    let conds = pod["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let c = conds.iter().find(|c| c["type"] == "Ready" && c["status"] == "True");
    c.and_then(|c| c["lastTransitionTime"].as_str()).unwrap_or_default().to_owned()
}

#[test]
fn statefulset_creates_in_order_with_claims_and_scales_down_in_reverse() {
    let s = Server::start();
    let _sim = Sim::start(&s, &["--count", "3"]);
    apply(
        &s,
        r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},
            "spec":{"clusterIP":"None","selector":{"app":"web"},"ports":[{"port":80}]}}"#,
    );
    let watch = PodWatch::start(&s, "web");
    apply(&s, &statefulset(3, "web:1"));
    let want = ["web-0", "web-1", "web-2"];
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut seen_ready_before: Vec<(String, String, String)> = Vec::new();
    loop {
        let (names, ps) = web_pods(&s);
        assert!(names.iter().zip(want.iter()).all(|(a, b)| a == b) && names.len() <= 3, "pods are a prefix: {names:?}");
        for i in 1..ps.len() {
            // When a pod exists, its predecessor was Ready before it was created.
            let created = ps[i]["metadata"]["creationTimestamp"].as_str().unwrap_or_default().to_owned();
            let since = ready_since(&ps[i - 1]);
            assert!(
                !since.is_empty() && since <= created,
                "{} Ready ({since}) before {} created ({created})",
                names[i - 1],
                names[i]
            );
            seen_ready_before.push((names[i].clone(), since, created));
        }
        if names.len() == 3 && ps.iter().all(is_ready) {
            let checked: std::collections::BTreeSet<&str> =
                seen_ready_before.iter().map(|(n, _, _)| n.as_str()).collect();
            assert_eq!(checked.len(), 2, "web-1 and web-2 checked against their predecessors");
            break;
        }
        assert!(Instant::now() < deadline, "web-0..2 not all Ready in 45 s: {names:?}\n{}", s.log_tail());
        std::thread::sleep(Duration::from_millis(100));
    }
    s.ok(V, &["rollout", "status", "statefulset/web", "--timeout=30s"]);
    let (_, ps) = web_pods(&s);
    for (i, p) in ps.iter().enumerate() {
        let n = name(p);
        assert_eq!(p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"], n);
        assert_eq!(p["metadata"]["labels"]["apps.kubernetes.io/pod-index"], i.to_string());
        assert_eq!(p["spec"]["hostname"], n);
        assert_eq!(p["spec"]["subdomain"], "web");
        let vol = p["spec"]["volumes"].as_array().and_then(|v| v.iter().find(|v| v["name"] == "www").cloned());
        assert_eq!(vol.map(|v| v["persistentVolumeClaim"]["claimName"].clone()), Some(Value::from(format!("www-{n}"))));
    }
    let claims = json(&s, &["get", "pvc", "-l", "app=web"]);
    let claim_names: Vec<String> = claims["items"].as_array().cloned().unwrap_or_default().iter().map(name).collect();
    assert_eq!(claim_names, ["www-web-0", "www-web-1", "www-web-2"]);
    assert!(claims["items"][0]["metadata"]["ownerReferences"].is_null(), "Retain: claims are not owned");
    let st = json(&s, &["get", "statefulset", "web"])["status"].clone();
    assert_eq!(
        (st["replicas"].clone(), st["readyReplicas"].clone(), st["availableReplicas"].clone()),
        (3.into(), 3.into(), 3.into()),
        "{st}"
    );
    assert_eq!(st["currentRevision"], st["updateRevision"], "{st}");
    assert!(st["currentRevision"].as_str().is_some_and(|r| r.starts_with("web-")), "{st}");
    assert_eq!(ps[0]["metadata"]["labels"]["controller-revision-hash"], st["updateRevision"]);
    let events = s
        .ok(V, &["get", "events", "--field-selector", "involvedObject.name=web", "-o", "jsonpath={.items[*].message}"]);
    assert!(events.contains("create Pod web-0 in StatefulSet web successful"), "{events}");
    assert!(events.contains("create Claim www-web-2 Pod web-2 in StatefulSet web success"), "{events}");

    // Scale down: web-2 goes before web-1; at any time the pods left are a prefix.
    s.ok(V, &["scale", "statefulset/web", "--replicas=1"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (names, ps) = web_pods(&s);
        assert!(names.iter().zip(want.iter()).all(|(a, b)| a == b), "pods are a prefix: {names:?}");
        if names.len() == 3 {
            assert!(ps[1]["metadata"]["deletionTimestamp"].is_null(), "web-1 deleted only after web-2 is gone");
        }
        if names == ["web-0"] {
            break;
        }
        assert!(Instant::now() < deadline, "not scaled down in 30 s: {names:?}\n{}", s.log_tail());
        std::thread::sleep(Duration::from_millis(100));
    }
    let events = s
        .ok(V, &["get", "events", "--field-selector", "involvedObject.name=web", "-o", "jsonpath={.items[*].message}"]);
    assert!(events.contains("delete Pod web-2 in StatefulSet web successful"), "{events}");
    let claims = json(&s, &["get", "pvc", "-l", "app=web"]);
    assert_eq!(claims["items"].as_array().map(Vec::len), Some(3), "claims are retained");
    eventually(&s, 10, "status replicas 1", || json(&s, &["get", "statefulset", "web"])["status"]["replicas"] == 1);
    std::thread::sleep(Duration::from_millis(500));
    replay_ordered(&watch.drain());
}

/// Replays a watch of web's pods: pods are always a prefix of ordinals; a pod is created only while its
/// predecessor is Ready and not terminating; a pod starts terminating only once every higher one is gone.
fn replay_ordered(events: &[Value]) {
    let mut present: std::collections::BTreeMap<u32, (bool, bool)> = Default::default();
    let (mut created, mut terminated) = (0, 0);
    for ev in events {
        let obj = &ev["object"];
        let n = name(obj);
        let Some(o) = n.rsplit('-').next().and_then(|o| o.parse::<u32>().ok()) else { continue };
        let state = (is_ready(obj), !obj["metadata"]["deletionTimestamp"].is_null());
        let before = present.get(&o).copied();
        if ev["type"] == "DELETED" {
            present.remove(&o);
        } else {
            present.insert(o, state);
        }
        if before.is_none() && ev["type"] == "ADDED" {
            created += 1;
            if o > 0 {
                let pred = present.get(&(o - 1)).copied();
                assert_eq!(pred, Some((true, false)), "{n} created while its predecessor was {pred:?}");
            }
        }
        if before.is_some_and(|(_, t)| !t) && state.1 {
            terminated += 1;
            assert!(present.keys().all(|k| *k <= o), "{n} terminating while higher pods remain: {present:?}");
        }
        assert!(present.keys().copied().eq(0..present.len() as u32), "not a prefix after {n}: {present:?}");
    }
    assert_eq!((created, terminated), (3, 2), "the watch saw 3 creations and 2 scale-down deletions");
}

#[test]
fn statefulset_rolling_update_goes_in_reverse_and_rolls_back() {
    let s = Server::start();
    let _sim = Sim::start(&s, &["--count", "3"]);
    apply(&s, &statefulset(3, "web:1"));
    s.ok(V, &["rollout", "status", "statefulset/web", "--timeout=45s"]);
    let first = json(&s, &["get", "statefulset", "web"])["status"]["currentRevision"].clone();

    s.ok(V, &["set", "image", "statefulset/web", "app=web:2"]);
    // Pods are replaced from the highest ordinal down: an old pod never has a higher ordinal than a new one.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let (_, ps) = web_pods(&s);
        let images: Vec<String> =
            ps.iter().map(|p| p["spec"]["containers"][0]["image"].as_str().unwrap_or("").to_owned()).collect();
        if let Some(first_new) = images.iter().position(|i| i == "web:2") {
            assert!(images[first_new..].iter().all(|i| i == "web:2"), "updated from the top: {images:?}");
        }
        let st = json(&s, &["get", "statefulset", "web"])["status"].clone();
        if ps.len() == 3
            && images.iter().all(|i| i == "web:2")
            && st["currentRevision"] == st["updateRevision"]
            && st["readyReplicas"] == 3
        {
            assert_ne!(st["currentRevision"], first);
            break;
        }
        assert!(Instant::now() < deadline, "not updated in 45 s: {images:?} {st}\n{}", s.log_tail());
        std::thread::sleep(Duration::from_millis(100));
    }
    s.ok(V, &["rollout", "status", "statefulset/web", "--timeout=30s"]);
    let history = s.ok(V, &["rollout", "history", "statefulset/web"]);
    assert!(history.lines().any(|l| l.trim_start().starts_with('2')), "{history}");

    s.ok(V, &["rollout", "undo", "statefulset/web"]);
    eventually(&s, 45, "rolled back to web:1", || {
        let (_, ps) = web_pods(&s);
        let st = json(&s, &["get", "statefulset", "web"])["status"].clone();
        ps.len() == 3
            && ps.iter().all(|p| p["spec"]["containers"][0]["image"] == "web:1" && is_ready(p))
            && st["currentRevision"] == first
            && st["updateRevision"] == first
    });
    let rev = json(&s, &["get", "controllerrevision", first.as_str().unwrap_or_default()]);
    assert_eq!(rev["revision"], 3, "the first revision renumbered on rollback: {rev}");
}
