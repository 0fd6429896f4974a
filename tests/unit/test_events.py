"""EventRecorder: Events written in the background, repeats aggregated, failures swallowed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mkube.api.errors import InternalError
from mkube.api.types import Container, Event, Node, ObjectMeta, Pod, PodSpec
from mkube.client import EventRecorder, FakeClient


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def client() -> FakeClient:
    c = FakeClient()
    c.create(Pod(metadata=ObjectMeta(name="web"), spec=PodSpec(containers=[Container(name="a", image="x:1")])))
    return c


def events(client: FakeClient) -> list[Event]:
    return list(client.list(Event).items)


def test_event_fields(client: FakeClient) -> None:
    clock = Clock()
    rec = EventRecorder(client, "scheduler", host="node-1", clock=clock)
    p = client.get(Pod, "web")
    rec.event(p, "Normal", "Scheduled", "Successfully assigned default/web to node-1")
    assert rec.flush(5)
    [ev] = events(client)
    assert ev.metadata.namespace == "default" and ev.metadata.name.startswith("web.")  # type: ignore[union-attr]
    assert ev.involved_object.kind == "Pod" and ev.involved_object.api_version == "v1"
    assert ev.involved_object.name == "web" and ev.involved_object.uid == p.metadata.uid
    assert (ev.type, ev.reason, ev.count) == ("Normal", "Scheduled", 1)
    assert ev.message == "Successfully assigned default/web to node-1"
    assert ev.source is not None and (ev.source.component, ev.source.host) == ("scheduler", "node-1")
    assert ev.first_timestamp == ev.last_timestamp == "2026-01-02T03:04:05Z"
    rec.stop()


def test_repeats_are_aggregated(client: FakeClient) -> None:
    clock = Clock()
    rec = EventRecorder(client, "kubelet", clock=clock)
    p = client.get(Pod, "web")
    rec.warning(p, "BackOff", "Back-off restarting failed container")
    clock.now += timedelta(seconds=10)
    p2 = client.patch(Pod, "web", {"metadata": {"labels": {"x": "1"}}})  # new resourceVersion, same object
    rec.warning(p2, "BackOff", "Back-off restarting failed container")
    rec.warning(p2.to_dict(), "BackOff", "Back-off restarting failed container")
    rec.normal(p2, "Pulled", "Container image pulled")
    assert rec.flush(5)
    by_reason = {e.reason: e for e in events(client)}
    assert len(events(client)) == 2
    assert by_reason["BackOff"].count == 3
    assert by_reason["BackOff"].first_timestamp == "2026-01-02T03:04:05Z"
    assert by_reason["BackOff"].last_timestamp == "2026-01-02T03:04:15Z"
    assert by_reason["Pulled"].count == 1
    rec.stop()


def test_deleted_aggregate_starts_a_new_event(client: FakeClient) -> None:
    rec = EventRecorder(client, "kubelet")
    p = client.get(Pod, "web")
    rec.warning(p, "Failed", "boom")
    assert rec.flush(5)
    [first] = events(client)
    client.delete(Event, first.metadata.name or "")
    rec.warning(p, "Failed", "boom")
    assert rec.flush(5)
    [second] = events(client)
    assert second.count == 1 and second.metadata.name != first.metadata.name
    rec.stop()


def test_cluster_scoped_objects_get_events_in_default(client: FakeClient) -> None:
    client.add(Node(metadata=ObjectMeta(name="n1")))
    rec = EventRecorder(client, "node-controller")
    rec.normal(client.get(Node, "n1"), "RegisteredNode", "Node n1 event: Registered Node n1")
    assert rec.flush(5)
    [ev] = events(client)
    assert ev.metadata.namespace == "default" and ev.involved_object.kind == "Node"
    assert ev.involved_object.namespace is None
    rec.stop()


def test_failures_never_reach_the_caller(client: FakeClient, caplog: Any) -> None:
    calls = [0]

    def fail_once(action: Any) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise InternalError("database is locked")

    client.add_reactor("create", "events", fail_once)
    rec = EventRecorder(client, "controller")
    p = client.get(Pod, "web")
    rec.normal(p, "A", "first")  # fails in the background
    rec.normal(p, "B", "second")
    rec.event(object(), "Normal", "C", "not an object")  # bad input: logged, not raised
    assert rec.flush(5)
    assert [e.reason for e in events(client)] == ["B"]
    assert "database is locked" in caplog.text
    rec.stop()
    rec.normal(p, "D", "after stop is ignored")


def test_full_queue_drops_instead_of_blocking(client: FakeClient) -> None:
    import threading

    gate = threading.Event()
    def stuck(action: Any) -> None:
        gate.wait(5)

    client.add_reactor("create", "events", stuck)
    rec = EventRecorder(client, "c", queue_size=2)
    p = client.get(Pod, "web")
    for i in range(10):
        rec.normal(p, "R", f"m{i}")  # returns at once even though writes are stuck
    assert rec.dropped >= 7
    gate.set()
    assert rec.flush(5)
    rec.stop()
