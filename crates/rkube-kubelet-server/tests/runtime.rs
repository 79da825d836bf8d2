//! The agent API in front of a real containerd (Debian's containerd, runc and CNI plugins; run as root):
//! pods are created through CRI with the kubelet's labels, and the server is reached over TLS with a client
//! certificate, as the API server reaches it. Exec, attach and port-forward go through containerd's own
//! streaming server (WebSocket channel protocol here; SPDY is exercised by kubectl in the rkube e2e tests).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Agent, BUSYBOX, Node, Ws, eventually};
use rkube_cri::{Runtime, api, labels};
use tokio::io::AsyncReadExt;

struct Pod {
    ns: String,
    name: String,
    uid: String,
    sandbox: String,
    config: api::PodSandboxConfig,
}

async fn run_pod(rt: &Runtime, node: &Node, ns: &str, name: &str) -> Pod {
    let uid = format!("uid-{name}");
    let labels = HashMap::from([
        (labels::POD_NAMESPACE.to_owned(), ns.to_owned()),
        (labels::POD_NAME.to_owned(), name.to_owned()),
        (labels::POD_UID.to_owned(), uid.clone()),
    ]);
    let config = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.into(),
            uid: uid.clone(),
            namespace: ns.into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: node.logs_dir().join(format!("{ns}_{name}_{uid}")).to_string_lossy().into(),
        labels,
        linux: Some(api::LinuxPodSandboxConfig::default()),
        ..Default::default()
    };
    let mut client = rt.runtime.clone();
    let req = api::RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: String::new() };
    let sandbox = client.run_pod_sandbox(req).await.unwrap().into_inner().pod_sandbox_id;
    Pod { ns: ns.into(), name: name.into(), uid, sandbox, config }
}

async fn run_container(rt: &Runtime, pod: &Pod, name: &str, restarts: u32, script: &str) -> String {
    let mut labels = pod.config.labels.clone();
    labels.insert(labels::CONTAINER_NAME.to_owned(), name.to_owned());
    let config = api::ContainerConfig {
        metadata: Some(api::ContainerMetadata { name: name.into(), attempt: restarts }),
        image: Some(api::ImageSpec { image: BUSYBOX.into(), ..Default::default() }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        log_path: format!("{name}/{restarts}.log"),
        labels,
        annotations: HashMap::from([(labels::RESTART_COUNT.to_owned(), restarts.to_string())]),
        linux: Some(api::LinuxContainerConfig::default()),
        ..Default::default()
    };
    let mut client = rt.runtime.clone();
    let req = api::CreateContainerRequest {
        pod_sandbox_id: pod.sandbox.clone(),
        config: Some(config),
        sandbox_config: Some(pod.config.clone()),
    };
    let id = client.create_container(req).await.unwrap().into_inner().container_id;
    client.start_container(api::StartContainerRequest { container_id: id.clone() }).await.unwrap();
    id
}

async fn state(rt: &Runtime, id: &str) -> i32 {
    let mut client = rt.runtime.clone();
    let req = api::ContainerStatusRequest { container_id: id.into(), verbose: false };
    client.container_status(req).await.unwrap().into_inner().status.unwrap().state
}

fn logs_path(pod: &Pod, container: &str, query: &str) -> String {
    format!("/containerLogs/{}/{}/{container}?{query}", pod.ns, pod.name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_logs_from_the_runtime() {
    let node = Node::start("rkks61", "10.233.61.0/24").await;
    let rt = node.runtime.clone();
    let agent = Agent::start(&node).await;
    let pod = run_pod(&rt, &node, "default", "web").await;
    // Instance 0 exits; instance 1 (restart count 1) prints, waits for a signal file, prints and exits.
    // The stderr line is written after the stdout line has been copied to the log (the sleep), because the
    // runtime copies the two streams concurrently and their order in the file is otherwise not fixed.
    let first = run_container(&rt, &pod, "main", 0, "echo first-instance; sleep 0.3; echo to-stderr >&2; exit 3").await;
    eventually("instance 0 to exit", Duration::from_secs(20), || async {
        (state(&rt, &first).await == api::ContainerState::ContainerExited as i32).then_some(())
    })
    .await;
    let second = run_container(
        &rt,
        &pod,
        "main",
        1,
        "echo one; echo two; echo three; while [ ! -f /tmp/go ]; do sleep 0.1; done; echo after; sleep 0.5",
    )
    .await;
    run_container(&rt, &pod, "side", 0, "sleep 1000").await;

    let all = eventually("the current instance's log", Duration::from_secs(20), || async {
        let (code, body) = agent.get(&logs_path(&pod, "main", "")).await;
        (code == 200 && body == "one\ntwo\nthree\n").then_some(body)
    })
    .await;
    assert_eq!(all, "one\ntwo\nthree\n");
    assert_eq!(agent.get(&logs_path(&pod, "main", "tailLines=1")).await, (200, "three\n".into()));
    assert_eq!(agent.get(&logs_path(&pod, "main", "limitBytes=5")).await, (200, "one\nt".into()));
    let (code, stamped) = agent.get(&logs_path(&pod, "main", "timestamps=true&tailLines=2")).await;
    assert_eq!(code, 200);
    let lines: Vec<&str> = stamped.lines().collect();
    assert_eq!(lines.len(), 2, "{stamped}");
    for (line, want) in lines.iter().zip(["two", "three"]) {
        let (ts, text) = line.split_once(' ').unwrap();
        assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{line}");
        assert_eq!(text, want);
    }
    assert_eq!(agent.get(&logs_path(&pod, "main", "sinceTime=2999-01-01T00:00:00Z")).await, (200, String::new()));
    assert_eq!(agent.get(&logs_path(&pod, "main", "previous=true")).await, (200, "first-instance\nto-stderr\n".into()));
    assert_eq!(agent.get(&logs_path(&pod, "main", "previous=true&stream=Stderr")).await, (200, "to-stderr\n".into()));

    let (code, body) = agent.get(&logs_path(&pod, "side", "previous=true")).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains(r#"previous terminated container \"side\" in pod \"web\" not found"#), "{body}");
    let (code, body) = agent.get("/containerLogs/default/nope/main").await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains(r#"pod \"nope\" does not exist"#), "{body}");
    let (code, body) = agent.get(&logs_path(&pod, "ghost", "")).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("is waiting to start"), "{body}");
    let (code, body) = agent.get(&logs_path(&pod, "main", "tailLines=x")).await;
    assert_eq!(code, 400, "{body}");

    // follow: the lines so far, then new ones as they are written; the stream ends when the container exits.
    let (head, mut stream) = agent.open(&logs_path(&pod, "main", "follow=true")).await;
    assert!(head.starts_with("HTTP/1.1 200") && head.contains("text/plain"), "{head}");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("three\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "stream ended early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let mut client = rt.runtime.clone();
    let touch =
        api::ExecSyncRequest { container_id: second.clone(), cmd: vec!["touch".into(), "/tmp/go".into()], timeout: 10 };
    assert_eq!(client.exec_sync(touch).await.unwrap().into_inner().exit_code, 0);
    let rest = tokio::time::timeout(Duration::from_secs(20), async {
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        rest
    })
    .await
    .expect("the followed stream ends once the container exits");
    got.extend_from_slice(&rest);
    let body = common::dechunk(&String::from_utf8_lossy(&got));
    assert_eq!(body, "one\ntwo\nthree\nafter\n");

    // No client certificate, no service.
    let refused = async {
        let mut s = agent.connect(&agent.pki.anonymous).await?;
        tokio::io::AsyncWriteExt::write_all(&mut s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await?;
        let mut b = [0u8; 16];
        let n = s.read(&mut b).await?;
        Ok::<usize, std::io::Error>(n)
    };
    assert!(!matches!(refused.await, Ok(n) if n > 0), "a client without a certificate was answered");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_attach_port_forward_health_and_stats() {
    let node = Node::start("rkks62", "10.233.62.0/24").await;
    let rt = node.runtime.clone();
    let agent = Agent::start(&node).await;
    let pod = run_pod(&rt, &node, "default", "shell").await;
    run_container(
        &rt,
        &pod,
        "main",
        0,
        "mkdir -p /www && echo hello-from-httpd > /www/index.html && exec httpd -f -p 8080 -h /www",
    )
    .await;
    run_container(&rt, &pod, "ticker", 0, "while true; do echo tick; sleep 0.2; done").await;

    assert_eq!(agent.get("/healthz").await, (200, "ok".into()));
    let main_id = eventually("main to run", Duration::from_secs(20), || async {
        let mut client = rt.runtime.clone();
        let filter = api::ContainerFilter {
            label_selector: HashMap::from([(labels::CONTAINER_NAME.to_owned(), "main".to_owned())]),
            ..Default::default()
        };
        let list = client.list_containers(api::ListContainersRequest { filter: Some(filter) }).await.ok()?;
        list.into_inner().containers.into_iter().next().map(|c| c.id)
    })
    .await;
    eventually("httpd to listen", Duration::from_secs(20), || async {
        let mut client = rt.runtime.clone();
        let cmd = vec!["wget".into(), "-qO-".into(), "http://127.0.0.1:8080/index.html".into()];
        let r = client.exec_sync(api::ExecSyncRequest { container_id: main_id.clone(), cmd, timeout: 5 }).await.ok()?;
        (r.into_inner().exit_code == 0).then_some(())
    })
    .await;

    // exec over the channel WebSocket protocol containerd's streaming server speaks (v4).
    let exec = "/exec/default/shell/main?command=sh&command=-c&command=echo%20%24HOSTNAME&stdout=true&stderr=true";
    let (head, ws, body) = Ws::open(&agent, exec, "v4.channel.k8s.io").await;
    let mut ws = ws.unwrap_or_else(|| panic!("{head}{body}"));
    let out = ws.drain(Duration::from_secs(20)).await;
    assert_eq!(String::from_utf8_lossy(out.get(&1).map_or(&[][..], |v| v)), "shell\n", "{out:?}");
    assert!(String::from_utf8_lossy(&out[&3]).contains("Success"), "{out:?}");

    // kubectl ≥1.30 asks for v5 first; containerd 1.6 refuses it with a non-101 answer, which is what makes
    // kubectl fall back to SPDY. The refusal must reach the client as such.
    let (head, ws, body) = Ws::open(&agent, exec, "v5.channel.k8s.io").await;
    assert!(ws.is_none() && !head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.starts_with("HTTP/1.1 4"), "{head}{body}");

    // stdin goes in on channel 0.
    let cat = "/exec/default/shell/main?command=head&command=-n1&stdin=true&stdout=true";
    let (head, ws, _) = Ws::open(&agent, cat, "v4.channel.k8s.io").await;
    let mut ws = ws.unwrap_or_else(|| panic!("{head}"));
    ws.send(b"\x00hello through stdin\n").await;
    let out = ws.drain(Duration::from_secs(20)).await;
    assert_eq!(String::from_utf8_lossy(&out[&1]), "hello through stdin\n", "{out:?}");

    // attach to a container that keeps printing.
    let (head, ws, _) = Ws::open(&agent, "/attach/default/shell/ticker?stdout=true", "v4.channel.k8s.io").await;
    let mut ws = ws.unwrap_or_else(|| panic!("{head}"));
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("tick\ntick\n") {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.recv()).await.unwrap().expect("attach stream");
        if m.first() == Some(&1) {
            seen.extend_from_slice(&m[1..]);
        }
    }
    drop(ws);

    // port-forward to the pod's httpd (channel 0 data, channel 1 errors; each starts with the port).
    let (head, ws, body) = Ws::open(&agent, "/portForward/default/shell?port=8080", "v4.channel.k8s.io").await;
    let mut ws = ws.unwrap_or_else(|| panic!("{head}{body}"));
    ws.send(b"\x00GET /index.html HTTP/1.0\r\n\r\n").await;
    let mut data = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&data).contains("hello-from-httpd") {
        let m = tokio::time::timeout_at(deadline, ws.recv()).await.expect("httpd answers in time").expect("open");
        // The first message on each channel is the port number (2 bytes); data follows on channel 0.
        if m.first() == Some(&0) && m.len() > 3 {
            data.extend_from_slice(&m[1..]);
        }
    }
    let got = String::from_utf8_lossy(&data).into_owned();
    assert!(got.starts_with("HTTP/1.") && got.contains("200"), "{got}");
    drop(ws);

    // Not running / unknown: clear errors before any upgrade.
    let (code, body) = agent.get("/exec/default/nope/main?command=true&stdout=true").await;
    assert_eq!(code, 404, "{body}");
    let (code, body) = agent.get("/exec/default/shell/main?stdout=true").await;
    assert_eq!(code, 400, "{body}");

    // Stats and metrics: the pod's containers with CPU and memory.
    let summary = eventually("the pod in /stats/summary", Duration::from_secs(20), || async {
        let (code, body) = agent.get("/stats/summary").await;
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let has = v["pods"].as_array()?.iter().any(|p| {
            p["podRef"]["name"] == "shell"
                && p["containers"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["name"] == "main" && c["memory"]["workingSetBytes"].is_u64()))
        });
        has.then_some(v)
    })
    .await;
    assert_eq!(summary["node"]["nodeName"], "test-node");
    assert!(summary["node"]["memory"]["workingSetBytes"].as_u64().unwrap() > 0, "{summary}");
    let pod_json = summary["pods"].as_array().unwrap().iter().find(|p| p["podRef"]["name"] == "shell").unwrap();
    assert_eq!(pod_json["podRef"]["uid"], pod.uid);
    assert!(pod_json["cpu"]["usageCoreNanoSeconds"].is_u64(), "{pod_json}");
    let (code, text) = agent.get("/metrics/resource").await;
    assert_eq!(code, 200);
    assert!(
        text.contains("container_cpu_usage_seconds_total{container=\"main\",namespace=\"default\",pod=\"shell\"}"),
        "{text}"
    );
    assert!(text.contains("pod_memory_working_set_bytes{namespace=\"default\",pod=\"shell\"}"), "{text}");
    assert!(text.contains("node_memory_working_set_bytes "), "{text}");
    assert!(text.contains("resource_scrape_error 0"), "{text}");
    let (code, text) = agent.get("/metrics").await;
    assert_eq!(code, 200);
    assert!(
        text.contains("kubelet_http_requests_total{method=\"GET\",path=\"exec\",server_type=\"readwrite\"}"),
        "{text}"
    );
    assert!(text.contains("kubelet_runtime_operations_total{operation_type=\"exec\"}"), "{text}");

    // A stream still open does not keep the server from stopping.
    let (_head, _open_attach, _) =
        Ws::open(&agent, "/attach/default/shell/ticker?stdout=true", "v4.channel.k8s.io").await;
    agent.shutdown().await;
}
