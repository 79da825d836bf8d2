//! Exec probes and exec hooks through a real containerd (Debian's containerd and runc; run as root): a
//! busybox container in a host-network sandbox, probed through `ExecSync` with rkube-cri's supervisor. The
//! guard removes every sandbox through CRI, stops containerd and unmounts what is left, even on failure.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, EnvVar, ExecAction, LifecycleHandler, Pod, PodSpec, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rkube_cri::{ContainerdConfig, Runtime, Supervisor, api, oci};
use rkube_probes::{Hook, ProbeKind, ProbeManager, ProbeUpdate, Target};
use tokio::sync::mpsc;

const BUSYBOX: &str = "rkube.io/test/probes-busybox:1";

/// A private containerd with one running busybox container; cleans everything up on drop.
struct Node {
    dir: tempfile::TempDir,
    supervisor: Option<Supervisor>,
    runtime: Runtime,
    container_id: String,
}

impl Node {
    async fn start() -> Node {
        // Short path: the socket must fit in 107 bytes.
        let dir = tempfile::Builder::new().prefix("rkprb").tempdir_in("/tmp").unwrap();
        let config = ContainerdConfig::new(dir.path()).unwrap();
        let socket = config.socket();
        let mut node = Node {
            runtime: Runtime::connect_lazy(&socket).unwrap(),
            supervisor: None,
            dir,
            container_id: String::new(),
        };
        node.supervisor = Some(Supervisor::start(config).await.unwrap());
        node.runtime = Runtime::connect(&socket).await.unwrap();
        rkube_cri::images::import_bytes(&socket, rkube_cri::pause::IMAGE, &rkube_cri::pause::archive()).await.unwrap();
        rkube_cri::images::import_bytes(&socket, BUSYBOX, &oci::busybox_image(BUSYBOX).unwrap()).await.unwrap();
        node.container_id = node.run_busybox().await;
        node
    }

    async fn run_busybox(&self) -> String {
        let mut rt = self.runtime.runtime.clone();
        let sandbox_config = api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: "p".into(),
                uid: "uid".into(),
                namespace: "ns".into(),
                attempt: 0,
            }),
            // No hostname: a host-network sandbox shares the host's UTS namespace.
            log_directory: self.dir.path().join("logs").to_string_lossy().into(),
            linux: Some(api::LinuxPodSandboxConfig {
                security_context: Some(api::LinuxSandboxSecurityContext {
                    // The host's network: no CNI needed, and nothing to tear down but the sandbox.
                    namespace_options: Some(api::NamespaceOption {
                        network: api::NamespaceMode::Node as i32,
                        pid: api::NamespaceMode::Container as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let sandbox = rt
            .run_pod_sandbox(api::RunPodSandboxRequest {
                config: Some(sandbox_config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .pod_sandbox_id;
        let container = rt
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: sandbox,
                config: Some(api::ContainerConfig {
                    metadata: Some(api::ContainerMetadata { name: "c".into(), attempt: 0 }),
                    image: Some(api::ImageSpec { image: BUSYBOX.into(), ..Default::default() }),
                    command: vec!["sleep".into(), "1000".into()],
                    log_path: "c/0.log".into(),
                    linux: Some(api::LinuxContainerConfig::default()),
                    ..Default::default()
                }),
                sandbox_config: Some(sandbox_config),
            })
            .await
            .unwrap()
            .into_inner()
            .container_id;
        rt.start_container(api::StartContainerRequest { container_id: container.clone() }).await.unwrap();
        container
    }

    fn target(&self) -> Target {
        Target {
            pod_ip: Some("127.0.0.1".parse().unwrap()),
            container_id: self.container_id.clone(),
            container_name: "c".into(),
            runtime: self.runtime.clone(),
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let socket = self.socket();
        // CRI from a runtime of its own: the test's runtime is blocked in this drop.
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    if let Ok(runtime) = Runtime::connect(&socket).await
                        && let Err(e) = rkube_cri::remove_all_pods(&runtime).await
                    {
                        eprintln!("cleanup: removing pods: {e}");
                    }
                })
            });
        });
        if let Some(supervisor) = self.supervisor.take() {
            let pid = supervisor.pid();
            drop(supervisor);
            let deadline = Instant::now() + Duration::from_secs(15);
            while pid != 0 && Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let dir = self.dir.path().to_string_lossy().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut under: Vec<&str> =
            mounts.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(&dir)).collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in under {
            let _ = std::process::Command::new("umount").args(["-l", mount]).status();
        }
    }
}

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

fn pod(container: Container) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("p".into()),
            namespace: Some("ns".into()),
            uid: Some("uid".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![container],
            termination_grace_period_seconds: Some(2),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn exec_probe(cmd: Vec<String>) -> Probe {
    Probe {
        exec: Some(ExecAction { command: Some(cmd) }),
        period_seconds: Some(1),
        failure_threshold: Some(1),
        ..Default::default()
    }
}

/// A manager whose events go nowhere (no API server here: the recorder's failures are only logged).
fn manager() -> (ProbeManager, mpsc::Receiver<ProbeUpdate>) {
    let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    ProbeManager::new(rkube_client::events::Recorder::new(client, "kubelet", Some("test".into())))
}

async fn next(updates: &mut mpsc::Receiver<ProbeUpdate>) -> ProbeUpdate {
    tokio::time::timeout(Duration::from_secs(20), updates.recv()).await.expect("a probe verdict in time").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_probes_and_hooks_in_a_real_container() {
    let node = Node::start().await;

    // Exit code 0 is healthy; `$(X)` comes from the container's static environment.
    let c = Container {
        name: "c".into(),
        env: Some(vec![EnvVar { name: "X".into(), value: Some("yes".into()), ..Default::default() }]),
        readiness_probe: Some(exec_probe(sh("test $(X) = yes"))),
        ..Default::default()
    };
    let (m, mut updates) = manager();
    m.add_container(&pod(c), node.target());
    let u = next(&mut updates).await;
    assert_eq!((u.kind, u.success, u.container_id.as_str()), (ProbeKind::Readiness, true, node.container_id.as_str()));
    drop(m);

    // A non-zero exit fails with the command's output.
    let c = Container {
        name: "c".into(),
        liveness_probe: Some(exec_probe(sh("echo bad; echo worse >&2; exit 3"))),
        ..Default::default()
    };
    let (m, mut updates) = manager();
    m.add_container(&pod(c), node.target());
    let u = next(&mut updates).await;
    assert_eq!((u.kind, u.success, u.message.as_str()), (ProbeKind::Liveness, false, "bad\nworse\n"));
    drop(m);

    // A command past timeoutSeconds fails with the kubelet's timeout message.
    let c = Container { name: "c".into(), readiness_probe: Some(exec_probe(sh("sleep 5"))), ..Default::default() };
    let (m, mut updates) = manager();
    m.add_container(&pod(c), node.target());
    let u = next(&mut updates).await;
    assert_eq!((u.success, u.message.as_str()), (false, r#"command timed out: "sh -c sleep 5" timed out after 1s"#));
    drop(m);

    // Hooks: a failing exec hook is worded as upstream; a preStop hook is cut at the grace period (2 s).
    let handler = |cmd| LifecycleHandler { exec: Some(ExecAction { command: Some(cmd) }), ..Default::default() };
    let p = pod(Container { name: "c".into(), ..Default::default() });
    let err =
        rkube_probes::run_hook(Hook::PostStart, &handler(sh("echo out; echo err >&2; exit 1")), &p, &node.target())
            .await
            .unwrap_err();
    assert_eq!(
        err,
        r#"Exec lifecycle hook ([sh -c echo out; echo err >&2; exit 1]) for Container "c" in Pod "p_ns(uid)" failed - error: command 'sh -c echo out; echo err >&2; exit 1' exited with 1: err
, message: "out\nerr\n""#
    );
    rkube_probes::run_hook(Hook::PostStart, &handler(sh("true")), &p, &node.target()).await.unwrap();
    let started = Instant::now();
    rkube_probes::run_hook(Hook::PreStop, &handler(sh("sleep 30")), &p, &node.target()).await.unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_secs(10), "{took:?}");
}
