//! Pod volumes set up against a real API server (no agent: the Pod objects only name a node): configMap,
//! secret, downwardAPI and projected files, the admission-added `kube-api-access-*` volume with a bound
//! token the server accepts, a ConfigMap update at the next setup, a missing ConfigMap's upstream error
//! until it is created, claims bound to hostPath PVs, mounts and teardown.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use rkube_volumes::{Error, VolumeManager};
use serde_json::json;

struct Fixture {
    _server: support::Server,
    client: kube::Client,
    pods_dir: tempfile::TempDir,
    vm: VolumeManager,
}

impl Fixture {
    async fn new() -> Fixture {
        let server = support::Server::start();
        let client = server.client().await;
        let pods_dir = tempfile::tempdir().unwrap();
        let vm = VolumeManager::with_cache_ttl(
            client.clone(),
            pods_dir.path().to_owned(),
            "test-node".into(),
            Duration::ZERO,
        );
        // Controllers make the default ServiceAccount and kube-root-ca.crt; pods need both.
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        support::eventually(30, "default ServiceAccount", || async { sas.get_opt("default").await.ok().flatten() })
            .await;
        support::eventually(30, "kube-root-ca.crt", || async { cms.get_opt("kube-root-ca.crt").await.ok().flatten() })
            .await;
        Fixture { _server: server, client, pods_dir, vm }
    }

    async fn create<K>(&self, obj: serde_json::Value) -> K
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
        K: Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), "default");
        api.create(&PostParams::default(), &serde_json::from_value(obj).unwrap()).await.unwrap()
    }

    fn mounted(&self) -> Vec<String> {
        let root = self.pods_dir.path().to_string_lossy().into_owned();
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        table.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(&root)).map(str::to_owned).collect()
    }

    fn vol(&self, pod: &Pod, plugin: &str, name: &str) -> PathBuf {
        let uid = pod.metadata.uid.as_deref().unwrap();
        self.pods_dir.path().join(uid).join("volumes").join(format!("kubernetes.io~{plugin}")).join(name)
    }
}

/// Unmounts what setup mounted (secret, downwardAPI and projected tmpfs) when a test fails before teardown.
impl Drop for Fixture {
    fn drop(&mut self) {
        for m in self.mounted().into_iter().rev() {
            let _ = std::process::Command::new("umount").arg("-l").arg(&m).status();
        }
    }
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p.as_ref()).unwrap_or_else(|e| panic!("reading {}: {e}", p.as_ref().display()))
}

fn mode(p: impl AsRef<Path>) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn pod_json(name: &str, volumes: serde_json::Value, mounts: serde_json::Value) -> serde_json::Value {
    json!({
        "metadata": { "name": name, "labels": { "app": "vol", "tier": "x" } },
        "spec": { "nodeName": "test-node", "volumes": volumes, "securityContext": { "fsGroup": 2000 },
            "containers": [{ "name": "c", "image": "busybox", "volumeMounts": mounts,
                "resources": { "limits": { "memory": "64Mi" } } }] },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_secret_downward_projected_and_token() {
    let f = Fixture::new().await;
    f.create::<ConfigMap>(json!({ "metadata": { "name": "cfg" }, "data": { "a": "1", "b": "2" } })).await;
    f.create::<Secret>(json!({ "metadata": { "name": "sec" }, "stringData": { "k": "v", "other": "o" } })).await;
    let pod: Pod = f
        .create(pod_json(
            "web",
            json!([
                { "name": "cfg", "configMap": { "name": "cfg" } },
                { "name": "sec", "secret": { "secretName": "sec", "defaultMode": 0o440,
                    "items": [{ "key": "k", "path": "sub/key", "mode": 0o400 }] } },
                { "name": "info", "downwardAPI": { "items": [
                    { "path": "labels", "fieldRef": { "fieldPath": "metadata.labels" } },
                    { "path": "name", "fieldRef": { "fieldPath": "metadata.name" } },
                    { "path": "mem", "resourceFieldRef": { "containerName": "c", "resource": "limits.memory", "divisor": "1Mi" } },
                ] } },
                { "name": "all", "projected": { "defaultMode": 0o600, "sources": [
                    { "configMap": { "name": "cfg", "items": [{ "key": "a", "path": "cm-a" }] } },
                    { "secret": { "name": "sec", "items": [{ "key": "other", "path": "s/other" }] } },
                    { "downwardAPI": { "items": [{ "path": "ns", "fieldRef": { "fieldPath": "metadata.namespace" } }] } },
                    { "serviceAccountToken": { "path": "aud-token", "audience": "vault", "expirationSeconds": 600 } },
                ] } },
                { "name": "scratch", "emptyDir": {} },
            ]),
            json!([
                { "name": "cfg", "mountPath": "/etc/cfg" },
                { "name": "sec", "mountPath": "/etc/sec" },
                { "name": "scratch", "mountPath": "/scratch", "subPath": "$(NOT_EXPANDED)" },
                { "name": "cfg", "mountPath": "/etc/a", "subPath": "a" },
            ]),
        ))
        .await;
    f.vm.setup(&pod).await.unwrap();

    let cfg = f.vol(&pod, "configmap", "cfg");
    assert_eq!(read(cfg.join("a")), "1");
    assert_eq!(read(cfg.join("b")), "2");
    assert_eq!(std::fs::read_link(cfg.join("a")).unwrap(), Path::new("..data/a"));
    assert_eq!(mode(cfg.join("a")), 0o644, "0644 already lets the group read");
    let sec = f.vol(&pod, "secret", "sec");
    assert_eq!(read(sec.join("sub/key")), "v");
    // fsGroup 2000: the group owns the files and may read them (0400 | 0440), and owns the emptyDir.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(mode(sec.join("sub/key")), 0o440);
    assert_eq!(std::fs::metadata(sec.join("sub/key")).unwrap().gid(), 2000);
    let scratch = std::fs::metadata(f.vol(&pod, "empty-dir", "scratch")).unwrap();
    assert_eq!((scratch.gid(), scratch.permissions().mode() & 0o2000), (2000, 0o2000));
    assert!(!sec.join("other").exists(), "only the items chosen");
    let info = f.vol(&pod, "downward-api", "info");
    assert_eq!(read(info.join("labels")), "app=\"vol\"\ntier=\"x\"");
    assert_eq!(read(info.join("name")), "web");
    assert_eq!(read(info.join("mem")), "64");
    let all = f.vol(&pod, "projected", "all");
    assert_eq!(read(all.join("cm-a")), "1");
    assert_eq!(read(all.join("s/other")), "o");
    assert_eq!(read(all.join("ns")), "default");
    assert_eq!(mode(all.join("cm-a")), 0o640);
    assert!(f.vol(&pod, "empty-dir", "scratch").is_dir());
    // Secrets, downwardAPI and projected volumes are on tmpfs (never on disk), configMaps are not.
    let mounted = f.mounted();
    for v in [&sec, &info, &all] {
        assert!(mounted.contains(&v.to_string_lossy().into_owned()), "{} is not a tmpfs: {mounted:?}", v.display());
    }
    assert!(!mounted.contains(&cfg.to_string_lossy().into_owned()));

    // The ServiceAccount admission's volume: token, the cluster CA and the namespace.
    let sa_vol =
        pod.spec.as_ref().unwrap().volumes.as_ref().unwrap().iter().find(|v| v.name.starts_with("kube-api-access-"));
    let api_access = f.vol(&pod, "projected", &sa_vol.expect("kube-api-access volume").name);
    let root_ca: ConfigMap = Api::namespaced(f.client.clone(), "default").get("kube-root-ca.crt").await.unwrap();
    assert_eq!(read(api_access.join("ca.crt")), root_ca.data.unwrap()["ca.crt"]);
    assert_eq!(read(api_access.join("namespace")), "default");
    let token = read(api_access.join("token"));
    assert_eq!(token.split('.').count(), 3, "a JWS compact token: {token}");
    let review = review(&f.client, &token).await;
    let status = review.status.unwrap();
    assert_eq!(status.authenticated, Some(true), "{status:?}");
    let user = status.user.unwrap();
    assert_eq!(user.username.as_deref(), Some("system:serviceaccount:default:default"));
    let extra = user.extra.unwrap();
    assert_eq!(extra["authentication.kubernetes.io/pod-name"], vec!["web".to_string()]);
    assert_eq!(extra["authentication.kubernetes.io/pod-uid"], vec![pod.metadata.uid.clone().unwrap()]);
    // The audience-scoped token is not for the API server.
    let aud = review_status(&f.client, &read(all.join("aud-token"))).await;
    assert_ne!(aud.authenticated, Some(true), "a token for audience vault must not authenticate to the API");

    // Tokens are cached: a second sync serves the same one.
    f.vm.setup(&pod).await.unwrap();
    assert_eq!(read(api_access.join("token")), token);

    // Mounts: volume host paths, subPath inside the volume, configMap volumes read-only.
    let c = &pod.spec.as_ref().unwrap().containers[0];
    let mounts = f.vm.mounts(&pod, c).unwrap();
    let by_path = |p: &str| mounts.iter().find(|m| m.container_path == p).unwrap().clone();
    assert_eq!(by_path("/etc/cfg").host_path, cfg.to_string_lossy());
    assert!(by_path("/etc/cfg").readonly);
    assert!(!by_path("/scratch").readonly);
    assert!(by_path("/scratch").host_path.ends_with("scratch/$(NOT_EXPANDED)"), "subPath is literal");
    assert!(by_path("/etc/a").host_path.starts_with(cfg.canonicalize().unwrap().to_str().unwrap()));
    assert!(by_path("/var/run/secrets/kubernetes.io/serviceaccount").readonly);

    // A ConfigMap change lands at the next setup: `..data` swapped, removed keys gone.
    let before = std::fs::read_link(cfg.join("..data")).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(f.client.clone(), "default");
    let patch = json!({ "data": { "a": "changed", "b": null } });
    cms.patch("cfg", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    f.vm.setup(&pod).await.unwrap();
    assert_eq!(read(cfg.join("a")), "changed");
    assert!(std::fs::symlink_metadata(cfg.join("b")).is_err(), "removed key disappears");
    assert_ne!(std::fs::read_link(cfg.join("..data")).unwrap(), before);
    assert_eq!(read(all.join("cm-a")), "changed");
    // Nothing changed: nothing rewritten.
    let current = std::fs::read_link(cfg.join("..data")).unwrap();
    f.vm.setup(&pod).await.unwrap();
    assert_eq!(std::fs::read_link(cfg.join("..data")).unwrap(), current);

    // The token is bound to the pod: once the pod is gone the server refuses it.
    let pods: Api<Pod> = Api::namespaced(f.client.clone(), "default");
    pods.delete("web", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.unwrap();
    support::eventually(20, "the bound token to be refused", || {
        let (client, token) = (f.client.clone(), token.clone());
        async move { (review_status(&client, &token).await.authenticated != Some(true)).then_some(()) }
    })
    .await;

    f.vm.teardown(pod.metadata.uid.as_deref().unwrap()).await.unwrap();
    assert!(!f.pods_dir.path().join(pod.metadata.uid.as_deref().unwrap()).exists());
    assert!(f.mounted().is_empty(), "teardown unmounted every tmpfs");
}

async fn review(client: &kube::Client, token: &str) -> TokenReview {
    let api: Api<TokenReview> = Api::all(client.clone());
    let tr = TokenReview {
        spec: TokenReviewSpec { token: Some(token.to_owned()), ..Default::default() },
        ..Default::default()
    };
    api.create(&PostParams::default(), &tr).await.unwrap()
}

async fn review_status(client: &kube::Client, token: &str) -> k8s_openapi::api::authentication::v1::TokenReviewStatus {
    review(client, token).await.status.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_configmap_fails_as_upstream_until_created() {
    let f = Fixture::new().await;
    let pod: Pod = f
        .create(pod_json(
            "waits",
            json!([
                { "name": "cfg", "configMap": { "name": "missing" } },
                { "name": "opt", "configMap": { "name": "also-missing", "optional": true } },
                { "name": "keys", "secret": { "secretName": "s2", "items": [{ "key": "nope", "path": "x" }] } },
            ]),
            json!([{ "name": "cfg", "mountPath": "/cfg" }]),
        ))
        .await;
    let err = f.vm.setup(&pod).await.unwrap_err();
    assert!(matches!(err, Error::SetUp(_)));
    assert_eq!(err.to_string(), "MountVolume.SetUp failed for volume \"cfg\" : configmap \"missing\" not found");
    f.create::<ConfigMap>(json!({ "metadata": { "name": "missing" }, "data": { "k": "v" } })).await;
    let err = f.vm.setup(&pod).await.unwrap_err();
    assert_eq!(err.to_string(), "MountVolume.SetUp failed for volume \"keys\" : secret \"s2\" not found");
    f.create::<Secret>(json!({ "metadata": { "name": "s2" }, "stringData": { "k": "v" } })).await;
    let err = f.vm.setup(&pod).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "MountVolume.SetUp failed for volume \"keys\" : references non-existent secret key: nope"
    );
    let secrets: Api<Secret> = Api::namespaced(f.client.clone(), "default");
    let patch = json!({ "stringData": { "nope": "here" } });
    secrets.patch("s2", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    f.vm.setup(&pod).await.unwrap();
    assert_eq!(read(f.vol(&pod, "configmap", "cfg").join("k")), "v");
    assert_eq!(read(f.vol(&pod, "secret", "keys").join("x")), "here");
    let opt = f.vol(&pod, "configmap", "opt");
    assert!(opt.join("..data").exists(), "an optional missing ConfigMap gives an empty volume");
    assert_eq!(std::fs::read_dir(&opt).unwrap().count(), 2, "only ..data and its directory");
    f.vm.teardown(pod.metadata.uid.as_deref().unwrap()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_wait_until_bound_then_use_the_pv_path() {
    let f = Fixture::new().await;
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("keep"), "precious").unwrap();
    let pvc: PersistentVolumeClaim = f
        .create(json!({ "metadata": { "name": "data" }, "spec": { "accessModes": ["ReadWriteOnce"],
            "resources": { "requests": { "storage": "1Gi" } } } }))
        .await;
    let pod: Pod = f
        .create(pod_json(
            "db",
            json!([{ "name": "data", "persistentVolumeClaim": { "claimName": "data" } }]),
            json!([{ "name": "data", "mountPath": "/var/lib/db", "subPath": "pgdata" }]),
        ))
        .await;
    let err = f.vm.setup(&pod).await.unwrap_err();
    assert!(matches!(&err, Error::Claim { volume, .. } if volume == "data"), "{err:?}");
    assert_eq!(err.to_string(), "error processing PVC default/data: PVC is not bound");
    assert!(f.vm.mounts(&pod, &pod.spec.as_ref().unwrap().containers[0]).is_err(), "no mounts before setup");

    // Bind by hand (no binder runs here): PV claimRef → claim, claim volumeName → PV, phase Bound.
    let pvs: Api<PersistentVolume> = Api::all(f.client.clone());
    let pv: PersistentVolume = serde_json::from_value(json!({
        "metadata": { "name": "pv-data" },
        "spec": { "capacity": { "storage": "1Gi" }, "accessModes": ["ReadWriteOnce"],
            "hostPath": { "path": host.path(), "type": "Directory" },
            "claimRef": { "namespace": "default", "name": "data", "uid": pvc.metadata.uid } },
    }))
    .unwrap();
    pvs.create(&PostParams::default(), &pv).await.unwrap();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(f.client.clone(), "default");
    pvcs.patch("data", &PatchParams::default(), &Patch::Merge(&json!({ "spec": { "volumeName": "pv-data" } })))
        .await
        .unwrap();
    pvcs.patch_status("data", &PatchParams::default(), &Patch::Merge(&json!({ "status": { "phase": "Bound" } })))
        .await
        .unwrap();
    f.vm.setup(&pod).await.unwrap();
    let mounts = f.vm.mounts(&pod, &pod.spec.as_ref().unwrap().containers[0]).unwrap();
    assert_eq!(mounts[0].host_path, host.path().canonicalize().unwrap().join("pgdata").to_string_lossy());
    assert!(host.path().join("pgdata").is_dir(), "the subPath is made inside the PV");

    // Teardown removes the pod's directory and nothing of the PV.
    f.vm.teardown(pod.metadata.uid.as_deref().unwrap()).await.unwrap();
    assert_eq!(read(host.path().join("keep")), "precious");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_reads_are_bounded_by_the_ttl() {
    let f = Fixture::new().await;
    let vm = VolumeManager::new(f.client.clone(), f.pods_dir.path().to_owned(), "test-node".into());
    f.create::<ConfigMap>(json!({ "metadata": { "name": "c" }, "data": { "k": "old" } })).await;
    let spec = |name: &str| pod_json(name, json!([{ "name": "c", "configMap": { "name": "c" } }]), json!([]));
    let first: Pod = f.create(spec("first")).await;
    vm.setup(&first).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(f.client.clone(), "default");
    cms.patch("c", &PatchParams::default(), &Patch::Merge(&json!({ "data": { "k": "new" } }))).await.unwrap();
    let changed_at = std::time::Instant::now();
    // A pod seen for the first time reads fresh; a known pod reads the cache until the TTL passes.
    let second: Pod = f.create(spec("second")).await;
    vm.setup(&second).await.unwrap();
    assert_eq!(read(f.vol(&second, "configmap", "c").join("k")), "new");
    let first_file = f.vol(&first, "configmap", "c").join("k");
    // Another change right away: the known pod is served the cached object until the TTL passes.
    cms.patch("c", &PatchParams::default(), &Patch::Merge(&json!({ "data": { "k": "newer" } }))).await.unwrap();
    vm.setup(&first).await.unwrap();
    if changed_at.elapsed() < rkube_volumes::DEFAULT_CACHE_TTL - Duration::from_secs(1) {
        assert_eq!(read(&first_file), "new", "served from the cache the second pod's fresh read filled");
    }
    support::eventually(10, "the change within the TTL", || {
        let (vm, first, file) = (&vm, &first, first_file.clone());
        async move { vm.setup(first).await.ok().and_then(|()| (read(&file) == "newer").then_some(())) }
    })
    .await;
    assert!(changed_at.elapsed() >= rkube_volumes::DEFAULT_CACHE_TTL - Duration::from_secs(1), "not before the TTL");
    for p in [&first, &second] {
        vm.teardown(p.metadata.uid.as_deref().unwrap()).await.unwrap();
    }
}
