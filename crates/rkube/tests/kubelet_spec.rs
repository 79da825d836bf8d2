//! What a container sees of its pod spec, end to end (a real `rkube server` with its embedded agent, its own
//! containerd and runc, real kubectl 1.33): env from envFrom, valueFrom (fieldRef, resourceFieldRef,
//! configMapKeyRef, secretKeyRef) and service links with `$(VAR)` expansion, the managed /etc/hosts with
//! hostAliases, the cluster DNS search path, the securityContext's user, groups and no_new_privs, the QoS
//! cgroup and its cpu and memory limits; and a missing ConfigMap key as upstream's
//! `CreateContainerConfigError`. Waits are polls with deadlines.

mod common;

use common::{Server, eventually, json};

const V: &str = "1.33";
const IMAGE: &str = "busybox:kubelet-spec-test";

/// The sections the container prints, split at its `---` lines.
fn sections(s: &Server, pod: &str) -> Vec<String> {
    let out = s.kubectl(V, &["logs", pod]);
    String::from_utf8_lossy(&out.stdout).split("---\n").map(str::to_owned).collect()
}

#[test]
fn containers_see_their_spec() {
    let s = Server::start_with_agent(&[]);
    s.import_busybox(IMAGE);
    common::apply(
        &s,
        &format!(
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg}}
data: {{GREETING: hello, A: "1"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: sec}}
stringData: {{PASSWORD: s3cr3t}}
---
apiVersion: v1
kind: Pod
metadata: {{name: spec, labels: {{app: spec}}}}
spec:
  terminationGracePeriodSeconds: 1
  hostname: h
  subdomain: sub
  hostAliases: [{{ip: "10.9.9.9", hostnames: [alias.example, other.example]}}]
  securityContext: {{runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000, supplementalGroups: [4000]}}
  containers:
  - name: c
    image: "{IMAGE}"
    command: ["sh", "-c"]
    args:
    - |
      env; echo ---
      cat /etc/hosts; echo ---
      cat /etc/resolv.conf; echo ---
      id; echo ---
      hostname; echo ---
      grep NoNewPrivs /proc/self/status; echo ---
      cat /proc/self/cgroup; echo ---
      cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/memory/memory.limit_in_bytes; echo ---
      echo '$(MESSAGE) $$(NOT_EXPANDED)'; echo ---
      sleep 3600
    securityContext: {{allowPrivilegeEscalation: false}}
    resources:
      requests: {{cpu: 250m, memory: 32Mi}}
      limits: {{cpu: 500m, memory: 64Mi}}
    envFrom: [{{configMapRef: {{name: cfg}}, prefix: CM_}}]
    env:
    - {{name: MY_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: MY_APP, valueFrom: {{fieldRef: {{fieldPath: "metadata.labels['app']"}}}}}}
    - {{name: MY_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
    - {{name: MY_NODE, valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}}}
    - {{name: MEM_MI, valueFrom: {{resourceFieldRef: {{resource: limits.memory, divisor: 1Mi}}}}}}
    - {{name: CPU_M, valueFrom: {{resourceFieldRef: {{resource: requests.cpu, divisor: 1m}}}}}}
    - {{name: PW, valueFrom: {{secretKeyRef: {{name: sec, key: PASSWORD}}}}}}
    - {{name: KEY_A, valueFrom: {{configMapKeyRef: {{name: cfg, key: A}}}}}}
    - {{name: MAYBE, valueFrom: {{configMapKeyRef: {{name: cfg, key: nope, optional: true}}}}}}
    - {{name: MESSAGE, value: "$(CM_GREETING)-$(MY_NAME)-$(KUBERNETES_SERVICE_PORT)"}}
---
apiVersion: v1
kind: Pod
metadata: {{name: badref}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: "{IMAGE}"
    command: ["sleep", "3600"]
    env: [{{name: X, valueFrom: {{configMapKeyRef: {{name: cfg, key: missing}}}}}}]
"#
        ),
    );

    eventually(&s, 60, "pod spec printed its view", || sections(&s, "spec").len() >= 10);
    let pod = json(&s, &["get", "pod", "spec"]);
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
    let ip = pod["status"]["podIP"].as_str().unwrap_or_default().to_owned();
    let node = pod["spec"]["nodeName"].as_str().unwrap_or_default().to_owned();
    assert_eq!(pod["status"]["qosClass"], "Burstable");
    let out = sections(&s, "spec");
    let (env, hosts, resolv, id, hostname, nnp, cgroup, limits, echo) =
        (&out[0], &out[1], &out[2], &out[3], &out[4], &out[5], &out[6], &out[7], &out[8]);

    for line in [
        "CM_GREETING=hello".to_owned(),
        "CM_A=1".to_owned(),
        "MY_NAME=spec".to_owned(),
        "MY_APP=spec".to_owned(),
        format!("MY_IP={ip}"),
        format!("MY_NODE={node}"),
        "MEM_MI=64".to_owned(),
        "CPU_M=250".to_owned(),
        "PW=s3cr3t".to_owned(),
        "KEY_A=1".to_owned(),
        "MESSAGE=hello-spec-443".to_owned(),
        "KUBERNETES_SERVICE_PORT=443".to_owned(),
        "KUBERNETES_SERVICE_PORT_HTTPS=443".to_owned(),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} missing from the env:\n{env}");
    }
    assert!(env.lines().any(|l| l.starts_with("KUBERNETES_PORT_443_TCP_ADDR=")), "{env}");
    assert!(!env.contains("MAYBE="), "{env}");

    assert!(hosts.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"), "{hosts}");
    assert!(hosts.contains(&format!("{ip}\th.sub.default.svc.cluster.local\th\n")), "{hosts}");
    assert!(hosts.ends_with("# Entries added by HostAliases.\n10.9.9.9\talias.example\tother.example\n"), "{hosts}");

    assert!(
        resolv.lines().any(|l| l == "search default.svc.cluster.local svc.cluster.local cluster.local"
            || l.starts_with("search default.svc.cluster.local svc.cluster.local cluster.local ")),
        "{resolv}"
    );
    assert!(resolv.lines().any(|l| l == "options ndots:5"), "{resolv}");

    assert!(id.starts_with("uid=1000 gid=3000"), "{id}");
    assert!(id.contains("2000") && id.contains("4000"), "groups missing: {id}");
    assert_eq!(hostname.trim(), "h");
    assert_eq!(nnp.split_whitespace().collect::<Vec<_>>(), ["NoNewPrivs:", "1"]);
    assert!(cgroup.contains(&format!("/kubepods/burstable/pod{uid}/")), "{cgroup}");
    // 250m → 256 shares; 500m → a 50ms quota in a 100ms period; 64Mi.
    assert_eq!(limits.split_whitespace().collect::<Vec<_>>(), ["256", "50000", "67108864"]);
    assert_eq!(echo.trim(), "hello-spec-443 $(NOT_EXPANDED)");

    eventually(&s, 30, "badref waiting with CreateContainerConfigError", || {
        let p = json(&s, &["get", "pod", "badref"]);
        let w = &p["status"]["containerStatuses"][0]["state"]["waiting"];
        w["reason"] == "CreateContainerConfigError"
            && w["message"] == "couldn't find key missing in ConfigMap default/cfg"
    });
    s.ok(V, &["delete", "pod", "spec", "badref", "--wait=false"]);
}
