//! The ReplicaSet, ReplicationController and Deployment controllers against a real `rkube server`, real
//! kubectl 1.33 and simulated nodes (`rkube sim nodes`, which run bound pods Ready): rolling updates that
//! keep availability, `kubectl rollout status/history/undo`, cascading and orphaning deletes, pod
//! replacement, adoption and release, quota failures, and `kubectl scale rc`. Waits are polls with deadlines.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Server, Sim, apply, eventually, json};
use serde_json::Value;

const V: &str = "1.33";

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn ready(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn ready_pods(s: &Server, selector: &str) -> Vec<Value> {
    items(&json(s, &["get", "pods", "-l", selector])).into_iter().filter(ready).collect()
}

fn live_pods(s: &Server, selector: &str) -> Vec<Value> {
    items(&json(s, &["get", "pods", "-l", selector]))
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn replica_sets(s: &Server, selector: &str) -> Vec<Value> {
    items(&json(s, &["get", "rs", "-l", selector]))
}

fn annotation(obj: &Value, key: &str) -> String {
    obj["metadata"]["annotations"][key].as_str().unwrap_or("").to_owned()
}

fn events(s: &Server, reason: &str) -> Vec<String> {
    let v = json(s, &["get", "events", "--field-selector", &format!("reason={reason}")]);
    items(&v).iter().filter_map(|e| e["message"].as_str().map(str::to_owned)).collect()
}

fn image_of(pod: &Value) -> String {
    pod["spec"]["containers"][0]["image"].as_str().unwrap_or("").to_owned()
}

fn deployment(name: &str, replicas: u32, image: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
{extra_spec}  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: c
        image: {image}
"
    )
}

/// Watches a rollout from a thread: the fewest available replicas in the Deployment's status and the
/// fewest ready, not-terminating pods seen, and how many samples were taken.
struct AvailabilityProbe {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<(i64, usize, usize)>,
}

impl AvailabilityProbe {
    fn start(kubeconfig: PathBuf, name: &'static str) -> AvailabilityProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let (mut min_status, mut min_pods, mut samples) = (i64::MAX, usize::MAX, 0);
            while !flag.load(Ordering::SeqCst) {
                let d = common::kubectl_with(V, &kubeconfig, &["get", "deployment", name, "-o", "json"], None);
                let pods = common::kubectl_with(
                    V,
                    &kubeconfig,
                    &["get", "pods", "-l", &format!("app={name}"), "-o", "json"],
                    None,
                );
                let (Ok(d), Ok(pods)) =
                    (serde_json::from_slice::<Value>(&d.stdout), serde_json::from_slice::<Value>(&pods.stdout))
                else {
                    continue;
                };
                min_status = min_status.min(d["status"]["availableReplicas"].as_i64().unwrap_or(0));
                min_pods = min_pods.min(items(&pods).iter().filter(|p| ready(p)).count());
                samples += 1;
            }
            (min_status, min_pods, samples)
        });
        AvailabilityProbe { stop, handle }
    }

    fn finish(self) -> (i64, usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("probe thread")
    }
}

fn rollout_status(s: &Server, name: &str) {
    s.ok(V, &["rollout", "status", &format!("deployment/{name}"), "--timeout=45s"]);
}

#[test]
fn rolling_update_keeps_availability_and_undo_brings_back_the_old_replica_set() {
    let s = Server::start();
    let _sim = Sim::start(&s, &["--count", "2"]);
    // minReadySeconds makes each step of the rollout last a second, so the probe samples it many times
    // (a rollout on simulated nodes is otherwise over between two samples).
    let strategy = "  minReadySeconds: 1\n  strategy:\n    type: RollingUpdate\n    rollingUpdate: {maxSurge: 1, maxUnavailable: 1}\n";
    apply(&s, &deployment("web", 5, "nginx:1.0", strategy));
    rollout_status(&s, "web");

    let rss = replica_sets(&s, "app=web");
    assert_eq!(rss.len(), 1, "{rss:?}");
    let first = rss[0].clone();
    let first_name = first["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let hash = first["metadata"]["labels"]["pod-template-hash"].as_str().unwrap_or("").to_owned();
    assert!(!hash.is_empty() && first_name == format!("web-{hash}"), "{first}");
    assert_eq!(first["spec"]["selector"]["matchLabels"]["pod-template-hash"], hash.as_str());
    assert_eq!(first["spec"]["template"]["metadata"]["labels"]["pod-template-hash"], hash.as_str());
    assert_eq!(first["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    assert_eq!(annotation(&first, "deployment.kubernetes.io/revision"), "1");
    assert_eq!(annotation(&first, "deployment.kubernetes.io/desired-replicas"), "5");
    assert_eq!(annotation(&first, "deployment.kubernetes.io/max-replicas"), "6");
    let pods = ready_pods(&s, "app=web");
    assert_eq!(pods.len(), 5);
    assert!(pods.iter().all(|p| p["metadata"]["labels"]["pod-template-hash"] == hash.as_str()));
    let d = json(&s, &["get", "deployment", "web"]);
    assert_eq!(annotation(&d, "deployment.kubernetes.io/revision"), "1");
    let conds = d["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let reason = |t: &str| conds.iter().find(|c| c["type"] == t).map(|c| c["reason"].clone());
    assert_eq!(reason("Available"), Some(Value::from("MinimumReplicasAvailable")));
    assert_eq!(reason("Progressing"), Some(Value::from("NewReplicaSetAvailable")));
    assert!(
        events(&s, "ScalingReplicaSet").contains(&format!("Scaled up replica set {first_name} to 5 from 0")),
        "{:?}",
        events(&s, "ScalingReplicaSet")
    );

    // Roll to a new image while watching availability.
    let probe = AvailabilityProbe::start(s.kubeconfig.clone(), "web");
    s.ok(V, &["set", "image", "deployment/web", "c=nginx:2.0"]);
    rollout_status(&s, "web");
    let (min_status, min_pods, samples) = probe.finish();
    assert!(samples >= 3, "too few samples during the rollout: {samples}");
    assert!(min_status >= 4, "availableReplicas fell to {min_status}");
    assert!(min_pods >= 4, "ready pods fell to {min_pods}");
    let pods = ready_pods(&s, "app=web");
    assert_eq!(pods.len(), 5);
    assert!(pods.iter().all(|p| image_of(p) == "nginx:2.0"), "{pods:?}");
    let rss = replica_sets(&s, "app=web");
    assert_eq!(rss.len(), 2);
    let second = rss.iter().find(|rs| rs["metadata"]["name"] != first_name.as_str()).cloned().unwrap_or_default();
    assert_eq!(second["spec"]["replicas"], 5);
    assert_eq!(annotation(&second, "deployment.kubernetes.io/revision"), "2");
    let history = s.ok(V, &["rollout", "history", "deployment/web"]);
    assert!(history.lines().any(|l| l.starts_with("1 ")) && history.lines().any(|l| l.starts_with("2 ")), "{history}");
    let d = json(&s, &["get", "deployment", "web"]);
    assert_eq!(d["status"]["updatedReplicas"], 5);
    assert_eq!(d["status"]["observedGeneration"], d["metadata"]["generation"]);

    // Undo: the first ReplicaSet becomes the new one again, with revision 3.
    s.ok(V, &["rollout", "undo", "deployment/web"]);
    rollout_status(&s, "web");
    let rss = replica_sets(&s, "app=web");
    assert_eq!(rss.len(), 2, "undo reuses the old ReplicaSet: {rss:?}");
    let back = rss.iter().find(|rs| rs["metadata"]["name"] == first_name.as_str()).cloned().unwrap_or_default();
    assert_eq!(back["spec"]["replicas"], 5);
    assert_eq!(annotation(&back, "deployment.kubernetes.io/revision"), "3");
    assert_eq!(annotation(&back, "deployment.kubernetes.io/revision-history"), "1");
    eventually(&s, 20, "the old image on every pod", || {
        let pods = live_pods(&s, "app=web");
        pods.len() == 5 && pods.iter().all(|p| image_of(p) == "nginx:1.0" && ready(p))
    });
    let d = json(&s, &["get", "deployment", "web"]);
    assert_eq!(annotation(&d, "deployment.kubernetes.io/revision"), "3");
}

#[test]
fn deleting_a_deployment_cascades_by_default_and_orphans_on_request() {
    let s = Server::start();
    let _sim = Sim::start(&s, &["--count", "1"]);
    apply(&s, &deployment("gone", 2, "nginx", ""));
    apply(&s, &deployment("kept", 2, "nginx", ""));
    rollout_status(&s, "gone");
    rollout_status(&s, "kept");

    s.ok(V, &["delete", "deployment", "gone"]);
    eventually(&s, 30, "the ReplicaSet and pods of a deleted Deployment to go", || {
        replica_sets(&s, "app=gone").is_empty() && items(&json(&s, &["get", "pods", "-l", "app=gone"])).is_empty()
    });

    s.ok(V, &["delete", "deployment", "kept", "--cascade=orphan"]);
    eventually(&s, 30, "orphaned ReplicaSet without owner", || {
        let rss = replica_sets(&s, "app=kept");
        rss.len() == 1 && rss[0]["metadata"]["ownerReferences"].as_array().is_none_or(|r| r.is_empty())
    });
    // Nothing deletes the orphans afterwards.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(replica_sets(&s, "app=kept").len(), 1);
    let pods_before: Vec<Value> = ready_pods(&s, "app=kept").iter().map(|p| p["metadata"]["name"].clone()).collect();
    assert_eq!(pods_before.len(), 2);

    // The same Deployment again adopts the orphaned ReplicaSet as its new one, pods and all.
    apply(&s, &deployment("kept", 2, "nginx", ""));
    let uid = json(&s, &["get", "deployment", "kept"])["metadata"]["uid"].clone();
    eventually(&s, 30, "the orphan ReplicaSet adopted", || {
        let rss = replica_sets(&s, "app=kept");
        rss.len() == 1 && rss[0]["metadata"]["ownerReferences"][0]["uid"] == uid
    });
    rollout_status(&s, "kept");
    let pods_after: Vec<Value> = ready_pods(&s, "app=kept").iter().map(|p| p["metadata"]["name"].clone()).collect();
    assert_eq!(pods_before, pods_after, "the adopted ReplicaSet's pods stay");
}

fn replica_set(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: c
        image: nginx
"
    )
}

#[test]
fn replica_set_adopts_orphans_replaces_deleted_pods_and_releases_relabelled_ones() {
    let s = Server::start();
    let _sim = Sim::start(&s, &["--count", "1"]);
    // An orphan that matches, running before the ReplicaSet exists: adopted, so only two are created.
    apply(
        &s,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: orphan\n  labels: {app: rs1}\nspec:\n  nodeName: sim-0\n  \
         terminationGracePeriodSeconds: 0\n  containers:\n  - name: c\n    image: nginx\n",
    );
    eventually(&s, 20, "the orphan to run", || ready_pods(&s, "app=rs1").len() == 1);
    apply(&s, &replica_set("rs1", 3));
    eventually(&s, 30, "three ready pods", || ready_pods(&s, "app=rs1").len() == 3);
    let rs = json(&s, &["get", "rs", "rs1"]);
    let uid = rs["metadata"]["uid"].as_str().unwrap_or("").to_owned();
    let orphan = json(&s, &["get", "pod", "orphan"]);
    assert_eq!(orphan["metadata"]["ownerReferences"][0]["uid"], uid.as_str(), "{orphan}");
    assert_eq!(orphan["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(events(&s, "SuccessfulCreate").len(), 2, "{:?}", events(&s, "SuccessfulCreate"));
    eventually(&s, 20, "status counts", || {
        let st = json(&s, &["get", "rs", "rs1"])["status"].clone();
        st["replicas"] == 3
            && st["readyReplicas"] == 3
            && st["availableReplicas"] == 3
            && st["fullyLabeledReplicas"] == 3
    });

    // A deleted pod is replaced.
    let victim =
        ready_pods(&s, "app=rs1").iter().find(|p| p["metadata"]["name"] != "orphan").cloned().unwrap_or_default();
    let victim = victim["metadata"]["name"].as_str().unwrap_or("").to_owned();
    s.ok(V, &["delete", "pod", &victim, "--wait=false"]);
    eventually(&s, 30, "a replacement pod", || {
        let pods = ready_pods(&s, "app=rs1");
        pods.len() == 3 && pods.iter().all(|p| p["metadata"]["name"] != victim.as_str())
    });

    // A relabelled pod is released (no controller reference left) and replaced.
    s.ok(V, &["label", "pod", "orphan", "app=elsewhere", "--overwrite"]);
    eventually(&s, 30, "release and replacement", || {
        let released = json(&s, &["get", "pod", "orphan"]);
        let refs = released["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default();
        refs.iter().all(|r| r["uid"] != uid.as_str()) && ready_pods(&s, "app=rs1").len() == 3
    });

    // Scaling down deletes surplus pods.
    s.ok(V, &["scale", "rs", "rs1", "--replicas=1"]);
    eventually(&s, 30, "one pod left", || live_pods(&s, "app=rs1").len() == 1);
    assert!(events(&s, "SuccessfulDelete").iter().any(|m| m.starts_with("Deleted pod: rs1-")));
}

#[test]
fn replica_set_reports_quota_failures() {
    let s = Server::start();
    // One pod allowed: the first slow-start batch (one pod) passes, the second (two at once) is refused.
    // (Admission counts usage at admission time, so concurrent creates could both pass a limit of 2.)
    s.ok(V, &["create", "quota", "pods", "--hard=pods=1"]);
    eventually(&s, 20, "the quota's status", || json(&s, &["get", "quota", "pods"])["status"]["hard"]["pods"] == "1");
    apply(&s, &replica_set("capped", 3));
    eventually(&s, 30, "the ReplicaFailure condition", || {
        let rs = json(&s, &["get", "rs", "capped"]);
        let conds = rs["status"]["conditions"].as_array().cloned().unwrap_or_default();
        conds.iter().any(|c| c["type"] == "ReplicaFailure" && c["reason"] == "FailedCreate" && c["status"] == "True")
    });
    assert_eq!(items(&json(&s, &["get", "pods", "-l", "app=capped"])).len(), 1);
    let failed = events(&s, "FailedCreate");
    assert!(failed.iter().any(|m| m.starts_with("Error creating: ") && m.contains("exceeded quota")), "{failed:?}");
    // Scaling within the quota clears the condition.
    s.ok(V, &["scale", "rs", "capped", "--replicas=1"]);
    eventually(&s, 30, "the condition to clear", || {
        json(&s, &["get", "rs", "capped"])["status"]["conditions"].as_array().is_none_or(|c| c.is_empty())
    });
}

#[test]
fn replication_controller_scales_with_kubectl() {
    let s = Server::start();
    let _sim = Sim::start(&s, &["--count", "1"]);
    apply(
        &s,
        "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: rc1\nspec:\n  replicas: 2\n  selector: {app: rc1}\n  \
         template:\n    metadata:\n      labels: {app: rc1}\n    spec:\n      terminationGracePeriodSeconds: 0\n      \
         containers:\n      - name: c\n        image: nginx\n",
    );
    eventually(&s, 30, "two ready pods", || ready_pods(&s, "app=rc1").len() == 2);
    let pod = &ready_pods(&s, "app=rc1")[0];
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "ReplicationController");
    assert!(pod["metadata"]["name"].as_str().unwrap_or("").starts_with("rc1-"));
    s.ok(V, &["scale", "rc", "rc1", "--replicas=4"]);
    eventually(&s, 30, "four ready pods and status", || {
        ready_pods(&s, "app=rc1").len() == 4 && json(&s, &["get", "rc", "rc1"])["status"]["readyReplicas"] == 4
    });
    s.ok(V, &["scale", "rc", "rc1", "--replicas=1"]);
    eventually(&s, 30, "one pod", || {
        live_pods(&s, "app=rc1").len() == 1 && json(&s, &["get", "rc", "rc1"])["status"]["replicas"] == 1
    });
}

#[test]
fn recreate_and_paused_deployments() {
    let s = Server::start();
    let _sim = Sim::start(&s, &["--count", "1"]);
    apply(&s, &deployment("re", 3, "nginx:1", "  strategy: {type: Recreate}\n"));
    rollout_status(&s, "re");
    let probe_old_and_new = std::thread::scope(|scope| {
        let h = scope.spawn(|| {
            // Never old and new pods at once.
            let deadline = Instant::now() + Duration::from_secs(40);
            let mut mixed = false;
            while Instant::now() < deadline {
                let pods = live_pods(&s, "app=re");
                let images: std::collections::BTreeSet<String> = pods.iter().map(image_of).collect();
                mixed |= images.len() > 1;
                if pods.len() == 3 && pods.iter().all(|p| image_of(p) == "nginx:2" && ready(p)) {
                    return Some(mixed);
                }
            }
            None
        });
        s.ok(V, &["set", "image", "deployment/re", "c=nginx:2"]);
        h.join().ok().flatten()
    });
    assert_eq!(probe_old_and_new, Some(false), "Recreate must not run old and new pods together");
    rollout_status(&s, "re");

    // Paused: a template change does not roll, a resize applies.
    s.ok(V, &["rollout", "pause", "deployment/re"]);
    eventually(&s, 20, "the DeploymentPaused condition", || {
        let d = json(&s, &["get", "deployment", "re"]);
        d["status"]["conditions"].as_array().is_some_and(|cs| cs.iter().any(|c| c["reason"] == "DeploymentPaused"))
    });
    s.ok(V, &["set", "image", "deployment/re", "c=nginx:3"]);
    s.ok(V, &["scale", "deployment/re", "--replicas=4"]);
    eventually(&s, 30, "four pods of the paused revision", || {
        let pods = ready_pods(&s, "app=re");
        pods.len() == 4 && pods.iter().all(|p| image_of(p) == "nginx:2")
    });
    assert_eq!(replica_sets(&s, "app=re").len(), 2, "no new ReplicaSet while paused");
    s.ok(V, &["rollout", "resume", "deployment/re"]);
    rollout_status(&s, "re");
    let pods = ready_pods(&s, "app=re");
    assert!(pods.len() == 4 && pods.iter().all(|p| image_of(p) == "nginx:3"), "{pods:?}");
}

#[test]
fn a_stuck_rollout_exceeds_its_progress_deadline() {
    let s = Server::start();
    let _sim = Sim::start(&s, &["--count", "1"]);
    // No node has this label: the pods stay Pending and the rollout cannot progress.
    let extra = "  progressDeadlineSeconds: 3\n";
    let mut yaml = deployment("stuck", 2, "nginx", extra);
    yaml = yaml.replace(
        "      terminationGracePeriodSeconds: 0\n",
        "      terminationGracePeriodSeconds: 0\n      nodeSelector: {disk: none}\n",
    );
    apply(&s, &yaml);
    eventually(&s, 30, "ProgressDeadlineExceeded", || {
        let d = json(&s, &["get", "deployment", "stuck"]);
        d["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["type"] == "Progressing" && c["status"] == "False" && c["reason"] == "ProgressDeadlineExceeded"
            })
        })
    });
    let d = json(&s, &["get", "deployment", "stuck"]);
    let conds = d["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let available = conds.iter().find(|c| c["type"] == "Available").cloned().unwrap_or_default();
    assert_eq!(available["reason"], "MinimumReplicasUnavailable");
    assert_eq!(d["status"]["unavailableReplicas"], 2);
    let out = s.kubectl(V, &["rollout", "status", "deployment/stuck", "--timeout=10s"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exceeded its progress deadline"), "{out:?}");
}

#[test]
fn history_is_trimmed_and_min_ready_seconds_delays_availability() {
    let s = Server::start();
    let _sim = Sim::start(&s, &["--count", "1"]);
    apply(&s, &deployment("hist", 2, "nginx:1", "  revisionHistoryLimit: 1\n  minReadySeconds: 4\n"));
    // Ready long before available.
    eventually(&s, 30, "two ready pods", || {
        json(&s, &["get", "rs", "-l", "app=hist"])["items"][0]["status"]["readyReplicas"] == 2
    });
    let started = Instant::now();
    let rs = &replica_sets(&s, "app=hist")[0];
    assert!(rs["status"]["availableReplicas"].as_i64().unwrap_or(0) < 2, "available before minReadySeconds: {rs}");
    rollout_status(&s, "hist");
    assert!(started.elapsed() >= Duration::from_secs(2), "available too early");
    for image in ["nginx:2", "nginx:3"] {
        s.ok(V, &["set", "image", "deployment/hist", &format!("c={image}")]);
        rollout_status(&s, "hist");
    }
    eventually(&s, 20, "one old ReplicaSet kept", || replica_sets(&s, "app=hist").len() == 2);
    let revisions: Vec<String> =
        replica_sets(&s, "app=hist").iter().map(|rs| annotation(rs, "deployment.kubernetes.io/revision")).collect();
    assert!(revisions.contains(&"2".to_owned()) && revisions.contains(&"3".to_owned()), "{revisions:?}");
}
