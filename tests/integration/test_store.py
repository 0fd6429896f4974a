"""The SQL store and the watch hub, on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mkube.api import errors
from mkube.apiserver.storage.base import Change, Obj
from mkube.apiserver.storage.sql import CONFLICT_MESSAGE, SqlStore
from mkube.apiserver.storage.watch import WatchHub

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return str(request.getfixturevalue("postgres_db_url"))


@pytest.fixture()
def store(store_url: str) -> Iterator[SqlStore]:
    s = SqlStore(store_url)
    try:
        yield s
    finally:
        s.close()


def pod(name: str, namespace: str = "default", **extra: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}",
                         "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}, **extra}


def rv(obj: Obj) -> int:
    return int(obj["metadata"]["resourceVersion"])


# ----------------------------------------------------------------------------- CRUD

def test_crud_round_trip(store: SqlStore) -> None:
    assert store.current_revision() == 0
    original = pod("a")
    created = store.create("pods", "default", "a", original)
    assert "resourceVersion" not in original["metadata"], "the caller's dict must not be mutated"
    assert created["metadata"]["resourceVersion"] == str(store.current_revision())
    assert store.get("pods", "default", "a") == created

    changed = dict(created, spec={"containers": [{"name": "c", "image": "nginx:2"}]})
    updated = store.update("pods", "default", "a", changed, expected_revision=rv(created))
    assert rv(updated) > rv(created)
    assert store.get("pods", "default", "a")["spec"]["containers"][0]["image"] == "nginx:2"

    deleted = store.delete("pods", "default", "a")
    assert rv(deleted) > rv(updated)
    assert deleted["spec"] == updated["spec"]
    assert store.current_revision() == rv(deleted)
    with pytest.raises(errors.NotFound) as e:
        store.get("pods", "default", "a")
    assert e.value.to_status()["details"] == {"name": "a", "kind": "pods"}
    assert str(e.value) == 'pods "a" not found'


def test_errors_name_the_resource_and_group(store: SqlStore) -> None:
    store.create("deployments.apps", "ns1", "web", {"metadata": {"name": "web"}})
    with pytest.raises(errors.AlreadyExists) as e:
        store.create("deployments.apps", "ns1", "web", {"metadata": {"name": "web"}})
    assert str(e.value) == 'deployments.apps "web" already exists'
    assert (e.value.kind, e.value.group, e.value.code) == ("deployments", "apps", 409)
    for call in (lambda: store.update("deployments.apps", "ns1", "nope", {"metadata": {}}),
                 lambda: store.delete("deployments.apps", "ns1", "nope"),
                 lambda: store.guaranteed_update("deployments.apps", "ns1", "nope", lambda o: o),
                 lambda: store.get("deployments.apps", "ns2", "web")):
        with pytest.raises(errors.NotFound) as nf:
            call()
        assert nf.value.kind == "deployments" and nf.value.group == "apps"
    # The same name in another namespace or resource is a different object.
    store.create("deployments.apps", "ns2", "web", {"metadata": {"name": "web"}})
    last = store.create("replicasets.apps", "ns1", "web", {"metadata": {"name": "web"}})
    assert store.current_revision() == rv(last)
    assert len(store.changes_since(0)) == 3, "refused writes log nothing"
    if not store.is_postgres:  # PostgreSQL sequences may skip values; SQLite never does
        assert rv(last) == 3


def test_stale_revision_is_409_conflict(store: SqlStore) -> None:
    v1 = store.create("pods", "default", "a", pod("a"))
    v2 = store.update("pods", "default", "a", v1, expected_revision=rv(v1))
    with pytest.raises(errors.Conflict) as e:
        store.update("pods", "default", "a", v1, expected_revision=rv(v1))
    assert e.value.code == 409 and e.value.reason == "Conflict"
    assert str(e.value) == f'Operation cannot be fulfilled on pods "a": {CONFLICT_MESSAGE}'
    assert CONFLICT_MESSAGE == ("the object has been modified; please apply your changes to the "
                                "latest version and try again")
    assert store.get("pods", "default", "a") == v2, "a refused update changes nothing"
    # Delete preconditions.
    with pytest.raises(errors.Conflict):
        store.delete("pods", "default", "a", expected_revision=rv(v1))
    with pytest.raises(errors.Conflict):
        store.delete("pods", "default", "a", expected_uid="someone-else")
    last = store.delete("pods", "default", "a", expected_revision=rv(v2), expected_uid="uid-default-a")
    assert rv(last) == rv(v2) + 1 or store.is_postgres


def test_guaranteed_update_none_means_no_write(store: SqlStore) -> None:
    v1 = store.create("pods", "default", "a", pod("a"))
    same = store.guaranteed_update("pods", "default", "a", lambda o: None)
    assert same == v1 and store.current_revision() == rv(v1)

    def boom(o: Obj) -> Obj:
        raise ValueError("no")

    with pytest.raises(ValueError):
        store.guaranteed_update("pods", "default", "a", boom)
    assert store.current_revision() == rv(v1)
    assert store.changes_since(0)[-1].revision == rv(v1)


# ----------------------------------------------------------------------------- concurrency

def _counter(store: SqlStore) -> int:
    return int(store.get("configmaps", "default", "counter")["data"]["n"])


@pytest.mark.parametrize("how", ["update", "guaranteed_update"])
def test_concurrent_read_modify_write_loses_nothing(store: SqlStore, how: str) -> None:
    store.create("configmaps", "default", "counter", {"metadata": {"name": "counter"}, "data": {"n": "0"}})
    conflicts = []
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(100):
                if how == "guaranteed_update":
                    def inc(o: Obj) -> Obj:
                        o["data"]["n"] = str(int(o["data"]["n"]) + 1)
                        return o
                    store.guaranteed_update("configmaps", "default", "counter", inc)
                    continue
                while True:
                    cur = store.get("configmaps", "default", "counter")
                    cur["data"]["n"] = str(int(cur["data"]["n"]) + 1)
                    try:
                        store.update("configmaps", "default", "counter", cur, expected_revision=rv(cur))
                        break
                    except errors.Conflict:
                        conflicts.append(1)
        except BaseException as e:  # pragma: no cover - reported below
            failures.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert _counter(store) == 800
    changes = [c for c in store.changes_since(0) if c.type == "MODIFIED"]
    assert len(changes) == 800
    assert [int(c.obj["data"]["n"]) for c in changes] == list(range(1, 801))
    if how == "update":
        assert conflicts, "8 racing writers should have hit at least one conflict"


def test_concurrent_creates_of_one_name_exactly_one_wins(store: SqlStore) -> None:
    wins: list[int] = []
    exists: list[int] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        for j in range(20):
            try:
                store.create("pods", "default", f"p{j}", pod(f"p{j}", data=i))
                with lock:
                    wins.append(j)
            except errors.AlreadyExists:
                with lock:
                    exists.append(j)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == list(range(20))
    assert len(exists) == 8 * 20 - 20
    revs = [c.revision for c in store.changes_since(0)]
    assert revs == sorted(revs) and len(revs) == 20
    if not store.is_postgres:
        assert revs == list(range(1, 21)), "SQLite revisions have no gaps"


def test_group_commit_isolates_a_failing_operation(store: SqlStore) -> None:
    """Writers queued behind a commit share the next transaction; an operation that
    fails half-way must roll back alone, and the others must still be committed."""
    results: dict[str, Any] = {}

    def half_done(tx: Any) -> Obj:
        rev = tx.next_revision()
        tx.cur.execute(store._sql.insert_obj, ("pods", "default", "half", None, rev, b"{}"))
        tx.dirty = True
        raise RuntimeError("failed after writing")

    def run(name: str, fn: Any) -> None:
        try:
            results[name] = fn()
        except Exception as e:
            results[name] = e

    with store._writer_token():  # hold the token so that everything below queues up
        threads = [threading.Thread(target=run, args=(f"p{i}", lambda i=i: store.create(
            "pods", "default", f"p{i}", pod(f"p{i}")))) for i in range(10)]
        threads.append(threading.Thread(target=run, args=("half", lambda: store._write(half_done))))
        threads.append(threading.Thread(target=run, args=("dup", lambda: store.create(
            "pods", "default", "p0", pod("p0")))))
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(store._queue) < len(threads) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(store._queue) == len(threads)
    for t in threads:
        t.join()
    assert isinstance(results["half"], RuntimeError)
    assert isinstance(results["dup"], errors.AlreadyExists) or isinstance(results["p0"], errors.AlreadyExists)
    with pytest.raises(errors.NotFound):
        store.get("pods", "default", "half")
    names = {o["metadata"]["name"] for o in store.list("pods", "default").items}
    assert names == {f"p{i}" for i in range(10)}
    revs = [c.revision for c in store.changes_since(0)]
    assert len(revs) == 10 and revs == sorted(revs)
    if not store.is_postgres:
        assert revs == list(range(1, 11))


def test_async_writes_share_group_commits_and_report_errors(store: SqlStore) -> None:
    """Writes awaited on an event loop (no threadpool) commit like blocking ones: each
    gets its own result or error, in one revision order with the blocking writers."""

    async def main() -> list[Any]:
        creates = [store.create_async("pods", "default", f"a{i}", pod(f"a{i}")) for i in range(20)]
        dup = store.create_async("pods", "default", "a0", pod("a0"))
        blocking = asyncio.to_thread(store.create, "pods", "default", "b", pod("b"))
        return list(await asyncio.gather(*creates, dup, blocking, return_exceptions=True))

    results = asyncio.run(main())
    assert isinstance(results[20], errors.AlreadyExists)
    stored = [r for i, r in enumerate(results) if i != 20]
    assert all(isinstance(r, dict) for r in stored)
    assert [store.get("pods", "default", f"a{i}") for i in range(20)] == stored[:20]
    revs = [c.revision for c in store.changes_since(0)]
    assert len(revs) == 21 and revs == sorted(revs)

    async def update_and_delete() -> tuple[Obj, Obj]:
        upd = await store.update_async("pods", "default", "b", pod("b", x=1), rv(stored[20]))
        with pytest.raises(errors.Conflict):
            await store.update_async("pods", "default", "b", pod("b", x=2), rv(stored[20]))
        return upd, await store.delete_async("pods", "default", "b")

    upd, gone = asyncio.run(update_and_delete())
    assert rv(gone) > rv(upd) > rv(stored[20])
    with pytest.raises(errors.NotFound):
        store.get("pods", "default", "b")


def test_a_write_from_a_subscriber_fails_instead_of_hanging(store: SqlStore) -> None:
    """Subscribers run on the writer thread; a write from there would wait for itself."""
    seen: list[BaseException] = []

    def writes_back(change: Change) -> None:
        if change.name == "trigger":
            try:
                store.create("pods", "default", "echo", pod("echo"))
            except RuntimeError as e:
                seen.append(e)

    unsubscribe = store.subscribe(writes_back)
    try:
        store.create("pods", "default", "trigger", pod("trigger"))
    finally:
        unsubscribe()
    assert len(seen) == 1
    with pytest.raises(errors.NotFound):
        store.get("pods", "default", "echo")


# ----------------------------------------------------------------------------- change log

def _random_history(store: SqlStore, n: int) -> list[tuple[int, str, str, str]]:
    """Run a deterministic mix of writes; return what each one logged."""
    done: list[tuple[int, str, str, str]] = []
    live: dict[str, Obj] = {}
    for i in range(n):
        name = f"o{i % 7}"
        ns = "a" if i % 2 else "b"
        key = f"{ns}/{name}"
        if key not in live:
            o = store.create("pods", ns, name, pod(name, ns))
            live[key] = o
            done.append((rv(o), "ADDED", ns, name))
        elif i % 5 == 0:
            o = store.delete("pods", ns, name)
            del live[key]
            done.append((rv(o), "DELETED", ns, name))
        else:
            o = store.update("pods", ns, name, live[key])
            live[key] = o
            done.append((rv(o), "MODIFIED", ns, name))
        if i % 3 == 0:
            o = store.create("services", ns, f"s{i}", {"metadata": {"name": f"s{i}"}})
            done.append((rv(o), "ADDED", ns, f"s{i}"))
    return done


def test_changes_since_returns_every_later_change_once_in_order(store: SqlStore) -> None:
    done = _random_history(store, 60)
    for n in (0, 1, done[10][0], done[-2][0], done[-1][0], done[-1][0] + 100):
        got = store.changes_since(n)
        assert [(c.revision, c.type, c.namespace, c.name) for c in got] == [d for d in done if d[0] > n]
        for c in got:
            assert rv(c.obj) == c.revision
            assert c.raw and __import__("orjson").loads(c.raw) == c.obj
    pods_only = store.changes_since(0, "pods")
    assert all(c.resource == "pods" for c in pods_only)
    assert len(pods_only) == sum(1 for d in done if d[3].startswith("o"))


def test_compaction_makes_old_revisions_gone(store: SqlStore) -> None:
    for i in range(30):
        store.create("pods", "default", f"p{i}", pod(f"p{i}"))
    top = store.current_revision()
    boundary = store.compact(10)
    assert boundary == store.compacted_revision()
    assert len(store.changes_since(boundary)) == 10
    assert [c.revision for c in store.changes_since(boundary)][-1] == top
    with pytest.raises(errors.Gone) as e:
        store.changes_since(boundary - 1)
    assert str(e.value) == f"too old resource version: {boundary - 1} ({boundary})"
    assert e.value.code == 410 and e.value.reason == "Expired"
    with pytest.raises(errors.Gone):
        store.changes_since(0)
    assert store.compact(10) == boundary, "compacting again to the same window is a no-op"
    # Current state is untouched and revisions keep counting, even with an empty log.
    assert len(store.list("pods", None).items) == 30
    all_gone = store.compact(0)
    assert all_gone == top and store.changes_since(top) == []
    assert store.current_revision() == top
    nxt = store.create("pods", "default", "after", pod("after"))
    assert rv(nxt) > top
    assert [c.revision for c in store.changes_since(top)] == [rv(nxt)]


def test_compaction_in_batches_while_writing(store: SqlStore) -> None:
    def fill(k: int) -> None:  # concurrent writers share commits: quicker to fill
        for i in range(800):
            store.create("events", "default", f"e{k}-{i}", {"metadata": {"name": f"e{i}"}})

    fillers = [threading.Thread(target=fill, args=(k,)) for k in range(8)]
    for t in fillers:
        t.start()
    for t in fillers:
        t.join()
    assert store.current_revision() >= 6400  # > one deletion batch (5000 rows)
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        i = 0
        while not stop.is_set():
            written.append(rv(store.create("events", "x", f"w{i}", {"metadata": {}})))
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        boundary = store.compact(100)
    finally:
        stop.set()
        t.join()
    log = store.changes_since(boundary)
    assert len(log) >= 100
    assert [c.revision for c in log][-1] == store.current_revision()
    assert written and {r for r in written if r > boundary} <= {c.revision for c in log}


# ----------------------------------------------------------------------------- durability

def test_reopen_keeps_every_object_and_revision(store_url: str) -> None:
    s = SqlStore(store_url)
    made = {}
    for i in range(50):
        o = s.create("pods", f"ns{i % 3}", f"p{i}", pod(f"p{i}", f"ns{i % 3}"))
        made[(f"ns{i % 3}", f"p{i}")] = o
    for i in range(0, 50, 5):
        key = (f"ns{i % 3}", f"p{i}")
        made[key] = s.update("pods", key[0], key[1], made[key])
    gone = s.delete("pods", "ns0", "p0")
    del made[("ns0", "p0")]
    top = s.current_revision()
    s.close()

    s2 = SqlStore(store_url)
    try:
        assert s2.current_revision() == top == rv(gone)
        items = s2.list("pods", None).items
        assert {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in items} == made
        for (ns, name), o in made.items():
            assert s2.get("pods", ns, name)["metadata"]["resourceVersion"] == o["metadata"]["resourceVersion"]
        assert rv(s2.create("pods", "ns0", "p0", pod("p0", "ns0"))) > top
    finally:
        s2.close()


_BURST = r"""
import sys
from mkube.apiserver.storage.sql import SqlStore
s = SqlStore(sys.argv[1])
i = 0
while True:
    name = f"p{i}"
    s.create("pods", "default", name, {"metadata": {"name": name}, "spec": {"pad": "x" * 500}})
    sys.stdout.write(name + "\n")
    sys.stdout.flush()
    i += 1
"""


def test_kill_9_mid_burst_loses_no_acknowledged_write(store_url: str) -> None:
    SqlStore(store_url).close()  # schema exists before the burst starts
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    acked: list[str] = []
    for _round in range(3):
        with SqlStore(store_url) as s0:
            base = s0.current_revision()
        proc = subprocess.Popen([sys.executable, "-c", _BURST, store_url], stdout=subprocess.PIPE,
                                env=env, text=True)
        try:
            assert proc.stdout is not None
            seen_here = 0
            deadline = time.monotonic() + 60
            while seen_here < 150 + 50 * _round and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                acked.append(f"{_round}/{line.strip()}")
                seen_here += 1
            os.kill(proc.pid, signal.SIGKILL)  # in the middle of the next writes
            rest, _ = proc.communicate(timeout=30)
            acked.extend(f"{_round}/{n}" for n in rest.split())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL
        s = SqlStore(store_url)
        try:
            names = {o["metadata"]["name"] for o in s.list("pods", "default").items}
            mine = [a.split("/", 1)[1] for a in acked if a.startswith(f"{_round}/")]
            assert len(mine) >= 100
            missing = [n for n in mine if n not in names]
            assert not missing, f"acknowledged but lost after kill -9: {missing[:5]}"
            log = s.changes_since(base)
            assert [c.revision for c in log] == sorted(c.revision for c in log)
            assert sorted(c.name for c in log) == sorted(names), "log and current state agree"
            assert all(c.type == "ADDED" for c in log)
            # Next round writes the same names again, on a clean slate.
            for n in names:
                s.delete("pods", "default", n)
        finally:
            s.close()


# ----------------------------------------------------------------------------- listing

def test_list_pages_with_predicate_see_every_item_once(store: SqlStore) -> None:
    expected = []
    for i in range(137):
        ns = f"ns{i % 4}"
        store.create("pods", ns, f"p{i:03d}", pod(f"p{i:03d}", ns, n=i))
        if i % 3 == 0:
            expected.append((ns, f"p{i:03d}"))
    store.create("services", "ns0", "zzz", {"metadata": {"name": "zzz"}})
    expected.sort()
    top = store.current_revision()

    def keep(o: Obj) -> bool:
        return bool(o["n"] % 3 == 0)

    for limit in (1, 5, 46, 1000):
        seen: list[tuple[str, str]] = []
        token = None
        pages = 0
        while True:
            page = store.list("pods", None, limit=limit, continue_token=token, predicate=keep)
            assert len(page.items) <= limit
            assert page.revision == top
            seen += [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in page.items]
            pages += 1
            token = page.continue_token
            if token is None:
                break
            assert page.remaining is None  # not counted under a predicate, as in Kubernetes
        assert seen == expected, f"limit={limit}"
        assert pages <= len(expected) // limit + 2

    # Without a predicate: remainingItemCount counts what is left.
    page = store.list("pods", "ns1", limit=10)
    assert len(page.items) == 10 and page.remaining == 34 - 10
    names = [o["metadata"]["name"] for o in page.items]
    assert names == sorted(names) and all(o["metadata"]["namespace"] == "ns1" for o in page.items)
    rest = store.list("pods", "ns1", limit=100, continue_token=page.continue_token)
    assert rest.continue_token is None and len(rest.items) == 24
    assert store.list("pods", None, limit=137).continue_token is None
    full = store.list("pods", None, limit=136)
    assert full.remaining == 1 and full.continue_token


def test_list_raw_serves_the_stored_json_unparsed(store: SqlStore) -> None:
    import orjson

    for i in range(25):
        store.create("pods", f"ns{i % 2}", f"p{i:02d}", pod(f"p{i:02d}", f"ns{i % 2}"))
    full = store.list("pods", None)
    raw = store.list_raw("pods", None)
    assert all(isinstance(b, bytes) for b in raw.items)
    assert [orjson.loads(b) for b in raw.items] == full.items and raw.revision == full.revision
    assert orjson.loads(b"[" + b",".join(raw.items) + b"]") == full.items
    seen: list[bytes] = []
    token = None
    while True:
        page = store.list_raw("pods", "ns1", limit=5, continue_token=token)
        seen += page.items
        token = page.continue_token
        if token is None:
            break
        assert page.remaining == 12 - len(seen)
    assert [orjson.loads(b) for b in seen] == store.list("pods", "ns1").items


def test_continue_keeps_first_page_revision_and_sees_later_changes(store: SqlStore) -> None:
    for i in range(10):
        store.create("pods", "default", f"p{i}", pod(f"p{i}"))
    first = store.list("pods", "default", limit=4)
    store.create("pods", "default", "p99", pod("p99"))
    second = store.list("pods", "default", limit=100, continue_token=first.continue_token)
    assert second.revision == first.revision
    assert [o["metadata"]["name"] for o in second.items][-1] == "p99"


def test_bad_continue_token_is_bad_request(store: SqlStore) -> None:
    for token in ("garbage!!", "eyJ4IjoxfQ", "bm90IGpzb24"):
        with pytest.raises(errors.BadRequest):
            store.list("pods", None, limit=5, continue_token=token)


# ----------------------------------------------------------------------------- subscribers

def test_subscribers_get_every_commit_in_order(store: SqlStore) -> None:
    got: list[Change] = []
    unsubscribe = store.subscribe(got.append)

    def worker(k: int) -> None:
        for i in range(50):
            o = store.create("pods", "default", f"w{k}-{i}", pod(f"w{k}-{i}"))
            store.update("pods", "default", f"w{k}-{i}", o)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [c.revision for c in got] == [c.revision for c in store.changes_since(0)]
    assert len(got) == 600
    unsubscribe()
    store.create("pods", "default", "late", pod("late"))
    assert len(got) == 600


@pytest.mark.postgres
def test_postgres_subscribers_see_other_api_servers_writes(postgres_db_url: str) -> None:
    a, b = SqlStore(postgres_db_url, poll_interval=0.05), SqlStore(postgres_db_url, poll_interval=0.05)
    try:
        got: list[int] = []
        a.subscribe(lambda c: got.append(c.revision))

        def writer(s: SqlStore, tag: str) -> None:
            for i in range(100):
                s.create("pods", "default", f"{tag}{i}", pod(f"{tag}{i}"))

        threads = [threading.Thread(target=writer, args=(s, tag)) for s, tag in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.monotonic() + 10
        while len(got) < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got == [c.revision for c in a.changes_since(0)]
        assert len(got) == 200
    finally:
        a.close()
        b.close()


# ----------------------------------------------------------------------------- watch hub

async def _collect(watch: Any, until_revision: int, timeout: float = 30) -> list[Change]:
    """Changes until `until_revision` (or whatever came within `timeout`)."""
    out: list[Change] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        try:
            ch = await watch.next(max(left, 0))
        except StopAsyncIteration:
            return out
        if ch is None:
            return out
        out.append(ch)
        if ch.revision >= until_revision:
            return out


def test_watch_from_revision_is_gap_free_under_concurrent_writes(store: SqlStore) -> None:
    for i in range(20):
        store.create("pods", "default", f"seed{i}", pod(f"seed{i}"))

    async def main() -> None:
        hub = WatchHub(store)
        stop = threading.Event()

        def writer(k: int) -> None:
            i = 0
            while not stop.is_set():  # until every watch has started: each starts mid-burst
                o = store.create("pods", "default", f"w{k}-{i}", pod(f"w{k}-{i}"))
                if i % 2:
                    store.update("pods", "default", f"w{k}-{i}", o)
                store.create("configmaps", "default", f"c{k}-{i}", {"metadata": {}})
                i += 1

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        try:
            watches = []
            for _ in range(5):  # start watches at different moments of the burst
                await asyncio.sleep(0.05)
                n = await asyncio.to_thread(store.current_revision)
                w = hub.watch("pods", None, n)
                await w.start()
                watches.append((n, w))
            # Let the burst go on after the last watch started.
            last_start = watches[-1][0]
            while await asyncio.to_thread(store.current_revision) < last_start + 100:
                await asyncio.sleep(0.01)
        finally:
            stop.set()
            for t in threads:
                await asyncio.to_thread(t.join)
        top = await asyncio.to_thread(store.current_revision)
        expected_all = await asyncio.to_thread(store.changes_since, 0, "pods")
        last_pod = expected_all[-1].revision
        assert top >= last_pod
        for n, w in watches:
            got = await _collect(w, last_pod)
            want = [c.revision for c in expected_all if c.revision > n]
            assert want, "the watch started before the writers stopped"
            revs = [c.revision for c in got]
            assert revs == want, (f"watch from {n}: missing {sorted(set(want) - set(revs))[:10]}, "
                                  f"extra {sorted(set(revs) - set(want))[:10]}, {len(revs)}/{len(want)}, "
                                  f"hub at {hub.revision}, store delivered {store._delivered}, "
                                  f"ended {w.ended_reason}, skip_upto {w._skip_upto}")
            assert all(c.resource == "pods" for c in got)
            w.close()
        hub.close()

    asyncio.run(main())


def test_watch_from_now_namespace_predicate_and_bookmark(store: SqlStore) -> None:
    store.create("pods", "a", "before", pod("before", "a"))

    async def main() -> None:
        hub = WatchHub(store)
        w = hub.watch("pods", "a", 0, predicate=lambda o: o["metadata"]["name"].startswith("x"))
        await w.start()
        assert w.bookmark_revision == store.current_revision()
        for ns, name in (("a", "x1"), ("b", "x2"), ("a", "y1"), ("a", "x3")):
            await asyncio.to_thread(store.create, "pods", ns, name, pod(name, ns))
        await asyncio.to_thread(store.create, "services", "a", "x9", {"metadata": {"name": "x9"}})
        top = await asyncio.to_thread(store.current_revision)
        got = [await w.next(5), await w.next(5)]
        assert [(c.namespace, c.name) for c in got if c] == [("a", "x1"), ("a", "x3")]
        assert await w.next(0.2) is None  # nothing more for this watcher: time for a bookmark
        assert w.bookmark_revision == top
        w.close()
        with pytest.raises(StopAsyncIteration):
            await w.next(1)
        assert hub.watcher_count() == 0
        hub.close()

    asyncio.run(main())


def test_watch_from_compacted_revision_is_gone_before_any_event(store: SqlStore) -> None:
    for i in range(20):
        store.create("pods", "default", f"p{i}", pod(f"p{i}"))
    boundary = store.compact(5)

    async def main() -> None:
        hub = WatchHub(store)
        with pytest.raises(errors.Gone):
            await hub.watch("pods", None, boundary - 1).start()
        got = []
        with pytest.raises(errors.Gone):
            async for ch in hub.watch("pods", None, 1):
                got.append(ch)
        assert got == [] and hub.watcher_count() == 0
        w = hub.watch("pods", None, boundary)
        assert len(await _collect(w, store.current_revision())) == 5
        hub.close()

    asyncio.run(main())


def test_slow_watcher_is_ended_not_buffered_forever(store: SqlStore) -> None:
    async def main() -> None:
        hub = WatchHub(store, max_queue=50)
        slow = hub.watch("pods", None, 0)
        fast = hub.watch("pods", None, 0)
        await slow.start()
        await fast.start()
        fast_got: list[Change] = []

        async def drain_fast() -> None:
            async for ch in fast:
                fast_got.append(ch)
                if len(fast_got) == 200:
                    return

        task = asyncio.create_task(drain_fast())
        for i in range(200):
            await asyncio.to_thread(store.create, "pods", "default", f"p{i}", pod(f"p{i}"))
        await asyncio.wait_for(task, 30)
        got = [ch async for ch in slow]  # ends: it fell 50 behind
        assert slow.ended_reason == "overflow"
        assert len(got) <= 50
        assert [c.name for c in fast_got] == [f"p{i}" for i in range(200)]
        hub.close()

    asyncio.run(main())
