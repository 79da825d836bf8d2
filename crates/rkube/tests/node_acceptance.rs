//! Issue 5's acceptance cases that cross the node and the control plane: a client inside a pod calls the API
//! with the pod's projected service-account token, and a pod that is not ready is left out of its Service's
//! endpoints until its readiness probe passes. Real containerd, runc and CNI plugins; the pod reaches the API
//! server at its bridge gateway (no service proxy yet: issue 7).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, eventually, json};

const IMAGE: &str = "rkube.io/test/busybox:acceptance";

fn pod_ip(s: &Server, name: &str) -> String {
    json(s, &["get", "pod", name])["status"]["podIP"].as_str().unwrap_or_default().to_owned()
}

fn wait_running(s: &Server, name: &str) {
    eventually(s, 60, &format!("pod {name} Running"), || {
        json(s, &["get", "pod", name])["status"]["phase"] == "Running"
    });
}

#[test]
fn a_client_in_a_pod_calls_the_api_with_its_projected_token() {
    let s = Server::start_with_agent(&[]);
    s.import_busybox(IMAGE);
    s.ok("1.33", &["run", "caller", "--image", IMAGE, "--image-pull-policy=Never", "--", "sleep", "3600"]);
    wait_running(&s, "caller");
    let dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    let read = |file: &str| s.ok("1.33", &["exec", "caller", "--", "cat", &format!("{dir}/{file}")]);
    let (token, ca, namespace) = (read("token"), read("ca.crt"), read("namespace"));
    assert_eq!(namespace, "default");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "ca.crt from kube-root-ca.crt:\n{ca}");

    // The pod reaches the API server at its bridge gateway; the request is made from inside the pod. Its
    // busybox wget cannot finish a TLS handshake with the API server (rustls refuses busybox's TLS 1.2
    // hello), so what the pod's wget shows is that the address is reachable from the pod's network.
    let gateway = s.pod_subnet().trim_end_matches(".0/24").to_owned() + ".1";
    let probe = format!("nc -w 2 {gateway} {} </dev/null && echo reachable", s.port);
    assert!(s.ok("1.33", &["exec", "caller", "--", "sh", "-c", &probe]).contains("reachable"));

    // A client holding only the pod's projected files (its CA and its token) is the pod's service account,
    // bound to the pod.
    let ca_file = s.dir.path().join("pod-ca.crt");
    std::fs::write(&ca_file, &ca).unwrap();
    let client = |args: &[&str]| {
        let mut cmd = std::process::Command::new(common::kubectl_path("1.33").expect("kubectl 1.33"));
        cmd.args(["--kubeconfig", "/dev/null", "--server", &format!("https://{gateway}:{}", s.port)])
            .arg(format!("--certificate-authority={}", ca_file.display()))
            .arg(format!("--token={token}"))
            .args(args);
        cmd.output().unwrap()
    };
    let out = client(&["auth", "whoami", "-o", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let me: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let user = &me["status"]["userInfo"];
    assert_eq!(user["username"], "system:serviceaccount:default:default", "{me}");
    assert_eq!(user["extra"]["authentication.kubernetes.io/pod-name"][0], "caller", "{me}");
    let api = client(&["get", "--raw", "/api"]);
    assert!(String::from_utf8_lossy(&api.stdout).contains("\"kind\":\"APIVersions\""), "{api:?}");

    // Deleting the pod invalidates its bound token.
    s.ok("1.33", &["delete", "pod", "caller", "--grace-period=1"]);
    eventually(&s, 30, "the deleted pod's token refused", || !client(&["get", "--raw", "/api"]).status.success());
}

#[test]
fn a_pod_that_is_not_ready_is_left_out_of_its_service_endpoints() {
    let s = Server::start_with_agent(&[]);
    s.import_busybox(IMAGE);
    let pod = |name: &str, probe: &str| {
        format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: web}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: "{IMAGE}"
    imagePullPolicy: Never
    command: ["sh", "-c", "sleep 3600"]
    ports: [{{containerPort: 8080, name: http}}]
{probe}"#
        )
    };
    let probe = "    readinessProbe:\n      exec: {command: [test, -f, /tmp/ready]}\n      periodSeconds: 1\n";
    common::apply(&s, &pod("ready", ""));
    common::apply(&s, &pod("waiting", probe));
    common::apply(
        &s,
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: http}]\n",
    );
    wait_running(&s, "ready");
    wait_running(&s, "waiting");
    let (ready_ip, waiting_ip) = (pod_ip(&s, "ready"), pod_ip(&s, "waiting"));
    let addresses = |field: &str| -> Vec<String> {
        let ep = json(&s, &["get", "endpoints", "web"]);
        ep["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|sub| sub[field].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["ip"].as_str().map(str::to_owned))
            .collect()
    };
    eventually(&s, 30, "the ready pod in addresses, the other in notReadyAddresses", || {
        addresses("addresses") == vec![ready_ip.clone()] && addresses("notReadyAddresses") == vec![waiting_ip.clone()]
    });
    let status = json(&s, &["get", "pod", "waiting"])["status"].clone();
    assert_eq!(status["containerStatuses"][0]["ready"], false, "{status}");
    assert_eq!(status["containerStatuses"][0]["started"], true, "{status}");

    // Once the probe passes, the pod joins the endpoints.
    s.ok("1.33", &["exec", "waiting", "--", "touch", "/tmp/ready"]);
    eventually(&s, 30, "both pods in addresses", || {
        let mut got = addresses("addresses");
        got.sort();
        let mut want = vec![ready_ip.clone(), waiting_ip.clone()];
        want.sort();
        got == want && addresses("notReadyAddresses").is_empty()
    });
}
