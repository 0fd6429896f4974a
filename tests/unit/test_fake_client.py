"""FakeClient behaves like the API server where components can tell."""

from __future__ import annotations

import inspect
import threading
import time
from typing import Any

import pytest

from mkube.api.errors import AlreadyExists, ApiError, BadRequest, Conflict, Forbidden, Gone, Invalid, NotFound
from mkube.api.types import (
    ConfigMap,
    Container,
    Deployment,
    DeploymentSpec,
    EndpointAddress,
    Endpoints,
    EndpointSubset,
    LabelSelector,
    Namespace,
    Node,
    ObjectMeta,
    Pod,
    PodSpec,
    PodTemplateSpec,
)
from mkube.client import BaseClient, Client, FakeClient, retry_on_conflict
from mkube.client.fake import Action


def pod(name: str, labels: dict[str, str] | None = None, namespace: str | None = None,
        node: str | None = None) -> Pod:
    return Pod(metadata=ObjectMeta(name=name, namespace=namespace, labels=labels),
               spec=PodSpec(containers=[Container(name="app", image="nginx:1")], node_name=node))


def deployment(name: str, replicas: int = 1) -> Deployment:
    labels = {"app": name}
    return Deployment(metadata=ObjectMeta(name=name),
                      spec=DeploymentSpec(replicas=replicas, selector=LabelSelector(match_labels=labels),
                                          template=PodTemplateSpec(
                                              metadata=ObjectMeta(labels=labels),
                                              spec=PodSpec(containers=[Container(name="app", image="nginx:1")]))))


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


def test_same_public_api_as_the_rest_client() -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {n: inspect.signature(f) for n, f in inspect.getmembers(cls, inspect.isfunction)
                if not n.startswith("_")}

    base = public(BaseClient)
    rest = public(Client)
    fake = public(FakeClient)
    for name, sig in base.items():
        assert rest[name] == sig, name
        assert fake[name] == sig, name


def test_create_sets_server_metadata_and_resets_status(client: FakeClient) -> None:
    p = pod("a")
    p.status.phase = "Running"
    created = client.create(p)
    md = created.metadata
    assert md.namespace == "default"
    assert md.uid and md.creation_timestamp and md.generation == 1
    assert md.resource_version == "5"  # after the four built-in namespaces
    assert created.status.phase == "Pending"
    client.create(Namespace(metadata=ObjectMeta(name="other")))
    cm = client.create(ConfigMap(metadata=ObjectMeta(name="c", namespace="other"), data={"k": "v"}))
    assert cm.metadata.resource_version == "7"  # one global counter over all kinds
    assert client.get(ConfigMap, "c", "other").data == {"k": "v"}
    assert p.metadata.resource_version is None  # the caller's object is not touched


def test_create_errors(client: FakeClient) -> None:
    client.create(pod("a"))
    with pytest.raises(AlreadyExists) as exc:
        client.create(pod("a"))
    assert exc.value.code == 409 and exc.value.reason == "AlreadyExists"
    assert str(exc.value) == 'pods "a" already exists'
    with pytest.raises(Invalid) as inv:
        client.create(pod(""))
    assert inv.value.code == 422
    with pytest.raises(BadRequest, match="namespace"):
        client.create(pod("b", namespace="x"), namespace="y")
    with pytest.raises(NotFound, match='namespaces "nope" not found'):
        client.create(pod("b", namespace="nope"))
    lenient = FakeClient(require_namespaces=False)
    assert lenient.create(pod("b", namespace="anything")).metadata.resource_version == "1"


def test_generate_name_is_unique_and_deterministic() -> None:
    names = []
    for _ in range(2):
        c = FakeClient(seed=7)
        p = Pod(metadata=ObjectMeta(generate_name="web-"),
                spec=PodSpec(containers=[Container(name="app", image="nginx:1")]))
        names.append([c.create(p).metadata.name for _ in range(3)])
    assert names[0] == names[1]
    assert len(set(names[0])) == 3
    assert all(n and n.startswith("web-") and len(n) == 9 for n in names[0])


def test_get_not_found_message(client: FakeClient) -> None:
    with pytest.raises(NotFound, match='pods "nope" not found'):
        client.get(Pod, "nope")
    with pytest.raises(NotFound, match='deployments.apps "d" not found'):
        client.get(Deployment, "d")
    assert not client.exists(Pod, "nope")


def test_update_conflict_generation_and_noop(client: FakeClient) -> None:
    d = client.create(deployment("web"))
    stale = d.copy_deep()
    d.spec.replicas = 3
    d2 = client.update(d)
    assert d2.metadata.generation == 2
    assert int(d2.metadata.resource_version or 0) > int(d.metadata.resource_version or 0)
    stale.spec.replicas = 5
    with pytest.raises(Conflict) as exc:
        client.update(stale)
    assert exc.value.reason == "Conflict" and exc.value.code == 409
    d2.metadata.labels = {"x": "y"}
    d3 = client.update(d2)
    assert d3.metadata.generation == 2  # metadata only: no bump
    rv = client.resource_version
    same = client.update(d3)
    assert client.resource_version == rv  # no-op update writes nothing
    assert same.metadata.resource_version == d3.metadata.resource_version
    missing = deployment("missing")
    with pytest.raises(NotFound):
        client.update(missing)


def test_update_keeps_status_and_update_status_keeps_spec(client: FakeClient) -> None:
    d = client.create(deployment("web"))
    d.status.replicas = 9
    d.spec.replicas = 2
    d = client.update(d)
    assert d.status.replicas is None and d.spec.replicas == 2
    d.status.replicas = 2
    d.status.observed_generation = d.metadata.generation
    d.spec.replicas = 100
    d = client.update_status(d)
    assert d.status.replicas == 2 and d.spec.replicas == 2
    assert d.metadata.generation == 2


def test_put_creates_endpoints_events_leases(client: FakeClient) -> None:
    ep = Endpoints(metadata=ObjectMeta(name="svc"), subsets=[EndpointSubset(addresses=[EndpointAddress(ip="10.0.0.1")])])
    created = client.update(ep)
    assert created.metadata.uid
    with pytest.raises(NotFound):
        client.update(ConfigMap(metadata=ObjectMeta(name="nope")))


def test_label_and_field_selectors(client: FakeClient) -> None:
    client.create(Namespace(metadata=ObjectMeta(name="other")))
    client.create(pod("a", {"app": "web", "tier": "fe"}))
    client.create(pod("b", {"app": "web", "tier": "be"}, node="n1"))
    client.create(pod("c", {"app": "db"}, namespace="other"))

    def names(**kw: Any) -> list[str]:
        return [p.metadata.name or "" for p in client.list(Pod, **kw)]

    assert names() == ["a", "b", "c"]
    assert names(namespace="default") == ["a", "b"]
    assert names(label_selector="app=web") == ["a", "b"]
    assert names(label_selector="app=web,tier!=fe") == ["b"]
    assert names(label_selector="app in (db, web),tier") == ["a", "b"]
    assert names(label_selector="!tier") == ["c"]
    assert names(label_selector="app notin (web)") == ["c"]
    assert names(field_selector="spec.nodeName=n1") == ["b"]
    assert names(field_selector="spec.nodeName=") == ["a", "c"]
    assert names(field_selector="metadata.name!=a,metadata.namespace=default") == ["b"]
    with pytest.raises(BadRequest, match="field label not supported"):
        client.list(Pod, field_selector="spec.image=x")
    with pytest.raises(BadRequest):
        client.list(Pod, label_selector="app in (web")


def test_limit_and_continue(client: FakeClient) -> None:
    for i in range(7):
        client.create(ConfigMap(metadata=ObjectMeta(name=f"cm{i}")))
    page = client.list(ConfigMap, limit=3)
    assert [c.metadata.name for c in page] == ["cm0", "cm1", "cm2"]
    assert page.continue_ and page.remaining_item_count == 4
    page2 = client.list(ConfigMap, limit=3, continue_=page.continue_)
    assert [c.metadata.name for c in page2] == ["cm3", "cm4", "cm5"]
    assert page2.resource_version == page.resource_version
    everything = client.list_all(ConfigMap, page_size=2)
    assert len(everything) == 7 and everything.continue_ is None


def test_watch_from_resource_version_and_selector_semantics(client: FakeClient) -> None:
    client.create(Namespace(metadata=ObjectMeta(name="ns2")))
    a = client.create(pod("a", {"app": "web"}))
    client.create(pod("other", {"app": "web"}, namespace="ns2"))
    rv = a.metadata.resource_version
    with client.watch(Pod, namespace="default", resource_version=rv, label_selector="app=web",
                      timeout_seconds=0) as w:
        pass
    assert w.closed
    client.create(pod("b", {"app": "web"}))
    a.metadata.labels = {"app": "db"}
    client.update(a)  # leaves the selector: DELETED for this watcher
    a2 = client.get(Pod, "a")
    a2.metadata.labels = {"app": "web"}
    client.update(a2)  # enters again: ADDED
    client.delete(Pod, "b")
    events = [(e.type, e.object.metadata.name) for e in
              client.watch(Pod, namespace="default", resource_version=rv, label_selector="app=web",
                           timeout_seconds=0)]
    assert events == [("ADDED", "b"), ("DELETED", "a"), ("ADDED", "a"), ("DELETED", "b"),
                      ("BOOKMARK", None)]


def test_watch_without_resource_version_starts_with_current_state(client: FakeClient) -> None:
    client.create(pod("a"))
    client.create(pod("b"))
    events = list(client.watch(Pod, timeout_seconds=0, allow_bookmarks=False))
    assert [(e.type, e.object.metadata.name) for e in events] == [("ADDED", "a"), ("ADDED", "b")]


def test_watch_blocks_for_new_events_and_close_unblocks(client: FakeClient) -> None:
    w = client.watch(Pod, resource_version=str(client.resource_version))
    got: list[str] = []

    def consume() -> None:
        for ev in w:
            got.append(f"{ev.type} {ev.object.metadata.name}")

    t = threading.Thread(target=consume)
    t.start()
    client.create(pod("a"))
    deadline = time.monotonic() + 2
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    w.close()
    t.join(2)
    assert not t.is_alive()
    assert got == ["ADDED a"]


def test_watch_of_compacted_revision_is_gone(client: FakeClient) -> None:
    a = client.create(pod("a"))
    client.create(pod("b"))
    client.compact()
    with pytest.raises(Gone) as exc:
        list(client.watch(Pod, resource_version=a.metadata.resource_version, timeout_seconds=0))
    assert exc.value.code == 410
    current = str(client.resource_version)
    assert [e.type for e in client.watch(Pod, resource_version=current, timeout_seconds=0)] == ["BOOKMARK"]


def test_bind(client: FakeClient) -> None:
    client.create(pod("a"))
    client.bind("default", "a", "node-1")
    p = client.get(Pod, "a")
    assert p.spec.node_name == "node-1"
    assert [(c.type, c.status) for c in p.status.conditions or []] == [("PodScheduled", "True")]
    with pytest.raises(Conflict, match="already assigned"):
        client.bind("default", "a", "node-2")
    with pytest.raises(NotFound):
        client.bind("default", "nope", "node-1")


def test_pod_deletion_is_graceful_once_bound(client: FakeClient) -> None:
    client.create(pod("pending"))
    gone = client.delete(Pod, "pending")  # pods are answered with their last state
    assert gone is not None and gone.metadata.deletion_timestamp is None
    assert not client.exists(Pod, "pending")
    client.create(ConfigMap(metadata=ObjectMeta(name="c")))
    assert client.delete(ConfigMap, "c") is None  # a Status

    created = client.create(pod("bound"))
    client.bind("default", "bound", "n1")
    w = client.watch(Pod, resource_version=created.metadata.resource_version, timeout_seconds=0,
                     allow_bookmarks=False)
    dying = client.delete(Pod, "bound")
    assert dying is not None
    assert dying.metadata.deletion_timestamp and dying.metadata.deletion_grace_period_seconds == 30
    assert client.get(Pod, "bound").metadata.deletion_timestamp
    again = client.delete(Pod, "bound", grace_period_seconds=10)
    assert again is not None and again.metadata.deletion_grace_period_seconds == 10
    client.delete(Pod, "bound", grace_period_seconds=0)
    assert not client.exists(Pod, "bound")
    assert [e.type for e in w] == ["MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]


def test_finalizers_hold_deletion_until_removed(client: FakeClient) -> None:
    cm = ConfigMap(metadata=ObjectMeta(name="c", finalizers=["example.com/hold"]))
    client.create(cm)
    held = client.delete(ConfigMap, "c")
    assert held is not None and held.metadata.deletion_timestamp
    assert client.exists(ConfigMap, "c")
    held.metadata.finalizers = []
    client.update(held)
    assert not client.exists(ConfigMap, "c")


def test_foreground_and_orphan_add_finalizers(client: FakeClient) -> None:
    client.create(deployment("fg"))
    client.create(deployment("or"))
    fg = client.delete(Deployment, "fg", propagation_policy="Foreground")
    orphan = client.delete(Deployment, "or", propagation_policy="Orphan")
    assert fg is not None and fg.metadata.finalizers == ["foregroundDeletion"]
    assert orphan is not None and orphan.metadata.finalizers == ["orphan"]


def test_delete_preconditions(client: FakeClient) -> None:
    created = client.create(pod("a"))
    with pytest.raises(Conflict, match="Precondition failed: UID"):
        client.delete(Pod, "a", preconditions={"uid": "other"})
    with pytest.raises(Conflict, match="ResourceVersion"):
        client.delete(Pod, "a", preconditions={"resourceVersion": "999"})
    client.delete(Pod, "a", preconditions={"uid": created.metadata.uid or ""})
    with pytest.raises(NotFound):
        client.delete(Pod, "a")


def test_patch_types(client: FakeClient) -> None:
    d = client.create(deployment("web"))
    d = client.patch(Deployment, "web", {"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 4}})
    assert d.metadata.labels == {"a": "1"} and d.spec.replicas == 4
    d = client.patch(Deployment, "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "side", "image": "busybox:1"}]}}}}, patch_type="strategic")
    assert [c.name for c in d.spec.template.spec.containers] == ["app", "side"]
    d = client.patch(Deployment, "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "nginx:2"}]}}}}, patch_type="strategic")
    assert [(c.name, c.image) for c in d.spec.template.spec.containers] == [("app", "nginx:2"),
                                                                            ("side", "busybox:1")]
    d = client.patch(Deployment, "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "side", "$patch": "delete"}]}}}}, patch_type="strategic")
    assert [c.name for c in d.spec.template.spec.containers] == ["app"]
    d = client.patch(Deployment, "web", [{"op": "replace", "path": "/spec/replicas", "value": 1}],
                     patch_type="json")
    assert d.spec.replicas == 1
    with pytest.raises(ApiError) as exc:
        client.patch(Deployment, "web", [{"op": "test", "path": "/spec/replicas", "value": 7}], patch_type="json")
    assert exc.value.code == 422
    d = client.patch(Deployment, "web", {"status": {"replicas": 1}, "spec": {"replicas": 50}}, subresource="status")
    assert d.status.replicas == 1 and d.spec.replicas == 1
    with pytest.raises(Conflict):
        client.patch(Deployment, "web", {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 3}})
    with pytest.raises(NotFound):
        client.patch(Deployment, "nope", {"spec": {}})


def test_scale_subresource(client: FakeClient) -> None:
    client.create(deployment("web", replicas=2))
    scale = client.get_scale(Deployment, "web")
    assert scale.spec.replicas == 2 and scale.status.selector == "app=web"
    scale.spec.replicas = 5
    out = client.update_scale(Deployment, "web", scale)
    assert out.spec.replicas == 5
    assert client.get(Deployment, "web").spec.replicas == 5
    with pytest.raises(Conflict):
        client.update_scale(Deployment, "web", scale)  # stale resourceVersion
    assert client.update_scale(Deployment, "web", 1).spec.replicas == 1
    client.patch_raw(Deployment, "web", {"spec": {"replicas": 3}}, subresource="scale")
    assert client.get(Deployment, "web").spec.replicas == 3
    with pytest.raises(Invalid):
        client.update_scale(Deployment, "web", -1)


def test_namespace_lifecycle(client: FakeClient) -> None:
    assert [n.metadata.name for n in client.list(Namespace)] == [
        "default", "kube-node-lease", "kube-public", "kube-system"]
    ns = client.create(Namespace(metadata=ObjectMeta(name="team")))
    assert ns.status.phase == "Active" and ns.spec.finalizers == ["kubernetes"]
    ns.spec.finalizers = []
    assert client.update(ns).spec.finalizers == ["kubernetes"]  # only /finalize changes it
    client.create(ConfigMap(metadata=ObjectMeta(name="c", namespace="team")))
    client.create(pod("p", namespace="team"))
    client.bind("team", "p", "n1")
    dying = client.delete(Namespace, "team")
    assert dying is not None and dying.status.phase == "Terminating"
    assert not client.exists(ConfigMap, "c", "team")  # the cascade deleted the contents
    assert client.get(Pod, "p", "team").metadata.deletion_timestamp  # bound: waits for its kubelet
    with pytest.raises(Forbidden, match="being terminated"):
        client.create(ConfigMap(metadata=ObjectMeta(name="d", namespace="team")))
    client.delete(Pod, "p", "team", grace_period_seconds=0)
    assert not client.exists(Namespace, "team")  # emptied: removed
    with pytest.raises(Forbidden):
        client.delete(Namespace, "default")
    client.create(Namespace(metadata=ObjectMeta(name="empty")))
    client.delete(Namespace, "empty")
    assert not client.exists(Namespace, "empty")


def test_add_keeps_status_and_cluster_scope(client: FakeClient) -> None:
    p = pod("running")
    p.status.phase = "Running"
    client.add(p)
    assert client.get(Pod, "running").status.phase == "Running"
    client.add(Node(metadata=ObjectMeta(name="n1", namespace="ignored")))
    n = client.get(Node, "n1")
    assert n.metadata.namespace is None
    assert [x.metadata.name for x in client.list(Node)] == ["n1"]


def test_actions_and_reactors(client: FakeClient) -> None:
    client.create(pod("a"))
    client.add_reactor("update", "pods", lambda action: (_ for _ in ()).throw(
        Conflict("pods", action.name, "injected")))
    p = client.get(Pod, "a")
    with pytest.raises(Conflict, match="injected"):
        client.update(p)
    assert [(a.verb, a.resource, a.name) for a in client.actions] == [
        ("create", "pods", "a"), ("get", "pods", "a"), ("update", "pods", "a")]
    assert isinstance(client.actions[0], Action)


def test_retry_on_conflict_with_concurrent_writers(client: FakeClient) -> None:
    client.create(ConfigMap(metadata=ObjectMeta(name="counter"), data={"n": "0"}))

    def bump() -> None:
        def attempt() -> None:
            cm = client.get(ConfigMap, "counter")
            time.sleep(0.001)
            cm.data = {"n": str(int((cm.data or {})["n"]) + 1)}
            client.update(cm)
        retry_on_conflict(attempt, attempts=200, delay=0.0005)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert client.get(ConfigMap, "counter").data == {"n": "8"}


def test_request_routes_paths(client: FakeClient) -> None:
    client.request("POST", "/api/v1/namespaces/default/pods", body=pod("a").to_dict())
    assert client.request("GET", "/api/v1/namespaces/default/pods/a")["metadata"]["name"] == "a"
    listed = client.request("GET", "/api/v1/pods", params={"labelSelector": ""})
    assert listed["kind"] == "PodList" and len(listed["items"]) == 1
    client.request("PATCH", "/api/v1/namespaces/default/pods/a", body={"metadata": {"labels": {"x": "1"}}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert client.get(Pod, "a").metadata.labels == {"x": "1"}
    client.request("POST", "/apis/apps/v1/namespaces/default/deployments", body=deployment("d").to_dict())
    assert client.request("GET", "/apis/apps/v1/namespaces/default/deployments/d/scale")["kind"] == "Scale"
    client.request("DELETE", "/api/v1/namespaces/default/pods/a")
    assert not client.exists(Pod, "a")
    assert client.server_version()["major"] == "1"
    with pytest.raises(NotFound):
        client.request("GET", "/api/v1/namespaces/default/widgets")


def test_log(client: FakeClient) -> None:
    client.create(pod("a"))
    client.set_log("default", "a", "one\ntwo\nthree\n")
    assert client.log("default", "a") == "one\ntwo\nthree\n"
    assert client.log("default", "a", tail_lines=1) == "three\n"
    assert b"".join(client.log("default", "a", follow=True)) == b"one\ntwo\nthree\n"  # type: ignore[arg-type]
    with pytest.raises(BadRequest):
        client.log("default", "a", container="nope")
    with pytest.raises(NotFound):
        client.log("default", "nope")
