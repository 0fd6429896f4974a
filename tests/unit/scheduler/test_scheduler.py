"""The Scheduler end to end against the in-memory FakeClient: routing, binding, events,
conditions, retries."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from mkube.api.errors import InternalError
from mkube.api.types import Event, Pod
from mkube.client import FakeClient
from mkube.client.fake import Action
from mkube.scheduler.binder import BindResult
from mkube.scheduler.nodeinfo import PodInfo
from mkube.scheduler.scheduler import Scheduler
from tests.unit.scheduler.builders import make_node, make_pod


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def new_pod(name: str, **kw: object) -> Pod:
    pod = make_pod(name, **kw)  # type: ignore[arg-type]
    pod.metadata.uid = None
    return pod


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def scheduler(client: FakeClient) -> Iterator[Scheduler]:
    s = Scheduler(client, seed=1, initial_backoff=0.05, max_backoff=0.2)
    yield s
    s.stop()


def bound(client: FakeClient) -> dict[str, str]:
    return {p.metadata.name or "": p.spec.node_name for p in client.list(Pod) if p.spec.node_name}


def events(client: FakeClient, reason: str) -> list[Event]:
    return [e for e in client.list(Event) if e.reason == reason]


def test_pods_land_on_fitting_nodes_with_scheduled_events(client: FakeClient, scheduler: Scheduler) -> None:
    client.create(make_node("small", cpu="500m"))
    client.create(make_node("big", cpu="4"))
    client.create(make_node("tainted", cpu="8", taints=[{"key": "gpu", "effect": "NoSchedule"}]))
    scheduler.start()
    for i in range(3):
        client.create(new_pod(f"web-{i}", cpu="1"))
    wait_for(lambda: len(bound(client)) == 3)
    assert set(bound(client).values()) == {"big"}
    scheduler.recorder.flush()
    messages = sorted(e.message or "" for e in events(client, "Scheduled"))
    assert messages == [f"Successfully assigned default/web-{i} to big" for i in range(3)]


def test_unschedulable_pod_gets_event_and_condition_then_lands_on_new_node(
        client: FakeClient, scheduler: Scheduler) -> None:
    client.create(make_node("n1", memory="1Gi"))
    client.create(make_node("n2", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]))
    scheduler.start()
    client.create(new_pod("big", memory="2Gi"))
    expected = "0/2 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint {dedicated: gpu}."

    def condition() -> tuple[str | None, str | None, str | None] | None:
        pod = client.get(Pod, "big", "default")
        for c in pod.status.conditions or ():
            if c.type == "PodScheduled":
                return c.status, c.reason, c.message
        return None

    wait_for(lambda: condition() == ("False", "Unschedulable", expected))
    scheduler.recorder.flush()
    failed = events(client, "FailedScheduling")
    assert [(e.type, e.message) for e in failed] == [("Warning", expected)]
    assert scheduler.queue.where("default/big") == "unschedulable"
    t0 = time.monotonic()
    client.create(make_node("n3", memory="4Gi"))
    wait_for(lambda: bound(client).get("big") == "n3", timeout=2.0)
    assert time.monotonic() - t0 < 2.0


def test_deleting_a_pod_frees_room_for_a_parked_one(client: FakeClient, scheduler: Scheduler) -> None:
    client.create(make_node("n1", cpu="1"))
    scheduler.start()
    client.create(new_pod("first", cpu="800m"))
    wait_for(lambda: "first" in bound(client))
    client.create(new_pod("second", cpu="800m"))
    wait_for(lambda: scheduler.queue.where("default/second") == "unschedulable")
    client.delete(Pod, "first", "default", grace_period_seconds=0)
    wait_for(lambda: bound(client).get("second") == "n1")


def test_bind_failure_is_forgotten_and_retried(client: FakeClient, scheduler: Scheduler) -> None:
    client.create(make_node("n1", cpu="1"))
    failures = {"left": 2}

    def flaky(action: Action) -> None:
        if action.subresource == "binding" and failures["left"] > 0:
            failures["left"] -= 1
            raise InternalError("etcd is having a bad day")

    client.add_reactor("create", "pods", flaky)
    scheduler.start()
    client.create(new_pod("p", cpu="800m"))
    wait_for(lambda: bound(client).get("p") == "n1")
    assert failures["left"] == 0
    wait_for(lambda: not scheduler.cache.is_assumed("default/p"))
    info = scheduler.cache.node_info("n1")
    assert info is not None and info.requested_cpu == 800  # counted once
    scheduler.recorder.flush()
    assert any("Binding rejected" in (e.message or "") for e in events(client, "FailedScheduling"))


def test_conflict_means_already_bound_and_the_cache_follows_the_server(
        client: FakeClient, scheduler: Scheduler) -> None:
    """An earlier scheduler bound the pod between our decision and our binding: the
    server answers 409, we bind nothing, and the cache moves the pod to the real node."""
    client.create(make_node("a"))
    client.create(make_node("b"))
    client.create(new_pod("p", cpu="1"))
    original = scheduler.binder.bind

    def other_scheduler_wins(pod: PodInfo, node: str) -> BindResult:
        client.bind("default", "p", "b" if node == "a" else "a")
        return original(pod, node)

    scheduler.binder.bind = other_scheduler_wins  # type: ignore[method-assign]
    scheduler.start()
    wait_for(lambda: "p" in bound(client))
    wait_for(lambda: not scheduler.cache.is_assumed("default/p"))
    actual = bound(client)["p"]
    assert scheduler.cache.node_of("default/p") == actual
    other = "a" if actual == "b" else "b"
    assert scheduler.cache.node_info(other).requested_cpu == 0  # type: ignore[union-attr]
    assert scheduler.scheduled == 0  # our binding was refused: no Scheduled event claims it


def test_ignores_other_schedulers_and_terminating_pods(client: FakeClient, scheduler: Scheduler) -> None:
    client.create(make_node("n1"))
    scheduler.start()
    client.create(new_pod("mine"))
    client.create(new_pod("theirs", schedulerName="other-scheduler"))
    wait_for(lambda: "mine" in bound(client))
    time.sleep(0.2)
    assert "theirs" not in bound(client)
    assert scheduler.queue.where("default/theirs") is None


def test_assigned_pods_count_at_start(client: FakeClient) -> None:
    client.create(make_node("n1", cpu="1"))
    client.create(make_node("n2", cpu="1"))
    client.create(new_pod("old", cpu="900m", nodeName="n1"))
    s = Scheduler(client, seed=3)
    try:
        s.start()
        client.create(new_pod("new", cpu="500m"))
        wait_for(lambda: "new" in bound(client))
        assert bound(client)["new"] == "n2"
    finally:
        s.stop()
