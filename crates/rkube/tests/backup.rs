//! `rkube backup`, `rkube restore` and `rkube migrate --to-etcd` against real servers (`--disable-agent`), kubectl
//! and a real etcd: a populated cluster backed up while it runs and restored into a new data directory (or etcd
//! prefix) comes back with the same objects (uids included; resourceVersions aside) and the same CA, so the old
//! admin kubeconfig works against the new server; the refusals (existing output, non-empty target, corrupt,
//! truncated and newer-format archives) leave nothing behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use common::Server;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: crontabs, singular: crontab, kind: CronTab}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              cronSpec: {type: string}
"#;

const OBJECTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: team-a, labels: {team: a}}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: team-a}
data: {mode: fast, level: "3"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other, namespace: team-b}
data: {x: y}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: team-a}
stringData: {password: hunter2}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: team-b}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: busybox}]
---
apiVersion: stable.example.com/v1
kind: CronTab
metadata: {name: nightly, namespace: team-a}
spec: {cronSpec: "0 3 * * *"}
"#;

/// The kinds compared before and after.
const KINDS: &str = "namespaces,configmaps,secrets,deployments,customresourcedefinitions,crontabs";

fn rkube(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rkube")).args(args).output().expect("run rkube")
}

fn ok(args: &[&str]) -> String {
    let out = rkube(args);
    assert!(out.status.success(), "rkube {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(args: &[&str]) -> String {
    let out = rkube(args);
    assert!(!out.status.success(), "rkube {args:?} should have failed:\n{}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Creates the objects and waits until the Deployment's controllers have settled (status written, ReplicaSet made).
fn populate(s: &Server) {
    common::apply(s, CRD);
    common::eventually(s, 30, "the CRD is served", || s.kubectl("1.33", &["get", "crontabs", "-A"]).status.success());
    common::apply(s, OBJECTS);
    common::eventually(s, 30, "the Deployment's status is written", || {
        let d = common::json(s, &["get", "deployment", "web", "-n", "team-b"]);
        d["status"]["observedGeneration"] == d["metadata"]["generation"] && d["status"]["replicas"] == 2
    });
}

/// [`common::comparable_objects`] of [`KINDS`].
fn objects(kubectl: impl Fn(&[&str]) -> String) -> Vec<serde_json::Value> {
    common::comparable_objects(KINDS, kubectl)
}

fn names(items: &[serde_json::Value]) -> Vec<String> {
    items.iter().map(|i| format!("{}/{}/{}", i["kind"], i["metadata"]["namespace"], i["metadata"]["name"])).collect()
}

/// Asserts that `after` holds the same objects as `before`, naming the first difference.
fn assert_same(before: &[serde_json::Value], after: &[serde_json::Value]) {
    assert_eq!(names(before), names(after), "the same objects");
    for (b, a) in before.iter().zip(after) {
        assert_eq!(b, a, "object {} differs", names(std::slice::from_ref(b))[0]);
    }
    for kind in ["\"Namespace\"", "\"ConfigMap\"", "\"Secret\"", "\"Deployment\"", "\"CronTab\""] {
        assert!(names(before).iter().any(|n| n.starts_with(kind)), "{kind} objects were compared");
    }
}

/// An `rkube server --disable-agent` on a given data directory (the harness's own always makes a new one).
struct Restored {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Restored {
    fn start(dir: &Path, extra: &[&str]) -> Restored {
        let port = common::free_port();
        let log = dir.join("restored-server.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rkube"));
        cmd.args(["server", "--disable-agent", "--node-name", "test-node", "--bind-address", "127.0.0.1"])
            .args(["--data-dir", p(dir), "--https-listen-port", &port.to_string()])
            .args(extra)
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).expect("log file"));
        let tail = || std::fs::read_to_string(&log).unwrap_or_default();
        let child = common::spawn_until_ready(&mut cmd, 60, &tail);
        Restored { child, port, log }
    }

    /// kubectl with another server's kubeconfig (its CA, its admin certificate) pointed at this server.
    fn kubectl_with(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let server = format!("https://127.0.0.1:{}", self.port);
        let mut all = vec!["--server", &server];
        all.extend_from_slice(args);
        let out = common::kubectl_with("1.33", kubeconfig, &all, None);
        assert!(
            out.status.success(),
            "kubectl {args:?} against the restored server: {}\nlog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Restored {
    fn drop(&mut self) {
        common::stop_child(&mut self.child);
    }
}

/// A copy of `kubeconfig` in `dir` (the original goes away with its server's data directory).
fn keep_kubeconfig(kubeconfig: &Path, dir: &Path) -> PathBuf {
    let copy = dir.join("old-kubeconfig.yaml");
    std::fs::copy(kubeconfig, &copy).expect("copy kubeconfig");
    copy
}

#[test]
fn backup_of_a_running_server_restores_into_a_new_data_dir() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start();
    populate(&s);
    let archive = work.path().join("cluster.tar");
    let before = objects(|a| s.ok("1.33", a));
    let before_rv =
        s.ok("1.33", &["get", "configmap", "settings", "-n", "team-a", "-o", "jsonpath={.metadata.resourceVersion}"]);
    // While the server runs (and its controllers write).
    let said = ok(&["backup", "--data-dir", p(s.dir.path()), "-o", p(&archive)]);
    assert!(said.contains("objects at revision"), "{said}");
    let again = fails(&["backup", "--data-dir", p(s.dir.path()), "-o", p(&archive)]);
    assert!(again.contains("already exists") && again.contains("--force"), "{again}");
    ok(&["backup", "--data-dir", p(s.dir.path()), "-o", p(&archive), "--force"]);
    let old_kubeconfig = keep_kubeconfig(&s.kubeconfig, work.path());
    let old_ca = std::fs::read(s.dir.path().join("server/tls/ca.crt")).expect("ca.crt");
    s.stop();
    // Objects written after `before` (none expected once settled) would make the comparison fail, not pass.
    let new_dir = work.path().join("restored");
    let said = ok(&["restore", "-i", p(&archive), "--data-dir", p(&new_dir)]);
    assert!(said.contains("rkube server --data-dir"), "{said}");
    let refused = fails(&["restore", "-i", p(&archive), "--data-dir", p(&new_dir)]);
    assert!(refused.contains("already holds") && refused.contains("--force"), "{refused}");
    // --force replaces what is there (here: the same restore again).
    ok(&["restore", "-i", p(&archive), "--data-dir", p(&new_dir), "--force"]);
    let left: Vec<_> = std::fs::read_dir(&new_dir).expect("read dir").flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("server")], "no scratch directory is left behind");
    assert_eq!(std::fs::read(new_dir.join("server/tls/ca.crt")).expect("restored ca.crt"), old_ca, "same CA");

    let restored = Restored::start(&new_dir, &[]);
    let after = objects(|a| restored.kubectl_with(&old_kubeconfig, a));
    assert_same(&before, &after);
    // Restored into the embedded store, objects keep their resourceVersions too.
    let rv = ["get", "configmap", "settings", "-n", "team-a", "-o", "jsonpath={.metadata.resourceVersion}"];
    assert_eq!(restored.kubectl_with(&old_kubeconfig, &rv), before_rv);
    // The restored store goes on: a write works and gets a resourceVersion above the restored ones.
    restored.kubectl_with(&old_kubeconfig, &["create", "configmap", "after-restore", "-n", "team-a"]);
}

#[test]
fn damaged_truncated_and_newer_archives_are_refused_and_leave_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let s = Server::start();
    s.ok("1.33", &["create", "configmap", "x", "--from-literal=k=v"]);
    let archive = work.path().join("good.tar");
    ok(&["backup", "--data-dir", p(s.dir.path()), "-o", p(&archive)]);
    let good = std::fs::read(&archive).expect("read archive");

    let mut flipped = good.clone();
    let at = good.len() - 4096;
    flipped[at] ^= 0x55;
    let truncated = good[..good.len() / 2].to_vec();
    let text = String::from_utf8_lossy(&good[..4096]).into_owned();
    assert!(text.contains("\"formatVersion\": 1"), "the manifest comes first");
    let newer = {
        let mut b = good.clone();
        let pos = text.find("\"formatVersion\": 1").expect("version") + "\"formatVersion\": ".len();
        b[pos] = b'7';
        b
    };
    for (name, bytes, expect) in [
        ("flipped", flipped, "damaged"),
        ("truncated", truncated, "truncated"),
        ("newer", newer, "format version 7"),
        ("empty", Vec::new(), "not an rkube backup"),
    ] {
        let file = work.path().join(format!("{name}.tar"));
        std::fs::write(&file, bytes).expect("write");
        let dir = work.path().join(format!("into-{name}"));
        // An existing (empty) data dir is left as it was: nothing half-written in it.
        let existing = work.path().join(format!("existing-{name}"));
        std::fs::create_dir(&existing).expect("mkdir");
        let err = fails(&["restore", "-i", p(&file), "--data-dir", p(&existing)]);
        assert!(err.contains(expect), "{name}: {err}");
        assert_eq!(std::fs::read_dir(&existing).expect("read dir").count(), 0, "{name}: nothing left in the data dir");
        let err = fails(&["restore", "-i", p(&file), "--data-dir", p(&dir)]);
        assert!(err.contains(expect), "{name}: {err}");
        assert!(!dir.exists(), "{name}: the data dir the restore made is removed again");
    }
}

#[test]
fn etcd_backed_server_backs_up_and_restores_into_an_empty_prefix() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let etcd = rt.block_on(rkube_store_etcd::LocalEtcd::start(Default::default())).expect("start etcd");
    let ep = etcd.endpoint();
    let work = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start_with(&["--etcd-endpoints", &ep]);
    populate(&s);
    let before = objects(|a| s.ok("1.33", a));
    let archive = work.path().join("etcd.tar");
    ok(&["backup", "--data-dir", p(s.dir.path()), "--etcd-endpoints", &ep, "-o", p(&archive)]);
    let old_kubeconfig = keep_kubeconfig(&s.kubeconfig, work.path());
    s.stop();

    let new_dir = work.path().join("restored");
    // The server's own prefix is not empty: refused, with the remedy.
    let refused = fails(&["restore", "-i", p(&archive), "--data-dir", p(&new_dir), "--etcd-endpoints", &ep]);
    assert!(refused.contains("already holds keys under /registry/") && refused.contains("--etcd-prefix"), "{refused}");
    let said = ok(&[
        "restore",
        "-i",
        p(&archive),
        "--data-dir",
        p(&new_dir),
        "--etcd-endpoints",
        &ep,
        "--etcd-prefix",
        "/restored",
    ]);
    assert!(said.contains("--etcd-prefix /restored") && said.contains("resourceVersions changed"), "{said}");
    let restored = Restored::start(&new_dir, &["--etcd-endpoints", &ep, "--etcd-prefix", "/restored"]);
    let after = objects(|a| restored.kubectl_with(&old_kubeconfig, a));
    assert_same(&before, &after);
    drop(restored);
    // The same etcd backup restores into the embedded store as well.
    let sqlite_dir = work.path().join("restored-sqlite");
    ok(&["restore", "-i", p(&archive), "--data-dir", p(&sqlite_dir)]);
    let on_sqlite = Restored::start(&sqlite_dir, &[]);
    assert_same(&before, &objects(|a| on_sqlite.kubectl_with(&old_kubeconfig, a)));
    drop(on_sqlite);
    drop(etcd);
}

#[test]
fn migrate_copies_the_embedded_store_into_etcd() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let etcd = rt.block_on(rkube_store_etcd::LocalEtcd::start(Default::default())).expect("start etcd");
    let ep = etcd.endpoint();
    let mut s = Server::start();
    populate(&s);
    let before = objects(|a| s.ok("1.33", a));
    let dir = s.dir.path().to_path_buf();
    let busy = fails(&["migrate", "--to-etcd", "--etcd-endpoints", &ep, "--data-dir", p(&dir)]);
    assert!(busy.contains("in use by") && busy.contains("stop the rkube server"), "{busy}");
    s.stop();
    let said = ok(&["migrate", "--to-etcd", "--etcd-endpoints", &ep, "--data-dir", p(&dir)]);
    assert!(said.contains(&format!("rkube server --data-dir {} --etcd-endpoints {ep}", p(&dir))), "{said}");
    let twice = fails(&["migrate", "--to-etcd", "--etcd-endpoints", &ep, "--data-dir", p(&dir)]);
    assert!(twice.contains("already holds keys"), "{twice}");

    let on_etcd = Restored::start(&dir, &["--etcd-endpoints", &ep]);
    let after = objects(|a| on_etcd.kubectl_with(&s.kubeconfig, a));
    assert_same(&before, &after);
    drop(on_etcd);
    drop(s);
    drop(etcd);
}
