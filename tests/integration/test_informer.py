"""Informer against the real API server: convergence, 410 relist, restarts, prompt stop.

Tests that neither restart the server nor need flags use the session's shared server and
watch only their own fresh namespace."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from mkube.api.errors import Gone
from mkube.api.types import ConfigMap, Container, ObjectMeta, Pod, PodSpec
from mkube.client import Client, Informer, Watch
from mkube.client.objects import Obj, ResourceLike


def pod(name: str, labels: dict[str, str] | None = None) -> Pod:
    return Pod(metadata=ObjectMeta(name=name, labels=labels),
               spec=PodSpec(containers=[Container(name="app", image="nginx:1")]))


def eventually(cond: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


class Recorder:
    """The state as seen through handler calls only."""

    def __init__(self) -> None:
        self.state: dict[str, str] = {}
        self.deleted: list[str] = []
        self.lock = threading.Lock()

    def add(self, obj: Any) -> None:
        with self.lock:
            self.state[obj.key] = obj.metadata.resource_version

    def update(self, old: Any, new: Any) -> None:
        with self.lock:
            assert old.key == new.key
            self.state[new.key] = new.metadata.resource_version

    def delete(self, obj: Any) -> None:
        with self.lock:
            self.state.pop(obj.key, None)
            self.deleted.append(obj.metadata.name)

    def snapshot(self) -> dict[str, str]:
        with self.lock:
            return dict(self.state)


def server_state(client: Client, namespace: str | None = None) -> dict[str, str]:
    return {p.key: p.metadata.resource_version or "" for p in client.list(Pod, namespace)}


def cache_state(inf: Informer[Pod]) -> dict[str, str]:
    return {p.key: p.metadata.resource_version or "" for p in inf.list()}


class GatedClient(Client):
    """A Client whose watches can be held back and cut (a broken stream, on demand)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.gate.set()
        self.open: list[Watch[Obj]] = []

    def watch_raw(self, resource: ResourceLike, namespace: str | None = None,
                  resource_version: str | None = None, label_selector: str | None = None,
                  field_selector: str | None = None, timeout_seconds: int | None = None,
                  allow_bookmarks: bool = True) -> Watch[Obj]:
        self.gate.wait(30)
        w = super().watch_raw(resource, namespace, resource_version, label_selector, field_selector,
                              timeout_seconds, allow_bookmarks)
        self.open.append(w)
        return w

    def cut(self) -> None:
        for w in self.open:
            w.close()


def test_converges_through_creates_updates_deletes(shared_api_server: Any, namespace: str) -> None:
    writer = Client(shared_api_server.url, timeout=30, namespace=namespace)
    for i in range(10):
        writer.create(pod(f"pre-{i}", {"i": str(i)}))
    inf = Informer(Client(shared_api_server.url, timeout=30), Pod, namespace=namespace)
    rec = Recorder()
    inf.add_handler(rec.add, rec.update, rec.delete)
    inf.start()
    assert inf.wait_for_sync(15)
    assert cache_state(inf) == server_state(writer, namespace)

    def churn(worker: int) -> None:
        for i in range(8):
            name = f"w{worker}-{i}"
            writer.create(pod(name))
            writer.patch(Pod, name, {"metadata": {"labels": {"step": "1"}}})
            if i % 2:
                writer.delete(Pod, name)

    threads = [threading.Thread(target=churn, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i in range(0, 10, 3):
        writer.delete(Pod, f"pre-{i}")
    expected = server_state(writer, namespace)
    eventually(lambda: cache_state(inf) == expected)
    eventually(lambda: rec.snapshot() == expected)
    assert len(expected) == 10 - 4 + 16
    assert sorted(rec.deleted) == sorted([f"w{w}-{i}" for w in range(4) for i in range(1, 8, 2)]
                                         + [f"pre-{i}" for i in range(0, 10, 3)])
    inf.stop()
    writer.close()


def test_relists_after_compaction_and_converges(make_api_server: Callable[..., Any]) -> None:
    server = make_api_server(extra_args=["--compaction-keep", "1", "--compaction-interval", "0.2"])
    writer = Client(server.url, timeout=30)
    for name in ("a", "b", "c"):
        writer.create(pod(name))
    client = GatedClient(server.url, timeout=30)
    inf = Informer(client, Pod)
    rec = Recorder()
    inf.add_handler(rec.add, rec.update, rec.delete)
    inf.start()
    assert inf.wait_for_sync(15)
    eventually(lambda: len(client.open) == 1)
    stale = inf.last_sync_resource_version
    client.gate.clear()
    client.cut()  # the informer's watch breaks; its next watch waits at the gate
    writer.delete(Pod, "b")
    writer.patch(Pod, "a", {"metadata": {"labels": {"changed": "yes"}}})
    writer.create(pod("d"))

    def compacted() -> bool:
        try:
            with writer.watch(Pod, resource_version=stale, timeout_seconds=1) as w:
                for _ in w:
                    pass
        except Gone:
            return True
        return False

    eventually(compacted, timeout=20)  # the informer's resourceVersion is gone from the log
    client.gate.set()
    expected = server_state(writer)
    eventually(lambda: cache_state(inf) == expected)
    eventually(lambda: rec.snapshot() == expected)
    assert "b" in rec.deleted  # vanished while the watch was down: reported with its last state
    writer.create(pod("e"))  # and the informer follows the new watch
    eventually(lambda: cache_state(inf) == server_state(writer))
    inf.stop()
    writer.close()


def test_survives_a_server_restart(api_server: Any) -> None:
    writer = Client(api_server.url, timeout=30)
    writer.create(pod("a"))
    inf = Informer(Client(api_server.url, timeout=30), Pod)
    inf.start()
    assert inf.wait_for_sync(15)
    api_server.stop()
    time.sleep(0.5)
    api_server.start()
    writer.create(pod("b"))
    writer.delete(Pod, "a")
    eventually(lambda: cache_state(inf) == server_state(writer), timeout=40)
    inf.stop()
    writer.close()


def test_stop_interrupts_an_idle_watch_promptly(shared_api_server: Any, namespace: str) -> None:
    client = GatedClient(shared_api_server.url, timeout=30)
    inf = Informer(client, ConfigMap, namespace=namespace)
    inf.start()
    assert inf.wait_for_sync(15)
    eventually(lambda: len(client.open) == 1)
    time.sleep(0.2)  # the thread is now blocked reading an idle stream
    start = time.monotonic()
    inf.stop(timeout=5)
    assert time.monotonic() - start < 2
    assert inf._thread is not None and not inf._thread.is_alive()
