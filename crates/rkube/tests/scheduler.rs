//! The scheduler against a real `rkube server` and real kubectl 1.33, with Node objects made by hand (no
//! kubelet: the scheduler only binds): resource fit, nodeSelector and node affinity, taints and
//! tolerations, required pod anti-affinity, upstream's FailedScheduling wording and PodScheduled condition,
//! retry when a node is added, other schedulers' pods left alone, and priority preemption.
//! Waits are polls with deadlines, never timed assertions.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use serde_json::{Value, json};

const V: &str = "1.33";

/// A server whose node lifecycle controller does not taint our kubelet-less nodes during a test.
fn server() -> Server {
    Server::start_with(&["--node-monitor-grace-period", "10m"])
}

/// Polls `check` until it holds, failing with `what` and the server log after `secs` seconds.
fn eventually(s: &Server, secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "not within {secs} s: {what}\nserver log:\n{}", s.log_tail());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn create(s: &Server, obj: &Value) {
    let out = s.kubectl_stdin(V, &["create", "-f", "-"], &obj.to_string());
    assert!(out.status.success(), "create {obj}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A Ready node with `cpu` cores, 16Gi of memory, 110 pods, and the given labels and taints.
fn add_node(s: &Server, name: &str, cpu: &str, labels: Value, taints: Value) {
    let mut l = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"});
    for (k, v) in labels.as_object().into_iter().flatten() {
        l[k] = v.clone();
    }
    create(
        s,
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": l}, "spec": {"taints": taints}}),
    );
    let resources = json!({"cpu": cpu, "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    let status = json!({"status": {"capacity": resources, "allocatable": resources,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}]}});
    s.ok(V, &["patch", "node", name, "--subresource=status", "--type=merge", "-p", &status.to_string()]);
}

/// A pod with one container requesting `cpu`, plus `spec` fields merged in.
fn add_pod(s: &Server, name: &str, cpu: &str, labels: Value, spec: Value) {
    let mut sp = json!({"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]});
    for (k, v) in spec.as_object().into_iter().flatten() {
        sp[k] = v.clone();
    }
    create(s, &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": sp}));
}

fn pod_json(s: &Server, name: &str) -> Option<Value> {
    let out = s.kubectl(V, &["get", "pod", name, "-o", "json"]);
    out.status.success().then(|| serde_json::from_slice(&out.stdout).expect("pod json"))
}

fn node_of(s: &Server, name: &str) -> String {
    pod_json(s, name).and_then(|p| p["spec"]["nodeName"].as_str().map(str::to_owned)).unwrap_or_default()
}

fn wait_bound(s: &Server, name: &str) -> String {
    let mut node = String::new();
    eventually(s, 30, &format!("pod {name} bound"), || {
        node = node_of(s, name);
        !node.is_empty()
    });
    node
}

/// The messages of the events with `reason` about pod `name`.
fn events(s: &Server, reason: &str, name: &str) -> Vec<String> {
    let out = s.ok(
        V,
        &["get", "events", "--field-selector", &format!("reason={reason},involvedObject.name={name}"), "-o", "json"],
    );
    let v: Value = serde_json::from_str(&out).expect("events json");
    v["items"].as_array().into_iter().flatten().filter_map(|e| e["message"].as_str().map(str::to_owned)).collect()
}

/// Waits for a FailedScheduling event with exactly `message`, then checks the PodScheduled condition.
fn wait_unschedulable(s: &Server, name: &str, message: &str) {
    eventually(s, 30, &format!("FailedScheduling for {name}: {message}"), || {
        events(s, "FailedScheduling", name).iter().any(|m| m == message)
    });
    eventually(s, 10, &format!("PodScheduled=False on {name}"), || {
        pod_json(s, name).is_some_and(|p| {
            p["status"]["conditions"].as_array().into_iter().flatten().any(|c| {
                c["type"] == "PodScheduled"
                    && c["status"] == "False"
                    && c["reason"] == "Unschedulable"
                    && c["message"] == message
            })
        })
    });
    assert_eq!(node_of(s, name), "");
}

#[test]
fn pods_land_where_they_fit_and_selectors_hold() {
    let s = server();
    add_node(&s, "small-a", "2", json!({}), json!([]));
    add_node(&s, "small-b", "2", json!({}), json!([]));
    add_node(&s, "big", "8", json!({"disk": "ssd"}), json!([]));
    // Only the big node fits 4 cpus.
    add_pod(&s, "wide", "4", json!({}), json!({}));
    assert_eq!(wait_bound(&s, "wide"), "big");
    eventually(&s, 20, "Scheduled event", || {
        events(&s, "Scheduled", "wide").contains(&"Successfully assigned default/wide to big".to_owned())
    });
    // nodeSelector and required node affinity.
    add_pod(&s, "ssd", "100m", json!({}), json!({"nodeSelector": {"disk": "ssd"}}));
    add_pod(
        &s,
        "pinned",
        "100m",
        json!({}),
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["small-b"]}]}]}}}}),
    );
    assert_eq!(wait_bound(&s, "ssd"), "big");
    assert_eq!(wait_bound(&s, "pinned"), "small-b");
    // Resource fit spreads 1.5-cpu pods: each small node takes one, the big node the rest.
    for i in 0..4 {
        add_pod(&s, &format!("mid-{i}"), "1500m", json!({}), json!({}));
    }
    let mut placed: Vec<String> = (0..4).map(|i| wait_bound(&s, &format!("mid-{i}"))).collect();
    placed.sort();
    assert_eq!(placed, vec!["big", "big", "small-a", "small-b"]);
    // Another scheduler's pod is left alone (checked after a later pod of ours was bound).
    add_pod(&s, "theirs", "100m", json!({}), json!({"schedulerName": "other-scheduler"}));
    add_pod(&s, "ours", "100m", json!({}), json!({}));
    wait_bound(&s, "ours");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(node_of(&s, "theirs"), "");
    assert!(events(&s, "FailedScheduling", "theirs").is_empty());
    // The scheduler acted as the holder of its leader-election Lease.
    let holder =
        s.ok(V, &["-n", "kube-system", "get", "lease", "kube-scheduler", "-o", "jsonpath={.spec.holderIdentity}"]);
    assert!(holder.starts_with("test-node_"), "{holder}");
}

#[test]
fn taints_keep_pods_off_until_tolerated() {
    let s = server();
    add_node(&s, "gpu", "4", json!({}), json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]));
    add_pod(&s, "plain", "100m", json!({}), json!({}));
    wait_unschedulable(
        &s,
        "plain",
        "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}. \
         preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
    );
    add_pod(
        &s,
        "tolerant",
        "100m",
        json!({}),
        json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}),
    );
    assert_eq!(wait_bound(&s, "tolerant"), "gpu");
    // Removing the taint (a node update) lets the waiting pod in.
    s.ok(V, &["taint", "node", "gpu", "dedicated-"]);
    assert_eq!(wait_bound(&s, "plain"), "gpu");
}

#[test]
fn required_anti_affinity_spreads_pods_and_the_extra_one_waits() {
    let s = server();
    for n in ["n1", "n2", "n3"] {
        add_node(&s, n, "4", json!({}), json!([]));
    }
    let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    for i in 0..3 {
        add_pod(&s, &format!("web-{i}"), "100m", json!({"app": "web"}), anti.clone());
    }
    let mut nodes: Vec<String> = (0..3).map(|i| wait_bound(&s, &format!("web-{i}"))).collect();
    nodes.sort();
    assert_eq!(nodes, vec!["n1", "n2", "n3"]);
    add_pod(&s, "web-3", "100m", json!({"app": "web"}), anti.clone());
    let msg = "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. \
               preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.";
    wait_unschedulable(&s, "web-3", msg);
    let listed = s.ok(V, &["get", "events", "--field-selector", "reason=FailedScheduling"]);
    assert!(listed.contains("pod/web-3") && listed.contains("didn't match pod anti-affinity rules"), "{listed}");
    // A pod without the label is not kept off by the others (they only repel app=web).
    add_pod(&s, "api", "100m", json!({"app": "api"}), json!({}));
    wait_bound(&s, "api");
    // Deleting one of them makes room.
    s.ok(V, &["delete", "pod", "web-0", "--grace-period=0", "--force"]);
    wait_bound(&s, "web-3");
}

#[test]
fn a_pod_too_big_for_every_node_waits_for_a_bigger_node() {
    let s = server();
    add_node(&s, "small", "2", json!({}), json!([]));
    add_pod(&s, "huge", "6", json!({}), json!({}));
    wait_unschedulable(
        &s,
        "huge",
        "0/1 nodes are available: 1 Insufficient cpu. \
         preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
    );
    add_node(&s, "large", "16", json!({}), json!([]));
    assert_eq!(wait_bound(&s, "huge"), "large");
}

#[test]
fn a_high_priority_pod_preempts_a_low_priority_one() {
    let s = server();
    for (name, value, policy) in
        [("low", 100, "PreemptLowerPriority"), ("high", 1000, "PreemptLowerPriority"), ("polite", 1000, "Never")]
    {
        create(
            &s,
            &json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                "value": value, "preemptionPolicy": policy}),
        );
    }
    add_node(&s, "only", "2", json!({}), json!([]));
    // No kubelet here: a grace period of 0 lets the API delete the victim at once.
    add_pod(&s, "victim", "1500m", json!({}), json!({"priorityClassName": "low", "terminationGracePeriodSeconds": 0}));
    assert_eq!(wait_bound(&s, "victim"), "only");
    let victim_uid = pod_json(&s, "victim").expect("victim")["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
    // A higher-priority pod whose class says `preemptionPolicy: Never` stays pending.
    add_pod(&s, "polite", "1500m", json!({}), json!({"priorityClassName": "polite"}));
    wait_unschedulable(
        &s,
        "polite",
        "0/1 nodes are available: 1 Insufficient cpu. not eligible due to preemptionPolicy=Never.",
    );
    s.ok(V, &["delete", "pod", "polite"]);
    add_pod(&s, "boss", "1500m", json!({}), json!({"priorityClassName": "high"}));
    assert_eq!(wait_bound(&s, "boss"), "only");
    eventually(&s, 30, "victim gone", || {
        pod_json(&s, "victim").is_none_or(|p| p["metadata"]["uid"].as_str() != Some(victim_uid.as_str()))
    });
    eventually(&s, 20, "Preempted event", || {
        let out = s.ok(V, &["get", "events", "--field-selector", "reason=Preempted", "-o", "json"]);
        out.contains("Preempted by pod ") && out.contains(" on node only")
    });
    let boss = pod_json(&s, "boss").expect("boss");
    assert_eq!(boss["spec"]["priority"], 1000);
    let boss_uid = boss["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
    let out = s.ok(V, &["get", "events", "--field-selector", "reason=Preempted", "-o", "json"]);
    assert!(out.contains(&format!("Preempted by pod {boss_uid} on node only")), "{out}");
}
