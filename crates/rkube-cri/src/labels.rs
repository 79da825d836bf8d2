//! The labels and annotations the kubelet puts on CRI sandboxes and containers (upstream's names, so tools
//! that know them, and a restarted agent, find a pod's containers).

/// Sandbox and container label: the pod's name.
pub const POD_NAME: &str = "io.kubernetes.pod.name";
/// Sandbox and container label: the pod's namespace.
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// Sandbox and container label: the pod's UID.
pub const POD_UID: &str = "io.kubernetes.pod.uid";
/// Container label: the container's name in the pod spec.
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Container annotation: how many times this container was restarted when this instance was created.
pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
/// Container annotation: hash of the container's spec, to tell when a spec change needs a restart.
pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
/// Container annotation: the container's `terminationMessagePath`.
pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
/// Container annotation: the container's `terminationMessagePolicy`.
pub const TERMINATION_MESSAGE_POLICY: &str = "io.kubernetes.container.terminationMessagePolicy";
/// Container annotation: the pod's termination grace period, for a restarted agent.
pub const TERMINATION_GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
/// Label value of [`CONTAINER_NAME`]'s sibling on sandboxes: what created them (upstream: `io.kubernetes.container.name=POD`).
pub const SANDBOX_CONTAINER_NAME: &str = "POD";
