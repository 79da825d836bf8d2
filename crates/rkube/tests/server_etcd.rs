//! `rkube server --etcd-endpoints` on a real etcd (Debian's, started on a free loopback port): objects
//! written through kubectl are stored under upstream's key layout as readable JSON, so `etcdctl get
//! /registry/...` shows them; a custom `--etcd-prefix` moves them.

mod common;

use std::process::Command;

fn etcdctl(endpoint: &str, args: &[&str]) -> String {
    let out = Command::new("etcdctl")
        .args(["--endpoints", endpoint])
        .args(args)
        .env("ETCDCTL_API", "3")
        .output()
        .expect("run etcdctl");
    assert!(out.status.success(), "etcdctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn objects_land_in_etcd_under_upstreams_layout() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let etcd = rt.block_on(rkube_store_etcd::LocalEtcd::start(Default::default())).expect("start etcd");
    let ep = etcd.endpoint();
    let s = common::Server::start_with(&["--etcd-endpoints", &ep, "--etcd-prefix", "/kube-centos/registry"]);
    s.ok("1.33", &["create", "configmap", "in-etcd", "--from-literal=k=v"]);
    let got = etcdctl(&ep, &["get", "/kube-centos/registry/configmaps/default/in-etcd", "--print-value-only"]);
    let v: serde_json::Value = serde_json::from_str(got.trim()).expect("the stored value is JSON");
    assert_eq!(v["data"]["k"], "v");
    assert_eq!(v["kind"], "ConfigMap");
    assert!(v["metadata"].get("resourceVersion").is_none(), "resourceVersion is the etcd revision, not stored");
    let keys = etcdctl(&ep, &["get", "/kube-centos/registry/", "--prefix", "--keys-only"]);
    assert!(keys.contains("/kube-centos/registry/namespaces/default"), "{keys}");
    assert!(keys.contains("/kube-centos/registry/services/specs/default/kubernetes"), "{keys}");
    // The resourceVersion kubectl sees is etcd's mod_revision of the key.
    let rv = s.ok("1.33", &["get", "cm", "in-etcd", "-o", "jsonpath={.metadata.resourceVersion}"]);
    let json = etcdctl(&ep, &["get", "/kube-centos/registry/configmaps/default/in-etcd", "-w", "json"]);
    let meta: serde_json::Value = serde_json::from_str(&json).expect("etcdctl json");
    assert_eq!(meta["kvs"][0]["mod_revision"].to_string(), rv);
    drop(s);
    drop(etcd);
}
