"""SchedulerCache: assume / confirm / forget / expire, and snapshots that never change."""

from __future__ import annotations

import pytest

from mkube.scheduler.cache import AlreadyInCache, SchedulerCache
from mkube.scheduler.framework import PodInfo
from tests.unit.scheduler.builders import make_node, make_pod


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_assume_counts_immediately_and_confirm_keeps_one_copy() -> None:
    cache = SchedulerCache()
    cache.add_node(make_node("n1", cpu="1"))
    pod = PodInfo(make_pod("p", cpu="600m"))
    cache.assume_pod(pod, "n1")
    ni = cache.node_info("n1")
    assert ni is not None and ni.requested_cpu == 600 and cache.is_assumed("default/p")
    with pytest.raises(AlreadyInCache):
        cache.assume_pod(pod, "n1")
    cache.add_pod(make_pod("p", cpu="600m", node_name="n1"))  # the watch shows it bound
    ni = cache.node_info("n1")
    assert ni is not None and ni.requested_cpu == 600 and len(ni.pods) == 1
    assert not cache.is_assumed("default/p") and cache.has_pod("default/p")


def test_confirm_on_another_node_moves_the_pod() -> None:
    cache = SchedulerCache()
    cache.add_node(make_node("n1"))
    cache.add_node(make_node("n2"))
    cache.assume_pod(PodInfo(make_pod("p", cpu="1")), "n1")
    cache.add_pod(make_pod("p", cpu="1", node_name="n2"))
    assert cache.node_info("n1").requested_cpu == 0  # type: ignore[union-attr]
    assert cache.node_info("n2").requested_cpu == 1000  # type: ignore[union-attr]
    assert cache.node_of("default/p") == "n2"


def test_forget_frees_the_node() -> None:
    cache = SchedulerCache()
    cache.add_node(make_node("n1"))
    cache.assume_pod(PodInfo(make_pod("p", cpu="1", host_port=80, owner="rs")), "n1")
    assert cache.forget_pod("default/p")
    ni = cache.node_info("n1")
    assert ni is not None and ni.requested_cpu == 0 and not ni.used_ports and not ni.owner_counts
    assert not cache.forget_pod("default/p")
    # forgetting never removes a confirmed pod
    cache.add_pod(make_pod("q", node_name="n1"))
    assert not cache.forget_pod("default/q") and cache.has_pod("default/q")


def test_assumed_pods_expire_only_after_binding_finished() -> None:
    clock = Clock()
    cache = SchedulerCache(assumed_ttl=30, clock=clock)
    cache.add_node(make_node("n1"))
    cache.assume_pod(PodInfo(make_pod("a", cpu="1")), "n1")
    cache.assume_pod(PodInfo(make_pod("b", cpu="1")), "n1")
    cache.finish_binding("default/a")
    clock.now = 29
    assert cache.cleanup_expired() == []
    clock.now = 31
    assert cache.cleanup_expired() == ["default/a"]  # b's binding is still in flight
    assert cache.node_info("n1").requested_cpu == 1000  # type: ignore[union-attr]
    cache.add_pod(make_pod("b", cpu="1", node_name="n1"))
    cache.finish_binding("default/b")  # confirmed first: no expiry clock
    clock.now = 100
    assert cache.cleanup_expired() == []


def test_snapshot_is_immutable_and_reused_until_a_change() -> None:
    cache = SchedulerCache()
    cache.add_node(make_node("n1"))
    s1 = cache.snapshot()
    assert cache.snapshot() is s1
    cache.assume_pod(PodInfo(make_pod("p", cpu="1")), "n1")
    s2 = cache.snapshot()
    assert s2 is not s1
    assert s1.get("n1").requested_cpu == 0  # type: ignore[union-attr]
    assert s2.get("n1").requested_cpu == 1000  # type: ignore[union-attr]


def test_pods_before_their_node_and_node_removal() -> None:
    cache = SchedulerCache()
    cache.add_pod(make_pod("p", cpu="1", node_name="late"))
    assert len(cache.snapshot()) == 0  # no Node object yet
    cache.add_node(make_node("late"))
    assert cache.snapshot().get("late").requested_cpu == 1000  # type: ignore[union-attr]
    cache.remove_node("late")
    assert len(cache.snapshot()) == 0
    cache.add_node(make_node("late"))  # the node comes back: its pods are still counted
    assert cache.snapshot().get("late").requested_cpu == 1000  # type: ignore[union-attr]
    cache.remove_node("late")
    cache.remove_pod("default/p")
    assert cache.node_info("late") is None


def test_node_update_keeps_pods_and_order_is_seeded() -> None:
    cache = SchedulerCache(seed=3)
    for i in range(20):
        cache.add_node(make_node(f"n{i}"))
    order = cache.node_names()
    cache.add_pod(make_pod("p", cpu="1", node_name="n5"))
    cache.update_node(make_node("n5", cpu="8"))
    assert cache.node_names() == order
    ni = cache.node_info("n5")
    assert ni is not None and ni.alloc_cpu == 8000 and ni.requested_cpu == 1000
    other = SchedulerCache(seed=4)
    for i in range(20):
        other.add_node(make_node(f"n{i}"))
    assert other.node_names() != order
    again = SchedulerCache(seed=3)
    for i in reversed(range(20)):
        again.add_node(make_node(f"n{i}"))
    assert again.node_names() == order  # insertion order does not matter


def test_update_replaces_old_version() -> None:
    cache = SchedulerCache()
    cache.add_node(make_node("n1"))
    cache.add_pod(make_pod("p", cpu="1", node_name="n1"))
    cache.update_pod(make_pod("p", cpu="2", node_name="n1"))
    assert cache.node_info("n1").requested_cpu == 2000  # type: ignore[union-attr]
    assert cache.remove_pod("default/p")
    assert cache.node_info("n1").requested_cpu == 0  # type: ignore[union-attr]
    assert cache.pod_count() == 0


def test_snapshot_knows_whether_any_node_has_prefer_no_schedule_taints() -> None:
    cache = SchedulerCache()
    cache.add_node(make_node("plain"))
    assert not cache.snapshot().has_soft_taints
    cache.add_node(make_node("soft", taints=[{"key": "k", "effect": "PreferNoSchedule"}]))
    assert cache.snapshot().has_soft_taints
    cache.add_pod(make_pod("p", node_name="soft"))  # a pod landing keeps the count right
    assert cache.snapshot().has_soft_taints
    cache.update_node(make_node("soft"))  # taint removed
    assert not cache.snapshot().has_soft_taints
    cache.update_node(make_node("soft", taints=[{"key": "k", "effect": "PreferNoSchedule"}]))
    cache.remove_node("soft")
    assert not cache.snapshot().has_soft_taints


def test_confirming_our_own_binding_keeps_the_snapshot() -> None:
    cache = SchedulerCache()
    cache.add_node(make_node("n1"))
    cache.assume_pod(PodInfo(make_pod("p", cpu="1")), "n1")
    before = cache.snapshot()
    cache.add_pod(make_pod("p", cpu="1", node_name="n1"))
    assert cache.snapshot() is before and not cache.is_assumed("default/p")
    # a re-created pod of the same name is not "our" assumption: it replaces it
    cache.assume_pod(PodInfo(make_pod("q", cpu="1", uid="old")), "n1")
    cache.add_pod(make_pod("q", cpu="2", uid="new", node_name="n1"))
    assert cache.node_info("n1").requested_cpu == 3000  # type: ignore[union-attr]
