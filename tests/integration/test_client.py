"""rest.Client against the real API server over HTTP.

Most tests run twice: against the server (`server`) and against FakeClient (`fake`), so
that the fake unit tests rely on keeps behaving like the server. On the server they use
the session's shared API server, each in a fresh namespace: the client's default
namespace (`client.default_namespace`), which list and watch calls name explicitly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mkube.api.errors import AlreadyExists, BadRequest, Conflict, Forbidden, Gone, NotFound
from mkube.api.types import (
    ConfigMap,
    Container,
    Deployment,
    DeploymentSpec,
    LabelSelector,
    Namespace,
    ObjectMeta,
    Pod,
    PodSpec,
    PodTemplateSpec,
)
from mkube.client import BaseClient, Client, ConnectionFailed, FakeClient, retry_on_conflict
from tests.fixtures.apiserver import unique_namespace_name


def pod(name: str, labels: dict[str, str] | None = None, namespace: str | None = None) -> Pod:
    return Pod(metadata=ObjectMeta(name=name, namespace=namespace, labels=labels),
               spec=PodSpec(containers=[Container(name="app", image="nginx:1")]))


def deployment(name: str, replicas: int = 2) -> Deployment:
    labels = {"app": name}
    return Deployment(metadata=ObjectMeta(name=name),
                      spec=DeploymentSpec(replicas=replicas, selector=LabelSelector(match_labels=labels),
                                          template=PodTemplateSpec(
                                              metadata=ObjectMeta(labels=labels),
                                              spec=PodSpec(containers=[Container(name="app", image="nginx:1")]))))


@pytest.fixture(params=["server", "fake"])
def client(request: pytest.FixtureRequest) -> Iterator[BaseClient]:
    """A client whose default namespace is a fresh one of this test."""
    if request.param == "fake":
        ns = unique_namespace_name(request.node.name)
        fake = FakeClient(namespace=ns)
        fake.create(Namespace(metadata=ObjectMeta(name=ns)))
        yield fake
        return
    server = request.getfixturevalue("shared_api_server")
    c = Client(server.url, timeout=10, namespace=request.getfixturevalue("namespace"))
    yield c
    c.close()


def test_crud_round_trip(client: BaseClient) -> None:
    created = client.create(pod("web-1", {"app": "web"}))
    assert created.metadata.uid and created.metadata.namespace == client.default_namespace
    assert created.status.phase == "Pending"
    got = client.get(Pod, "web-1")
    assert got.metadata.uid == created.metadata.uid
    assert got.spec.containers[0].image == "nginx:1"
    got.metadata.labels = {"app": "web", "v": "2"}
    updated = client.update(got)
    assert int(updated.metadata.resource_version or 0) > int(created.metadata.resource_version or 0)
    assert client.get(Pod, "web-1").metadata.labels == {"app": "web", "v": "2"}
    client.delete(Pod, "web-1")
    assert not client.exists(Pod, "web-1")


def test_errors_are_typed(client: BaseClient) -> None:
    with pytest.raises(NotFound, match='pods "nope" not found'):
        client.get(Pod, "nope")
    with pytest.raises(NotFound, match='deployments.apps "nope" not found'):
        client.get(Deployment, "nope")
    first = client.create(pod("a"))
    with pytest.raises(AlreadyExists) as exists:
        client.create(pod("a"))
    assert exists.value.code == 409 and exists.value.reason == "AlreadyExists"
    first.metadata.labels = {"x": "1"}
    client.update(first)
    first.metadata.labels = {"x": "2"}
    with pytest.raises(Conflict) as conflict:
        client.update(first)  # stale resourceVersion
    assert conflict.value.code == 409 and conflict.value.reason == "Conflict"
    with pytest.raises(NotFound, match='namespaces "nowhere" not found'):
        client.create(pod("b", namespace="nowhere"))
    with pytest.raises(BadRequest):
        client.list(Pod, label_selector="a in (b")
    with pytest.raises(BadRequest, match="field label not supported"):
        client.list(Pod, field_selector="spec.nope=1")
    with pytest.raises(Forbidden):
        client.delete(Namespace, "default")


def test_list_selectors_and_paging(client: BaseClient) -> None:
    ns = client.default_namespace
    other = f"{ns}-other"
    suite = f"suite={ns}"  # tells this test's pods from other tests' in lists across all namespaces
    client.create(Namespace(metadata=ObjectMeta(name=other)))
    for i in range(5):
        client.create(pod(f"p{i}", {"app": "web" if i % 2 == 0 else "db", "i": str(i), "suite": ns}))
    client.create(pod("x", {"app": "web", "suite": ns}, namespace=other))
    names = [p.metadata.name for p in client.list(Pod, namespace=ns, label_selector="app=web")]
    assert names == ["p0", "p2", "p4"]
    assert [p.metadata.name for p in client.list(Pod, label_selector=f"app=web,{suite}")] == ["p0", "p2", "p4", "x"]
    assert [p.metadata.name for p in client.list(Pod, field_selector=f"metadata.namespace={other}")] == ["x"]
    page = client.list(Pod, namespace=ns, limit=2)
    assert [p.metadata.name for p in page] == ["p0", "p1"] and page.continue_
    rest = client.list(Pod, namespace=ns, limit=10, continue_=page.continue_)
    assert [p.metadata.name for p in rest] == ["p2", "p3", "p4"] and not rest.continue_
    assert len(client.list_all(Pod, label_selector=suite, page_size=2)) == 6


def test_watch_sees_changes_in_order(client: BaseClient) -> None:
    ns = client.default_namespace
    start = client.list(Pod, namespace=ns).resource_version
    client.create(pod("a", {"app": "web"}))
    client.patch(Pod, "a", {"metadata": {"labels": {"app": "web", "x": "1"}}})
    client.delete(Pod, "a")
    events = []
    with client.watch(Pod, namespace=ns, resource_version=start, timeout_seconds=1) as w:
        for ev in w:
            if ev.type != "BOOKMARK":
                events.append((ev.type, ev.object.metadata.name, ev.object.metadata.labels))
            if len(events) == 3:
                break
    assert events == [("ADDED", "a", {"app": "web"}), ("MODIFIED", "a", {"app": "web", "x": "1"}),
                      ("DELETED", "a", {"app": "web", "x": "1"})]


def test_watch_with_selector_reports_leaving_objects_as_deleted(client: BaseClient) -> None:
    # a watch across all namespaces; the suite label keeps other tests' pods out of it
    suite = client.default_namespace
    start = client.list(Pod).resource_version
    client.create(pod("a", {"app": "web", "suite": suite}))
    client.patch(Pod, "a", {"metadata": {"labels": {"app": "db"}}})
    events = []
    with client.watch(Pod, resource_version=start, label_selector=f"app=web,suite={suite}", timeout_seconds=1) as w:
        for ev in w:
            if ev.type != "BOOKMARK":
                events.append((ev.type, ev.object.metadata.name))
            if len(events) == 2:
                break
    assert events == [("ADDED", "a"), ("DELETED", "a")]


def test_watch_is_closed_from_another_thread(client: BaseClient) -> None:
    ns = client.default_namespace
    w = client.watch(Pod, namespace=ns, resource_version=client.list(Pod, namespace=ns).resource_version)
    seen: list[str] = []
    t = threading.Thread(target=lambda: seen.extend(e.type for e in w), daemon=True)
    t.start()
    client.create(pod("a"))
    deadline = time.monotonic() + 5
    while "ADDED" not in seen and time.monotonic() < deadline:
        time.sleep(0.02)
    w.close()
    t.join(5)
    assert not t.is_alive()
    assert "ADDED" in seen


def test_bind_status_and_graceful_delete(client: BaseClient) -> None:
    client.create(pod("a"))
    client.bind(client.default_namespace, "a", "node-1")
    bound = client.get(Pod, "a")
    assert bound.spec.node_name == "node-1"
    with pytest.raises(Conflict):
        client.bind(client.default_namespace, "a", "node-2")
    bound.status.phase = "Running"
    bound.spec.node_name = "elsewhere"  # ignored by /status
    after = client.update_status(bound)
    assert after.status.phase == "Running" and after.spec.node_name == "node-1"
    dying = client.delete(Pod, "a", grace_period_seconds=20)
    assert dying is not None and dying.metadata.deletion_grace_period_seconds == 20
    assert client.get(Pod, "a").metadata.deletion_timestamp
    client.delete(Pod, "a", grace_period_seconds=0)
    assert not client.exists(Pod, "a")


def test_patch_types_and_scale(client: BaseClient) -> None:
    client.create(deployment("web"))
    d = client.patch(Deployment, "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "side", "image": "busybox:1"}]}}}}, patch_type="strategic")
    assert [c.name for c in d.spec.template.spec.containers] == ["app", "side"]
    d = client.patch(Deployment, "web", [{"op": "replace", "path": "/spec/replicas", "value": 4}],
                     patch_type="json")
    assert d.spec.replicas == 4 and d.metadata.generation == 3
    scale = client.get_scale(Deployment, "web")
    assert scale.spec.replicas == 4 and scale.status.selector == "app=web"
    assert client.update_scale(Deployment, "web", 1).spec.replicas == 1
    assert client.get(Deployment, "web").spec.replicas == 1
    d = client.patch(Deployment, "web", {"status": {"replicas": 1}}, subresource="status")
    assert d.status.replicas == 1


def test_finalizers_and_preconditions(client: BaseClient) -> None:
    cm = client.create(ConfigMap(metadata=ObjectMeta(name="c", finalizers=["example.com/hold"])))
    with pytest.raises(Conflict, match="Precondition failed"):
        client.delete(ConfigMap, "c", preconditions={"uid": "not-the-uid"})
    held = client.delete(ConfigMap, "c", preconditions={"uid": cm.metadata.uid or ""})
    assert held is not None and held.metadata.deletion_timestamp
    client.patch(ConfigMap, "c", {"metadata": {"finalizers": None}})
    assert not client.exists(ConfigMap, "c")


def test_retry_on_conflict_with_concurrent_writers(client: BaseClient) -> None:
    client.create(ConfigMap(metadata=ObjectMeta(name="n"), data={"n": "0"}))

    def bump() -> None:
        def attempt() -> None:
            cm = client.get(ConfigMap, "n")
            cm.data = {"n": str(int((cm.data or {})["n"]) + 1)}
            client.update(cm)
        retry_on_conflict(attempt, attempts=100, delay=0.002)

    threads = [threading.Thread(target=bump) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert client.get(ConfigMap, "n").data == {"n": "6"}


def test_request_for_discovery_and_arbitrary_paths(client: BaseClient) -> None:
    assert client.server_version()["major"] == "1"
    resources = client.request("GET", "/apis/apps/v1")
    assert "deployments" in {r["name"] for r in resources["resources"]}
    client.request("POST", f"/api/v1/namespaces/{client.default_namespace}/configmaps",
                   body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "raw"}})
    assert client.get_raw("configmaps", "raw")["metadata"]["name"] == "raw"


# ---------------------------------------------------------------- server only


def test_connection_failures_name_the_server() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = Client(f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(ConnectionFailed) as exc:
        c.get(Pod, "a")
    assert f"127.0.0.1:{port}" in str(exc.value)


def test_server_restart_is_survived_by_the_pool(api_server: Any) -> None:
    c = Client(api_server.url, timeout=10)
    c.create(pod("a"))
    api_server.stop()
    with pytest.raises(ConnectionFailed):
        c.get(Pod, "a")
    api_server.start()
    assert c.get(Pod, "a").metadata.name == "a"  # stale keep-alive connections are replaced
    c.close()


def test_concurrent_requests_share_one_client(shared_api_server: Any, namespace: str) -> None:
    c = Client(shared_api_server.url, timeout=30, namespace=namespace)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(5):
                c.create(ConfigMap(metadata=ObjectMeta(name=f"cm-{i}-{j}")))
                c.get(ConfigMap, f"cm-{i}-{j}")
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(c.list(ConfigMap, namespace=namespace)) == 60
    c.close()


def test_watch_of_compacted_revision_raises_gone(make_api_server: Callable[..., Any]) -> None:
    server = make_api_server(extra_args=["--compaction-keep", "1", "--compaction-interval", "0.2"])
    c = Client(server.url, timeout=10)
    start = c.list(Pod).resource_version
    for i in range(5):
        c.create(pod(f"p{i}"))
    deadline = time.monotonic() + 20
    while True:
        try:
            with c.watch(Pod, resource_version=start, timeout_seconds=1) as w:
                for _ in w:
                    pass
        except Gone as e:
            assert e.code == 410
            break
        assert time.monotonic() < deadline, "the log was never compacted"
        time.sleep(0.2)
    c.close()


def test_log_of_missing_pod_is_not_found(shared_api_server: Any, namespace: str) -> None:
    c = Client(shared_api_server.url, timeout=10)
    with pytest.raises(NotFound):
        c.log(namespace, "nope")
    c.close()
