//! rkube-cri against the real runtime (Debian's containerd, runc and CNI plugins; run as root): the
//! supervisor, the cgroup driver, image import and validation, and a pod with rkube's pause image running
//! busybox. Every test has its own containerd in a temporary directory (see `common`).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Network, Node, eventually};
use rkube_cri::cgroups::{self, CgroupDriver};
use rkube_cri::{api, images, oci};

const BUSYBOX: &str = "rkube.io/test/busybox:1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_answers_cri_restarts_containerd_and_reads_its_cgroup_driver() {
    let node = Node::start(None).await;
    let version = node.runtime.version().await.unwrap();
    assert_eq!(version.runtime_name, "containerd");
    assert_eq!(version.runtime_api_version, "v1");
    let config = std::fs::read_to_string(node.dir.path().join("config.toml")).unwrap();
    assert!(config.contains("restrict_oom_score_adj = true"), "{config}");

    // The driver comes from the runtime's own config, and agrees with this host (no systemd here).
    let (driver, source) = cgroups::runtime_driver(&node.runtime).await.unwrap();
    assert_eq!(driver, CgroupDriver::Cgroupfs, "{source}");
    assert!(source.contains("SystemdCgroup=false"), "{source}");
    assert_eq!(cgroups::host_driver(), CgroupDriver::Cgroupfs);
    cgroups::check((cgroups::host_driver(), "host"), (driver, &source)).unwrap();
    let err = cgroups::check((CgroupDriver::Systemd, "--cgroup-driver=systemd"), (driver, &source)).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("kubelet cgroup driver: systemd (--cgroup-driver=systemd)"), "{err}");
    assert!(err.contains("cgroup driver: cgroupfs (containerd runtime \"runc\" options SystemdCgroup=false)"), "{err}");

    // Killed, it comes back by itself and CRI answers again through the same client.
    let first = node.supervisor().pid();
    std::process::Command::new("kill").args(["-KILL", &first.to_string()]).status().unwrap();
    eventually("containerd to be restarted", Duration::from_secs(15), || async {
        let pid = node.supervisor().pid();
        (pid != 0 && pid != first && node.supervisor().restarts() == 1).then_some(())
    })
    .await;
    node.runtime.wait_ready(Duration::from_secs(15)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_containerd_left_by_a_killed_agent_is_replaced() {
    /// Kills the stand-in for the leftover containerd (by its PID) if the test fails before the supervisor does.
    struct Stale(std::process::Child);
    impl Drop for Stale {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let dir = tempfile::Builder::new().prefix("rkcri").tempdir_in("/tmp").unwrap();
    let config = rkube_cri::ContainerdConfig::new(dir.path()).unwrap();
    std::fs::write(config.config_file(), config.toml()).unwrap();
    let mut stale = Stale(
        std::process::Command::new("containerd")
            .arg("--config")
            .arg(config.config_file())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stale_pid = stale.0.id();
    std::fs::write(dir.path().join("containerd.pid"), format!("{stale_pid}\n")).unwrap();
    let runtime = rkube_cri::Runtime::connect_lazy(&config.socket()).unwrap();
    runtime.wait_ready(Duration::from_secs(10)).await.unwrap();

    let supervisor = rkube_cri::Supervisor::start(config).await.unwrap();
    let node = Node { dir, supervisor: Some(supervisor), runtime, bridge: None };
    let status = stale.0.try_wait().unwrap().expect("the leftover containerd was stopped");
    assert!(status.success(), "it exits cleanly on SIGTERM: {status}");
    assert_ne!(node.supervisor().pid(), stale_pid);
    node.runtime.wait_ready(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_busybox_and_lists_it() {
    let node = Node::start(None).await;
    let file = node.dir.path().join("busybox.tar");
    std::fs::write(&file, oci::busybox_image(BUSYBOX).unwrap()).unwrap();
    let mut lines = Vec::new();
    let names = images::import(&node.socket(), &[file], |l| lines.push(l.to_string())).await.unwrap();
    assert_eq!(names, [BUSYBOX]);
    assert!(lines.iter().any(|l| l.starts_with("importing")), "{lines:?}");
    let list = images::list(&node.runtime).await.unwrap();
    let busybox = list.iter().find(|i| i.names.iter().any(|n| n == BUSYBOX)).unwrap_or_else(|| panic!("{list:?}"));
    assert!(busybox.id.starts_with("sha256:") && busybox.size > 1_000_000, "{busybox:?}");
    assert!(list.iter().any(|i| i.names.iter().any(|n| n == rkube_cri::pause::IMAGE)), "{list:?}");

    // The same image as `docker save` writes it: named from RepoTags, normalised as containerd does.
    let docker = node.dir.path().join("docker.tar");
    std::fs::write(
        &docker,
        docker_archive(&std::fs::read(node.dir.path().join("busybox.tar")).unwrap(), "rkcri-docker:2"),
    )
    .unwrap();
    let names = images::import(&node.socket(), &[docker], |_| {}).await.unwrap();
    assert_eq!(names, ["docker.io/library/rkcri-docker:2"]);
    let list = images::list(&node.runtime).await.unwrap();
    let imported = list.iter().find(|i| i.names.iter().any(|n| n == &names[0])).unwrap_or_else(|| panic!("{list:?}"));
    assert_eq!(imported.id, busybox.id, "same config, same image id");
}

/// Rewrites a one-image OCI layout (from `ImageBuilder`) in `docker save`'s format.
fn docker_archive(oci_layout: &[u8], tag: &str) -> Vec<u8> {
    use std::io::Read;
    let mut files = std::collections::BTreeMap::new();
    for entry in tar::Archive::new(oci_layout).entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        files.insert(path, data);
    }
    let blob =
        |digest: &serde_json::Value| files[&format!("blobs/{}", digest.as_str().unwrap().replace(':', "/"))].clone();
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&blob(&index["manifests"][0]["digest"])).unwrap();
    let config_hex = &manifest["config"]["digest"].as_str().unwrap()[7..];
    let layer_hex = &manifest["layers"][0]["digest"].as_str().unwrap()[7..];
    let docker_manifest = serde_json::json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": [tag],
        "Layers": [format!("{layer_hex}/layer.tar")],
    }]);
    let mut out = tar::Builder::new(Vec::new());
    for (path, data) in [
        (format!("{config_hex}.json"), blob(&manifest["config"]["digest"])),
        (format!("{layer_hex}/layer.tar"), blob(&manifest["layers"][0]["digest"])),
        ("manifest.json".to_string(), docker_manifest.to_string().into_bytes()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        out.append_data(&mut header, path, &data[..]).unwrap();
    }
    out.into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_archives_are_refused_and_nothing_is_imported() {
    let node = Node::start(None).await;
    let good =
        oci::ImageBuilder::new("rkube.io/test/corrupt:1").file("data", vec![7u8; 100_000], 0o644).build().unwrap();
    let before = images::list(&node.runtime).await.unwrap();

    let truncated = node.dir.path().join("truncated.tar");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let mut flipped_bytes = good.clone();
    let at = good.windows(1000).position(|w| w.iter().all(|b| *b == 7)).unwrap() + 500;
    flipped_bytes[at] ^= 0xff;
    let flipped = node.dir.path().join("flipped.tar");
    std::fs::write(&flipped, &flipped_bytes).unwrap();
    let valid = node.dir.path().join("valid.tar");
    std::fs::write(&valid, &good).unwrap();

    for (bad, want) in [(&truncated, "not a complete tar archive"), (&flipped, "is corrupt: its content has digest")] {
        // The valid archive listed first is not imported either: all are checked before any import.
        let err = images::import(&node.socket(), &[valid.clone(), bad.clone()], |_| {}).await.unwrap_err();
        let err = err.to_string();
        assert!(err.contains(&bad.display().to_string()) && err.contains(want), "{err}");
    }
    assert_eq!(images::list(&node.runtime).await.unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_with_the_pause_image_runs_busybox() {
    let mut node = Node::start(Some(Network { bridge: "rkcri0", subnet: "10.233.7.0/24" })).await;
    let file = node.dir.path().join("busybox.tar");
    std::fs::write(&file, oci::busybox_image(BUSYBOX).unwrap()).unwrap();
    images::import(&node.socket(), &[file], |_| {}).await.unwrap();
    node.runtime.wait_ready(Duration::from_secs(10)).await.unwrap();
    let rt = &mut node.runtime.runtime;

    let logs = node.dir.path().join("logs");
    let sandbox_config = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: "p".into(),
            uid: "0b6f6d1e-uid".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "rkcri-pod".into(),
        log_directory: logs.to_string_lossy().into(),
        linux: Some(api::LinuxPodSandboxConfig {
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(api::NamespaceOption {
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
    let status =
        rt.pod_sandbox_status(api::PodSandboxStatusRequest { pod_sandbox_id: sandbox.clone(), verbose: false });
    let status = status.await.unwrap().into_inner().status.unwrap();
    assert_eq!(status.state, api::PodSandboxState::SandboxReady as i32);
    let ip = status.network.unwrap().ip;
    assert!(ip.starts_with("10.233.7."), "{ip}");

    let container = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(api::ContainerConfig {
                metadata: Some(api::ContainerMetadata { name: "main".into(), attempt: 0 }),
                image: Some(api::ImageSpec { image: BUSYBOX.into(), ..Default::default() }),
                command: vec!["sh".into(), "-c".into(), "echo hi; sleep 1000".into()],
                log_path: "main/0.log".into(),
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
    let status = rt.container_status(api::ContainerStatusRequest { container_id: container.clone(), verbose: false });
    let status = status.await.unwrap().into_inner().status.unwrap();
    assert_eq!(status.state, api::ContainerState::ContainerRunning as i32, "{status:?}");

    let log = logs.join("main/0.log");
    let line = eventually("the container's log line", Duration::from_secs(10), || async {
        std::fs::read_to_string(&log).ok().filter(|l| !l.is_empty())
    })
    .await;
    // CRI log format: RFC 3339 time, stream, P(artial)/F(ull), the line.
    let fields: Vec<&str> = line.trim_end().splitn(4, ' ').collect();
    assert_eq!(fields[1..], ["stdout", "F", "hi"], "{line:?}");

    let exec = rt
        .exec_sync(api::ExecSyncRequest { container_id: container.clone(), cmd: vec!["hostname".into()], timeout: 10 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((exec.exit_code, String::from_utf8_lossy(&exec.stdout).trim()), (0, "rkcri-pod"));

    // The pause container is still there holding the sandbox.
    let status =
        rt.pod_sandbox_status(api::PodSandboxStatusRequest { pod_sandbox_id: sandbox.clone(), verbose: false });
    assert_eq!(status.await.unwrap().into_inner().status.unwrap().state, api::PodSandboxState::SandboxReady as i32);

    rt.stop_container(api::StopContainerRequest { container_id: container.clone(), timeout: 1 }).await.unwrap();
    rt.remove_container(api::RemoveContainerRequest { container_id: container }).await.unwrap();
    rt.stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id: sandbox.clone() }).await.unwrap();
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id: sandbox }).await.unwrap();
    let containers = rt.list_containers(api::ListContainersRequest { filter: None }).await.unwrap().into_inner();
    assert!(containers.containers.is_empty(), "{containers:?}");
    let sandboxes = rt.list_pod_sandbox(api::ListPodSandboxRequest { filter: None }).await.unwrap().into_inner();
    assert!(sandboxes.items.is_empty(), "{sandboxes:?}");
}
