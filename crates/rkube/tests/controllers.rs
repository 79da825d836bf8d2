//! The controllers against a real `rkube server` and real kubectl 1.33: every namespace gets its `default`
//! ServiceAccount and `kube-root-ca.crt`, deleting a namespace deletes its content, the garbage collector
//! honours background, orphan and foreground deletion, and an idle cluster makes few API requests.
//! Waits are polls with deadlines, never timed assertions.

mod common;

use std::time::{Duration, Instant};

use common::Server;

const V: &str = "1.33";

/// Polls `check` until it holds, failing with `what` and the server log after `secs` seconds.
fn eventually(s: &Server, secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "not within {secs} s: {what}\nserver log:\n{}", s.log_tail());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// kubectl's stdout if it succeeded.
fn get(s: &Server, args: &[&str]) -> Option<String> {
    let out = s.kubectl(V, args);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn exists(s: &Server, args: &[&str]) -> bool {
    get(s, args).is_some()
}

fn uid(s: &Server, ns: &str, kind_name: &str) -> String {
    s.ok(V, &["-n", ns, "get", kind_name, "-o", "jsonpath={.metadata.uid}"])
}

/// A ConfigMap `name` owned by the ConfigMaps `owners` (name, uid), through `kubectl create -f -`.
fn create_dependent(s: &Server, ns: &str, name: &str, owners: &[(&str, &str)], block: bool) {
    let refs: Vec<String> = owners
        .iter()
        .map(|(n, u)| {
            format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","name":"{n}","uid":"{u}","blockOwnerDeletion":{block}}}"#)
        })
        .collect();
    let manifest = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","namespace":"{ns}","ownerReferences":[{}]}},"data":{{"k":"v"}}}}"#,
        refs.join(",")
    );
    let out = s.kubectl_stdin(V, &["create", "-f", "-"], &manifest);
    assert!(out.status.success(), "create {name}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn namespaces_get_a_default_service_account_and_the_root_ca() {
    let s = Server::start();
    let ca = std::fs::read_to_string(s.dir.path().join("server/tls/ca.crt")).expect("the cluster CA");
    for ns in ["default", "kube-system"] {
        eventually(&s, 30, &format!("default serviceaccount in {ns}"), || {
            exists(&s, &["-n", ns, "get", "serviceaccount", "default"])
        });
    }
    s.ok(V, &["create", "namespace", "fresh"]);
    eventually(&s, 30, "default serviceaccount in fresh", || {
        exists(&s, &["-n", "fresh", "get", "serviceaccount", "default"])
    });
    eventually(&s, 30, "kube-root-ca.crt in fresh", || {
        get(&s, &["-n", "fresh", "get", "configmap", "kube-root-ca.crt", "-o", "jsonpath={.data.ca\\.crt}"])
            .is_some_and(|pem| pem.trim() == ca.trim())
    });
    // Deleted: created again (a new object).
    let first = uid(&s, "fresh", "serviceaccount/default");
    s.ok(V, &["-n", "fresh", "delete", "serviceaccount", "default"]);
    eventually(&s, 30, "default serviceaccount re-created", || {
        get(&s, &["-n", "fresh", "get", "serviceaccount", "default", "-o", "jsonpath={.metadata.uid}"])
            .is_some_and(|u| !u.is_empty() && u != first)
    });
    // Changed: put back.
    s.ok(
        V,
        &[
            "-n",
            "fresh",
            "patch",
            "configmap",
            "kube-root-ca.crt",
            "--type=merge",
            "-p",
            r#"{"data":{"ca.crt":"tampered"}}"#,
        ],
    );
    eventually(&s, 30, "kube-root-ca.crt repaired", || {
        get(&s, &["-n", "fresh", "get", "configmap", "kube-root-ca.crt", "-o", "jsonpath={.data.ca\\.crt}"])
            .is_some_and(|pem| pem.trim() == ca.trim())
    });
    s.ok(V, &["-n", "fresh", "delete", "configmap", "kube-root-ca.crt"]);
    eventually(&s, 30, "kube-root-ca.crt re-created", || {
        exists(&s, &["-n", "fresh", "get", "configmap", "kube-root-ca.crt"])
    });
    // The controller manager holds its lease.
    let holder = s.ok(
        V,
        &["-n", "kube-system", "get", "lease", "kube-controller-manager", "-o", "jsonpath={.spec.holderIdentity}"],
    );
    assert!(holder.starts_with("test-node_"), "{holder}");
}

#[test]
fn deleting_a_namespace_deletes_its_content() {
    let s = Server::start();
    s.ok(V, &["create", "namespace", "doomed"]);
    for i in 0..3 {
        s.ok(V, &["-n", "doomed", "create", "configmap", &format!("cm{i}"), "--from-literal=a=b"]);
        s.ok(V, &["-n", "doomed", "create", "secret", "generic", &format!("s{i}"), "--from-literal=a=b"]);
    }
    // kubectl waits for the namespace to be gone by default.
    s.ok(V, &["delete", "namespace", "doomed", "--timeout=60s"]);
    let err = s.fails(V, &["get", "namespace", "doomed"]);
    assert!(err.contains("not found"), "{err}");
    for kind in ["configmaps", "secrets", "serviceaccounts"] {
        let left = s.ok(V, &["get", kind, "-A", "--field-selector", "metadata.namespace=doomed", "-o", "name"]);
        assert!(left.trim().is_empty(), "{kind} left in doomed: {left}");
    }
    // The name can be used again, and starts empty (but for what the controllers add).
    s.ok(V, &["create", "namespace", "doomed"]);
    let cms = s.ok(V, &["-n", "doomed", "get", "configmaps", "-o", "name"]);
    assert!(!cms.contains("cm0"), "{cms}");
}

#[test]
fn a_namespace_waits_for_finalizers_and_says_so() {
    let s = Server::start();
    s.ok(V, &["create", "namespace", "held"]);
    let manifest = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"held","namespace":"held","finalizers":["example.com/hold"]}}"#;
    let out = s.kubectl_stdin(V, &["create", "-f", "-"], manifest);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.ok(V, &["delete", "namespace", "held", "--wait=false"]);
    eventually(&s, 30, "NamespaceFinalizersRemaining condition", || {
        get(
            &s,
            &[
                "get",
                "namespace",
                "held",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"NamespaceFinalizersRemaining\")].message}",
            ],
        )
        .is_some_and(|m| m.contains("example.com/hold in 1 resource instances"))
    });
    let phase = s.ok(V, &["get", "namespace", "held", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "Terminating");
    let remaining = s.ok(
        V,
        &[
            "get",
            "namespace",
            "held",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"NamespaceContentRemaining\")].message}",
        ],
    );
    assert!(remaining.contains("configmaps. has 1 resource instances"), "{remaining}");
    // Releasing the finalizer lets the namespace go.
    s.ok(V, &["-n", "held", "patch", "configmap", "held", "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
    eventually(&s, 60, "namespace held deleted", || !exists(&s, &["get", "namespace", "held"]));
}

#[test]
fn garbage_collector_background_orphan_and_foreground() {
    let s = Server::start();
    let ns = "gc";
    s.ok(V, &["create", "namespace", ns]);

    // Background (kubectl's default): the dependent goes after its owner.
    s.ok(V, &["-n", ns, "create", "configmap", "owner"]);
    let owner = uid(&s, ns, "configmap/owner");
    create_dependent(&s, ns, "dep", &[("owner", &owner)], false);
    s.ok(V, &["-n", ns, "delete", "configmap", "owner"]);
    eventually(&s, 30, "background: dep deleted", || !exists(&s, &["-n", ns, "get", "configmap", "dep"]));

    // Orphan: the owner goes, the dependent stays without the reference.
    s.ok(V, &["-n", ns, "create", "configmap", "owner2"]);
    let owner2 = uid(&s, ns, "configmap/owner2");
    create_dependent(&s, ns, "dep2", &[("owner2", &owner2)], false);
    s.ok(V, &["-n", ns, "delete", "configmap", "owner2", "--cascade=orphan", "--timeout=60s"]);
    assert!(!exists(&s, &["-n", ns, "get", "configmap", "owner2"]), "owner2 should be gone once kubectl returns");
    let refs = s.ok(V, &["-n", ns, "get", "configmap", "dep2", "-o", "jsonpath={.metadata.ownerReferences}"]);
    assert!(refs.trim().is_empty() || refs.trim() == "[]", "dep2 still has owner references: {refs}");

    // Foreground: the owner goes only after its blocking dependent.
    s.ok(V, &["-n", ns, "create", "configmap", "owner3"]);
    let owner3 = uid(&s, ns, "configmap/owner3");
    create_dependent(&s, ns, "dep3", &[("owner3", &owner3)], true);
    s.ok(V, &["-n", ns, "delete", "configmap", "owner3", "--cascade=foreground", "--timeout=60s"]);
    assert!(!exists(&s, &["-n", ns, "get", "configmap", "owner3"]), "owner3 should be gone once kubectl returns");
    assert!(!exists(&s, &["-n", ns, "get", "configmap", "dep3"]), "dep3 must be gone before owner3");
}

#[test]
fn garbage_collector_checks_owners_by_uid() {
    let s = Server::start();
    let ns = "gc2";
    s.ok(V, &["create", "namespace", ns]);
    // An owner that never existed (a uid nobody has): the dependent is collected.
    create_dependent(&s, ns, "stray", &[("ghost", "00000000-0000-0000-0000-000000000000")], false);
    eventually(&s, 30, "stray deleted", || !exists(&s, &["-n", ns, "get", "configmap", "stray"]));
    // The owner's name exists with another uid: not the owner, collected too.
    s.ok(V, &["-n", ns, "create", "configmap", "namesake"]);
    create_dependent(&s, ns, "fooled", &[("namesake", "11111111-1111-1111-1111-111111111111")], false);
    eventually(&s, 30, "fooled deleted", || !exists(&s, &["-n", ns, "get", "configmap", "fooled"]));
    assert!(exists(&s, &["-n", ns, "get", "configmap", "namesake"]));
    // Two owners, one deleted: the dependent stays, with the live owner's reference only.
    s.ok(V, &["-n", ns, "create", "configmap", "a"]);
    s.ok(V, &["-n", ns, "create", "configmap", "b"]);
    let (a, b) = (uid(&s, ns, "configmap/a"), uid(&s, ns, "configmap/b"));
    create_dependent(&s, ns, "shared", &[("a", &a), ("b", &b)], false);
    s.ok(V, &["-n", ns, "delete", "configmap", "a"]);
    eventually(&s, 30, "shared keeps only b", || {
        get(&s, &["-n", ns, "get", "configmap", "shared", "-o", "jsonpath={.metadata.ownerReferences[*].name}"])
            .is_some_and(|n| n.trim() == "b")
    });
    // A live owner keeps its dependent.
    std::thread::sleep(Duration::from_secs(2));
    assert!(exists(&s, &["-n", ns, "get", "configmap", "shared"]));
}

/// The sum of `apiserver_request_total` over all series.
fn requests(s: &Server) -> f64 {
    let metrics = s.ok(V, &["get", "--raw", "/metrics"]);
    metrics
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn an_idle_cluster_makes_few_requests() {
    let s = Server::start();
    // Let the controllers start, list and settle.
    eventually(&s, 30, "default serviceaccount", || exists(&s, &["-n", "default", "get", "serviceaccount", "default"]));
    std::thread::sleep(Duration::from_secs(5));
    let before = requests(&s);
    let window = Duration::from_secs(20);
    std::thread::sleep(window);
    let after = requests(&s);
    // Two of these are this test's own /metrics reads; lease renewals every 2 s are the expected rest.
    let per_second = (after - before) / window.as_secs_f64();
    assert!(
        per_second < 2.0,
        "{} requests in {window:?} ({per_second:.2}/s) while idle\nserver log:\n{}",
        after - before,
        s.log_tail()
    );
}

#[test]
fn two_servers_on_one_store_elect_one_controller_manager() {
    let mut a = Server::start();
    let holder = |out: Option<String>| out.unwrap_or_default().trim().to_owned();
    let lease =
        ["-n", "kube-system", "get", "lease", "kube-controller-manager", "-o", "jsonpath={.spec.holderIdentity}"];
    eventually(&a, 30, "a holds the lease", || !holder(get(&a, &lease)).is_empty());
    let first = holder(get(&a, &lease));
    let b = common::Peer::start(a.dir.path());
    // The standby does not take a lease that is being renewed.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(holder(b.kubectl(&lease)), first, "the lease moved while its holder renews it");
    let peer_log = std::fs::read_to_string(&b.log).unwrap_or_default();
    assert!(!peer_log.contains("became leader"), "the standby started its controllers:\n{peer_log}");
    // The leader stops (and releases the lease): the standby takes over and acts.
    a.stop();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = holder(b.kubectl(&lease));
        if !now.is_empty() && now != first {
            break;
        }
        assert!(Instant::now() < deadline, "the standby did not take the lease (holder {now:?})");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(b.kubectl(&["create", "namespace", "after-failover"]).is_some());
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.kubectl(&["-n", "after-failover", "get", "serviceaccount", "default"]).is_none() {
        assert!(
            Instant::now() < deadline,
            "the new leader's controllers do not act:\n{}",
            std::fs::read_to_string(&b.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

const CRD: &str = r#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
"metadata":{"name":"widgets.example.com"},
"spec":{"group":"example.com","scope":"Namespaced","names":{"plural":"widgets","singular":"widget","kind":"Widget"},
"versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}]}}"#;

#[test]
fn custom_resources_are_collected_and_deleted_with_their_namespace() {
    let s = Server::start();
    let out = s.kubectl_stdin(V, &["create", "-f", "-"], CRD);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.ok(V, &["wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=30s"]);
    s.ok(V, &["create", "namespace", "crs"]);
    s.ok(V, &["-n", "crs", "create", "configmap", "owner"]);
    let owner = uid(&s, "crs", "configmap/owner");
    let owned = format!(
        r#"{{"apiVersion":"example.com/v1","kind":"Widget","metadata":{{"name":"owned","namespace":"crs","ownerReferences":[{{"apiVersion":"v1","kind":"ConfigMap","name":"owner","uid":"{owner}"}}]}}}}"#
    );
    let loose = r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"loose","namespace":"crs"}}"#;
    for manifest in [owned.as_str(), loose] {
        let out = s.kubectl_stdin(V, &["create", "-f", "-"], manifest);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // The collector learns of the new resource from the CRD and collects its objects too.
    s.ok(V, &["-n", "crs", "delete", "configmap", "owner"]);
    eventually(&s, 30, "the owned widget collected", || !exists(&s, &["-n", "crs", "get", "widgets", "owned"]));
    assert!(exists(&s, &["-n", "crs", "get", "widgets", "loose"]));
    // The namespace controller finds custom resources by discovery too.
    s.ok(V, &["delete", "namespace", "crs", "--timeout=60s"]);
    let left = s.ok(V, &["get", "widgets", "-A", "-o", "name"]);
    assert!(left.trim().is_empty(), "widgets left: {left}");
}
