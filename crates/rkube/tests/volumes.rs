//! Pod volumes in running pods, end to end: a real `rkube server` with its embedded agent (containerd, runc,
//! CNI), busybox built and imported by the test, kubectl 1.33. A configMap volume's file changes inside the
//! running container after the ConfigMap is edited; the service-account volume holds a token the API server
//! accepts from inside the pod's files; a pod whose ConfigMap is missing gets upstream's `FailedMount` event
//! and starts once the ConfigMap is created; an emptyDir with a subPath is shared between containers.

mod common;

use common::{Server, eventually, json};

const V: &str = "1.33";
const IMAGE: &str = "busybox:volumes-test";

fn exec(s: &Server, pod: &str, container: &str, cmd: &[&str]) -> Option<String> {
    let mut args = vec!["exec", pod, "-c", container, "--"];
    args.extend(cmd);
    let out = s.kubectl(V, &args);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn running(s: &Server, name: &str) -> bool {
    json(s, &["get", "pod", name])["status"]["phase"] == "Running"
}

fn events(s: &Server, name: &str) -> Vec<String> {
    let list = json(s, &["get", "events", "--field-selector", &format!("involvedObject.name={name}")]);
    let items = list["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|e| format!("{}: {}", e["reason"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or("")))
        .collect()
}

#[test]
fn volumes_in_running_pods() {
    let s = Server::start_with_agent(&[]);
    s.import_busybox(IMAGE);
    common::apply(
        &s,
        &format!(
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg}}
data: {{greeting: hello}}
---
apiVersion: v1
kind: Pod
metadata: {{name: reader}}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {{name: cfg, configMap: {{name: cfg}}}}
  - {{name: shared, emptyDir: {{}}}}
  containers:
  - name: c
    image: "{IMAGE}"
    command: ["sh", "-c", "echo from-c > /out/file; sleep 3600"]
    volumeMounts:
    - {{name: cfg, mountPath: /etc/cfg}}
    - {{name: shared, mountPath: /out, subPath: sub}}
  - name: d
    image: "{IMAGE}"
    command: ["sleep", "3600"]
    volumeMounts:
    - {{name: shared, mountPath: /all}}
---
apiVersion: v1
kind: Pod
metadata: {{name: waiter}}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {{name: late, configMap: {{name: late}}}}
  containers:
  - name: c
    image: "{IMAGE}"
    command: ["sleep", "3600"]
    volumeMounts:
    - {{name: late, mountPath: /late}}
"#
        ),
    );
    eventually(&s, 60, "pod reader Running", || running(&s, "reader"));
    assert_eq!(exec(&s, "reader", "c", &["cat", "/etc/cfg/greeting"]).as_deref(), Some("hello"));
    // The configMap mount is read-only; the emptyDir subPath is the other container's `sub/`.
    assert!(
        exec(&s, "reader", "c", &["sh", "-c", "echo x > /etc/cfg/new"]).is_none(),
        "configMap volumes are read-only"
    );
    eventually(&s, 20, "the shared emptyDir file", || {
        exec(&s, "reader", "d", &["cat", "/all/sub/file"]).as_deref() == Some("from-c\n")
    });
    // The ServiceAccount admission's volume: namespace, CA and a token.
    let sa = "/var/run/secrets/kubernetes.io/serviceaccount";
    assert_eq!(exec(&s, "reader", "c", &["cat", &format!("{sa}/namespace")]).as_deref(), Some("default"));
    let ca = exec(&s, "reader", "c", &["cat", &format!("{sa}/ca.crt")]).unwrap_or_default();
    assert!(ca.contains("BEGIN CERTIFICATE"), "{ca}");
    let token = exec(&s, "reader", "c", &["cat", &format!("{sa}/token")]).unwrap_or_default();
    let review = s.kubectl_stdin(
        V,
        &["create", "-o", "json", "-f", "-"],
        &serde_json::json!({ "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": { "token": token } })
            .to_string(),
    );
    let review: serde_json::Value = serde_json::from_slice(&review.stdout).expect("TokenReview json");
    assert_eq!(review["status"]["authenticated"], true, "{review}");
    assert_eq!(review["status"]["user"]["extra"]["authentication.kubernetes.io/pod-name"][0], "reader");

    // Edit the ConfigMap: the running container sees the new contents at a later pod sync.
    s.ok(V, &["patch", "configmap", "cfg", "--type=merge", "-p", r#"{"data":{"greeting":"changed"}}"#]);
    eventually(&s, 60, "the ConfigMap change inside the container", || {
        exec(&s, "reader", "c", &["cat", "/etc/cfg/greeting"]).as_deref() == Some("changed")
    });

    // A missing ConfigMap: upstream's FailedMount event, then the pod starts once it exists.
    let want = r#"FailedMount: MountVolume.SetUp failed for volume "late" : configmap "late" not found"#;
    eventually(&s, 30, "FailedMount for waiter", || events(&s, "waiter").iter().any(|e| e == want));
    assert!(!running(&s, "waiter"));
    s.ok(V, &["create", "configmap", "late", "--from-literal=k=v"]);
    eventually(&s, 60, "pod waiter Running", || running(&s, "waiter"));
    assert_eq!(exec(&s, "waiter", "c", &["cat", "/late/k"]).as_deref(), Some("v"));
    s.ok(V, &["delete", "pod", "reader", "waiter", "--wait=true", "--timeout=60s"]);
}
