"""The official `kubernetes` Python client, unmodified, against a real mkube API server
(the session's shared one; each test works in its own fresh namespace)."""
# mypy: disable-error-code="union-attr,index,arg-type"

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException


@pytest.fixture
def api(shared_api_server: Any) -> Iterator[client.ApiClient]:
    config = client.Configuration(host=shared_api_server.url)
    with client.ApiClient(config) as api_client:
        yield api_client


def _deployment(name: str) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(
                    name="web", image="nginx:1.27", ports=[client.V1ContainerPort(container_port=80)])]))))


def test_deployment_lifecycle(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    created = apps.create_namespaced_deployment(namespace, _deployment("web"))
    assert created.metadata.uid and created.metadata.generation == 1
    assert created.spec.template.spec.containers[0].image == "nginx:1.27"

    read = apps.read_namespaced_deployment("web", namespace)
    assert read.metadata.resource_version == created.metadata.resource_version

    apps.create_namespaced_deployment(namespace, _deployment("other"))
    listed = apps.list_namespaced_deployment(namespace, label_selector="app=web")
    assert [d.metadata.name for d in listed.items] == ["web"]
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)

    patched = apps.patch_namespaced_deployment("web", namespace, {"metadata": {"labels": {"tier": "front"}}})
    assert patched.metadata.labels == {"app": "web", "tier": "front"}
    # a strategic merge patch merges containers by name
    patched = apps.patch_namespaced_deployment(
        "web", namespace, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}})
    containers = patched.spec.template.spec.containers
    assert len(containers) == 1 and containers[0].image == "nginx:1.28" and containers[0].ports[0].container_port == 80
    assert patched.metadata.generation == 2

    scale = apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 5}})
    assert isinstance(scale, client.V1Scale) and scale.spec.replicas == 5
    assert apps.read_namespaced_deployment_scale("web", namespace).status.selector == "app=web"
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 5

    stale = read
    stale.spec.replicas = 9
    with pytest.raises(ApiException) as exc:
        apps.replace_namespaced_deployment("web", namespace, stale)
    assert exc.value.status == 409

    status = apps.delete_namespaced_deployment("web", namespace)  # this client returns delete bodies as dicts
    assert status["kind"] == "Status" and status["status"] == "Success"
    with pytest.raises(ApiException) as exc:
        apps.read_namespaced_deployment("web", namespace)
    assert exc.value.status == 404


def test_pod_and_service(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="box", labels={"app": "box"}),
                       spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]))
    created = core.create_namespaced_pod(namespace, pod)
    assert created.status.phase == "Pending"
    assert [p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector="app in (box)").items] == [
        "box"]
    assert core.list_namespaced_pod(namespace, field_selector="status.phase=Pending").items[0].metadata.name == "box"
    patched = core.patch_namespaced_pod("box", namespace, {"metadata": {"annotations": {"a": "b"}}})
    assert patched.metadata.annotations == {"a": "b"}
    binding = client.V1Binding(metadata=client.V1ObjectMeta(name="box"),
                               target=client.V1ObjectReference(kind="Node", name="node-1"))
    # Like kube-apiserver, mkube answers a Status to a binding, which this client cannot
    # decode into V1Binding (kubernetes-client/python#547): skip decoding, as users do.
    resp = core.create_namespaced_binding(namespace, binding, _preload_content=False)
    assert resp.status == 201  # type: ignore[attr-defined]  # a raw urllib3 response here
    assert core.read_namespaced_pod("box", namespace).spec.node_name == "node-1"

    svc = client.V1Service(metadata=client.V1ObjectMeta(name="box"),
                           spec=client.V1ServiceSpec(selector={"app": "box"},
                                                     ports=[client.V1ServicePort(port=80, target_port=8080)]))
    made = core.create_namespaced_service(namespace, svc)
    assert made.spec.ports[0].port == 80
    assert core.read_namespaced_service("box", namespace).metadata.uid == made.metadata.uid
    core.patch_namespaced_service("box", namespace, {"metadata": {"labels": {"exposed": "yes"}}})
    assert [s.metadata.name for s in core.list_namespaced_service(namespace, label_selector="exposed").items] == [
        "box"]
    core.delete_namespaced_service("box", namespace)
    deleting = core.delete_namespaced_pod("box", namespace)  # bound: graceful
    assert deleting.metadata.deletion_timestamp is not None
    core.delete_namespaced_pod("box", namespace, grace_period_seconds=0)
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod("box", namespace)
    assert exc.value.status == 404


def test_watch(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="first")))
    seen: list[tuple[str, str]] = []
    ready = threading.Event()

    def run() -> None:
        w = watch.Watch()
        for event in w.stream(core.list_namespaced_config_map, namespace, timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name))
            ready.set()
            if len(seen) == 4:
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    assert ready.wait(10)  # the initial ADDED for "first"
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="second"),
                                                                   data={"k": "v"}))
    core.patch_namespaced_config_map("second", namespace, {"data": {"k": "w"}})
    core.delete_namespaced_config_map("second", namespace)
    t.join(15)
    assert seen == [("ADDED", "first"), ("ADDED", "second"), ("MODIFIED", "second"), ("DELETED", "second")]


def test_watch_resumes_from_resource_version(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    rv = apps.list_namespaced_deployment(namespace).metadata.resource_version
    apps.create_namespaced_deployment(namespace, _deployment("watched"))
    apps.patch_namespaced_deployment_scale("watched", namespace, {"spec": {"replicas": 3}})
    apps.delete_namespaced_deployment("watched", namespace)
    w = watch.Watch()
    events = []
    start = time.monotonic()
    for event in w.stream(apps.list_namespaced_deployment, namespace, resource_version=rv, timeout_seconds=5):
        events.append((event["type"], event["object"].spec.replicas))
        if len(events) == 3:
            w.stop()
    assert events == [("ADDED", 2), ("MODIFIED", 3), ("DELETED", 3)]
    assert time.monotonic() - start < 5
