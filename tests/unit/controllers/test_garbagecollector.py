"""Garbage collection on a FakeClient: background, foreground, orphan; the graph itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mkube.api.errors import NotFound
from mkube.api.types import (
    ConfigMap,
    Container,
    Deployment,
    ObjectMeta,
    OwnerReference,
    Pod,
    PodSpec,
    ReplicaSet,
    ReplicaSetSpec,
)
from mkube.controllers.gc_graph import Graph, Identity
from mkube.controllers.refs import controller_ref
from tests.unit.controllers.harness import Harness, deployment


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness(("garbagecollector",))
    yield harness
    harness.close()


def owned_rs(owner: Deployment, name: str = "web-1") -> ReplicaSet:
    return ReplicaSet(metadata=ObjectMeta(name=name, namespace="default", labels={"app": "web"},
                                          owner_references=[controller_ref(owner)]),
                      spec=ReplicaSetSpec(replicas=1, selector=owner.spec.selector, template=owner.spec.template))


def owned_pod(owner: ReplicaSet | Deployment, name: str, block: bool = True) -> Pod:
    ref = controller_ref(owner)
    ref.block_owner_deletion = block
    return Pod(metadata=ObjectMeta(name=name, namespace="default", owner_references=[ref]),
               spec=PodSpec(containers=[Container(name="c", image="busybox")]))


def exists(h: Harness, cls: type, name: str) -> bool:
    try:
        h.client.get(cls, name, "default")
    except NotFound:
        return False
    return True


def family(h: Harness) -> tuple[Deployment, ReplicaSet, list[Pod]]:
    d = h.client.create(deployment(replicas=1))
    rs = h.client.create(owned_rs(d))
    pods = [h.client.create(owned_pod(rs, f"web-1-{i}")) for i in range(3)]
    h.run()
    return d, rs, pods


def test_background_deletion_removes_replicasets_and_pods(h: Harness) -> None:
    d, rs, pods = family(h)
    h.client.delete(Deployment, "web", "default")
    h.run()
    assert not exists(h, ReplicaSet, "web-1")
    assert not any(exists(h, Pod, p.metadata.name or "") for p in pods)


def test_foreground_deletion_waits_for_dependents(h: Harness) -> None:
    d, rs, pods = family(h)
    h.client.delete(ReplicaSet, "web-1", "default", propagation_policy="Foreground")
    got = h.client.get(ReplicaSet, "web-1", "default")
    assert got.metadata.deletion_timestamp is not None and "foregroundDeletion" in (got.metadata.finalizers or [])
    h.run()
    assert not any(exists(h, Pod, p.metadata.name or "") for p in pods)
    assert not exists(h, ReplicaSet, "web-1")  # finalizer removed once the pods were gone
    assert exists(h, Deployment, "web")


def test_foreground_waits_for_terminating_pods(h: Harness) -> None:
    d, rs, pods = family(h)
    for p in pods:  # bound pods die gracefully: they wait for their kubelet
        h.client.bind("default", p.metadata.name or "", "n1")
    h.run()
    h.client.delete(ReplicaSet, "web-1", "default", propagation_policy="Foreground")
    h.run()
    assert all(h.client.get(Pod, p.metadata.name or "", "default").metadata.deletion_timestamp for p in pods)
    assert exists(h, ReplicaSet, "web-1")  # still blocked by its terminating pods
    h.finish_deletions()
    h.run()
    assert not exists(h, ReplicaSet, "web-1")


def test_orphan_deletion_keeps_dependents(h: Harness) -> None:
    d, rs, pods = family(h)
    h.client.delete(ReplicaSet, "web-1", "default", propagation_policy="Orphan")
    h.run()
    assert not exists(h, ReplicaSet, "web-1")
    for p in pods:
        got = h.client.get(Pod, p.metadata.name or "", "default")
        assert not got.metadata.owner_references


def test_dependent_of_an_owner_that_never_existed_is_deleted(h: Harness) -> None:
    ghost = OwnerReference(api_version="apps/v1", kind="ReplicaSet", name="ghost", uid="no-such-uid",
                           controller=True)
    h.client.create(Pod(metadata=ObjectMeta(name="lost", namespace="default", owner_references=[ghost]),
                        spec=PodSpec(containers=[Container(name="c", image="busybox")])))
    h.run()
    assert not exists(h, Pod, "lost")


def test_dangling_reference_removed_when_another_owner_remains(h: Harness) -> None:
    d = h.client.create(deployment(replicas=1))
    keeper = OwnerReference(api_version="apps/v1", kind="Deployment", name="web", uid=d.metadata.uid)
    ghost = OwnerReference(api_version="apps/v1", kind="ReplicaSet", name="ghost", uid="gone-uid")
    h.client.create(ConfigMap(metadata=ObjectMeta(name="cfg", namespace="default", owner_references=[keeper, ghost])))
    h.run()
    cm = h.client.get(ConfigMap, "cfg", "default")
    assert [r.uid for r in cm.metadata.owner_references or []] == [d.metadata.uid]


def test_owner_recreated_with_the_same_name_does_not_adopt_old_dependents(h: Harness) -> None:
    d = h.client.create(deployment(replicas=1))
    h.client.create(ConfigMap(metadata=ObjectMeta(name="cfg", namespace="default",
                                                  owner_references=[controller_ref(d)])))
    h.run()
    h.client.delete(Deployment, "web", "default", propagation_policy="Orphan")
    h.run()
    assert not h.client.get(ConfigMap, "cfg", "default").metadata.owner_references
    h.client.create(deployment(replicas=1))  # same name, new uid
    h.run()
    assert exists(h, ConfigMap, "cfg")


def test_graph_edges_and_work() -> None:
    g = Graph(lambda api_version, kind: True)
    owner = Identity("apps/v1", "ReplicaSet", "default", "rs", "u-rs")
    dep = Identity("v1", "Pod", "default", "p", "u-p")
    ref = OwnerReference(api_version="apps/v1", kind="ReplicaSet", name="rs", uid="u-rs", controller=True,
                         block_owner_deletion=True)
    # dependent first: the owner becomes a virtual node to verify
    work = g.observe(dep, [ref], False, [])
    assert [(w.kind, w.uid) for w in work] == [("delete", "u-rs")]
    assert g.get("u-rs").virtual  # type: ignore[union-attr]
    assert g.observe(owner, [], False, []) == []
    assert not g.get("u-rs").virtual  # type: ignore[union-attr]
    assert [n.identity.uid for n in g.blocking_dependents("u-rs")] == ["u-p"]
    # foreground deletion of the owner: its dependents and itself are queued
    work = g.observe(owner, [], True, ["foregroundDeletion"])
    assert {(w.kind, w.uid) for w in work} == {("delete", "u-p"), ("delete", "u-rs")}
    # the dependent goes: the waiting owner is queued again
    assert [(w.kind, w.uid) for w in g.forget("u-p")] == [("delete", "u-rs")]
    # orphan finalizer -> orphan work, once
    other = Identity("apps/v1", "Deployment", "default", "d", "u-d")
    assert [(w.kind, w.uid) for w in g.observe(other, [], True, ["orphan"])] == [("orphan", "u-d")]
    assert g.observe(other, [], True, ["orphan"]) == []
    # an owner that goes queues its dependents
    g.observe(dep, [ref], False, [])
    assert [(w.kind, w.uid) for w in g.forget("u-rs")] == [("delete", "u-p")]
