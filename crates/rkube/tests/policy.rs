//! PodDisruptionBudgets and ResourceQuotas against a real `rkube server` and real kubectl 1.33, with no
//! scheduler or node agent: pods are bound with `spec.nodeName` and their status is set by the test.
//! The disruption controller's status, the eviction subresource (single evictions and `kubectl drain`,
//! which retries 429s) and the resource quota controller's `status.used`. Waits are polls with deadlines.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, apply, eventually};

const V: &str = "1.33";

fn jsonpath(s: &Server, ns: &str, what: &str, path: &str) -> String {
    let out = s.kubectl(V, &["-n", ns, "get", what, "-o", &format!("jsonpath={path}")]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn node(s: &Server, name: &str) {
    apply(s, &format!(r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"{name}"}}}}"#));
}

/// A pod bound to `node`, labelled `app=web`, then marked Running and Ready (or not) as a kubelet would.
fn running_pod(s: &Server, ns: &str, name: &str, node: &str, ready: bool) {
    apply(
        s,
        &format!(
            r#"{{"apiVersion":"v1","kind":"Pod",
               "metadata":{{"name":"{name}","namespace":"{ns}","labels":{{"app":"web"}}}},
               "spec":{{"nodeName":"{node}","containers":[{{"name":"c","image":"registry.k8s.io/pause:3.10"}}]}}}}"#
        ),
    );
    set_ready(s, ns, name, ready);
}

fn set_ready(s: &Server, ns: &str, name: &str, ready: bool) {
    let status = if ready { "True" } else { "False" };
    let patch = format!(r#"{{"status":{{"phase":"Running","conditions":[{{"type":"Ready","status":"{status}"}}]}}}}"#);
    s.ok(V, &["-n", ns, "patch", "pod", name, "--subresource=status", "--type=merge", "-p", &patch]);
}

/// `POST pods/<name>/eviction` through `kubectl create --raw` (verbose, so that the response body with
/// its causes is in stderr).
fn evict(s: &Server, ns: &str, pod: &str) -> std::process::Output {
    let body = format!(
        r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{pod}","namespace":"{ns}"}},
             "deleteOptions":{{"gracePeriodSeconds":0}}}}"#
    );
    s.kubectl_stdin(
        V,
        &["create", "-v=9", "--raw", &format!("/api/v1/namespaces/{ns}/pods/{pod}/eviction"), "-f", "-"],
        &body,
    )
}

fn pdb_status(s: &Server, ns: &str) -> String {
    jsonpath(
        s,
        ns,
        "pdb/web",
        concat!(
            "{.status.currentHealthy}/{.status.desiredHealthy}/{.status.expectedPods}/",
            "{.status.disruptionsAllowed}/{.status.conditions[0].reason}"
        ),
    )
}

fn web_pods(s: &Server, ns: &str) -> Vec<String> {
    let out = jsonpath(s, ns, "pods", "{range .items[?(@.metadata.deletionTimestamp)]}{.metadata.name} {end}");
    let terminating: Vec<&str> = out.split_whitespace().collect();
    s.ok(V, &["-n", ns, "get", "pods", "-l", "app=web", "-o", "name"])
        .lines()
        .map(|l| l.trim_start_matches("pod/").to_owned())
        .filter(|p| !terminating.contains(&p.as_str()))
        .collect()
}

#[test]
fn disruption_budgets_guard_evictions() {
    let s = Server::start();
    let ns = "pol";
    s.ok(V, &["create", "namespace", ns]);
    node(&s, "n1");
    for p in ["web-0", "web-1", "web-2"] {
        running_pod(&s, ns, p, "n1", true);
    }
    apply(
        &s,
        r#"{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"web","namespace":"pol"},
            "spec":{"minAvailable":2,"selector":{"matchLabels":{"app":"web"}}}}"#,
    );
    eventually(&s, 20, "pdb allows one disruption", || pdb_status(&s, ns) == "3/2/3/1/SufficientPods");
    let table = s.ok(V, &["-n", ns, "get", "pdb"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(row[..4], ["web", "2", "N/A", "1"], "kubectl get pdb:\n{table}");

    // One eviction passes and is recorded in the budget; the next is refused with upstream's answer.
    let out = evict(&s, ns, "web-0");
    assert!(out.status.success(), "first eviction: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!web_pods(&s, ns).contains(&"web-0".to_owned()), "web-0 is gone");
    eventually(&s, 20, "pdb allows nothing", || pdb_status(&s, ns) == "2/2/2/0/InsufficientPods");
    let out = evict(&s, ns, "web-1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "second eviction must be refused");
    assert!(
        err.contains(
            "Error from server (TooManyRequests): Cannot evict pod as it would violate the pod's disruption budget."
        ),
        "{err}"
    );
    assert!(err.contains("The disruption budget web needs 2 healthy pods and has 2 currently"), "{err}");
    assert!(err.contains(r#""reason": "DisruptionBudget""#), "{err}");
    assert!(web_pods(&s, ns).contains(&"web-1".to_owned()), "web-1 was not evicted");
    // A dry run would be refused the same way and changes nothing.
    let out = s.kubectl_stdin(
        V,
        &["create", "--raw", &format!("/api/v1/namespaces/{ns}/pods/web-1/eviction?dryRun=All"), "-f", "-"],
        r#"{"apiVersion":"policy/v1beta1","kind":"Eviction","metadata":{"name":"web-1"}}"#,
    );
    assert!(!out.status.success());

    // An unready pod does not count: the budget is short, and evicting it is refused too.
    set_ready(&s, ns, "web-2", false);
    eventually(&s, 20, "pdb sees web-2 unready", || pdb_status(&s, ns) == "1/2/2/0/InsufficientPods");
    assert!(!evict(&s, ns, "web-2").status.success(), "web-2 is guarded while the budget is short");

    // Ready again, and a third pod: the budget allows one eviction again.
    set_ready(&s, ns, "web-2", true);
    running_pod(&s, ns, "web-3", "n1", true);
    eventually(&s, 20, "pdb allows one disruption again", || pdb_status(&s, ns) == "3/2/3/1/SufficientPods");
    let out = evict(&s, ns, "web-1");
    assert!(out.status.success(), "eviction after recovery: {}", String::from_utf8_lossy(&out.stderr));

    // Pending pods are not guarded.
    apply(
        &s,
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-pending","namespace":"pol","labels":{"app":"web"}},
            "spec":{"nodeName":"n1","containers":[{"name":"c","image":"registry.k8s.io/pause:3.10"}]}}"#,
    );
    s.ok(
        V,
        &[
            "-n",
            ns,
            "patch",
            "pod",
            "web-pending",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Pending"}}"#,
        ],
    );
    let out = evict(&s, ns, "web-pending");
    assert!(out.status.success(), "pending pod eviction: {}", String::from_utf8_lossy(&out.stderr));

    // An unready pod under a short budget is guarded, unless the budget lets unhealthy pods go.
    set_ready(&s, ns, "web-3", false);
    eventually(&s, 20, "web-3 unready", || pdb_status(&s, ns) == "1/2/2/0/InsufficientPods");
    assert!(!evict(&s, ns, "web-3").status.success(), "web-3 is guarded (IfHealthyBudget)");
    s.ok(
        V,
        &[
            "-n",
            ns,
            "patch",
            "pdb",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"unhealthyPodEvictionPolicy":"AlwaysAllow"}}"#,
        ],
    );
    eventually(&s, 20, "policy observed", || jsonpath(&s, ns, "pdb/web", "{.status.observedGeneration}") == "2");
    let out = evict(&s, ns, "web-3");
    assert!(out.status.success(), "AlwaysAllow evicts unready pods: {}", String::from_utf8_lossy(&out.stderr));

    // Two budgets over one pod: upstream's 500.
    apply(
        &s,
        r#"{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"other","namespace":"pol"},
            "spec":{"maxUnavailable":1,"selector":{"matchLabels":{"app":"web"}}}}"#,
    );
    eventually(&s, 10, "second budget cached", || !jsonpath(&s, ns, "pdb/other", "{.metadata.uid}").is_empty());
    let out = evict(&s, ns, "web-2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        ),
        "{err}"
    );
    // maxUnavailable needs the pods' controllers: these pods have none, so the budget cannot be computed.
    eventually(&s, 20, "maxUnavailable over unmanaged pods", || {
        jsonpath(&s, ns, "pdb/other", "{.status.expectedPods}/{.status.disruptionsAllowed}") == "0/0"
    });
}

#[test]
fn percentages_use_the_controllers_scale() {
    let s = Server::start();
    let ns = "scale";
    s.ok(V, &["create", "namespace", ns]);
    apply(
        &s,
        r#"{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"web","namespace":"scale"},
            "spec":{"replicas":4,"selector":{"matchLabels":{"app":"web"}},
                    "template":{"metadata":{"labels":{"app":"web"}},
                                "spec":{"containers":[{"name":"c","image":"registry.k8s.io/pause:3.10"}]}}}}"#,
    );
    apply(
        &s,
        r#"{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"web","namespace":"scale"},
            "spec":{"minAvailable":"50%","selector":{"matchLabels":{"app":"web"}}}}"#,
    );
    // Expected pods come from the ReplicaSet's scale (4), whether or not its pods exist yet.
    eventually(&s, 30, "50% of 4 replicas", || pdb_status(&s, ns) == "0/2/4/0/InsufficientPods");
    eventually(&s, 30, "the replicaset's pods", || web_pods(&s, ns).len() == 4);
    for p in web_pods(&s, ns).iter().take(3) {
        set_ready(&s, ns, p, true);
    }
    eventually(&s, 20, "three ready of four", || pdb_status(&s, ns) == "3/2/4/1/SufficientPods");
    // maxUnavailable 30% of 4 rounds up to 2 unavailable.
    s.ok(
        V,
        &[
            "-n",
            ns,
            "patch",
            "pdb",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"minAvailable":null,"maxUnavailable":"30%"}}"#,
        ],
    );
    eventually(&s, 20, "maxUnavailable 30%", || {
        pdb_status(&s, ns) == "3/2/4/1/SufficientPods"
            && jsonpath(&s, ns, "pdb/web", "{.status.observedGeneration}") == "2"
    });
    s.ok(V, &["-n", ns, "scale", "replicaset", "web", "--replicas=8"]);
    eventually(&s, 20, "scaled to 8", || pdb_status(&s, ns).starts_with("3/5/8/0/"));

    // A DisruptionTarget condition older than two minutes on a pod that was not deleted is cleared.
    let pod = web_pods(&s, ns).remove(0);
    let stale = r#"{"status":{"conditions":[{"type":"DisruptionTarget","status":"True","reason":"EvictionByEvictionAPI",
        "message":"Eviction API: evicting","lastTransitionTime":"2020-01-01T00:00:00Z"}]}}"#;
    s.ok(V, &["-n", ns, "patch", "pod", &pod, "--subresource=status", "--type=merge", "-p", stale]);
    eventually(&s, 20, "stale DisruptionTarget cleared", || {
        jsonpath(&s, ns, &format!("pod/{pod}"), r#"{.status.conditions[?(@.type=="DisruptionTarget")].status}"#)
            == "False"
    });
}

#[test]
fn drain_retries_until_the_budget_allows() {
    let s = Server::start();
    let ns = "drain";
    s.ok(V, &["create", "namespace", ns]);
    node(&s, "n1");
    node(&s, "n2");
    running_pod(&s, ns, "web-0", "n1", true);
    running_pod(&s, ns, "web-1", "n1", true);
    running_pod(&s, ns, "web-2", "n2", true);
    apply(
        &s,
        r#"{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"web","namespace":"drain"},
            "spec":{"maxUnavailable":1,"selector":{"matchLabels":{"app":"web"}}}}"#,
    );
    // maxUnavailable over pods without controllers: expected pods 0, so no disruption until the pods have one.
    eventually(&s, 20, "budget computed", || pdb_status(&s, ns) == "3/0/0/0/InsufficientPods");
    s.ok(V, &["-n", ns, "delete", "pdb", "web"]);
    apply(
        &s,
        r#"{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"web","namespace":"drain"},
            "spec":{"minAvailable":2,"selector":{"matchLabels":{"app":"web"}}}}"#,
    );
    eventually(&s, 20, "budget allows one", || pdb_status(&s, ns) == "3/2/3/1/SufficientPods");

    let kubectl = common::kubectl_path(V).expect("kubectl 1.33");
    let mut drain = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args(["drain", "n1", "--force", "--grace-period=0", "--pod-selector=app=web", "--timeout=50s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kubectl drain");
    // One pod goes; the other waits on the budget.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pods = web_pods(&s, ns);
        if pods.len() == 2 && pods.contains(&"web-2".to_owned()) {
            break;
        }
        if Instant::now() > deadline || drain.try_wait().ok().flatten().is_some() {
            let _ = drain.kill();
            let out = drain.wait_with_output().expect("drain output");
            panic!(
                "one pod of n1 not evicted: {pods:?}\n{}\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                s.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(jsonpath(&s, "", "node/n1", "{.spec.unschedulable}"), "true", "drain cordons the node");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(web_pods(&s, ns).len(), 2, "the budget holds the last pod of n1 while it allows nothing");
    // A replacement elsewhere becomes ready: drain's next retry gets through.
    running_pod(&s, ns, "web-3", "n2", true);
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(st) = drain.try_wait().expect("wait for drain") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = drain.kill();
            panic!("kubectl drain did not finish\n{}", s.log_tail());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = drain.wait_with_output().expect("drain output");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(status.success(), "drain failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("node/n1 drained"), "{stdout}");
    assert!(
        stderr.contains("(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget."),
        "{stderr}"
    );
    let mut left = web_pods(&s, ns);
    left.sort();
    assert_eq!(left, ["web-2", "web-3"]);
}

fn used(s: &Server, ns: &str, resource: &str) -> String {
    jsonpath(s, ns, "resourcequota/q", &format!("{{.status.used.{}}}", resource.replace('.', "\\.")))
}

fn count(s: &Server, ns: &str, kind: &str) -> usize {
    s.ok(V, &["-n", ns, "get", kind, "-o", "name"]).lines().count()
}

#[test]
fn resource_quota_status_follows_the_namespace() {
    let s = Server::start();
    let ns = "quota";
    s.ok(V, &["create", "namespace", ns]);
    node(&s, "n1");
    apply(
        &s,
        r#"{"apiVersion":"v1","kind":"ResourceQuota","metadata":{"name":"q","namespace":"quota"},
            "spec":{"hard":{"pods":"10","configmaps":"10","requests.cpu":"4","limits.memory":"2Gi",
                            "count/secrets":"5"}}}"#,
    );
    eventually(&s, 20, "quota status", || {
        let cms = count(&s, ns, "configmaps").to_string();
        used(&s, ns, "pods") == "0" && used(&s, ns, "requests.cpu") == "0" && used(&s, ns, "configmaps") == cms
    });
    assert_eq!(jsonpath(&s, ns, "resourcequota/q", "{.status.hard.requests\\.cpu}"), "4");
    let base_cms = count(&s, ns, "configmaps");

    let pod = |name: &str, cpu: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"quota"}},
               "spec":{{"nodeName":"n1","containers":[{{"name":"c","image":"registry.k8s.io/pause:3.10",
               "resources":{{"requests":{{"cpu":"{cpu}"}},"limits":{{"cpu":"{cpu}","memory":"128Mi"}}}}}}]}}}}"#
        )
    };
    apply(&s, &pod("a", "500m"));
    apply(&s, &pod("b", "1"));
    s.ok(V, &["-n", ns, "create", "configmap", "one"]);
    s.ok(V, &["-n", ns, "create", "configmap", "two"]);
    let cms = (base_cms + 2).to_string();
    eventually(&s, 20, "usage after creates", || {
        used(&s, ns, "pods") == "2"
            && used(&s, ns, "requests.cpu") == "1500m"
            && used(&s, ns, "limits.memory") == "256Mi"
            && used(&s, ns, "configmaps") == cms
    });
    // A finished pod no longer counts; deleted objects neither.
    s.ok(
        V,
        &[
            "-n",
            ns,
            "patch",
            "pod",
            "b",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Succeeded"}}"#,
        ],
    );
    s.ok(V, &["-n", ns, "delete", "configmap", "one"]);
    let cms = (base_cms + 1).to_string();
    eventually(&s, 20, "usage after a pod finished and a configmap went", || {
        used(&s, ns, "pods") == "1" && used(&s, ns, "requests.cpu") == "500m" && used(&s, ns, "configmaps") == cms
    });
    let secrets = count(&s, ns, "secrets").to_string();
    eventually(&s, 20, "count/secrets", || used(&s, ns, "count/secrets") == secrets);
    let described = s.ok(V, &["-n", ns, "describe", "quota", "q"]);
    assert!(
        described.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["requests.cpu", "500m", "4"]),
        "{described}"
    );
}
