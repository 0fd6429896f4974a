"""The `Store` (see base.py) on SQLAlchemy 2: SQLite by default, PostgreSQL by URL.

Tables and statements: schema.py. Every write updates `objects` and appends to
`changes` in one transaction; the log row's revision is the object's resourceVersion.

Writes are serialised in-process through one *writer token* and use *group commit*:
writers queue their operation; one writer thread takes everything queued, runs it in
one transaction (one fsync) and hands each operation its own result or error. A call
returns only after the commit holding its row is durable and subscribers have been
told; the operations of a batch run one after the other in queue order, each seeing
the previous ones' writes, exactly as if committed singly. So revision order ==
commit order == delivery order.

Blocking callers (`create`, `update`, ...) wait for their operation; asyncio callers
(`create_async`, ...) await it without a threadpool hop: the writer thread resolves
the futures of a whole batch with one wake-up of their event loop. Measured on the
2-core bench machine, a threadpool hop per write and a woken thread per waiting writer
cost more CPU than the write itself.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import contextlib
import gc
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url

from mkube.api import errors
from mkube.apiserver.storage.base import Change, EventType, ListResult, Obj
from mkube.apiserver.storage.schema import Statements, meta, metadata

log = logging.getLogger(__name__)

CONFLICT_MESSAGE = ("the object has been modified; please apply your changes to the latest version "
                    "and try again")

# Any 64-bit constants; every API server sharing one database uses the same.
_PG_WRITE_LOCK_KEY = 0x6D6B756265  # "mkube"
_PG_SCHEMA_LOCK_KEY = 0x6D6B756266
_MAX_BATCH = 512  # operations per group-commit transaction
_COMPACT_BATCH = 5000  # log rows deleted per compaction transaction
_POLL_CHUNK = 1000
_GC_PAUSE_ROWS = 1000  # decode at least this many bodies with the cyclic GC paused

_MAX_PAGE_ROWS = 10_000  # rows fetched per query of a paginated LIST; it loops for more


class _GcPause:
    """Pause the cyclic garbage collector while decoding many bodies.

    orjson.loads of 10,000 pods allocates ~1M containers, which triggers many full
    collections, each walking every live object: measured 3x slower (550 ms vs
    180 ms). Refcounting still frees everything meanwhile; a cycle made elsewhere is
    collected on the first run after the pause. Concurrent pauses are counted; the
    collector is re-enabled only if it was enabled before the first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pausers = 0
        self._was_enabled = False

    @contextmanager
    def __call__(self, rows: int) -> Iterator[None]:
        if rows < _GC_PAUSE_ROWS:
            yield
            return
        with self._lock:
            if self._pausers == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._pausers += 1
        try:
            yield
        finally:
            with self._lock:
                self._pausers -= 1
                if self._pausers == 0 and self._was_enabled:
                    gc.enable()


_gc_paused = _GcPause()


# ----------------------------------------------------------------------------- helpers

def _resource_kind_group(resource: str) -> tuple[str, str | None]:
    """"deployments.apps" -> ("deployments", "apps"); "pods" -> ("pods", None)."""
    plural, _, group = resource.partition(".")
    return plural, group or None


def _not_found(resource: str, name: str) -> errors.NotFound:
    kind, group = _resource_kind_group(resource)
    return errors.NotFound(kind=kind, name=name, group=group)


def _conflict(resource: str, name: str, message: str = CONFLICT_MESSAGE) -> errors.Conflict:
    kind, group = _resource_kind_group(resource)
    return errors.Conflict(kind=kind, name=name, message=message, group=group)


def with_revision(obj: Obj, revision: int) -> Obj:
    """A copy of `obj` whose metadata.resourceVersion is `revision`. Only the top level
    and `metadata` are copied; the caller's dict is never mutated."""
    new = dict(obj)
    md = dict(new.get("metadata") or {})
    md["resourceVersion"] = str(revision)
    new["metadata"] = md
    return new


def _uid_of(obj: Obj) -> str | None:
    md = obj.get("metadata")
    uid = md.get("uid") if isinstance(md, dict) else None
    return uid if isinstance(uid, str) else None


def _change(r: Any) -> Change:
    body = bytes(r[5])
    return Change(revision=int(r[0]), type=r[1], resource=r[2], namespace=r[3], name=r[4],
                  obj=orjson.loads(body), raw=body)


def encode_continue(namespace: str, name: str, revision: int) -> str:
    """Opaque continue token: base64url of JSON {ns, n, rv} (the last key served)."""
    raw = orjson.dumps({"ns": namespace, "n": name, "rv": revision})
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_continue(token: str) -> tuple[str, str, int]:
    """Inverse of `encode_continue`. Raises errors.BadRequest for anything malformed."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        ns, name, rv = data["ns"], data["n"], data["rv"]
    except (ValueError, KeyError, TypeError, UnicodeEncodeError, binascii.Error):
        raise errors.BadRequest(f"invalid continue token: {token!r}") from None
    if not (isinstance(ns, str) and isinstance(name, str) and type(rv) is int) or rv < 0:
        raise errors.BadRequest(f"invalid continue token: {token!r}")
    return ns, name, rv


def normalize_url(url: str) -> str:
    """Map `postgresql://` / `postgres://` to SQLAlchemy's psycopg3 driver; others as-is."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def datastore_url(url_or_data_dir: str) -> str:
    """A URL stays a URL (normalised); a directory becomes `sqlite:///<dir>/state.db`."""
    if "://" in url_or_data_dir:
        return normalize_url(url_or_data_dir)
    return f"sqlite:///{os.path.abspath(os.path.join(url_or_data_dir, 'state.db'))}"


def open_store(url_or_data_dir: str, **kwargs: Any) -> SqlStore:
    """Open (creating if needed) the store at a datastore URL or in a data directory."""
    if "://" not in url_or_data_dir:
        os.makedirs(url_or_data_dir, exist_ok=True)
    return SqlStore(datastore_url(url_or_data_dir), **kwargs)


@contextmanager
def _cursor(conn: Connection) -> Iterator[Any]:
    """A driver cursor of a SQLAlchemy connection (inside its transaction, if any),
    closed on exit: a sqlite3 cursor left to the garbage collector may reset its
    statement while another thread already uses the pooled connection."""
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cur
    finally:
        cur.close()


@dataclass(frozen=True)
class RawListResult:
    """`ListResult` whose items are the objects' stored JSON, unparsed (bytes)."""

    items: builtins.list[bytes]
    revision: int
    continue_token: str | None
    remaining: int | None = None


# ----------------------------------------------------------------------------- write batches

@dataclass(eq=False)
class _Pending:
    """One queued write: the operation, then its result or error once committed.

    Its waiter is either a blocking thread (`event`) or an asyncio future (`future`,
    resolved on its own loop)."""

    op: Callable[[_Tx], Obj]
    result: Obj | None = None
    error: BaseException | None = None
    event: threading.Event | None = None
    future: asyncio.Future[Obj] | None = None


def _resolve(batch: builtins.list[_Pending]) -> None:
    """On the futures' loop: hand each waiting coroutine its result or error."""
    for p in batch:
        fut = p.future
        if fut is None or fut.done():  # cancelled meanwhile: the write happened anyway
            continue
        if p.error is not None:
            fut.set_exception(p.error)
        else:
            fut.set_result(cast(Obj, p.result))


def _wake(batch: builtins.list[_Pending]) -> None:
    """On the writer thread, once `batch` is committed and delivered: wake every waiter,
    with one `call_soon_threadsafe` per event loop rather than one per future."""
    by_loop: dict[asyncio.AbstractEventLoop, builtins.list[_Pending]] = {}
    for p in batch:
        if p.event is not None:
            p.event.set()
        elif p.future is not None:
            by_loop.setdefault(p.future.get_loop(), []).append(p)
    for loop, pending in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits these any more
            loop.call_soon_threadsafe(_resolve, pending)


@dataclass
class _Tx:
    """What an operation sees of the open write transaction."""

    store: SqlStore
    cur: Any  # driver cursor
    last_revision: int | None = None  # SQLite: highest revision used so far
    rows: builtins.list[tuple[int, str, str, str, str, bytes]] = field(default_factory=list)
    dirty: bool = False  # the current operation has written something

    def next_revision(self) -> int:
        """The revision for the next write. On SQLite it is only taken by `logged()`,
        so a refused write leaves no gap; PostgreSQL's sequence may skip values."""
        st = self.store._sql
        if self.store.is_postgres:
            self.cur.execute(st.nextval, (self.store._sequence,))
            return int(self.cur.fetchone()[0])
        if self.last_revision is None:
            self.last_revision = self.store._read_revision(self.cur)
        return self.last_revision + 1

    def logged(self, revision: int, type_: EventType, resource: str, namespace: str, name: str,
               body: bytes) -> None:
        self.last_revision = revision
        self.rows.append((revision, type_, resource, namespace, name, body))


class _BatchFailed(Exception):
    """An operation failed after writing: the whole transaction must be rolled back."""


# ----------------------------------------------------------------------------- the store

SQLITE_POOL_SIZE = 48


class SqlStore:
    """`Store` (see base.py) on SQLite or PostgreSQL. Thread-safe; methods block.

    `poll_interval` (PostgreSQL only): how often the subscribers' poll thread looks for
    log rows written by other API servers sharing the database. A SQLite file is for
    one API server: other processes' writes are safe (BEGIN IMMEDIATE) but are not
    delivered to this process's subscribers.
    """

    def __init__(self, url: str, *, poll_interval: float = 0.2, pool_size: int = 8,
                 max_overflow: int = 32) -> None:
        self.url = normalize_url(url)
        backend = make_url(self.url).get_backend_name()
        self.is_postgres = backend == "postgresql"
        if backend not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported datastore URL {url!r}: use sqlite:///path or postgresql://...")
        self._sql = Statements(self.is_postgres)
        self._poll_interval = poll_interval
        self._engine = self._make_engine(pool_size, max_overflow)
        # SQLite in WAL mode: readers never wait for the writer, so a point read may run
        # on the event loop (PostgreSQL reads cross the network: they stay in threads).
        self.reads_never_block = not self.is_postgres
        self._db_error: type[Exception] = self._engine.dialect.loaded_dbapi.Error
        # SQLite: writes take the database lock up front (BEGIN IMMEDIATE), so that a
        # transaction never fails half-way upgrading from reader to writer.
        self._write_engine = self._engine.execution_options(mkube_begin="BEGIN IMMEDIATE")
        # PostgreSQL: a read of several statements must see one snapshot.
        self._read_engine = (self._engine.execution_options(isolation_level="REPEATABLE READ")
                             if self.is_postgres else self._engine)
        self._sequence = self._create_schema()

        # Writer token + group-commit queue (see module docstring).
        self._cond = threading.Condition(threading.Lock())
        self._queue: builtins.list[_Pending] = []
        self._writing = False
        self._exclusive_waiting = 0
        self._closed = False

        # Subscribers are called in revision order under _deliver_lock.
        self._deliver_lock = threading.Lock()
        self._subscribers: tuple[Callable[[Change], None], ...] = ()
        self._delivered = self.current_revision()
        self._poll_thread: threading.Thread | None = None
        self._poll_stop = threading.Event()
        self._writer = threading.Thread(target=self._writer_loop, name="mkube-store-writer", daemon=True)
        self._writer.start()

    # ------------------------------------------------------------------ setup

    def _make_engine(self, pool_size: int, max_overflow: int) -> Engine:
        if self.is_postgres:
            return create_engine(self.url, pool_size=pool_size, max_overflow=max_overflow,
                                 pool_pre_ping=True)
        path = make_url(self.url).database
        if not path or path == ":memory:":
            raise ValueError("the SQLite store needs a file (sqlite:///path/state.db), not :memory:")
        # Keep a connection for every request thread (anyio's pool has 40): an overflow
        # connection is closed when returned, and opening one (file + PRAGMAs) cost more
        # than the read itself, which showed as ~6% of a GET under load.
        engine = create_engine(self.url, pool_size=max(pool_size, SQLITE_POOL_SIZE), max_overflow=max_overflow,
                               connect_args={"check_same_thread": False, "timeout": 30.0})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control away from the sqlite3 module: "begin" below
            # issues BEGIN / BEGIN IMMEDIATE itself.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: the WAL is fsynced at every commit, so an acknowledged write
            # survives kill -9 *and* power loss (NORMAL survives only kill -9).
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA journal_size_limit=67108864")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql(conn.get_execution_options().get("mkube_begin", "BEGIN"))

        return engine

    def _create_schema(self) -> str | None:
        """Create missing tables; returns the PostgreSQL revision sequence's name."""
        ins = pg_dialect.insert if self.is_postgres else sqlite_dialect.insert
        with self._engine.begin() as conn:
            if self.is_postgres:
                # Several API servers may start at once on an empty database.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_SCHEMA_LOCK_KEY,))
            metadata.create_all(conn, checkfirst=True)
            conn.execute(ins(meta).on_conflict_do_nothing(index_elements=[meta.c.key]),
                         {"key": "compacted", "value": 0})
            if self.is_postgres:
                return cast(str, conn.exec_driver_sql(
                    "SELECT pg_get_serial_sequence('changes', 'revision')").scalar_one())
        return None

    # ------------------------------------------------------------------ reads

    def _read_revision(self, cur: Any) -> int:
        cur.execute(self._sql.max_revision)
        top, compacted = cur.fetchone()
        return max(int(top or 0), int(compacted or 0))

    def current_revision(self) -> int:
        """The newest committed revision (0 for an empty store)."""
        with self._engine.connect() as conn, _cursor(conn) as cur:
            return self._read_revision(cur)

    def compacted_revision(self) -> int:
        """Log rows at or below this revision are gone; changes_since(rev >= it) works."""
        with self._engine.connect() as conn, _cursor(conn) as cur:
            cur.execute(self._sql.compacted)
            return int(cur.fetchone()[0])

    def get(self, resource: str, namespace: str, name: str) -> Obj:
        """Current state. Raises errors.NotFound."""
        with self._engine.connect() as conn, _cursor(conn) as cur:
            cur.execute(self._sql.select_obj, (resource, namespace, name))
            row = cur.fetchone()
        if row is None:
            raise _not_found(resource, name)
        return cast(Obj, orjson.loads(row[0]))

    def list(self, resource: str, namespace: str | None, *, limit: int | None = None,
             continue_token: str | None = None,
             predicate: Callable[[Obj], bool] | None = None) -> ListResult:
        """Objects ordered by (namespace, name); see base.Store.list.

        Paging: the continue token carries the last key served and the revision of the
        first page; every later page reports that revision (as Kubernetes does), so a
        client that watches from it after the last page misses nothing. Later pages
        read current state, so they may already show changes made after the first
        page; a watch from the reported revision then repeats those (at-least-once,
        which informers handle). `remaining` (remainingItemCount) is given only
        without a predicate, as in Kubernetes.
        """
        items, revision, token, remaining = self._list(resource, namespace, limit, continue_token,
                                                       predicate, raw=False)
        return ListResult(items=items, revision=revision, continue_token=token, remaining=remaining)

    def list_raw(self, resource: str, namespace: str | None, *, limit: int | None = None,
                 continue_token: str | None = None) -> RawListResult:
        """`list()` without a predicate, returning each object's stored JSON (bytes)
        unparsed. For a plain JSON list response, `b'[' + b','.join(items) + b']'`
        skips decoding and re-encoding: for 10,000 pods ~20 MB instead of ~135 MB of
        dicts, and a fraction of the time."""
        items, revision, token, remaining = self._list(resource, namespace, limit, continue_token,
                                                       None, raw=True)
        return RawListResult(items=items, revision=revision, continue_token=token, remaining=remaining)

    def _list(self, resource: str, namespace: str | None, limit: int | None, continue_token: str | None,
              predicate: Callable[[Obj], bool] | None, raw: bool
              ) -> tuple[builtins.list[Any], int, str | None, int | None]:
        """(items, revision, continue token, remaining) — see `list`."""
        if limit is not None and limit <= 0:
            limit = None
        after: tuple[str, str] | None = None
        token_rev: int | None = None
        if continue_token:
            ns_, name_, token_rev = decode_continue(continue_token)
            after = (ns_, name_)
        st = self._sql
        namespaced = namespace is not None

        def params(start: tuple[str, str] | None, n: int | None) -> builtins.list[Any]:
            p: builtins.list[Any] = [resource]
            if namespaced:
                p.append(namespace)
                if start is not None:
                    p.append(start[1])
            elif start is not None:
                p.extend(start)
            if n is not None:
                p.append(n)
            return p

        decode: Callable[[Any], Any] = bytes if raw else orjson.loads
        items: builtins.list[Any] = []
        with self._read_engine.connect() as conn, conn.begin(), _cursor(conn) as cur:
            revision = self._read_revision(cur)  # the first statement fixes the snapshot
            if token_rev is not None:
                revision = token_rev
            if limit is None:
                cur.execute(st.list_page(namespaced, after is not None, False), params(after, None))
                rows = cur.fetchall()
                with _gc_paused(0 if raw else len(rows)):
                    if predicate is None:
                        items = [decode(r[2]) for r in rows]
                    else:
                        for r in rows:
                            obj = decode(r[2])
                            if predicate(obj):
                                items.append(obj)
                return items, revision, None, None

            # limit may be up to 2^63-1: the page asked of SQLite must stay a 64-bit integer
            chunk = min(limit + 1 if predicate is None else max(2 * limit, 500), _MAX_PAGE_ROWS)
            start = after
            last_key: tuple[str, str] | None = None
            more = False
            while True:
                cur.execute(st.list_page(namespaced, start is not None, True), params(start, chunk))
                rows = cur.fetchall()
                with _gc_paused(0 if raw else len(rows)):
                    for r in rows:
                        if len(items) == limit:
                            more = True  # a row exists after the last one served
                            break
                        obj = decode(r[2])
                        if predicate is None or predicate(obj):
                            items.append(obj)
                            last_key = (r[0], r[1])
                if more or len(rows) < chunk:
                    break
                start = (rows[-1][0], rows[-1][1])
                if len(items) == limit:
                    # Filled exactly at the end of a full chunk: is anything left?
                    cur.execute(st.list_page(namespaced, True, True), params(start, 1))
                    more = cur.fetchone() is not None
                    break
            if not more or last_key is None:
                return items, revision, None, None
            remaining: int | None = None
            if predicate is None:
                cur.execute(st.list_page(namespaced, True, False, count=True), params(last_key, None))
                remaining = int(cur.fetchone()[0])
            return items, revision, encode_continue(last_key[0], last_key[1], revision), remaining

    def changes_since(self, revision: int, resource: str | None = None) -> builtins.list[Change]:
        """Log rows with revision > `revision`, oldest first. Raises errors.Gone if
        `revision` is below the compacted boundary; a future revision gives []."""
        with self._read_engine.connect() as conn, conn.begin(), _cursor(conn) as cur:
            cur.execute(self._sql.compacted)
            compacted = int(cur.fetchone()[0])
            if revision < compacted:
                raise errors.Gone(f"too old resource version: {revision} ({compacted})")
            if resource is None:
                cur.execute(self._sql.changes_after(False, False, False), (revision,))
            else:
                cur.execute(self._sql.changes_after(True, False, False), (revision, resource))
            rows = cur.fetchall()
        with _gc_paused(len(rows)):
            return [_change(r) for r in rows]

    def _read_changes(self, after: int, upto: int | None, limit: int | None) -> builtins.list[Change]:
        p: builtins.list[Any] = [after]
        if upto is not None:
            p.append(upto)
        if limit is not None:
            p.append(limit)
        with self._engine.connect() as conn, _cursor(conn) as cur:
            cur.execute(self._sql.changes_after(False, upto is not None, limit is not None), p)
            return [_change(r) for r in cur.fetchall()]

    # ------------------------------------------------------------------ writes

    def create(self, resource: str, namespace: str, name: str, obj: Obj) -> Obj:
        """Insert; returns the stored object with resourceVersion set.
        Raises errors.AlreadyExists."""
        return self._write(self._create_op(resource, namespace, name, obj))

    def create_async(self, resource: str, namespace: str, name: str, obj: Obj) -> Awaitable[Obj]:
        """`create` for a coroutine on an event loop: awaits the commit, blocks nothing."""
        return self._write_async(self._create_op(resource, namespace, name, obj))

    def _create_op(self, resource: str, namespace: str, name: str, obj: Obj) -> Callable[[_Tx], Obj]:
        def op(tx: _Tx) -> Obj:
            rev = tx.next_revision()
            new = with_revision(obj, rev)
            body = orjson.dumps(new)
            tx.cur.execute(self._sql.insert_obj, (resource, namespace, name, _uid_of(new), rev, body))
            if tx.cur.rowcount != 1:
                kind, group = _resource_kind_group(resource)
                raise errors.AlreadyExists(kind=kind, name=name, group=group)
            tx.dirty = True
            tx.logged(rev, "ADDED", resource, namespace, name, body)
            return new

        return op

    def update(self, resource: str, namespace: str, name: str, obj: Obj,
               expected_revision: int | None = None) -> Obj:
        """Replace. Stale `expected_revision` -> errors.Conflict; absent -> NotFound."""
        return self._write(lambda tx: self._replace(tx, resource, namespace, name, obj, expected_revision))

    def update_async(self, resource: str, namespace: str, name: str, obj: Obj,
                     expected_revision: int | None = None) -> Awaitable[Obj]:
        """`update` for a coroutine on an event loop."""
        return self._write_async(lambda tx: self._replace(tx, resource, namespace, name, obj, expected_revision))

    def _replace(self, tx: _Tx, resource: str, namespace: str, name: str, obj: Obj,
                 expected_revision: int | None) -> Obj:
        rev = tx.next_revision()
        new = with_revision(obj, rev)
        body = orjson.dumps(new)
        if expected_revision is None:
            tx.cur.execute(self._sql.update_obj, (_uid_of(new), rev, body, resource, namespace, name))
        else:
            tx.cur.execute(self._sql.update_obj_if_rv,
                           (_uid_of(new), rev, body, resource, namespace, name, expected_revision))
        if tx.cur.rowcount != 1:
            tx.cur.execute(self._sql.select_obj, (resource, namespace, name))
            exists = tx.cur.fetchone() is not None
            raise _conflict(resource, name) if exists else _not_found(resource, name)
        tx.dirty = True
        tx.logged(rev, "MODIFIED", resource, namespace, name, body)
        return new

    def guaranteed_update(self, resource: str, namespace: str, name: str,
                          mutate: Callable[[Obj], Obj | None]) -> Obj:
        """Read-modify-write in one transaction (see base.Store). `mutate` runs on the
        store's writer thread while the writer token is held: keep it quick, rely on no
        thread-locals, and never write to the store from it."""
        return self._write(self._guaranteed_update_op(resource, namespace, name, mutate))

    def guaranteed_update_async(self, resource: str, namespace: str, name: str,
                                mutate: Callable[[Obj], Obj | None]) -> Awaitable[Obj]:
        """`guaranteed_update` for a coroutine on an event loop (`mutate` still runs on
        the writer thread)."""
        return self._write_async(self._guaranteed_update_op(resource, namespace, name, mutate))

    def _guaranteed_update_op(self, resource: str, namespace: str, name: str,
                              mutate: Callable[[Obj], Obj | None]) -> Callable[[_Tx], Obj]:
        def op(tx: _Tx) -> Obj:
            tx.cur.execute(self._sql.select_obj, (resource, namespace, name))
            row = tx.cur.fetchone()
            if row is None:
                raise _not_found(resource, name)
            new = mutate(orjson.loads(row[0]))
            if new is None:
                return cast(Obj, orjson.loads(row[0]))
            return self._replace(tx, resource, namespace, name, new, int(row[1]))

        return op

    def delete(self, resource: str, namespace: str, name: str,
               expected_revision: int | None = None, expected_uid: str | None = None) -> Obj:
        """Remove; returns the last state carrying the delete's revision.
        Precondition mismatch -> errors.Conflict; absent -> NotFound."""
        return self._write(self._delete_op(resource, namespace, name, expected_revision, expected_uid))

    def delete_async(self, resource: str, namespace: str, name: str,
                     expected_revision: int | None = None, expected_uid: str | None = None) -> Awaitable[Obj]:
        """`delete` for a coroutine on an event loop."""
        return self._write_async(self._delete_op(resource, namespace, name, expected_revision, expected_uid))

    def _delete_op(self, resource: str, namespace: str, name: str, expected_revision: int | None,
                   expected_uid: str | None) -> Callable[[_Tx], Obj]:
        def op(tx: _Tx) -> Obj:
            tx.cur.execute(self._sql.select_obj, (resource, namespace, name))
            row = tx.cur.fetchone()
            if row is None:
                raise _not_found(resource, name)
            body, stored_rv, stored_uid = row
            if expected_uid is not None and expected_uid != stored_uid:
                raise _conflict(resource, name, f"Precondition failed: UID in precondition: {expected_uid}, "
                                                f"UID in object meta: {stored_uid or ''}")
            if expected_revision is not None and expected_revision != int(stored_rv):
                raise _conflict(resource, name,
                                f"Precondition failed: ResourceVersion in precondition: {expected_revision}, "
                                f"ResourceVersion in object meta: {stored_rv}")
            rev = tx.next_revision()
            last = with_revision(orjson.loads(body), rev)
            tx.cur.execute(self._sql.delete_obj, (resource, namespace, name))
            tx.dirty = True
            tx.logged(rev, "DELETED", resource, namespace, name, orjson.dumps(last))
            return last

        return op

    # ------------------------------------------------------------------ group commit

    def _enqueue(self, p: _Pending) -> None:
        with self._cond:
            if self._closed:
                raise errors.ServiceUnavailable("the store is closed")
            self._queue.append(p)
            self._cond.notify_all()  # the writer thread, and nothing else but a waiting compaction

    def _write(self, op: Callable[[_Tx], Obj]) -> Obj:
        """Run `op` in a write transaction (possibly shared with other writers); return
        its result once committed and delivered, or raise its error."""
        if threading.current_thread() is self._writer:
            # a subscriber or `mutate` writing would wait for its own batch forever
            raise RuntimeError("a store write from the store's writer thread (subscriber or mutate callback)")
        p = _Pending(op, event=threading.Event())
        self._enqueue(p)
        assert p.event is not None
        p.event.wait()
        if p.error is not None:
            raise p.error
        return cast(Obj, p.result)

    def _write_async(self, op: Callable[[_Tx], Obj]) -> asyncio.Future[Obj]:
        """`_write` for the running event loop: a future of `op`'s result."""
        fut: asyncio.Future[Obj] = asyncio.get_running_loop().create_future()
        self._enqueue(_Pending(op, future=fut))
        return fut

    def _writer_loop(self) -> None:
        """The writer thread: commit whatever is queued, batch after batch, until closed
        and drained."""
        while True:
            with self._cond:
                while not self._queue or self._writing or self._exclusive_waiting:
                    if self._closed and not self._queue:
                        return
                    self._cond.wait()
                self._writing = True
                batch = self._queue[:_MAX_BATCH]
                del self._queue[:_MAX_BATCH]
            try:
                self._run_batch(batch)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
                _wake(batch)

    @contextmanager
    def _writer_token(self) -> Iterator[None]:
        """Exclusive in-process write access, ahead of queued writers (compaction)."""
        with self._cond:
            self._exclusive_waiting += 1
            try:
                while self._writing:
                    self._cond.wait()
            finally:
                self._exclusive_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()

    def _run_batch(self, batch: builtins.list[_Pending]) -> None:
        """Writer thread only: commit `batch` in one transaction, then notify subscribers.
        Every operation of `batch` is done (result or error) when this returns."""
        rows: builtins.list[tuple[int, str, str, str, str, bytes]] = []
        try:
            rows = self._commit(batch)
        except _BatchFailed as failed:
            if len(batch) == 1:
                batch[0].result, batch[0].error = None, failed.__cause__ or failed
                return
            # An operation failed after writing; rerun each alone so that only it fails.
            rows = []
            for p in batch:
                p.result, p.error = None, None
                try:
                    rows.extend(self._commit([p]))
                except _BatchFailed as e:
                    p.error = e.__cause__ or e
                except Exception as e:
                    p.error = e
        except Exception as e:  # BEGIN or COMMIT failed: nothing of the batch is stored
            for p in batch:
                p.result, p.error = None, e
        finally:
            for p in batch:
                if p.result is None and p.error is None:  # interrupted (BaseException)
                    p.error = errors.InternalError("the write was interrupted")
        if rows:
            self._deliver_local(rows)

    def _commit(self, batch: builtins.list[_Pending]) -> builtins.list[tuple[int, str, str, str, str, bytes]]:
        with self._write_engine.connect() as conn, conn.begin(), _cursor(conn) as cur:
            if self.is_postgres:
                # Serialise the writers of *all* API servers on this database. Revisions
                # come from a sequence: without the lock, transaction A could take
                # revision 10, B take 11 and commit first; a watcher (or another server's
                # poll thread) that has seen 11 would never look back for 10. Taking the
                # lock before nextval and holding it to commit makes revision order ==
                # commit order == visibility order, so "everything > last seen" is
                # always complete.
                cur.execute(self._sql.advisory_lock, (_PG_WRITE_LOCK_KEY,))
            tx = _Tx(self, cur)
            for p in batch:
                tx.dirty = False
                try:
                    p.result = p.op(tx)
                except Exception as e:
                    if tx.dirty or isinstance(e, self._db_error):
                        # PostgreSQL aborts the transaction on any statement error, and a
                        # half-done operation must not be committed: undo the batch.
                        raise _BatchFailed() from e
                    p.error = e
            if tx.rows:
                cur.executemany(self._sql.insert_change, tx.rows)
        return tx.rows

    # ------------------------------------------------------------------ subscribers

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call `callback(change)` after each commit, in revision order, from the writing
        (or, on PostgreSQL, the poll) thread. It must be quick and must not write to
        the store. Returns the unsubscribe function."""
        with self._deliver_lock:
            if not self._subscribers and self.is_postgres:
                # What was committed while nobody listened is owed to no one.
                self._delivered = max(self._delivered, self.current_revision())
            self._subscribers = (*self._subscribers, callback)
            if self.is_postgres and self._poll_thread is None and self._poll_interval > 0:
                self._poll_thread = threading.Thread(target=self._poll_loop, name="mkube-store-poll",
                                                     daemon=True)
                self._poll_thread.start()

        def unsubscribe() -> None:
            with self._deliver_lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    def _emit(self, change: Change) -> None:
        """Under _deliver_lock: hand one change to every subscriber."""
        self._delivered = change.revision
        for cb in self._subscribers:
            try:
                cb(change)
            except Exception:
                log.exception("store subscriber failed on revision %d", change.revision)

    def _deliver_local(self, rows: builtins.list[tuple[int, str, str, str, str, bytes]]) -> None:
        """Still holding the writer token: deliver a committed batch, in order."""
        with self._deliver_lock:
            if not self._subscribers:
                self._delivered = max(self._delivered, rows[-1][0])
                return
            first = rows[0][0]
            if self.is_postgres and first > self._delivered + 1:
                # Revisions in between belong to other API servers (or are sequence
                # values of rolled-back transactions): deliver those that exist first.
                for ch in self._read_changes(self._delivered, first - 1, None):
                    if ch.revision > self._delivered:
                        self._emit(ch)
            for r in rows:
                if r[0] > self._delivered:
                    self._emit(_change(r))

    def _poll_loop(self) -> None:
        """PostgreSQL: deliver log rows written by other processes, in order."""
        while not self._poll_stop.wait(self._poll_interval):
            try:
                while not self._poll_stop.is_set():
                    batch = self._read_changes(self._delivered, None, _POLL_CHUNK)
                    with self._deliver_lock:
                        for ch in batch:
                            if ch.revision > self._delivered:
                                self._emit(ch)
                    if len(batch) < _POLL_CHUNK:
                        break
            except Exception:
                if not self._poll_stop.is_set():
                    log.exception("polling the change log failed; retrying")

    # ------------------------------------------------------------------ compaction

    def compact(self, keep: int) -> int:
        """Drop all but the newest `keep` log rows, in bounded batches so that writers
        wait at most one small batch. Returns the compacted revision C: changes_since
        raises Gone for revisions below C and works from C on."""
        keep = max(0, int(keep))
        q = self._sql.q
        with self._writer_token(), self._write_engine.connect() as conn, conn.begin(), _cursor(conn) as cur:
            if self.is_postgres:
                cur.execute(self._sql.advisory_lock, (_PG_WRITE_LOCK_KEY,))
            cur.execute(self._sql.compacted)
            boundary = int(cur.fetchone()[0])
            cur.execute(q("SELECT revision FROM changes ORDER BY revision DESC LIMIT 1 OFFSET ?"), (keep,))
            row = cur.fetchone()
            if row is None or int(row[0]) <= boundary:
                return boundary
            boundary = int(row[0])
            # The boundary is committed before any row goes: no reader ever sees a
            # shortened log without the boundary that explains it.
            cur.execute(q("UPDATE mkube_meta SET value = ? WHERE key = 'compacted' AND value < ?"),
                        (boundary, boundary))
        while True:
            with (self._writer_token(), self._write_engine.connect() as conn, conn.begin(),
                  _cursor(conn) as cur):
                cur.execute(self._sql.compact_batch, (boundary, _COMPACT_BATCH))
                n = cur.rowcount
            if n < _COMPACT_BATCH:
                return boundary

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop the poll thread, commit the writes already queued, then close all
        connections. Idempotent; a write queued after this raises ServiceUnavailable."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._poll_stop.set()
        for thread in (self._poll_thread, self._writer):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=30)
        with self._writer_token():
            self._engine.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
