//! A micro-benchmark of [`crate::update`] on the writes the scheduling benchmark makes most (pod creates,
//! pod status updates by the kubelet, Lease renewals); ignored, run it with
//! `cargo test --release -p rkube-ssa -- --ignored --nocapture bench_update`.

use std::hint::black_box;
use std::time::Instant;

use serde_json::{Value, json};

use crate::{BuiltinSchema, Request, reset_fields_for, update, update_owned};

/// A pod as kube-rs creates it, after the API server's defaulting and admission (service-account volume).
pub(super) fn created_pod(i: usize) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("bench-{i}"),
            "namespace": "default",
            "uid": format!("6f0c2a8e-0000-4000-8000-{i:012}"),
            "resourceVersion": "12345",
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"app": "bench", "run": format!("r{i}")}
        },
        "spec": {
            "containers": [{
                "name": "main",
                "image": "busybox:1.36",
                "command": ["sleep", "3600"],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                "volumeMounts": [{
                    "name": "kube-api-access-x7k2p",
                    "readOnly": true,
                    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"
                }],
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent"
            }],
            "volumes": [{
                "name": "kube-api-access-x7k2p",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                    ],
                    "defaultMode": 420
                }
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ],
            "priority": 0,
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"}
    })
}

/// The running status the kubelet writes through `pods/status`.
pub(super) fn running(mut pod: Value) -> Value {
    pod["spec"]["nodeName"] = json!("n1");
    pod["status"] = json!({
        "phase": "Running",
        "qosClass": "Burstable",
        "hostIP": "10.0.0.1",
        "hostIPs": [{"ip": "10.0.0.1"}],
        "podIP": "10.42.0.17",
        "podIPs": [{"ip": "10.42.0.17"}],
        "startTime": "2024-05-01T10:00:01Z",
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2024-05-01T10:00:02Z"},
            {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2024-05-01T10:00:01Z"},
            {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2024-05-01T10:00:03Z"},
            {"type": "ContainersReady", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2024-05-01T10:00:03Z"},
            {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2024-05-01T10:00:00Z"}
        ],
        "containerStatuses": [{
            "name": "main",
            "state": {"running": {"startedAt": "2024-05-01T10:00:02Z"}},
            "lastState": {},
            "ready": true,
            "restartCount": 0,
            "image": "docker.io/library/busybox:1.36",
            "imageID": "sha256:0123456789abcdef",
            "containerID": "containerd://abcdef0123456789",
            "started": true
        }]
    });
    pod
}

/// A Lease as a leader-election client holds it.
pub(super) fn lease(renew: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "kube-scheduler", "namespace": "kube-system", "uid": "9b2d-lease", "resourceVersion": "77", "creationTimestamp": "2024-05-01T09:00:00Z"},
        "spec": {"holderIdentity": "n1_0b1c", "leaseDurationSeconds": 15, "acquireTime": "2024-05-01T09:00:00Z", "renewTime": renew, "leaseTransitions": 0}
    })
}

/// The three cases: (name, live, new, request parts).
pub(super) struct Case {
    pub(super) name: &'static str,
    pub(super) live: Option<Value>,
    pub(super) new: Value,
    pub(super) schema: BuiltinSchema,
    pub(super) manager: &'static str,
    pub(super) api_version: &'static str,
    pub(super) kind: &'static str,
    pub(super) subresource: &'static str,
    pub(super) has_status: bool,
}

impl Case {
    pub(super) fn run(&self, live: Option<&Value>, new: &Value) -> Value {
        let reset = reset_fields_for(self.subresource, self.has_status);
        let req = Request::new(self.manager, self.api_version, self.kind, super::T1)
            .with_subresource(self.subresource)
            .with_reset_fields(&reset);
        update(live, new, &req, &self.schema)
    }
}

pub(super) fn cases() -> Vec<Case> {
    let pod_schema = BuiltinSchema::for_kind("v1", "Pod");
    let create = Case {
        name: "pod create",
        live: None,
        new: created_pod(1),
        schema: pod_schema.clone(),
        manager: "bench",
        api_version: "v1",
        kind: "Pod",
        subresource: "",
        has_status: true,
    };
    let created = create.run(None, &create.new);
    let status = Case {
        name: "pod status",
        new: running(created.clone()),
        live: Some(created),
        schema: pod_schema,
        manager: "kubelet",
        api_version: "v1",
        kind: "Pod",
        subresource: "status",
        has_status: true,
    };
    let lease_case = |live: Option<&Value>, new: &Value| {
        let c = Case {
            name: "lease renew",
            live: live.cloned(),
            new: new.clone(),
            schema: BuiltinSchema::for_kind("coordination.k8s.io/v1", "Lease"),
            manager: "rkube",
            api_version: "coordination.k8s.io/v1",
            kind: "Lease",
            subresource: "",
            has_status: false,
        };
        let out = c.run(live, new);
        (c, out)
    };
    let (_, first) = lease_case(None, &lease("2024-05-01T09:00:00.000000Z"));
    let (mut renew, _) = lease_case(Some(&first), &first);
    let mut next = first.clone();
    next["spec"]["renewTime"] = json!("2024-05-01T09:00:02.000000Z");
    renew.new = next;
    vec![create, status, renew]
}

/// The best of several rounds, in ns per call of `f` (the machine is shared: the minimum is the signal).
fn time(mut f: impl FnMut()) -> u128 {
    const ROUNDS: usize = 7;
    const N: usize = 3_000;
    for _ in 0..N / 4 {
        f();
    }
    (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..N {
                f();
            }
            start.elapsed().as_nanos() / N as u128
        })
        .min()
        .unwrap_or_default()
}

#[test]
#[ignore = "benchmark; run with --release --ignored --nocapture"]
fn bench_update() {
    for case in cases() {
        let live = case.live.as_ref();
        let reset = reset_fields_for(case.subresource, case.has_status);
        let req = Request::new(case.manager, case.api_version, case.kind, super::T1)
            .with_subresource(case.subresource)
            .with_reset_fields(&reset);
        let new = &case.new;
        let reference = time(|| {
            black_box(super::reference::update(black_box(live), black_box(new), &req, &case.schema));
        });
        let by_ref = time(|| {
            black_box(update(black_box(live), black_box(new), &req, &case.schema));
        });
        // The caller's own object: the inputs are copied before the clock starts.
        let mut inputs: Vec<Value> = Vec::new();
        let mut best = u128::MAX;
        for _ in 0..7 {
            inputs.clear();
            inputs.extend((0..3_000).map(|_| new.clone()));
            let start = Instant::now();
            for obj in inputs.drain(..) {
                black_box(update_owned(black_box(live), obj, &req, &case.schema));
            }
            best = best.min(start.elapsed().as_nanos() / 3_000);
        }
        println!(
            "bench_update {:<12} reference (old algorithm): {reference:>7} ns/op  update: {by_ref:>7} ns/op  update_owned: {best:>7} ns/op",
            case.name
        );
    }
}
