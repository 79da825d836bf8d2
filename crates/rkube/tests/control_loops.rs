//! The control loops under bad input and failover, against a real `rkube server`, simulated nodes
//! (`rkube sim nodes`) and kubectl 1.33: objects that cannot be satisfied get upstream's errors or
//! conditions and no loop spins (the API writes over a minute are counted and bounded); two servers on one
//! store run one scheduler and one controller manager, and killing the leader (SIGKILL, no release) hands
//! both over within the lease duration; a node that stops renewing its Lease turns Unknown and its pods are
//! replaced on the other nodes after their (shortened) toleration.

mod common;

use std::time::{Duration, Instant};

use common::{Server, Sim, eventually};

const V: &str = "1.33";

/// Write requests (POST, PUT, PATCH, DELETE) by resource, from the API server's `/metrics`.
fn writes(s: &Server) -> std::collections::BTreeMap<String, f64> {
    let metrics = s.ok(V, &["get", "--raw", "/metrics"]);
    let mut by = std::collections::BTreeMap::new();
    for line in metrics.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let label =
            |k: &str| line.split(&format!("{k}=\"")).nth(1).and_then(|r| r.split('"').next()).unwrap_or("").to_owned();
        if !matches!(label("verb").as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
            continue;
        }
        let n: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        *by.entry(label("resource")).or_insert(0.0) += n;
    }
    by
}

#[test]
fn unsatisfiable_objects_get_upstreams_answers_and_no_loop_spins() {
    let s = Server::start();
    let _sim = Sim::start(&s, &["--count", "3"]);
    s.ok(V, &["create", "namespace", "bad"]);

    // A pod bigger than any node: Pending, PodScheduled=False, upstream's event text.
    let big = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"huge","namespace":"bad"},
        "spec":{"containers":[{"name":"c","image":"busybox","resources":{"requests":{"cpu":"1000"}}}]}}"#;
    assert!(s.kubectl_stdin(V, &["create", "-f", "-"], big).status.success());
    eventually(&s, 30, "FailedScheduling for the huge pod", || {
        s.ok(V, &["-n", "bad", "get", "events", "--field-selector", "reason=FailedScheduling", "-o", "json"])
            .contains("0/3 nodes are available: 3 Insufficient cpu.")
    });
    let cond = s.ok(
        V,
        &["-n", "bad", "get", "pod", "huge", "-o", "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].reason}"],
    );
    assert_eq!(cond, "Unschedulable");
    assert_eq!(s.ok(V, &["-n", "bad", "get", "pod", "huge", "-o", "jsonpath={.status.phase}"]), "Pending");

    // Invalid specs are refused with 422 and upstream's messages; nothing is stored.
    let bad_selector = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"mismatch","namespace":"bad"},
        "spec":{"selector":{"matchLabels":{"app":"x"}},"template":{"metadata":{"labels":{"app":"y"}},
        "spec":{"containers":[{"name":"c","image":"busybox"}]}}}}"#;
    let out = s.kubectl_stdin(V, &["create", "-f", "-"], bad_selector);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`selector` does not match template `labels`"));
    let negative = r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"neg","namespace":"bad"},
        "spec":{"completions":-1,"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}}"#;
    let out = s.kubectl_stdin(V, &["create", "-f", "-"], negative);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("spec.completions: Invalid value: -1: must be greater than or equal to 0")
    );
    assert!(!s.kubectl(V, &["-n", "bad", "get", "deployment", "mismatch"]).status.success());

    // A dependent whose owner does not exist is collected.
    let orphan = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dangling","namespace":"bad",
        "ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"ghost","uid":"00000000-0000-0000-0000-000000000001"}]}}"#;
    assert!(s.kubectl_stdin(V, &["create", "-f", "-"], orphan).status.success());
    eventually(&s, 30, "the dangling dependent collected", || {
        !s.kubectl(V, &["-n", "bad", "get", "configmap", "dangling"]).status.success()
    });

    // Objects that stay unsatisfiable: a Deployment whose pods fit nowhere, a ReplicaSet over its quota.
    let stuck = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"stuck","namespace":"bad"},
        "spec":{"replicas":2,"progressDeadlineSeconds":10,"selector":{"matchLabels":{"app":"stuck"}},
        "template":{"metadata":{"labels":{"app":"stuck"}},"spec":{"containers":[{"name":"c","image":"busybox",
        "resources":{"requests":{"memory":"10Ti"}}}]}}}}"#;
    assert!(s.kubectl_stdin(V, &["create", "-f", "-"], stuck).status.success());
    s.ok(V, &["-n", "bad", "create", "quota", "three-pods", "--hard=pods=3"]);
    let over = r#"{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"over","namespace":"bad"},
        "spec":{"replicas":4,"selector":{"matchLabels":{"app":"over"}},
        "template":{"metadata":{"labels":{"app":"over"}},"spec":{"containers":[{"name":"c","image":"busybox",
        "resources":{"requests":{"memory":"10Ti"}}}]}}}}"#;
    assert!(s.kubectl_stdin(V, &["create", "-f", "-"], over).status.success());
    eventually(&s, 30, "the ReplicaSet reports its failed creates", || {
        !s.ok(V, &["-n", "bad", "get", "events", "--field-selector", "reason=FailedCreate", "-o", "name"])
            .trim()
            .is_empty()
    });
    eventually(&s, 40, "the Deployment's progress deadline", || {
        s.ok(
            V,
            &[
                "-n",
                "bad",
                "get",
                "deployment",
                "stuck",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}",
            ],
        ) == "ProgressDeadlineExceeded"
    });

    // Let retries settle into their backoff, then count a minute of writes.
    std::thread::sleep(Duration::from_secs(10));
    let before = writes(&s);
    std::thread::sleep(Duration::from_secs(60));
    let after = writes(&s);
    let delta: Vec<(String, f64)> = after
        .iter()
        .map(|(r, n)| (r.clone(), n - before.get(r).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d > 0.0)
        .collect();
    eprintln!("writes in one minute by resource: {delta:?}");
    let leases: f64 = delta.iter().filter(|(r, _)| r == "leases").map(|(_, d)| d).sum();
    let rest: f64 = delta.iter().filter(|(r, _)| r != "leases").map(|(_, d)| d).sum();
    // Leases: two elected components renewing every 2 s and three simulated nodes every 10 s (78/min).
    assert!(leases <= 100.0, "lease writes in a minute: {delta:?}");
    // Everything else: backoffs and the event spam filter keep the stuck objects to a trickle.
    assert!(rest <= 60.0, "{rest} writes in a minute besides leases: {delta:?}\nserver log:\n{}", s.log_tail());
}

#[test]
fn killing_the_leading_server_hands_scheduler_and_controllers_over() {
    let mut a = Server::start();
    let holder = |out: Option<String>| out.unwrap_or_default().trim().to_owned();
    let lease = |name: &str| {
        ["-n", "kube-system", "get", "lease", name, "-o", "jsonpath={.spec.holderIdentity}"].map(str::to_owned)
    };
    let get = |s: &Server, args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = s.kubectl(V, &args);
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    for name in ["kube-controller-manager", "kube-scheduler"] {
        eventually(&a, 30, &format!("a holds {name}"), || !holder(get(&a, &lease(name))).is_empty());
    }
    let first_scheduler = holder(get(&a, &lease("kube-scheduler")));
    let first_controllers = holder(get(&a, &lease("kube-controller-manager")));
    let b = common::Peer::start(a.dir.path());
    let _sim = Sim::start_with(&b.kubeconfig, &a.dir.path().join("peer-sim.log"), &["--count", "2"]);
    // The leader crashes: no release, so the standby waits out the lease duration (15 s) and takes both.
    a.kill();
    let killed = Instant::now();
    for (name, first) in [("kube-controller-manager", &first_controllers), ("kube-scheduler", &first_scheduler)] {
        let args: Vec<String> = lease(name).to_vec();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        loop {
            let now = holder(b.kubectl(&args));
            // Identities are `<node>_<uuid>`: a different one is the peer's.
            if !now.is_empty() && now != *first {
                break;
            }
            assert!(killed.elapsed() < Duration::from_secs(40), "{name} not taken over (holder {now:?})");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    // The new leaders act: a pod is scheduled onto a simulated node.
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"after"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
    let out = common::kubectl_with(V, &b.kubeconfig, &["create", "-f", "-"], Some(pod));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.kubectl(&["get", "pod", "after", "-o", "jsonpath={.spec.nodeName}"]).unwrap_or_default().trim().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the new scheduler does not bind:\n{}",
            std::fs::read_to_string(&b.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn pods_of_a_node_that_stops_renewing_are_replaced_elsewhere() {
    let s = Server::start_with(&["--node-monitor-grace-period", "5s"]);
    // Leases renewed every second, well inside the 5 s grace period.
    let _healthy = Sim::start(&s, &["--count", "2", "--renew-interval", "1s"]);
    let mut doomed = Sim::start(&s, &["--count", "1", "--first-index", "2", "--renew-interval", "1s"]);
    // Pods tolerate an unreachable node for 2 s instead of the 300 s the admission plugin would give them.
    let deployment = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
        "spec":{"replicas":6,"selector":{"matchLabels":{"app":"web"}},
        "template":{"metadata":{"labels":{"app":"web"}},"spec":{
            "tolerations":[{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":2},
                           {"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":2}],
            "containers":[{"name":"c","image":"busybox"}]}}}}"#;
    assert!(s.kubectl_stdin(V, &["create", "-f", "-"], deployment).status.success());
    // Live (not terminating) Ready pods by node.
    let placed = |s: &Server| -> Vec<String> {
        let pods = common::json(s, &["get", "pods", "-l", "app=web"]);
        pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
            })
            .map(|p| p["spec"]["nodeName"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    // The scheduler's default spreading puts some of them on sim-2.
    eventually(&s, 60, "six pods Ready, some on sim-2", || {
        let on = placed(&s);
        on.len() == 6 && on.iter().any(|n| n == "sim-2")
    });
    // The node's kubelet dies: its Lease is no longer renewed.
    doomed.kill();
    eventually(&s, 60, "sim-2 turns Unknown and its pods are replaced on the other nodes", || {
        let ready =
            s.ok(V, &["get", "node", "sim-2", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]);
        let on = placed(&s);
        ready == "Unknown" && on.len() == 6 && on.iter().all(|n| n != "sim-2")
    });
    let taints = s.ok(V, &["get", "node", "sim-2", "-o", "jsonpath={.spec.taints[*].key}"]);
    assert!(taints.contains("node.kubernetes.io/unreachable"), "{taints}");
}
