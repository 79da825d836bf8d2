//! The Endpoints, EndpointSlice and EndpointSlice mirroring controllers against a real `rkube server` and
//! kubectl 1.33, without scheduler or simulated nodes: pods are bound to a Node object created here and
//! their status is written with `kubectl patch --subresource=status`. Waits are polls with deadlines.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use serde_json::{Value, json};

const V: &str = "1.33";

/// Polls `check` until it returns `Some`, failing with `what` (and the last value seen) after `secs`.
fn eventually<T>(s: &Server, secs: u64, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "not within {secs} s: {what}\nlast seen: {last}\nserver log:\n{}",
                s.log_tail()
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn get_json(s: &Server, args: &[&str]) -> Option<Value> {
    let mut full = args.to_vec();
    full.extend(["-o", "json"]);
    let out = s.kubectl(V, &full);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn create(s: &Server, obj: &Value) {
    // Pods wait for their namespace's default ServiceAccount, which a controller creates.
    eventually(s, 30, &format!("create {}", obj["metadata"]["name"]), || {
        let out = s.kubectl_stdin(V, &["create", "-f", "-"], &obj.to_string());
        if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
    });
}

fn node(s: &Server, name: &str, zone: &str) {
    create(
        s,
        &json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}}}),
    );
}

/// A pod bound to `node` with labels, a container port named `http`, and optional extra spec fields.
fn pod(s: &Server, name: &str, labels: Value, http_port: i32, extra_spec: Value) {
    let mut spec = json!({
        "nodeName": "n1",
        "containers": [{"name": "c", "image": "nginx", "ports": [{"name": "http", "containerPort": http_port}]}]
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        spec.extend(extra.clone());
    }
    create(s, &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec}));
}

/// Writes the pod's status as a kubelet would: Running with `ip`, Ready or not.
fn set_status(s: &Server, name: &str, ip: &str, ready: bool) {
    let status = json!({"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    }});
    s.ok(V, &["patch", "pod", name, "--subresource=status", "--type=merge", "-p", &status.to_string()]);
}

fn service(s: &Server, obj: Value) {
    create(s, &obj);
}

/// `(ip, hostname)` of each address of each subset, as `(ready, not ready, ports)` per subset, sorted.
type Subsets = Vec<(Vec<String>, Vec<String>, Vec<i64>)>;

fn subsets(ep: &Value) -> Subsets {
    let ips = |v: &Value| -> Vec<String> {
        v.as_array().into_iter().flatten().map(|a| a["ip"].as_str().unwrap_or("").to_owned()).collect()
    };
    let mut out: Subsets = ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|ss| {
            let ports = ss["ports"].as_array().into_iter().flatten().filter_map(|p| p["port"].as_i64()).collect();
            (ips(&ss["addresses"]), ips(&ss["notReadyAddresses"]), ports)
        })
        .collect();
    out.sort();
    out
}

/// The slices of service `svc` managed by `manager`.
fn slices(s: &Server, svc: &str, manager: &str) -> Vec<Value> {
    let sel = format!("kubernetes.io/service-name={svc},endpointslice.kubernetes.io/managed-by={manager}");
    get_json(s, &["get", "endpointslices", "-l", &sel]).and_then(|l| l["items"].as_array().cloned()).unwrap_or_default()
}

/// Every endpoint of `slices` as `(address, ready, serving, terminating, port numbers)`, sorted.
fn slice_endpoints(slices: &[Value]) -> Vec<(String, bool, bool, bool, Vec<i64>)> {
    let mut out: Vec<_> = slices
        .iter()
        .flat_map(|sl| {
            let ports: Vec<i64> =
                sl["ports"].as_array().into_iter().flatten().filter_map(|p| p["port"].as_i64()).collect();
            sl["endpoints"].as_array().cloned().unwrap_or_default().into_iter().map(move |e| {
                let c = &e["conditions"];
                (
                    e["addresses"][0].as_str().unwrap_or("").to_owned(),
                    c["ready"].as_bool().unwrap_or(false),
                    c["serving"].as_bool().unwrap_or(false),
                    c["terminating"].as_bool().unwrap_or(false),
                    ports.clone(),
                )
            })
        })
        .collect();
    out.sort();
    out
}

const SLICES: &str = "endpointslice-controller.k8s.io";
const MIRROR: &str = "endpointslicemirroring-controller.k8s.io";

#[test]
fn endpoints_and_slices_follow_readiness_named_ports_and_termination() {
    let s = Server::start();
    node(&s, "n1", "zone-a");
    service(
        &s,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"team": "a"}},
               "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}),
    );
    pod(&s, "a", json!({"app": "web"}), 8080, json!({}));
    pod(&s, "b", json!({"app": "web"}), 9090, json!({}));
    pod(&s, "other", json!({"app": "other"}), 8080, json!({}));
    set_status(&s, "a", "10.1.0.1", true);
    set_status(&s, "b", "10.1.0.2", false);
    set_status(&s, "other", "10.1.0.9", true);

    // Endpoints: the named port resolves per pod, so each pod has its own subset.
    let want: Subsets =
        vec![(vec![], vec!["10.1.0.2".into()], vec![9090]), (vec!["10.1.0.1".into()], vec![], vec![8080])];
    let ep = eventually(&s, 30, "Endpoints web with a ready and a not-ready address", || {
        let ep = get_json(&s, &["get", "endpoints", "web"]).ok_or("no endpoints")?;
        if subsets(&ep) == want { Ok(ep) } else { Err(ep.to_string()) }
    });
    assert_eq!(ep["metadata"]["labels"], json!({"team": "a"}), "{ep}");
    assert!(ep["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"].is_string(), "{ep}");
    let addr = &ep["subsets"]
        .as_array()
        .and_then(|l| l.iter().find(|ss| ss["addresses"].is_array()))
        .cloned()
        .unwrap_or_default()["addresses"][0];
    assert_eq!(addr["nodeName"], "n1");
    assert_eq!(addr["targetRef"]["kind"], "Pod");
    assert_eq!(addr["targetRef"]["name"], "a");
    let table = s.ok(V, &["get", "endpoints", "web"]);
    assert!(table.contains("10.1.0.1:8080"), "{table}");

    // Slices: one per resolved port set, with conditions, node, zone and the reserved labels.
    let got = eventually(&s, 30, "two EndpointSlices for web", || {
        let l = slices(&s, "web", SLICES);
        let eps = slice_endpoints(&l);
        if eps.len() == 2 { Ok(l) } else { Err(format!("{l:?}")) }
    });
    assert_eq!(
        slice_endpoints(&got),
        [("10.1.0.1".into(), true, true, false, vec![8080]), ("10.1.0.2".into(), false, false, false, vec![9090])]
    );
    for sl in &got {
        assert_eq!(sl["addressType"], "IPv4");
        assert_eq!(sl["metadata"]["generateName"], "web-");
        assert_eq!(sl["metadata"]["labels"]["team"], "a");
        assert!(sl["metadata"]["labels"].get("service.kubernetes.io/headless").is_none());
        assert_eq!(sl["metadata"]["ownerReferences"][0]["kind"], "Service");
        assert_eq!(sl["metadata"]["ownerReferences"][0]["name"], "web");
        assert_eq!(sl["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(sl["endpoints"][0]["nodeName"], "n1");
        assert_eq!(sl["endpoints"][0]["zone"], "zone-a");
        assert_eq!(sl["endpoints"][0]["targetRef"]["kind"], "Pod");
        assert_eq!(sl["ports"][0]["name"], "http");
        assert_eq!(sl["ports"][0]["protocol"], "TCP");
        assert!(sl["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"].is_string());
    }
    let names: Vec<String> = got.iter().map(|sl| sl["metadata"]["name"].as_str().unwrap_or("").to_owned()).collect();

    // b turns ready: updated in place (same slices).
    set_status(&s, "b", "10.1.0.2", true);
    eventually(&s, 30, "b ready in Endpoints and slices", || {
        let ep = get_json(&s, &["get", "endpoints", "web"]).ok_or("no endpoints")?;
        let l = slices(&s, "web", SLICES);
        let ok =
            subsets(&ep).iter().all(|ss| ss.1.is_empty()) && slice_endpoints(&l).iter().all(|e| e.1 && e.2 && !e.3);
        if ok { Ok(()) } else { Err(format!("{ep} {l:?}")) }
    });
    let mut now: Vec<String> =
        slices(&s, "web", SLICES).iter().map(|sl| sl["metadata"]["name"].as_str().unwrap_or("").to_owned()).collect();
    now.sort();
    let mut before = names.clone();
    before.sort();
    assert_eq!(now, before, "slices were replaced instead of updated");

    // a is being deleted (held by a finalizer): gone from Endpoints, terminating in its slice.
    s.ok(V, &["patch", "pod", "a", "--type=merge", "-p", r#"{"metadata":{"finalizers":["example.com/hold"]}}"#]);
    s.ok(V, &["delete", "pod", "a", "--wait=false"]);
    eventually(&s, 30, "a terminating", || {
        let ep = get_json(&s, &["get", "endpoints", "web"]).ok_or("no endpoints")?;
        let l = slices(&s, "web", SLICES);
        let ok = subsets(&ep) == vec![(vec!["10.1.0.2".into()], vec![], vec![9090])]
            && slice_endpoints(&l)
                == [
                    ("10.1.0.1".into(), false, true, true, vec![8080]),
                    ("10.1.0.2".into(), true, true, false, vec![9090]),
                ];
        if ok { Ok(()) } else { Err(format!("{ep} {l:?}")) }
    });
    // No kubelet confirms the deletion here: release the finalizer and force it.
    s.ok(V, &["patch", "pod", "a", "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
    eventually(&s, 30, "pod a force-deleted", || {
        let _ = s.kubectl(V, &["delete", "pod", "a", "--grace-period=0", "--force", "--wait=false"]);
        if get_json(&s, &["get", "pod", "a"]).is_none() { Ok(()) } else { Err("pod a still there".into()) }
    });
    eventually(&s, 30, "a gone from the slices", || {
        let eps = slice_endpoints(&slices(&s, "web", SLICES));
        if eps.len() == 1 { Ok(()) } else { Err(format!("{eps:?}")) }
    });
}

#[test]
fn headless_services_publish_hostnames_and_not_ready_addresses() {
    let s = Server::start();
    node(&s, "n1", "zone-a");
    service(
        &s,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
               "spec": {"clusterIP": "None", "selector": {"app": "db"}, "publishNotReadyAddresses": true}}),
    );
    for (name, ip, ready) in [("db-0", "10.1.0.10", true), ("db-1", "10.1.0.11", false)] {
        pod(&s, name, json!({"app": "db"}), 5432, json!({"hostname": name, "subdomain": "db"}));
        set_status(&s, name, ip, ready);
    }
    let ep = eventually(&s, 30, "Endpoints db with both pods ready and named", || {
        let ep = get_json(&s, &["get", "endpoints", "db"]).ok_or("no endpoints")?;
        let want: Subsets = vec![(vec!["10.1.0.10".into(), "10.1.0.11".into()], vec![], vec![])];
        if subsets(&ep) == want { Ok(ep) } else { Err(ep.to_string()) }
    });
    assert_eq!(ep["metadata"]["labels"]["service.kubernetes.io/headless"], "");
    let hosts: Vec<&str> =
        ep["subsets"][0]["addresses"].as_array().into_iter().flatten().filter_map(|a| a["hostname"].as_str()).collect();
    assert_eq!(hosts, ["db-0", "db-1"]);
    assert!(ep["subsets"][0].get("ports").is_none(), "{ep}");

    let l = eventually(&s, 30, "slices of db", || {
        let l = slices(&s, "db", SLICES);
        if slice_endpoints(&l).len() == 2 { Ok(l) } else { Err(format!("{l:?}")) }
    });
    assert_eq!(
        slice_endpoints(&l),
        [("10.1.0.10".into(), true, true, false, vec![]), ("10.1.0.11".into(), true, false, false, vec![])]
    );
    assert_eq!(l[0]["metadata"]["labels"]["service.kubernetes.io/headless"], "");
    let mut hosts: Vec<String> = l[0]["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["hostname"].as_str().map(str::to_owned))
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["db-0", "db-1"]);
}

#[test]
fn selector_changes_move_endpoints_and_deleting_the_service_removes_them() {
    let s = Server::start();
    node(&s, "n1", "zone-a");
    service(
        &s,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
               "spec": {"selector": {"app": "blue"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
    );
    pod(&s, "blue", json!({"app": "blue"}), 8080, json!({}));
    pod(&s, "green", json!({"app": "green"}), 8080, json!({}));
    set_status(&s, "blue", "10.1.0.21", true);
    set_status(&s, "green", "10.1.0.22", true);
    let only = |ip: &str| -> Subsets { vec![(vec![ip.to_owned()], vec![], vec![8080])] };
    let ready_in_slices = |ip: &str| vec![(ip.to_owned(), true, true, false, vec![8080])];
    eventually(&s, 30, "blue selected", || {
        let ep = get_json(&s, &["get", "endpoints", "svc"]).ok_or("no endpoints")?;
        let l = slice_endpoints(&slices(&s, "svc", SLICES));
        if subsets(&ep) == only("10.1.0.21") && l == ready_in_slices("10.1.0.21") {
            Ok(())
        } else {
            Err(format!("{ep} {l:?}"))
        }
    });
    s.ok(V, &["patch", "service", "svc", "--type=merge", "-p", r#"{"spec":{"selector":{"app":"green"}}}"#]);
    eventually(&s, 30, "green selected", || {
        let ep = get_json(&s, &["get", "endpoints", "svc"]).ok_or("no endpoints")?;
        let l = slice_endpoints(&slices(&s, "svc", SLICES));
        if subsets(&ep) == only("10.1.0.22") && l == ready_in_slices("10.1.0.22") {
            Ok(())
        } else {
            Err(format!("{ep} {l:?}"))
        }
    });
    // A pod relabelled into the selector joins.
    s.ok(V, &["label", "pod", "blue", "app=green", "--overwrite"]);
    eventually(&s, 30, "relabelled pod joins", || {
        let ep = get_json(&s, &["get", "endpoints", "svc"]).ok_or("no endpoints")?;
        let want: Subsets = vec![(vec!["10.1.0.21".into(), "10.1.0.22".into()], vec![], vec![8080])];
        if subsets(&ep) == want { Ok(()) } else { Err(ep.to_string()) }
    });
    s.ok(V, &["delete", "service", "svc"]);
    eventually(&s, 30, "Endpoints and slices of svc gone", || {
        let ep = get_json(&s, &["get", "endpoints", "svc"]);
        let l = slices(&s, "svc", SLICES);
        if ep.is_none() && l.is_empty() { Ok(()) } else { Err(format!("{ep:?} {l:?}")) }
    });
}

#[test]
fn selectorless_services_keep_user_endpoints_mirrored_into_slices() {
    let s = Server::start();
    service(
        &s,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
               "spec": {"ports": [{"name": "https", "port": 443}]}}),
    );
    create(
        &s,
        &json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext", "labels": {"team": "b"}},
                "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "notReadyAddresses": [{"ip": "192.0.2.11"}],
                             "ports": [{"name": "https", "port": 443}]}]}),
    );
    let l = eventually(&s, 30, "mirrored slice of ext", || {
        let l = slices(&s, "ext", MIRROR);
        if slice_endpoints(&l).len() == 2 { Ok(l) } else { Err(format!("{l:?}")) }
    });
    let eps: Vec<(String, bool)> = slice_endpoints(&l).into_iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(eps, [("192.0.2.10".into(), true), ("192.0.2.11".into(), false)]);
    assert_eq!(l[0]["metadata"]["labels"]["team"], "b");
    assert_eq!(l[0]["metadata"]["ownerReferences"][0]["kind"], "Endpoints");
    assert_eq!(l[0]["ports"][0]["port"], 443);
    // The user's Endpoints stay as written, and no controller slices are made for a selectorless service.
    let ep = get_json(&s, &["get", "endpoints", "ext"]).expect("endpoints ext");
    assert_eq!(subsets(&ep), vec![(vec!["192.0.2.10".into()], vec!["192.0.2.11".into()], vec![443])]);
    assert!(slices(&s, "ext", SLICES).is_empty());
    // The API server's own endpoints are neither touched nor mirrored.
    assert!(slices(&s, "kubernetes", MIRROR).is_empty());

    // An edit is mirrored; deleting the Endpoints removes the mirror.
    s.ok(
        V,
        &[
            "patch",
            "endpoints",
            "ext",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/subsets/0/notReadyAddresses"}]"#,
        ],
    );
    eventually(&s, 30, "edit mirrored", || {
        let eps = slice_endpoints(&slices(&s, "ext", MIRROR));
        if eps.len() == 1 { Ok(()) } else { Err(format!("{eps:?}")) }
    });
    s.ok(V, &["delete", "endpoints", "ext"]);
    eventually(&s, 30, "mirror removed", || {
        let l = slices(&s, "ext", MIRROR);
        if l.is_empty() { Ok(()) } else { Err(format!("{l:?}")) }
    });
}

#[test]
fn a_burst_of_pod_changes_is_written_in_few_updates_and_no_change_writes_nothing() {
    let s = Server::start();
    node(&s, "n1", "zone-a");
    service(
        &s,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "burst"},
               "spec": {"selector": {"app": "burst"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
    );
    let names: Vec<String> = (0..16).map(|i| format!("p{i}")).collect();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": names.iter().map(|n| json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": n, "labels": {"app": "burst"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]}})).collect::<Vec<_>>()});
    create(&s, &list);
    let rv = |what: &str| -> String { s.ok(V, &["get", what, "-o", "jsonpath={.metadata.resourceVersion}"]) };
    eventually(&s, 30, "Endpoints burst exist", || {
        get_json(&s, &["get", "endpoints", "burst"]).ok_or_else(String::new)
    });

    // Count the writes of the Endpoints object while every pod becomes ready at once.
    let bin = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";
    let watch = std::process::Command::new(bin)
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args(["get", "endpoints", "burst", "--watch-only", "-o", "jsonpath={.metadata.resourceVersion}{\"\\n\"}"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl watch");
    std::thread::sleep(Duration::from_millis(500)); // the watch is established
    // One kubectl writing all 16 statuses back to back: a burst well inside one batch period.
    let mut pods = get_json(&s, &["get", "pods", "-l", "app=burst"]).expect("the pods");
    for (i, p) in pods["items"].as_array_mut().into_iter().flatten().enumerate() {
        let ip = format!("10.2.0.{}", i + 1);
        p["status"] = json!({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
    }
    let started = Instant::now();
    let out = s.kubectl_stdin(V, &["replace", "--subresource=status", "-f", "-"], &pods.to_string());
    // One write per 500 ms batch period the burst lasted, plus one for a period straddling its end.
    let allowed = started.elapsed().as_millis() as usize / 500 + 2;
    assert!(out.status.success(), "replace statuses: {}", String::from_utf8_lossy(&out.stderr));
    eventually(&s, 30, "all 16 addresses published", || {
        let ep = get_json(&s, &["get", "endpoints", "burst"]).ok_or("no endpoints")?;
        let n = subsets(&ep).first().map_or(0, |ss| ss.0.len());
        if n == 16 { Ok(()) } else { Err(ep.to_string()) }
    });
    let settled = rv("endpoints/burst");
    std::thread::sleep(Duration::from_millis(1500)); // longer than the batch period: any late write shows
    let pid = watch.id().to_string();
    let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
    let out = watch.wait_with_output().expect("watch output");
    let writes = String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()).count();
    eprintln!("Endpoints writes during the burst: {writes} (allowed {allowed})");
    assert!((1..=allowed).contains(&writes), "16 pod changes made {writes} Endpoints writes (allowed {allowed})");
    assert_eq!(rv("endpoints/burst"), settled);

    // A change that does not concern endpoints (an annotation) writes nothing.
    let slice_rvs = || -> Vec<String> {
        let mut v: Vec<String> = slices(&s, "burst", SLICES)
            .iter()
            .map(|sl| sl["metadata"]["resourceVersion"].as_str().unwrap_or("").to_owned())
            .collect();
        v.sort();
        v
    };
    let before = slice_rvs();
    s.ok(V, &["annotate", "pod", "p0", "example.com/note=x"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(rv("endpoints/burst"), settled);
    assert_eq!(slice_rvs(), before);
}
