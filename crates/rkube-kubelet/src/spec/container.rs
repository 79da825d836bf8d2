//! A container's CRI config once its environment is known (upstream's `generateContainerConfig`):
//! metadata, image, command and args expanded against the env, working dir, mounts, log path, stdio
//! flags, labels and annotations, resources and security context.

use std::collections::HashMap;

use rkube_cri::api::{ContainerConfig, ContainerMetadata, ImageSpec, KeyValue, LinuxContainerConfig};

use super::expand::expand;
use super::labels::{container_annotations, container_labels};
use super::resources::linux_resources;
use super::security::container_security_context;
use super::{ConfigError, ContainerContext};
use crate::KubeletConfig;

/// The container's log file relative to the sandbox's log directory: `<name>/<restart count>.log`.
pub(crate) fn log_path(container_name: &str, restart_count: i32) -> String {
    format!("{container_name}/{restart_count}.log")
}

/// The container config, `envs` being its resolved environment in order.
pub(crate) fn container_config(
    ctx: &ContainerContext<'_>,
    config: &KubeletConfig,
    envs: Vec<(String, String)>,
) -> Result<ContainerConfig, ConfigError> {
    let c = ctx.container;
    let security = container_security_context(ctx.pod, c, ctx.image, config)?;
    let vars: HashMap<&str, &str> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let expand_all =
        |list: &Option<Vec<String>>| list.iter().flatten().map(|s| expand(s, |n| vars.get(n).copied())).collect();
    let command = expand_all(&c.command);
    let args = expand_all(&c.args);
    Ok(ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: c.name.clone(),
            attempt: u32::try_from(ctx.restart_count).unwrap_or(0),
        }),
        image: Some(ImageSpec {
            image: ctx.image_ref.to_owned(),
            user_specified_image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command,
        args,
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: envs.into_iter().map(|(key, value)| KeyValue { key, value }).collect(),
        mounts: ctx.mounts.clone(),
        devices: Vec::new(),
        labels: container_labels(ctx.pod, c),
        annotations: container_annotations(ctx.pod, c, ctx.restart_count),
        log_path: log_path(&c.name, ctx.restart_count),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(LinuxContainerConfig {
            resources: Some(linux_resources(ctx.pod, c, ctx.node)),
            security_context: Some(security),
        }),
        windows: None,
        cdi_devices: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::testutil::{config, pod};
    use crate::spec::{EnvSources, NodeResources, container_config_from};
    use rkube_cri::api::Mount;
    use serde_json::json;

    #[test]
    fn full_container_config() {
        let p = pod(json!({"spec": {"containers": [{
            "name": "app", "image": "busybox:1.36",
            "command": ["sh", "-c", "echo $(GREETING) $$(HOME) $(MISSING)"],
            "args": ["$(GREETING)"],
            "workingDir": "/work",
            "env": [{"name": "GREETING", "value": "hi"}, {"name": "TWICE", "value": "$(GREETING)$(GREETING)"}],
            "stdin": true, "tty": true,
            "resources": {"limits": {"cpu": "1", "memory": "64Mi"}}
        }]}}));
        let node = NodeResources { memory_capacity: 1 << 30, ..Default::default() };
        let mounts =
            vec![Mount { container_path: "/etc/hosts".into(), host_path: "/x/etc-hosts".into(), ..Default::default() }];
        let ctx = ContainerContext {
            pod: &p,
            container: &p.spec.as_ref().unwrap().containers[0],
            restart_count: 2,
            pod_ips: &[],
            mounts: mounts.clone(),
            image_ref: "sha256:abc",
            image: None,
            node: &node,
        };
        let mut warnings = Vec::new();
        let c = container_config_from(&ctx, &config(), &EnvSources::default(), &mut warnings).unwrap();
        assert!(warnings.is_empty());
        let meta = c.metadata.unwrap();
        assert_eq!((meta.name.as_str(), meta.attempt), ("app", 2));
        let image = c.image.unwrap();
        assert_eq!(image.image, "sha256:abc");
        assert_eq!(image.user_specified_image, "busybox:1.36");
        assert_eq!(c.command, ["sh", "-c", "echo hi $(HOME) $(MISSING)"]);
        assert_eq!(c.args, ["hi"]);
        assert_eq!(c.working_dir, "/work");
        let envs: Vec<(&str, &str)> = c.envs.iter().map(|kv| (kv.key.as_str(), kv.value.as_str())).collect();
        assert_eq!(envs, [("GREETING", "hi"), ("TWICE", "hihi")]);
        assert_eq!(c.mounts, mounts);
        assert_eq!(c.log_path, "app/2.log");
        assert!(c.stdin && c.tty && !c.stdin_once);
        assert_eq!(c.labels["io.kubernetes.container.name"], "app");
        assert_eq!(c.annotations["io.kubernetes.container.restartCount"], "2");
        let linux = c.linux.unwrap();
        let r = linux.resources.unwrap();
        assert_eq!((r.cpu_shares, r.cpu_quota, r.memory_limit_in_bytes, r.oom_score_adj), (1024, 100_000, 64 << 20, 0));
        assert!(linux.security_context.is_some());
    }
}
