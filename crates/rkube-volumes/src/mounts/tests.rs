//! Tests of container mounts: subPath resolution and escapes, subPathExpr, read-only and propagation.

use serde_json::json;

use super::*;

fn pod(mounts: serde_json::Value) -> (Pod, Container) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "web-0", "namespace": "ns", "uid": "u1" },
        "spec": { "containers": [{ "name": "c", "image": "busybox", "volumeMounts": mounts,
            "env": [
                { "name": "POD", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
                { "name": "DIR", "value": "logs-$(POD)" },
            ] }] },
    }))
    .unwrap();
    let c = pod.spec.as_ref().unwrap().containers[0].clone();
    (pod, c)
}

fn vols(dir: &Path, read_only: bool) -> HashMap<String, VolumePath> {
    [("v".to_string(), VolumePath { path: dir.to_owned(), read_only })].into()
}

fn mounts(dir: &Path, m: serde_json::Value) -> Result<Vec<Mount>, String> {
    let (p, c) = pod(m);
    container_mounts(&p, &c, &vols(dir, false), &HashMap::new())
}

#[test]
fn plain_mount_readonly_and_propagation() {
    let t = tempfile::tempdir().unwrap();
    let (p, c) = pod(json!([
        { "name": "v", "mountPath": "/data" },
        { "name": "v", "mountPath": "/ro", "readOnly": true, "mountPropagation": "HostToContainer" },
    ]));
    let ms = container_mounts(&p, &c, &vols(t.path(), false), &HashMap::new()).unwrap();
    assert_eq!(ms[0].host_path, t.path().to_string_lossy());
    assert_eq!(ms[0].container_path, "/data");
    assert!(!ms[0].readonly);
    assert_eq!(ms[0].propagation, MountPropagation::PropagationPrivate as i32);
    assert!(ms[1].readonly);
    assert_eq!(ms[1].propagation, MountPropagation::PropagationHostToContainer as i32);
    let ms = container_mounts(&p, &c, &vols(t.path(), true), &HashMap::new()).unwrap();
    assert!(ms[0].readonly, "configMap-like volumes are always read-only");
}

#[test]
fn bidirectional_needs_privileged() {
    let t = tempfile::tempdir().unwrap();
    let err = mounts(t.path(), json!([{ "name": "v", "mountPath": "/d", "mountPropagation": "Bidirectional" }]));
    assert_eq!(err.unwrap_err(), "Bidirectional mount propagation is available only to privileged containers");
}

#[test]
fn missing_volume_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    let err = mounts(t.path(), json!([{ "name": "nope", "mountPath": "/d" }])).unwrap_err();
    assert_eq!(err, "cannot find volume \"nope\" to mount into container \"c\"");
}

#[test]
fn sub_path_is_created_inside_the_volume() {
    let t = tempfile::tempdir().unwrap();
    let ms = mounts(t.path(), json!([{ "name": "v", "mountPath": "/d", "subPath": "a/b" }])).unwrap();
    let want = t.path().canonicalize().unwrap().join("a/b");
    assert_eq!(ms[0].host_path, want.to_string_lossy());
    assert!(want.is_dir());
}

#[test]
fn sub_path_escapes_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let vol = t.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    let m = |s: &str| mounts(&vol, json!([{ "name": "v", "mountPath": "/d", "subPath": s }]));
    assert_eq!(m("../x").unwrap_err(), "unable to provision SubPath `../x`: must not contain '..'");
    assert_eq!(m("a/../../x").unwrap_err(), "unable to provision SubPath `a/../../x`: must not contain '..'");
    assert_eq!(m("/etc").unwrap_err(), "error SubPath `/etc` must not be an absolute path");
    // A symlink inside the volume pointing out of it (a container could have made it).
    std::os::unix::fs::symlink("/etc", vol.join("evil")).unwrap();
    assert!(m("evil").unwrap_err().contains("not within volume path"), "existing symlink");
    assert!(m("evil/newdir").unwrap_err().contains("not within volume path"), "creating through a symlink");
    assert!(!Path::new("/etc/newdir").exists());
    std::os::unix::fs::symlink("inside", vol.join("ok")).unwrap();
    std::fs::create_dir(vol.join("inside")).unwrap();
    assert!(m("ok").is_ok(), "a symlink staying inside is fine");
}

#[test]
fn sub_path_expr_expands_env() {
    let t = tempfile::tempdir().unwrap();
    let ms = mounts(t.path(), json!([{ "name": "v", "mountPath": "/d", "subPathExpr": "$(DIR)/$(POD)" }])).unwrap();
    assert!(ms[0].host_path.ends_with("/logs-web-0/web-0"), "{}", ms[0].host_path);
    let err = mounts(t.path(), json!([{ "name": "v", "mountPath": "/d", "subPathExpr": "$(NOPE)/$(ALSO)" }]));
    assert_eq!(err.unwrap_err(), "missing value for ALSO, NOPE");
    let err = mounts(t.path(), json!([{ "name": "v", "mountPath": "/d", "subPathExpr": "$(POD)/../../x" }]));
    assert!(err.unwrap_err().contains("must not contain '..'"));
}

#[test]
fn expansion_syntax() {
    let env: HashMap<String, String> = [("A".to_string(), "1".to_string())].into();
    assert_eq!(expand_lenient("x$(A)y$$(A)$z$(B)$(", &env), "x1y$(A)$z$(B)$(");
}
