"""The Python `kubernetes` client (a second real client) against a running rkube server.

Usage: python3 flows.py KUBECONFIG. Exits non-zero with a message on the first failed check.
"""
import sys

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def check(cond, msg):
    if not cond:
        raise SystemExit(f"FAILED: {msg}")


def main(kubeconfig):
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    apps = client.AppsV1Api()

    check(client.VersionApi().get_code().minor == "33", "version")

    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py")))
    ns = core.read_namespace("py")
    check(ns.status.phase == "Active", f"namespace phase {ns.status.phase}")

    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c1", labels={"app": "demo"}), data={"k": "v"})
    created = core.create_namespaced_config_map("py", cm)
    check(created.metadata.uid and created.metadata.resource_version, "create returns uid and resourceVersion")
    try:
        core.create_namespaced_config_map("py", cm)
        check(False, "a duplicate create must fail")
    except ApiException as e:
        check(e.status == 409 and "already exists" in e.body, f"duplicate create: {e.status} {e.body}")

    listed = core.list_namespaced_config_map("py", label_selector="app=demo")
    check([i.metadata.name for i in listed.items] == ["c1"], "label selector list")
    check(core.list_namespaced_config_map("py", label_selector="app=other").items == [], "non-matching selector")

    patched = core.patch_namespaced_config_map("c1", "py", {"data": {"k2": "v2"}})
    check(patched.data == {"k": "v", "k2": "v2"}, f"strategic patch result {patched.data}")

    # Paging.
    for i in range(7):
        core.create_namespaced_config_map("py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"p{i}")))
    names, token = [], None
    while True:
        page = core.list_namespaced_config_map("py", limit=3, _continue=token)
        names += [i.metadata.name for i in page.items]
        token = page.metadata._continue
        if not token:
            break
    # kube-root-ca.crt is the root CA publisher's: every namespace gets one, as upstream.
    want = {"c1"} | {f"p{i}" for i in range(7)}
    check(len(names) == len(set(names)) and set(names) - {"kube-root-ca.crt"} == want, f"paged list {names}")

    # A watch from a list's resourceVersion sees later changes; resuming from the last seen one misses nothing.
    rv = core.list_namespaced_config_map("py").metadata.resource_version
    core.create_namespaced_config_map("py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w1")))
    core.create_namespaced_config_map("py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w2")))
    w = watch.Watch()
    seen, last_rv = [], rv
    for ev in w.stream(core.list_namespaced_config_map, "py", resource_version=rv, timeout_seconds=10):
        seen.append((ev["type"], ev["object"].metadata.name))
        last_rv = ev["object"].metadata.resource_version
        if len(seen) == 2:
            w.stop()
    check(seen == [("ADDED", "w1"), ("ADDED", "w2")], f"watch events {seen}")
    core.delete_namespaced_config_map("w1", "py")
    w = watch.Watch()
    resumed = []
    for ev in w.stream(core.list_namespaced_config_map, "py", resource_version=last_rv, timeout_seconds=10):
        resumed.append((ev["type"], ev["object"].metadata.name))
        w.stop()
    check(resumed == [("DELETED", "w1")], f"resumed watch {resumed}")

    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="d1"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "d1"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "d1"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
            ),
        ),
    )
    apps.create_namespaced_deployment("py", dep)
    scale = apps.read_namespaced_deployment_scale("d1", "py")
    check(scale.spec.replicas == 2, "scale read")
    apps.patch_namespaced_deployment_scale("d1", "py", {"spec": {"replicas": 4}})
    check(apps.read_namespaced_deployment("d1", "py").spec.replicas == 4, "scale patch")

    try:
        core.read_namespaced_config_map("nope", "py")
        check(False, "missing object must 404")
    except ApiException as e:
        check(e.status == 404, f"404 expected, got {e.status}")

    status = core.delete_namespaced_config_map("c1", "py")
    # Recent clients type this answer as a plain object (a dict): upstream may return the object or a Status.
    value = status["status"] if isinstance(status, dict) else status.status
    check(value == "Success", f"delete status {status}")
    print("python client flows: ok")


if __name__ == "__main__":
    main(sys.argv[1])
