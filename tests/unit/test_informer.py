"""Informer and SharedInformerFactory against FakeClient."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from mkube.api.types import ConfigMap, Container, ObjectMeta, Pod, PodSpec
from mkube.client import FakeClient, Informer, SharedInformerFactory, Watch
from mkube.client.errors import ConnectionFailed
from mkube.client.objects import Obj, ResourceLike


def pod(name: str, labels: dict[str, str] | None = None, node: str | None = None) -> Pod:
    return Pod(metadata=ObjectMeta(name=name, labels=labels),
               spec=PodSpec(containers=[Container(name="app", image="nginx:1")], node_name=node))


def eventually(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


class Recorder:
    """Rebuilds the state from handler calls only, to check handlers see every change."""

    def __init__(self) -> None:
        self.state: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def add(self, obj: Any) -> None:
        with self.lock:
            self.state[obj.key] = obj.metadata.resource_version
            self.calls.append(("add", obj.metadata.name))

    def update(self, old: Any, new: Any) -> None:
        with self.lock:
            self.state[new.key] = new.metadata.resource_version
            self.calls.append(("update", new.metadata.name))

    def delete(self, obj: Any) -> None:
        with self.lock:
            self.state.pop(obj.key, None)
            self.calls.append(("delete", obj.metadata.name))


def server_state(client: FakeClient) -> dict[str, str]:
    return {p.key: p.metadata.resource_version or "" for p in client.list(Pod)}


class GatedClient(FakeClient):
    """A FakeClient whose watches can be held back and cut, to simulate a broken stream."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.open: list[Watch[Obj]] = []

    def watch_raw(self, resource: ResourceLike, namespace: str | None = None,
                  resource_version: str | None = None, label_selector: str | None = None,
                  field_selector: str | None = None, timeout_seconds: int | None = None,
                  allow_bookmarks: bool = True) -> Watch[Obj]:
        self.gate.wait(10)
        w = super().watch_raw(resource, namespace, resource_version, label_selector, field_selector,
                              timeout_seconds, allow_bookmarks)
        self.open.append(w)
        return w

    def cut(self) -> None:
        for w in self.open:
            w.close()


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


def test_syncs_and_handlers_see_every_change(client: FakeClient) -> None:
    client.create(pod("a"))
    client.create(pod("b"))
    inf = Informer(client, Pod)
    rec = Recorder()
    inf.add_handler(rec.add, rec.update, rec.delete)
    inf.start()
    assert inf.wait_for_sync(5)
    assert inf.has_synced()
    assert inf.keys() == ["default/a", "default/b"]
    client.create(pod("c"))
    client.patch(Pod, "a", {"metadata": {"labels": {"x": "1"}}})
    client.delete(Pod, "b")
    eventually(lambda: rec.state == server_state(client))
    assert inf.get("default/a").metadata.labels == {"x": "1"}  # type: ignore[union-attr]
    assert inf.get("default/b") is None
    assert [p.metadata.name for p in inf.list("default")] == ["a", "c"]
    assert rec.calls == [("add", "a"), ("add", "b"), ("add", "c"), ("update", "a"), ("delete", "b")]
    assert inf.last_sync_resource_version == str(client.resource_version)
    inf.stop()


def test_indexes(client: FakeClient) -> None:
    inf = Informer(client, Pod)
    inf.add_index("node", lambda p: [p.spec.node_name] if p.spec.node_name else [])
    inf.start()
    assert inf.wait_for_sync(5)
    client.create(pod("a", node="n1"))
    client.create(pod("b", node="n1"))
    client.create(pod("c"))
    eventually(lambda: len(inf) == 3)
    assert [p.metadata.name for p in inf.by_index("node", "n1")] == ["a", "b"]
    client.delete(Pod, "a", grace_period_seconds=0)
    eventually(lambda: len(inf) == 2)
    assert inf.index_keys("node", "n1") == ["default/b"]
    inf.add_index("label", lambda p: list((p.metadata.labels or {}).values()))  # built from the cache
    assert inf.by_index("label", "x") == []
    with pytest.raises(KeyError):
        inf.by_index("missing", "x")
    inf.stop()


def test_late_handler_gets_existing_objects_as_adds(client: FakeClient) -> None:
    client.create(pod("a"))
    inf = Informer(client, Pod)
    inf.start()
    assert inf.wait_for_sync(5)
    rec = Recorder()
    reg = inf.add_handler(rec.add, rec.update, rec.delete)
    assert rec.calls == [("add", "a")]
    inf.remove_handler(reg)
    client.create(pod("b"))
    eventually(lambda: len(inf) == 2)
    assert rec.calls == [("add", "a")]
    inf.stop()


def test_relists_after_gone_and_reports_what_changed_meanwhile() -> None:
    client = GatedClient()
    client.create(pod("a"))
    client.create(pod("b"))
    inf = Informer(client, Pod)
    rec = Recorder()
    inf.add_handler(rec.add, rec.update, rec.delete)
    inf.start()
    assert inf.wait_for_sync(5)
    eventually(lambda: len(client.open) == 1)
    client.gate.clear()
    client.cut()  # the watch breaks; the next one waits at the gate
    client.create(pod("c"))
    client.patch(Pod, "a", {"metadata": {"labels": {"x": "1"}}})
    client.delete(Pod, "b")
    client.compact()  # the informer's resourceVersion is now too old
    client.gate.set()
    eventually(lambda: rec.state == server_state(client))
    assert sorted(rec.calls[2:]) == [("add", "c"), ("delete", "b"), ("update", "a")]
    assert inf.keys() == ["default/a", "default/c"]
    client.create(pod("d"))  # and it follows the new watch
    eventually(lambda: rec.state == server_state(client))
    inf.stop()


def test_periodic_resync_calls_update_with_the_same_object(client: FakeClient) -> None:
    client.create(pod("a"))
    inf = Informer(client, Pod, resync_period=0.05)
    resyncs: list[str] = []
    inf.add_handler(on_update=lambda old, new: resyncs.append(new.key) if old is new else None)
    inf.start()
    eventually(lambda: len(resyncs) >= 2)
    inf.stop()


def test_bookmarks_advance_the_resource_version(client: FakeClient) -> None:
    inf = Informer(client, Pod, watch_timeout=(1, 1))
    inf.start()
    assert inf.wait_for_sync(5)
    client.create(ConfigMap(metadata=ObjectMeta(name="other-kind")))
    eventually(lambda: inf.last_sync_resource_version == str(client.resource_version), timeout=5)
    inf.stop()


def test_list_failures_are_retried(client: FakeClient) -> None:
    failures = [2]

    def flaky(action: Any) -> None:
        if failures[0] > 0:
            failures[0] -= 1
            raise ConnectionFailed("http://fake", "connection refused")

    client.add_reactor("list", "pods", flaky)
    client.create(pod("a"))
    inf = Informer(client, Pod)
    inf.start()
    assert inf.wait_for_sync(10)
    assert inf.keys() == ["default/a"]
    inf.stop()


def test_handler_exceptions_do_not_stop_the_informer(client: FakeClient) -> None:
    inf = Informer(client, Pod)
    seen: list[str] = []

    def bad(obj: Any) -> None:
        raise RuntimeError("handler bug")

    inf.add_handler(on_add=bad)
    inf.add_handler(on_add=lambda o: seen.append(o.key))
    inf.start()
    client.create(pod("a"))
    eventually(lambda: seen == ["default/a"])
    inf.stop()


def test_stop_is_prompt_and_unsynced_wait_returns_false(client: FakeClient) -> None:
    client.add_reactor("list", "pods", lambda a: (_ for _ in ()).throw(ConnectionFailed("http://x", "down")))
    inf = Informer(client, Pod)
    inf.start()
    assert not inf.wait_for_sync(0.2)
    start = time.monotonic()
    inf.stop()
    assert not inf.wait_for_sync(1)  # stopped: returns at once
    assert time.monotonic() - start < 1.5


def test_label_and_field_selected_informer(client: FakeClient) -> None:
    inf = Informer(client, Pod, field_selector="spec.nodeName=n1")
    inf.start()
    assert inf.wait_for_sync(5)
    client.create(pod("a"))
    client.bind("default", "a", "n1")
    client.create(pod("b", node="n2"))
    eventually(lambda: inf.keys() == ["default/a"])
    inf.stop()


def test_shared_informer_factory(client: FakeClient) -> None:
    factory = SharedInformerFactory(client)
    pods = factory.informer(Pod)
    assert factory.informer(Pod) is pods
    assert factory.for_resource("pods") is pods
    assert factory.informer(Pod, label_selector="a=b") is not pods
    cms = factory.informer(ConfigMap)
    factory.start()
    assert factory.wait_for_sync(5)
    late = factory.informer(ConfigMap, namespace="kube-system")  # started at once
    assert late.wait_for_sync(5)
    client.create(ConfigMap(metadata=ObjectMeta(name="c")))
    eventually(lambda: cms.keys() == ["default/c"])
    factory.stop()
    assert pods.stopped and cms.stopped and late.stopped
