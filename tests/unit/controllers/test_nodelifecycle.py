"""Node lifecycle on a FakeClient: heartbeats, Ready=Unknown, taints, evictions, recovery."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from mkube.api.timeutil import format_micro, format_time, now
from mkube.api.types import (
    Container,
    Lease,
    LeaseSpec,
    Node,
    ObjectMeta,
    Pod,
    PodSpec,
    Taint,
    Toleration,
)
from mkube.controllers import taints as tz
from mkube.controllers.nodelifecycle import reconcile_taints
from tests.unit.controllers.harness import Harness, node

GRACE = 0.4


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness(("nodelifecycle",), node_monitor_grace_period=GRACE, pod_eviction_timeout=1)
    yield harness
    harness.close()


def lease(h: Harness, name: str) -> None:
    body = Lease(metadata=ObjectMeta(name=name, namespace="kube-node-lease"),
                 spec=LeaseSpec(holder_identity=name, renew_time=format_micro(now()), lease_duration_seconds=40))
    try:
        cur = h.client.get(Lease, name, "kube-node-lease")
        cur.spec.renew_time = body.spec.renew_time
        h.client.update(cur)
    except Exception:
        h.client.create(body)


def pod(name: str, node_name: str, tolerations: list[Toleration] | None = None) -> Pod:
    return Pod(metadata=ObjectMeta(name=name, namespace="default"),
               spec=PodSpec(node_name=node_name, tolerations=tolerations,
                            containers=[Container(name="c", image="busybox")]))


def taint_keys(n: Node) -> set[tuple[str, str]]:
    return {(t.key, t.effect) for t in n.spec.taints or []}


def test_reconcile_taints_is_pure_and_keeps_foreign_taints() -> None:
    n = node("n1", ready="Unknown")
    n.spec.taints = [Taint(key="dedicated", value="gpu", effect="NoSchedule")]
    new = reconcile_taints(n, "2026-01-01T00:00:00Z")
    assert new is not None
    assert {(t.key, t.effect) for t in new} == {("dedicated", "NoSchedule"), (tz.UNREACHABLE, "NoSchedule"),
                                                (tz.UNREACHABLE, "NoExecute")}
    assert next(t for t in new if t.effect == "NoExecute").time_added == "2026-01-01T00:00:00Z"
    n.spec.taints = new
    assert reconcile_taints(n, "later") is None  # already right
    ok = node("n1", ready="True")
    ok.spec.taints = new
    assert {(t.key, t.effect) for t in reconcile_taints(ok, "x") or []} == {("dedicated", "NoSchedule")}
    sick = node("n1", ready="False")
    assert {(t.key, t.effect) for t in reconcile_taints(sick, "x") or []} == {
        (tz.NOT_READY, "NoSchedule"), (tz.NOT_READY, "NoExecute")}


def test_eviction_delay_rules() -> None:
    unreachable = [Taint(key=tz.UNREACHABLE, effect="NoExecute")]
    assert tz.eviction_delay(None, unreachable, 300) == 300
    assert tz.eviction_delay([Toleration(key=tz.UNREACHABLE, operator="Exists", effect="NoExecute",
                                         toleration_seconds=5)], unreachable, 300) == 5
    assert tz.eviction_delay([Toleration(operator="Exists")], unreachable, 300) is None  # tolerates forever
    other = [Taint(key="maintenance", effect="NoExecute")]
    assert tz.eviction_delay(None, other, 300) == 0  # not tolerated: now
    assert tz.eviction_delay(None, [Taint(key="x", effect="NoSchedule")], 300) is None


def test_dead_node_is_marked_tainted_and_its_pods_evicted(h: Harness) -> None:
    h.client.add(node("n1"))
    h.client.add(node("n2"))
    lease(h, "n1")
    lease(h, "n2")
    h.client.create(pod("a", "n1"))
    h.client.create(pod("b", "n1", [Toleration(key=tz.UNREACHABLE, operator="Exists", effect="NoExecute")]))
    h.client.create(pod("c", "n2"))
    for p in ("a", "b", "c"):
        h.make_ready([h.client.get(Pod, p, "default")])
    nlc = h.controller("nodelifecycle")
    h.settle()
    nlc.monitor()  # first sight: every node gets a full grace period
    h.run()
    assert h.client.get(Node, "n1").condition("Ready").status == "True"  # type: ignore[union-attr]
    time.sleep(GRACE + 0.1)
    lease(h, "n2")  # n2 keeps renewing its lease; n1 went silent
    h.settle()
    nlc.monitor()
    h.run()
    n1 = h.client.get(Node, "n1")
    ready = n1.condition("Ready")
    assert ready is not None and (ready.status, ready.reason) == ("Unknown", "NodeStatusUnknown")
    assert ready.message == "Kubelet stopped posting node status."
    assert taint_keys(n1) == {(tz.UNREACHABLE, "NoSchedule"), (tz.UNREACHABLE, "NoExecute")}
    assert h.client.get(Node, "n2").condition("Ready").status == "True"  # type: ignore[union-attr]
    assert not h.client.get(Node, "n2").spec.taints
    assert any(r == "NodeNotReady" and k == "n1" for k, _, r, _ in h.recorder.events)
    # pods on the dead node are no longer ready (Services stop using them)
    a = h.client.get(Pod, "a", "default")
    assert next(c for c in a.status.conditions or [] if c.type == "Ready").status == "False"
    assert a.metadata.deletion_timestamp is None  # tolerated for 1 s (the default here)
    time.sleep(1.2)
    h.run()
    assert h.client.get(Pod, "a", "default").metadata.deletion_timestamp is not None  # evicted
    assert h.client.get(Pod, "b", "default").metadata.deletion_timestamp is None  # tolerates forever
    assert h.client.get(Pod, "c", "default").metadata.deletion_timestamp is None  # healthy node
    assert "Marking for deletion Pod default/a" in h.recorder.messages("TaintManagerEviction")


def test_node_that_comes_back_is_untainted(h: Harness) -> None:
    h.client.add(node("n1"))
    nlc = h.controller("nodelifecycle")
    h.settle()
    nlc.monitor()
    time.sleep(GRACE + 0.1)
    nlc.monitor()
    h.run()
    assert taint_keys(h.client.get(Node, "n1"))
    # the kubelet posts Ready=True again
    n1 = h.client.get(Node, "n1")
    cond = n1.condition("Ready")
    assert cond is not None
    cond.status, cond.reason, cond.last_heartbeat_time = "True", "KubeletReady", format_time(now())
    h.client.update_status(n1)
    lease(h, "n1")
    h.settle()
    nlc.monitor()
    h.run()
    n1 = h.client.get(Node, "n1")
    assert n1.condition("Ready").status == "True"  # type: ignore[union-attr]
    assert not taint_keys(n1)


def test_kubelet_reported_not_ready_taints_not_ready(h: Harness) -> None:
    h.client.add(node("n1", ready="False"))
    h.run()
    assert taint_keys(h.client.get(Node, "n1")) == {(tz.NOT_READY, "NoSchedule"), (tz.NOT_READY, "NoExecute")}


def test_unschedulable_node_gets_the_unschedulable_taint(h: Harness) -> None:
    n = node("n1")
    n.spec.unschedulable = True
    h.client.add(n)
    h.run()
    assert taint_keys(h.client.get(Node, "n1")) == {(tz.UNSCHEDULABLE, "NoSchedule")}


def test_pods_of_a_deleted_node_are_removed(h: Harness) -> None:
    h.client.add(node("n1"))
    h.client.create(pod("a", "n1"))
    h.make_ready([h.client.get(Pod, "a", "default")], node="n1")
    h.client.delete(Pod, "a", "default")  # graceful: waits for a kubelet that is gone
    assert h.client.get(Pod, "a", "default").metadata.deletion_timestamp is not None
    h.client.delete(Node, "n1")
    h.run()
    assert not h.client.exists(Pod, "a", "default")
