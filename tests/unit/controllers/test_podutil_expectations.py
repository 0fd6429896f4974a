"""Victim ordering for scale-down (ActivePods order) and creation/deletion expectations."""

from __future__ import annotations

from datetime import timedelta

from mkube.api.timeutil import format_time, now, parse_time
from mkube.api.types import ContainerStatus, ObjectMeta, Pod, PodCondition, PodSpec, PodStatus
from mkube.controllers.expectations import Expectations
from mkube.controllers.podutil import available_in, is_pod_active, is_pod_available, pods_to_delete


def pod(name: str, node: str | None = "n1", phase: str = "Running", ready: bool | None = True,
        age: int = 3600, ready_for: int = 3000, restarts: int = 0, cost: int | None = None,
        deleting: bool = False) -> Pod:
    conds = []
    if ready is not None:
        conds.append(PodCondition(type="Ready", status="True" if ready else "False",
                                  last_transition_time=format_time(now() - timedelta(seconds=ready_for))))
    ann = {"controller.kubernetes.io/pod-deletion-cost": str(cost)} if cost is not None else None
    return Pod(metadata=ObjectMeta(name=name, uid=f"uid-{name}", annotations=ann,
                                   creation_timestamp=format_time(now() - timedelta(seconds=age)),
                                   deletion_timestamp=format_time(now()) if deleting else None),
               spec=PodSpec(node_name=node),
               status=PodStatus(phase=phase, conditions=conds,
                                container_statuses=[ContainerStatus(name="app", restart_count=restarts)]))


def names(pods: list[Pod]) -> list[str]:
    return [p.metadata.name or "" for p in pods]


def test_victims_follow_kubernetes_order() -> None:
    pods = [
        pod("running-ready-old"),
        pod("unscheduled", node=None, phase="Pending", ready=None),
        pod("pending", phase="Pending", ready=None),
        pod("unknown", phase="Unknown", ready=None),
        pod("running-not-ready", ready=False),
        pod("running-ready-new", age=10, ready_for=5),
    ]
    order = names(pods_to_delete(pods, len(pods)))
    assert order == ["unscheduled", "pending", "unknown", "running-not-ready", "running-ready-new",
                     "running-ready-old"]


def test_deletion_cost_restarts_and_colocation() -> None:
    cheap = pod("cheap", cost=-5)
    pricey = pod("pricey", cost=100)
    plain = pod("plain")
    assert names(pods_to_delete([pricey, plain, cheap], 1)) == ["cheap"]
    crashy = pod("crashy", restarts=7)
    assert names(pods_to_delete([plain, crashy], 1)) == ["crashy"]
    # two siblings share node n1, one pod alone on n2: take from the crowded node
    a, b, c = pod("a", node="n1"), pod("b", node="n1"), pod("c", node="n2")
    assert names(pods_to_delete([c, a, b], 1))[0] in ("a", "b")


def test_count_limits_and_zero() -> None:
    pods = [pod(f"p{i}") for i in range(5)]
    assert len(pods_to_delete(pods, 2)) == 2
    assert pods_to_delete(pods, 0) == []


def test_active_and_available() -> None:
    assert is_pod_active(pod("x"))
    assert not is_pod_active(pod("x", phase="Succeeded"))
    assert not is_pod_active(pod("x", phase="Failed"))
    assert not is_pod_active(pod("x", deleting=True))
    assert is_pod_available(pod("x", ready_for=30), 10)
    assert not is_pod_available(pod("x", ready_for=3), 10)
    assert is_pod_available(pod("x", ready_for=0), 0)
    assert not is_pod_available(pod("x", ready=False), 0)


def test_a_garbage_ready_time_is_unknown_not_an_error() -> None:
    """Any client can write a pod's status; a time that does not parse must not make the
    ReplicaSet controller fail (and retry) on that pod forever."""
    for junk in ("garbage", "1e10", "2020-02-30T00:00:00Z", "\uff12\uff10\uff12\uff10-01-01T00:00:00Z"):
        p = pod("x", ready_for=30)
        p.status.conditions[0].last_transition_time = junk  # type: ignore[index]
        assert parse_time(junk) is None
        assert not is_pod_available(p, 10) and available_in(p, 10) is None
        assert is_pod_available(p, 0)  # without minReadySeconds the time is not needed


def test_expectations_block_until_observed_or_expired() -> None:
    t = [0.0]
    exp = Expectations(ttl=10, clock=lambda: t[0])
    assert exp.satisfied("ns/rs")  # never seen: act
    exp.expect_creations("ns/rs", 3)
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    exp.creation_observed("ns/rs")
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    assert exp.satisfied("ns/rs")
    exp.expect_deletions("ns/rs", ["ns/a", "ns/b"])
    exp.deletion_observed("ns/rs", "ns/a")
    exp.deletion_observed("ns/rs", "ns/a")  # the same pod twice counts once
    assert exp.pending("ns/rs") == (0, 1)
    assert not exp.satisfied("ns/rs")
    t[0] = 11  # a lost event does not block forever
    assert exp.satisfied("ns/rs")
    exp.delete("ns/rs")
    assert exp.pending("ns/rs") == (0, 0)
