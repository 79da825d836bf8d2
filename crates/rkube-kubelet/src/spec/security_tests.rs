//! Tests of the container security context.

use super::*;
use crate::spec::testutil::{config, pod};
use serde_json::{Value, json};

fn sc_of(over: Value, image: Option<&Image>) -> Result<LinuxContainerSecurityContext, String> {
    let p = pod(over);
    let c = &p.spec.as_ref().unwrap().containers[0];
    container_security_context(&p, c, image, &config()).map_err(|e| e.to_string())
}

fn with_sc(pod_sc: Value, container_sc: Value) -> Value {
    json!({"spec": {"securityContext": pod_sc, "containers": [{"name": "a", "securityContext": container_sc}]}})
}

#[test]
fn defaults() {
    let sc = sc_of(json!({}), None).unwrap();
    assert!(!sc.privileged && !sc.readonly_rootfs && !sc.no_new_privs);
    assert!(sc.run_as_user.is_none() && sc.run_as_group.is_none() && sc.run_as_username.is_empty());
    assert_eq!(sc.masked_paths.len(), 11);
    assert_eq!(sc.readonly_paths, ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]);
    assert_eq!(sc.seccomp.unwrap().profile_type, ProfileType::Unconfined as i32);
    assert!(sc.apparmor.is_none() && sc.capabilities.is_none());
    let ns = sc.namespace_options.unwrap();
    assert_eq!(ns.pid, rkube_cri::api::NamespaceMode::Container as i32);
}

#[test]
fn container_settings_override_pod_ones() {
    let sc = sc_of(
        with_sc(
            json!({"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 5, "supplementalGroups": [6],
                   "seccompProfile": {"type": "RuntimeDefault"}, "seLinuxOptions": {"level": "s0:c1"}}),
            json!({"runAsUser": 2000, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                   "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}),
        ),
        None,
    )
    .unwrap();
    assert_eq!(sc.run_as_user.unwrap().value, 2000);
    assert_eq!(sc.run_as_group.unwrap().value, 1000);
    assert_eq!(sc.supplemental_groups, [5, 6]);
    assert!(sc.readonly_rootfs && sc.no_new_privs);
    let caps = sc.capabilities.unwrap();
    assert_eq!((caps.add_capabilities, caps.drop_capabilities), (vec!["NET_ADMIN".to_owned()], vec!["ALL".to_owned()]));
    assert_eq!(sc.seccomp.unwrap().profile_type, ProfileType::RuntimeDefault as i32);
    assert_eq!(sc.selinux_options.unwrap().level, "s0:c1");
}

#[test]
fn privileged_and_unmasked_have_no_masked_paths() {
    let sc = sc_of(with_sc(json!({}), json!({"privileged": true})), None).unwrap();
    assert!(sc.privileged && sc.masked_paths.is_empty() && sc.readonly_paths.is_empty());
    let sc = sc_of(with_sc(json!({}), json!({"procMount": "Unmasked"})), None).unwrap();
    assert!(sc.masked_paths.is_empty() && sc.readonly_paths.is_empty());
    let sc = sc_of(with_sc(json!({}), json!({"allowPrivilegeEscalation": true})), None).unwrap();
    assert!(!sc.no_new_privs);
}

#[test]
fn profiles() {
    let sc =
        sc_of(with_sc(json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}), json!({})), None)
            .unwrap();
    let s = sc.seccomp.unwrap();
    assert_eq!(
        (s.profile_type, s.localhost_ref.as_str()),
        (ProfileType::Localhost as i32, "/var/lib/rkube/seccomp/p.json")
    );
    let sc =
        sc_of(with_sc(json!({}), json!({"appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-x"}})), None)
            .unwrap();
    let a = sc.apparmor.unwrap();
    assert_eq!((a.profile_type, a.localhost_ref.as_str()), (ProfileType::Localhost as i32, "k8s-x"));
}

#[test]
fn image_user_and_run_as_non_root() {
    let image = |uid: Option<i64>, username: &str| Image {
        uid: uid.map(int64),
        username: username.to_owned(),
        ..Default::default()
    };
    let sc = sc_of(json!({}), Some(&image(Some(1001), ""))).unwrap();
    assert_eq!(sc.run_as_user.unwrap().value, 1001);
    let sc = sc_of(json!({}), Some(&image(None, "nobody"))).unwrap();
    assert!(sc.run_as_user.is_none());
    assert_eq!(sc.run_as_username, "nobody");
    let sc = sc_of(json!({}), Some(&image(None, ""))).unwrap();
    assert_eq!(sc.run_as_user.unwrap().value, 0);

    let non_root = |c: Value| with_sc(json!({"runAsNonRoot": true}), c);
    let who = "(pod: \"web_ns(1234-5678)\", container: a)";
    assert_eq!(
        sc_of(non_root(json!({"runAsUser": 0})), None).unwrap_err(),
        format!("container's runAsUser breaks non-root policy {who}")
    );
    assert!(sc_of(non_root(json!({"runAsUser": 10})), Some(&image(Some(0), ""))).is_ok());
    assert_eq!(
        sc_of(non_root(json!({})), Some(&image(None, ""))).unwrap_err(),
        format!("container has runAsNonRoot and image will run as root {who}")
    );
    assert_eq!(
        sc_of(non_root(json!({})), Some(&image(None, "app"))).unwrap_err(),
        format!(
            "container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root {who}"
        )
    );
    assert!(sc_of(non_root(json!({})), Some(&image(Some(1000), ""))).is_ok());
    // Without the image's user nothing can be checked.
    assert!(sc_of(non_root(json!({})), None).is_ok());
}
