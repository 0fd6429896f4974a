"""Pure parts of the storage layer: continue tokens, URLs, the compactor job, and the
watch hub's gap-free hand-over (against an in-memory fake store)."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from mkube.api import errors
from mkube.apiserver.storage.base import Change, ListResult, Obj
from mkube.apiserver.storage.compactor import start_compactor
from mkube.apiserver.storage.sql import (
    datastore_url,
    decode_continue,
    encode_continue,
    normalize_url,
    with_revision,
)
from mkube.apiserver.storage.watch import WatchHub


def test_continue_token_round_trip() -> None:
    for ns, name, rv in (("", "node-1", 0), ("kube-system", "coredns-ü/x", 123456789)):
        token = encode_continue(ns, name, rv)
        assert token.isascii() and "=" not in token
        assert decode_continue(token) == (ns, name, rv)


@pytest.mark.parametrize("token", [
    "***", "e30", base64.urlsafe_b64encode(b"not json").decode(),
    base64.urlsafe_b64encode(orjson.dumps({"ns": "a", "n": "b"})).decode(),
    base64.urlsafe_b64encode(orjson.dumps({"ns": "a", "n": 1, "rv": 1})).decode(),
    base64.urlsafe_b64encode(orjson.dumps({"ns": "a", "n": "b", "rv": -1})).decode(),
    base64.urlsafe_b64encode(orjson.dumps({"ns": "a", "n": "b", "rv": True})).decode(),
    base64.urlsafe_b64encode(orjson.dumps([1, 2])).decode(), "ü",
])
def test_bad_continue_token_is_400(token: str) -> None:
    with pytest.raises(errors.BadRequest) as e:
        decode_continue(token)
    assert e.value.code == 400


def test_urls() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:////x/state.db") == "sqlite:////x/state.db"
    assert datastore_url("/var/lib/mkube") == "sqlite:////var/lib/mkube/state.db"
    assert datastore_url("postgresql://h/db") == "postgresql+psycopg://h/db"


def test_with_revision_copies_and_never_mutates() -> None:
    obj: Obj = {"metadata": {"name": "a", "labels": {"x": "y"}}, "spec": {}}
    new = with_revision(obj, 7)
    assert new["metadata"]["resourceVersion"] == "7"
    assert "resourceVersion" not in obj["metadata"]
    assert with_revision({}, 1) == {"metadata": {"resourceVersion": "1"}}


class _CountingStore:
    def __init__(self, fail_first: bool = False) -> None:
        self.calls: list[int] = []
        self.fail_first = fail_first

    def compact(self, keep: int) -> int:
        self.calls.append(keep)
        if self.fail_first and len(self.calls) == 1:
            raise RuntimeError("database is locked")
        return 42


def test_compactor_runs_periodically_survives_errors_and_stops() -> None:
    store = _CountingStore(fail_first=True)
    handle = start_compactor(store, keep=5, interval_seconds=0.05)  # type: ignore[arg-type]
    try:
        deadline = time.monotonic() + 10
        while len(store.calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.calls[:3] == [5, 5, 5], "a failed run must not stop the job"
    finally:
        handle.stop()
    n = len(store.calls)
    time.sleep(0.2)
    assert len(store.calls) == n
    with pytest.raises(ValueError):
        start_compactor(store, keep=-1)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- watch hub

class _FakeStore:
    """Just enough of Store for the hub: a log, subscribers, and a replay hook."""

    def __init__(self) -> None:
        self.log: list[Change] = []
        self.subscribers: list[Callable[[Change], None]] = []
        self.compacted = 0
        self.lock = threading.Lock()
        self.during_replay: Callable[[], None] | None = None

    def commit(self, name: str, resource: str = "pods", namespace: str = "default") -> Change:
        with self.lock:
            rev = len(self.log) + 1
            obj = {"metadata": {"name": name, "namespace": namespace, "resourceVersion": str(rev)}}
            ch = Change(rev, "ADDED", resource, namespace, name, obj, orjson.dumps(obj))
            self.log.append(ch)
            for s in self.subscribers:
                s(ch)
            return ch

    def subscribe(self, cb: Callable[[Change], None]) -> Callable[[], None]:
        self.subscribers.append(cb)
        return lambda: self.subscribers.remove(cb)

    def current_revision(self) -> int:
        return len(self.log)

    def changes_since(self, revision: int, resource: str | None = None) -> list[Change]:
        if revision < self.compacted:
            raise errors.Gone(f"too old resource version: {revision} ({self.compacted})")
        if self.during_replay is not None:
            self.during_replay()  # changes committed (and delivered) before the snapshot
        return [c for c in self.log if c.revision > revision and (resource is None or c.resource == resource)]

    def list(self, *a: Any, **k: Any) -> ListResult:  # pragma: no cover - unused
        raise NotImplementedError


def test_watch_replay_and_live_overlap_is_delivered_exactly_once() -> None:
    store = _FakeStore()
    for i in range(5):
        store.commit(f"old{i}")

    async def main() -> None:
        hub = WatchHub(store)  # type: ignore[arg-type]
        # Commits land while the replay runs: they are both in the replay snapshot and
        # in the live buffer, and must come out once.
        def commit_three() -> None:
            for i in range(3):
                store.commit(f"mid{i}")

        store.during_replay = commit_three
        w = hub.watch("pods", None, 2)
        await w.start()
        store.during_replay = None
        await asyncio.sleep(0.05)  # let the loop fan out the buffered changes
        for i in range(2):
            await asyncio.to_thread(store.commit, f"new{i}")
        got = [await w.next(2) for _ in range(8)]
        assert [c.revision for c in got if c] == list(range(3, 11))
        assert await w.next(0.1) is None
        hub.close()

    asyncio.run(main())


def test_watch_from_future_revision_skips_until_it() -> None:
    store = _FakeStore()
    store.commit("a")

    async def main() -> None:
        hub = WatchHub(store)  # type: ignore[arg-type]
        w = hub.watch("pods", None, 3)
        await w.start()
        for i in range(4):
            await asyncio.to_thread(store.commit, f"n{i}")
        got = [await w.next(2) for _ in range(2)]
        assert [c.revision for c in got if c] == [4, 5]
        hub.close()
        with pytest.raises(StopAsyncIteration):
            await w.next(1)

    asyncio.run(main())


def test_watch_gone_and_broken_predicate() -> None:
    store = _FakeStore()
    for i in range(3):
        store.commit(f"p{i}")
    store.compacted = 2

    async def main() -> None:
        hub = WatchHub(store)  # type: ignore[arg-type]
        with pytest.raises(errors.Gone):
            await hub.watch("pods", None, 1).start()

        def broken(o: Obj) -> bool:
            raise KeyError("x")

        bad = hub.watch("pods", None, 0, predicate=broken)
        good = hub.watch("pods", None, 0)
        await bad.start()
        await good.start()
        await asyncio.to_thread(store.commit, "x")
        assert (await good.next(2)) is not None, "one broken watcher does not hurt others"
        with pytest.raises(StopAsyncIteration):
            await bad.next(2)
        assert bad.ended_reason == "error"
        hub.close()

    asyncio.run(main())
