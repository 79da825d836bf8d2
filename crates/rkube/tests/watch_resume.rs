//! A watch that resumes from a resourceVersion older than the watch cache keeps (`--default-watch-cache-size`) is
//! read from the store, then moves to the cache once it has caught up: every change reaches the client once, in
//! order, across the move, and `/metrics` shows the watch left the store while still open.

mod common;

use common::Server;

fn config_maps(from: usize, to: usize) -> String {
    let items: Vec<String> = (from..to)
        .map(|i| {
            format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"c{i}"}},"data":{{"i":"{i}"}}}}"#)
        })
        .collect();
    format!(r#"{{"apiVersion":"v1","kind":"List","items":[{}]}}"#, items.join(","))
}

fn metric(s: &Server, name: &str) -> Option<i64> {
    let text = s.ok("1.33", &["get", "--raw", "/metrics"]);
    text.lines().find_map(|l| l.strip_prefix(&format!("{name} ")).and_then(|v| v.trim().parse().ok()))
}

#[test]
fn a_watch_behind_the_cache_reads_the_store_then_moves_to_the_cache_losing_nothing() {
    let s = Server::start_with(&["--default-watch-cache-size", "20"]);
    // The root-CA controller writes a ConfigMap into every namespace; once it is there, only this test's writes follow.
    common::eventually(&s, 30, "kube-root-ca.crt in default", || {
        s.kubectl("1.33", &["get", "configmap", "kube-root-ca.crt"]).status.success()
    });
    s.ok("1.33", &["create", "configmap", "c0"]);
    let rv0 = s.ok("1.33", &["get", "configmap", "c0", "-o", "jsonpath={.metadata.resourceVersion}"]);
    let out = s.kubectl_stdin("1.33", &["create", "-f", "-"], &config_maps(1, 41));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(metric(&s, "rkube_apiserver_store_watches_total"), Some(0));

    // 40 configmap changes since rv0 and only 20 kept: this watch starts from the store.
    let (kubeconfig, rv) = (s.kubeconfig.clone(), rv0.clone());
    let watch = std::thread::spawn(move || {
        let path = format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=12");
        common::kubectl_with("1.33", &kubeconfig, &["get", "--raw", &path], None)
    });
    common::eventually(&s, 10, "the watch to start from the store", || {
        metric(&s, "rkube_apiserver_store_watches_total") == Some(1)
    });
    // Having sent the backlog it reads from the cache, though still open.
    common::eventually(&s, 10, "the watch to move to the cache", || {
        metric(&s, "rkube_apiserver_store_watches") == Some(0)
    });
    let out = s.kubectl_stdin("1.33", &["create", "-f", "-"], &config_maps(41, 71));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.ok("1.33", &["delete", "configmap", "c3"]);

    let out = watch.join().expect("watch thread");
    let text = String::from_utf8_lossy(&out.stdout);
    let events: Vec<serde_json::Value> =
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("a JSON event")).collect();
    let seen: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["type"] != "BOOKMARK")
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_owned(),
                e["object"]["metadata"]["name"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let mut want: Vec<(String, String)> = (1..71).map(|i| ("ADDED".to_owned(), format!("c{i}"))).collect();
    want.push(("DELETED".to_owned(), "c3".to_owned()));
    assert_eq!(seen, want, "{text}");
    let revisions: Vec<i64> = events
        .iter()
        .filter_map(|e| e["object"]["metadata"]["resourceVersion"].as_str().and_then(|r| r.parse().ok()))
        .collect();
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "revisions in order: {revisions:?}");
    assert!(revisions.first().is_some_and(|r| *r > rv0.parse::<i64>().unwrap_or(i64::MAX)));
    assert_eq!(metric(&s, "rkube_apiserver_store_watches"), Some(0));
    assert_eq!(metric(&s, "rkube_apiserver_store_watches_total"), Some(1), "only the one watch read the store");
}

#[test]
fn a_watch_cache_size_of_zero_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(["server", "--disable-agent", "--default-watch-cache-size", "0", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run rkube");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--default-watch-cache-size must be at least 1"), "{err}");
    assert!(!dir.path().join("kubeconfig.yaml").exists(), "nothing started");
}
