//! The `rkube` command line: subcommands list their own, bad configuration is reported all at once,
//! and a corrupt store file is named in the error without being touched.

use std::process::Command;

fn rkube(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rkube")).args(args).output().expect("run rkube")
}

#[test]
fn cluster_without_a_subcommand_lists_its_subcommands_and_fails() {
    let out = rkube(&["cluster"]);
    assert!(!out.status.success(), "rkube cluster must exit non-zero");
    let err = String::from_utf8_lossy(&out.stderr);
    for sub in ["up", "down", "list", "kubeconfig", "load", "exec", "stop", "start"] {
        assert!(err.contains(&format!("  {sub} ")), "{sub} missing from:\n{err}");
    }
    assert!(!err.contains("forward"), "the forwarder is internal:\n{err}");
}

#[test]
fn version_prints() {
    let out = rkube(&["version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("rkube "));
}

#[test]
fn every_config_problem_is_reported_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = rkube(&[
        "server",
        "--data-dir",
        dir.path().to_str().expect("utf-8 path"),
        "--etcd-endpoints",
        "localhost:2379",
        "--etcd-certfile",
        "/nonexistent/cert.pem",
        "--service-cidr",
        "not-a-cidr",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"localhost:2379\" is not a URL"), "{err}");
    assert!(err.contains("/nonexistent/cert.pem does not exist"), "{err}");
    assert!(err.contains("--etcd-certfile and --etcd-keyfile go together"), "{err}");
    assert!(err.contains("--service-cidr \"not-a-cidr\" is not a CIDR"), "{err}");
    assert!(
        std::fs::read_dir(dir.path()).expect("read dir").next().is_none(),
        "nothing may be created before the configuration is valid"
    );
}

#[test]
fn corrupt_store_file_is_named_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_dir = dir.path().join("server").join("db");
    std::fs::create_dir_all(&db_dir).expect("mkdir");
    let db = db_dir.join("state.db");
    let garbage = b"this is not a database, it is a text file that someone put here by mistake\n".repeat(100);
    std::fs::write(&db, &garbage).expect("write");
    let out = rkube(&[
        "server",
        "--disable-agent",
        "--data-dir",
        dir.path().to_str().expect("utf-8"),
        "--https-listen-port",
        "1",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(db.to_str().expect("utf-8")), "the error must name the file: {err}");
    assert_eq!(std::fs::read(&db).expect("read back"), garbage, "the file must not be modified");
}

#[test]
fn node_ipam_off_needs_etcd_leases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = rkube(&[
        "server",
        "--allocate-node-cidrs=false",
        "--node-name",
        "ipam-off",
        "--node-ip",
        "192.0.2.10",
        "--data-dir",
        dir.path().to_str().expect("utf-8"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allocate-node-cidrs=false leaves this node without a pod range"), "{err}");
    assert!(err.contains("--flannel-etcd-endpoints"), "{err}");
    assert!(std::fs::read_dir(dir.path()).expect("read dir").next().is_none(), "nothing is made");
}
