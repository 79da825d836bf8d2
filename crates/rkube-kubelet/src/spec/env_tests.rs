//! Tests of env resolution: service links, envFrom, valueFrom and their errors.

use super::*;
use crate::spec::testutil::{config, pod};
use serde_json::{Value, json};

fn service(ns: &str, name: &str, ip: &str, ports: Value) -> Service {
    serde_json::from_value(
        json!({"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, "ports": ports}}),
    )
    .unwrap()
}

fn kubernetes() -> Service {
    service("default", "kubernetes", "10.96.0.1", json!([{"name": "https", "port": 443, "protocol": "TCP"}]))
}

fn cm(name: &str, data: Value) -> (String, Option<ConfigMap>) {
    (name.to_owned(), Some(serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).unwrap()))
}

fn secret(name: &str, data: Value) -> (String, Option<Secret>) {
    (name.to_owned(), Some(serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).unwrap()))
}

fn sources() -> EnvSources {
    EnvSources {
        config_maps: BTreeMap::from([
            cm("cfg", json!({"A": "1", "B": "2", "bad=key": "x"})),
            ("gone".to_owned(), None),
        ]),
        // "czNjcjN0" is base64 for "s3cr3t".
        secrets: BTreeMap::from([secret("sec", json!({"PASSWORD": "czNjcjN0"}))]),
        services: vec![kubernetes()],
    }
}

/// Resolves the env of the pod's first container; `node` has 2 cpus, 4Gi memory and 10Gi storage.
/// A resolved env (or its error message) and the warnings made on the way.
type Resolved = (Result<Vec<(String, String)>, String>, Vec<Warning>);

fn resolve(p: &Pod, pod_ips: &[String], sources: &EnvSources) -> Resolved {
    let node = NodeResources {
        memory_capacity: 4 << 30,
        allocatable: BTreeMap::from([
            ("cpu".to_owned(), Quantity("2".into())),
            ("memory".to_owned(), Quantity("4Gi".into())),
            ("ephemeral-storage".to_owned(), Quantity("10Gi".into())),
        ]),
    };
    let ctx = ContainerContext {
        pod: p,
        container: &p.spec.as_ref().unwrap().containers[0],
        restart_count: 0,
        pod_ips,
        mounts: vec![],
        image_ref: "img",
        image: None,
        node: &node,
    };
    let mut warnings = Vec::new();
    let r = resolve_env(&ctx, &config(), sources, &mut warnings).map_err(|e| e.to_string());
    (r, warnings)
}

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

fn env_of(container: Value) -> Vec<(String, String)> {
    let p = pod(json!({"spec": {"enableServiceLinks": false, "containers": [container]}}));
    let (r, _) = resolve(&p, &["172.30.0.7".to_owned()], &sources());
    r.unwrap().into_iter().filter(|(k, _)| !k.starts_with("KUBERNETES_")).collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn kubernetes_service_links_always_present() {
    let p = pod(json!({"spec": {"enableServiceLinks": false}}));
    let (r, _) = resolve(&p, &[], &sources());
    let env: BTreeMap<String, String> = r.unwrap().into_iter().collect();
    let want = BTreeMap::from([
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
        ("KUBERNETES_SERVICE_PORT", "443"),
        ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
        ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
        ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
        ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
        ("KUBERNETES_PORT_443_TCP_PORT", "443"),
        ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
    ]);
    let want: BTreeMap<String, String> = want.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    assert_eq!(env, want);
}

#[test]
fn namespace_service_links_follow_enable_service_links() {
    let services = vec![
        kubernetes(),
        service(
            "ns",
            "my-db",
            "10.96.0.20",
            json!([{"port": 5432}, {"name": "metrics", "port": 9187, "protocol": "UDP"}]),
        ),
        service("ns", "headless", "None", json!([{"port": 80}])),
        service("other", "elsewhere", "10.96.0.30", json!([{"port": 80}])),
    ];
    let srcs = EnvSources { services, ..Default::default() };
    let (r, _) = resolve(&pod(json!({})), &[], &srcs);
    let env: BTreeMap<String, String> = r.unwrap().into_iter().collect();
    assert_eq!(env["MY_DB_SERVICE_HOST"], "10.96.0.20");
    assert_eq!(env["MY_DB_SERVICE_PORT"], "5432");
    assert_eq!(env["MY_DB_SERVICE_PORT_METRICS"], "9187");
    assert_eq!(env["MY_DB_PORT"], "tcp://10.96.0.20:5432");
    assert_eq!(env["MY_DB_PORT_9187_UDP"], "udp://10.96.0.20:9187");
    assert_eq!(env["MY_DB_PORT_9187_UDP_PROTO"], "udp");
    assert!(env.contains_key("KUBERNETES_SERVICE_HOST"));
    assert!(!env.keys().any(|k| k.starts_with("HEADLESS") || k.starts_with("ELSEWHERE")));

    let (r, _) = resolve(&pod(json!({"spec": {"enableServiceLinks": false}})), &[], &srcs);
    assert!(!r.unwrap().iter().any(|(k, _)| k.starts_with("MY_DB")));
}

#[test]
fn env_overrides_env_from_and_service_links() {
    let container = json!({"name": "a",
        "envFrom": [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "sec"}, "prefix": "S_"}],
        "env": [{"name": "B", "value": "override-$(A)"}, {"name": "KUBERNETES_SERVICE_HOST", "value": "mine"}]});
    let p = pod(json!({"spec": {"containers": [container]}}));
    let (r, warnings) = resolve(&p, &[], &sources());
    let env = r.unwrap();
    // Service links not overridden first, then envFrom and env in order.
    let tail: Vec<(String, String)> = env.iter().filter(|(k, _)| !k.starts_with("KUBERNETES_")).cloned().collect();
    assert_eq!(tail, pairs(&[("A", "1"), ("B", "override-1"), ("S_PASSWORD", "s3cr3t")]));
    assert_eq!(env.iter().filter(|(k, _)| k == "KUBERNETES_SERVICE_HOST").count(), 1);
    assert_eq!(env.last().unwrap(), &("KUBERNETES_SERVICE_HOST".to_owned(), "mine".to_owned()));
    assert_eq!(
        warnings,
        [Warning::new(
            "InvalidEnvironmentVariableNames",
            "Keys [bad=key] from the EnvFrom configMap ns/cfg were skipped since they are considered invalid \
             environment variable names."
                .to_owned()
        )]
    );
}

#[test]
fn expansion_sees_earlier_vars_and_service_links() {
    let got = env_of(json!({"name": "a", "env": [
        {"name": "X", "value": "$(Y)"},
        {"name": "Y", "value": "y"},
        {"name": "Z", "value": "$(Y)-$(KUBERNETES_SERVICE_HOST)-$$(Y)-$(NOPE)"},
        {"name": "EMPTY", "value": ""}
    ]}));
    assert_eq!(got, pairs(&[("X", "$(Y)"), ("Y", "y"), ("Z", "y-10.96.0.1-$(Y)-$(NOPE)"), ("EMPTY", "")]));
}

#[test]
fn field_refs() {
    let p = pod(json!({
        "metadata": {"labels": {"app": "web", "tier": "a\"b"}, "annotations": {"note": "n"}},
        "spec": {"serviceAccountName": "sa", "enableServiceLinks": false, "containers": [{"name": "a", "env": [
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "NONE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['nope']"}}},
            {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
            {"name": "LABELS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "HOST_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIPs"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "POD_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}}
        ]}]}
    }));
    let ips = ["fd00::7".to_owned(), "172.30.0.7".to_owned()];
    let (r, _) = resolve(&p, &ips, &sources());
    let env: Vec<(String, String)> = r.unwrap().into_iter().filter(|(k, _)| !k.starts_with("KUBERNETES_")).collect();
    assert_eq!(
        env,
        pairs(&[
            ("NAME", "web"),
            ("NS", "ns"),
            ("UID", "1234-5678"),
            ("APP", "web"),
            ("NONE", ""),
            ("NOTE", "n"),
            ("LABELS", "app=\"web\"\ntier=\"a\\\"b\""),
            ("NODE", "node1"),
            ("SA", "sa"),
            ("HOST_IP", "10.0.0.5"),
            ("HOST_IPS", "10.0.0.5"),
            ("POD_IP", "172.30.0.7"),
            ("POD_IPS", "172.30.0.7,fd00::7"),
        ])
    );
}

#[test]
fn field_ref_errors() {
    let bad = |path: &str, version: Option<&str>| {
        let mut f = json!({"fieldPath": path});
        if let Some(v) = version {
            f["apiVersion"] = json!(v);
        }
        let p =
            pod(json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "valueFrom": {"fieldRef": f}}]}]}}));
        resolve(&p, &[], &sources()).0.unwrap_err()
    };
    assert_eq!(bad("spec.nope", None), "field label not supported: spec.nope");
    assert_eq!(bad("metadata.name", Some("v2")), "unsupported pod version: v2");
}

#[test]
fn resource_field_refs() {
    let got = env_of(json!({"name": "a",
    "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
    "env": [
        {"name": "REQ_CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
        {"name": "REQ_CPU_M", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
        {"name": "LIM_CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "LIM_MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "REQ_MEM", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory"}}},
        {"name": "LIM_STORAGE_GI", "valueFrom": {"resourceFieldRef": {"resource": "limits.ephemeral-storage", "divisor": "1Gi"}}},
        {"name": "REQ_STORAGE", "valueFrom": {"resourceFieldRef": {"resource": "requests.ephemeral-storage"}}},
        {"name": "OTHER", "valueFrom": {"resourceFieldRef": {"containerName": "a", "resource": "limits.memory", "divisor": "1M"}}}
    ]}));
    assert_eq!(
        got,
        pairs(&[
            ("REQ_CPU", "1"),
            ("REQ_CPU_M", "250"),
            ("LIM_CPU", "2"),
            ("LIM_MEM_MI", "128"),
            ("REQ_MEM", "67108864"),
            ("LIM_STORAGE_GI", "10"),
            ("REQ_STORAGE", "0"),
            ("OTHER", "135"),
        ])
    );
    let p = pod(json!({"spec": {"containers": [{"name": "a", "env": [
        {"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}}]}]}}));
    assert_eq!(resolve(&p, &[], &sources()).0.unwrap_err(), "unsupported container resource : limits.gpu");
    let p = pod(json!({"spec": {"containers": [{"name": "a", "env": [
        {"name": "X", "valueFrom": {"resourceFieldRef": {"containerName": "b", "resource": "limits.cpu"}}}]}]}}));
    assert_eq!(resolve(&p, &[], &sources()).0.unwrap_err(), "container b not found");
}

#[test]
fn key_refs_and_their_errors() {
    let got = env_of(json!({"name": "a", "env": [
        {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "A"}}},
        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "PASSWORD"}}},
        {"name": "OPT_MISSING_CM", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "A", "optional": true}}},
        {"name": "OPT_MISSING_KEY", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope", "optional": true}}},
        {"name": "OPT_MISSING_SECRET", "valueFrom": {"secretKeyRef": {"name": "unknown", "key": "k", "optional": true}}}
    ], "envFrom": [{"configMapRef": {"name": "gone", "optional": true}}, {"secretRef": {"name": "unknown", "optional": true}}]}));
    assert_eq!(got, pairs(&[("FROM_CM", "1"), ("FROM_SECRET", "s3cr3t")]));

    let cases = [
        (json!({"configMapKeyRef": {"name": "gone", "key": "A"}}), "configmap \"gone\" not found"),
        (json!({"configMapKeyRef": {"name": "cfg", "key": "k"}}), "couldn't find key k in ConfigMap ns/cfg"),
        (json!({"secretKeyRef": {"name": "unknown", "key": "k"}}), "secret \"unknown\" not found"),
        (json!({"secretKeyRef": {"name": "sec", "key": "k"}}), "couldn't find key k in Secret ns/sec"),
    ];
    for (from, want) in cases {
        let p = pod(json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "valueFrom": from}]}]}}));
        assert_eq!(resolve(&p, &[], &sources()).0.unwrap_err(), want);
    }
    let p = pod(json!({"spec": {"containers": [{"name": "a", "envFrom": [{"configMapRef": {"name": "gone"}}]}]}}));
    assert_eq!(resolve(&p, &[], &sources()).0.unwrap_err(), "configmap \"gone\" not found");
    let p = pod(json!({"spec": {"containers": [{"name": "a", "envFrom": [{"secretRef": {"name": "x"}}]}]}}));
    assert_eq!(resolve(&p, &[], &sources()).0.unwrap_err(), "secret \"x\" not found");
}
