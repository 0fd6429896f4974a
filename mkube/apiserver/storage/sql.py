"""The `Store` on SQLAlchemy 2 Core: SQLite by default, PostgreSQL by URL.

Two tables do the work (plus one bookkeeping row):

* `objects` — current state, one row per (resource, namespace, name). Every read of
  current state (get, list) touches only this table, never the log.
* `changes` — the append-only change log. Its `revision` is the global revision; the
  row written by a create/update/delete *is* the object's new resourceVersion. It is
  written in the same transaction as `objects`, so the two never disagree.
* `mkube_meta` — `compacted`: log rows at or below it are gone (watches from older
  revisions get 410 Gone).

Writes are serialised in-process through one "writer token" and use *group commit*:
writers queue their operation; whichever writer finds no commit in progress becomes
the leader, runs every queued operation in one transaction (one fsync), and hands
each its own result or error. A writer's call returns only after the commit that
holds its row is durable, and the operations of a batch run one after another, so
each sees the previous one's writes exactly as if they had been committed singly.
Revision order equals commit order, and subscribers are called in revision order.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    func,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ColumnElement

from mkube.api import errors
from mkube.apiserver.storage.base import Change, EventType, ListResult, Obj

log = logging.getLogger(__name__)

CONFLICT_MESSAGE = ("the object has been modified; please apply your changes to the latest version "
                    "and try again")

# Any 64-bit constant; all mkube API servers sharing one database must use the same.
_PG_WRITE_LOCK_KEY = 0x6D6B756265  # "mkube"
_PG_SCHEMA_LOCK_KEY = 0x6D6B756266
_MAX_BATCH = 512  # operations per group-commit transaction
_COMPACT_BATCH = 5000  # log rows deleted per compaction transaction
_POLL_CHUNK = 1000

# ----------------------------------------------------------------------------- schema

# Byte order ("C" collation) on PostgreSQL, so paging order does not depend on the
# database's locale and matches SQLite (memcmp) and etcd's key order.
_Key = Text().with_variant(Text(collation="C"), "postgresql")

metadata = MetaData()

objects = Table(
    "objects", metadata,
    Column("resource", _Key, primary_key=True),
    Column("namespace", _Key, primary_key=True),
    Column("name", _Key, primary_key=True),
    Column("uid", Text, nullable=True),
    Column("resource_version", BigInteger, nullable=False),
    Column("body", LargeBinary, nullable=False),
)

changes = Table(
    "changes", metadata,
    # SQLite: INTEGER PRIMARY KEY (the rowid). PostgreSQL: BIGSERIAL.
    Column("revision", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("type", String(8), nullable=False),
    Column("resource", Text, nullable=False),
    Column("namespace", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
)

meta = Table(
    "mkube_meta", metadata,
    Column("key", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

_oc = objects.c
_cc = changes.c
_KEY_WHERE = (_oc.resource == bindparam("k_resource"), _oc.namespace == bindparam("k_namespace"),
              _oc.name == bindparam("k_name"))

_SEL_OBJ = select(_oc.body, _oc.resource_version, _oc.uid).where(*_KEY_WHERE)
_UPD_VALUES: dict[str, Any] = {"uid": bindparam("n_uid"), "resource_version": bindparam("n_rv"), "body": bindparam("n_body")}
_UPD_OBJ = objects.update().where(*_KEY_WHERE).values(_UPD_VALUES)
_UPD_OBJ_IF_RV = (objects.update().where(*_KEY_WHERE, _oc.resource_version == bindparam("k_rv"))
                  .values(_UPD_VALUES))
_DEL_OBJ = objects.delete().where(*_KEY_WHERE)
_INS_CHANGE = changes.insert()
_SEL_MAX_REV = select(select(func.max(_cc.revision)).scalar_subquery(),
                      select(meta.c.value).where(meta.c.key == "compacted").scalar_subquery())
_SEL_COMPACTED = select(meta.c.value).where(meta.c.key == "compacted")
_CHANGE_COLS = (_cc.revision, _cc.type, _cc.resource, _cc.namespace, _cc.name, _cc.body)


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


def _with_revision(obj: Obj, revision: int) -> Obj:
    """A shallow copy of `obj` whose metadata.resourceVersion is `revision`.

    Only the top level and `metadata` are copied: the caller's dict is never mutated.
    """
    new = dict(obj)
    md = dict(new.get("metadata") or {})
    md["resourceVersion"] = str(revision)
    new["metadata"] = md
    return new


def _uid_of(obj: Obj) -> str | None:
    md = obj.get("metadata")
    uid = md.get("uid") if isinstance(md, dict) else None
    return uid if isinstance(uid, str) else None


# ----------------------------------------------------------------------------- continue tokens

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
    except (ValueError, KeyError, TypeError, UnicodeEncodeError, binascii.Error, orjson.JSONDecodeError):
        raise errors.BadRequest(f"invalid continue token: {token!r}") from None
    if not (isinstance(ns, str) and isinstance(name, str) and isinstance(rv, int)) or rv < 0:
        raise errors.BadRequest(f"invalid continue token: {token!r}")
    return ns, name, rv


# ----------------------------------------------------------------------------- URLs

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


# ----------------------------------------------------------------------------- write batches

@dataclass(eq=False)
class _Pending:
    """One queued write: the operation, then its result or error once committed."""

    op: Callable[[_Tx], Obj]
    result: Obj | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class _Tx:
    """What an operation sees of the open write transaction."""

    store: SqlStore
    conn: Connection
    last_revision: int | None = None  # SQLite: highest revision used so far
    rows: list[dict[str, Any]] = field(default_factory=list)  # change-log rows to insert
    dirty: bool = False  # the current operation has written something

    def next_revision(self) -> int:
        """The revision the next write will carry. On SQLite it is only *reserved* by
        `logged()`, so a precondition failure after asking leaves no gap."""
        if self.store.is_postgres:
            return int(self.conn.execute(self.store._nextval).scalar_one())
        if self.last_revision is None:
            self.last_revision = self.store._read_revision(self.conn)
        return self.last_revision + 1

    def logged(self, revision: int, type_: EventType, resource: str, namespace: str, name: str,
               body: bytes) -> None:
        self.last_revision = revision
        self.rows.append({"revision": revision, "type": type_, "resource": resource,
                          "namespace": namespace, "name": name, "body": body})


class _BatchFailed(Exception):
    """An operation failed after writing: the whole transaction must be rolled back."""


# ----------------------------------------------------------------------------- the store

class SqlStore:
    """`Store` (see base.py) on SQLite or PostgreSQL. Thread-safe.

    `poll_interval` (PostgreSQL only): how often subscribers' poll thread looks for log
    rows written by other API servers sharing the database.
    """

    def __init__(self, url: str, *, poll_interval: float = 0.2, pool_size: int = 8,
                 max_overflow: int = 32) -> None:
        self.url = normalize_url(url)
        u = make_url(self.url)
        self.is_postgres = u.get_backend_name() == "postgresql"
        self.is_sqlite = u.get_backend_name() == "sqlite"
        if not (self.is_postgres or self.is_sqlite):
            raise ValueError(f"unsupported datastore URL {url!r}: use sqlite:///path or postgresql://...")
        self._poll_interval = poll_interval
        self._engine = self._make_engine(pool_size, max_overflow)
        # SQLite: writes take the database lock up front (BEGIN IMMEDIATE) so that a
        # transaction never fails half-way on an upgrade from reader to writer.
        self._write_engine = self._engine.execution_options(mkube_begin="BEGIN IMMEDIATE")
        # PostgreSQL: a list of several statements must see one snapshot.
        self._read_engine = (self._engine.execution_options(isolation_level="REPEATABLE READ")
                             if self.is_postgres else self._engine)

        ins = pg_dialect.insert if self.is_postgres else sqlite_dialect.insert
        self._ins_obj = ins(objects).on_conflict_do_nothing(
            index_elements=[_oc.resource, _oc.namespace, _oc.name]).execution_options(preserve_rowcount=True)
        self._nextval = text("SELECT nextval(pg_get_serial_sequence('changes', 'revision'))")

        self._create_schema()

        # Writer token + group-commit queue (see module docstring).
        self._cond = threading.Condition(threading.Lock())
        self._queue: builtins.list[_Pending] = []
        self._writing = False
        self._closed = False

        # Subscribers, called in revision order under _deliver_lock.
        self._deliver_lock = threading.Lock()
        self._subscribers: tuple[Callable[[Change], None], ...] = ()
        self._delivered = self.current_revision()
        self._poll_thread: threading.Thread | None = None
        self._poll_stop = threading.Event()

    # ------------------------------------------------------------------ setup

    def _make_engine(self, pool_size: int, max_overflow: int) -> Engine:
        if self.is_postgres:
            return create_engine(self.url, pool_size=pool_size, max_overflow=max_overflow,
                                 pool_pre_ping=True)
        path = make_url(self.url).database
        if not path or path == ":memory:":
            raise ValueError("SQLite store needs a file (sqlite:///path/state.db), not :memory:")
        engine = create_engine(self.url, pool_size=pool_size, max_overflow=max_overflow,
                               connect_args={"check_same_thread": False, "timeout": 30.0})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control away from the sqlite3 module; "begin" below
            # issues BEGIN / BEGIN IMMEDIATE itself.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: the WAL is fsynced at every commit, so an acknowledged write
            # survives kill -9 and power loss (NORMAL would only survive kill -9).
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA journal_size_limit=67108864")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql(conn.get_execution_options().get("mkube_begin", "BEGIN"))

        return engine

    def _create_schema(self) -> None:
        with self._engine.begin() as conn:
            if self.is_postgres:
                # Several API servers may start at once on an empty database.
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_SCHEMA_LOCK_KEY})
            metadata.create_all(conn, checkfirst=True)
            ins = pg_dialect.insert if self.is_postgres else sqlite_dialect.insert
            conn.execute(ins(meta).on_conflict_do_nothing(index_elements=[meta.c.key]),
                         {"key": "compacted", "value": 0})

    # ------------------------------------------------------------------ reads

    @staticmethod
    def _read_revision(conn: Connection) -> int:
        top, compacted = conn.execute(_SEL_MAX_REV).one()
        return max(int(top or 0), int(compacted or 0))

    def current_revision(self) -> int:
        """The newest committed revision (0 for an empty store)."""
        with self._engine.connect() as conn:
            return self._read_revision(conn)

    def get(self, resource: str, namespace: str, name: str) -> Obj:
        """Current state. Raises errors.NotFound."""
        with self._engine.connect() as conn:
            row = conn.execute(_SEL_OBJ, {"k_resource": resource, "k_namespace": namespace,
                                          "k_name": name}).first()
        if row is None:
            raise _not_found(resource, name)
        return cast(Obj, orjson.loads(row[0]))

    def list(self, resource: str, namespace: str | None, *, limit: int | None = None,
             continue_token: str | None = None,
             predicate: Callable[[Obj], bool] | None = None) -> ListResult:
        """Objects ordered by (namespace, name); see base.Store.list.

        Paging: the continue token carries the last key served and the revision of the
        first page; every later page reports that revision (like Kubernetes), so a
        client that watches from it after the last page misses nothing. Later pages
        read current state, so they may already show changes made after the first
        page; a watch from the reported revision then repeats them (at-least-once,
        which informers handle). `remaining` (remainingItemCount) is only given
        without a predicate, as in Kubernetes.
        """
        if limit is not None and limit <= 0:
            limit = None
        after: tuple[str, str] | None = None
        token_rev: int | None = None
        if continue_token:
            ns_, name_, token_rev = decode_continue(continue_token)
            after = (ns_, name_)

        conds: builtins.list[ColumnElement[bool]] = [_oc.resource == resource]
        if namespace is not None:
            conds.append(_oc.namespace == namespace)

        def page_query(start: tuple[str, str] | None, n: int | None) -> Any:
            where = list(conds)
            if start is not None:
                if namespace is not None:
                    where.append(_oc.name > start[1])
                else:
                    where.append(tuple_(_oc.namespace, _oc.name) > tuple_(*start))
            q = select(_oc.namespace, _oc.name, _oc.body).where(*where).order_by(_oc.namespace, _oc.name)
            return q.limit(n) if n is not None else q

        items: builtins.list[Obj] = []
        loads = orjson.loads
        with self._read_engine.connect() as conn:
            revision = self._read_revision(conn)  # first statement: fixes the snapshot
            if token_rev is not None:
                revision = token_rev
            if limit is None:
                for _ns, _name, body in conn.execute(page_query(after, None)):
                    obj = loads(body)
                    if predicate is None or predicate(obj):
                        items.append(obj)
                return ListResult(items=items, revision=revision, continue_token=None)

            chunk = limit + 1 if predicate is None else max(2 * limit, 500)
            start = after
            last_key: tuple[str, str] | None = None
            more = False
            while True:
                rows = conn.execute(page_query(start, chunk)).all()
                for i, (ns_, name_, body) in enumerate(rows):
                    if len(items) == limit:
                        more = True  # an unread row exists after the last served one
                        break
                    obj = loads(body)
                    if predicate is None or predicate(obj):
                        items.append(obj)
                        last_key = (ns_, name_)
                    if i == len(rows) - 1:
                        start = (ns_, name_)
                if more or len(rows) < chunk:
                    break
                if len(items) == limit:
                    # Filled exactly at the end of a full chunk: is there anything after?
                    more = conn.execute(page_query(start, 1)).first() is not None
                    break
            if not more or last_key is None:
                return ListResult(items=items, revision=revision, continue_token=None,
                                  remaining=None)
            remaining: int | None = None
            if predicate is None:
                count_q = select(func.count()).select_from(page_query(last_key, None).subquery())
                remaining = int(conn.execute(count_q).scalar_one())
            return ListResult(items=items, revision=revision,
                              continue_token=encode_continue(last_key[0], last_key[1], revision),
                              remaining=remaining)

    def changes_since(self, revision: int, resource: str | None = None) -> builtins.list[Change]:
        """Log rows with revision > `revision`, oldest first. Raises errors.Gone if
        `revision` is below the compacted boundary. A future revision gives []."""
        q = select(*_CHANGE_COLS).where(_cc.revision > revision)
        if resource is not None:
            q = q.where(_cc.resource == resource)
        q = q.order_by(_cc.revision)
        with self._read_engine.connect() as conn:
            compacted = int(conn.execute(_SEL_COMPACTED).scalar() or 0)
            if revision < compacted:
                raise errors.Gone(f"too old resource version: {revision} ({compacted})")
            return [_row_change(r) for r in conn.execute(q)]

    def compacted_revision(self) -> int:
        """Log rows at or below this revision are gone; changes_since(rev >= it) works."""
        with self._engine.connect() as conn:
            return int(conn.execute(_SEL_COMPACTED).scalar() or 0)

    # ------------------------------------------------------------------ writes

    def create(self, resource: str, namespace: str, name: str, obj: Obj) -> Obj:
        """Insert; returns the stored object with resourceVersion set.
        Raises errors.AlreadyExists."""

        def op(tx: _Tx) -> Obj:
            rev = tx.next_revision()
            new = _with_revision(obj, rev)
            body = orjson.dumps(new)
            res = tx.conn.execute(self._ins_obj, {
                "resource": resource, "namespace": namespace, "name": name, "uid": _uid_of(new),
                "resource_version": rev, "body": body})
            if res.rowcount != 1:
                kind, group = _resource_kind_group(resource)
                raise errors.AlreadyExists(kind=kind, name=name, group=group)
            tx.dirty = True
            tx.logged(rev, "ADDED", resource, namespace, name, body)
            return new

        return self._write(op)

    def update(self, resource: str, namespace: str, name: str, obj: Obj,
               expected_revision: int | None = None) -> Obj:
        """Replace. Stale `expected_revision` -> errors.Conflict; absent -> NotFound."""

        def op(tx: _Tx) -> Obj:
            return self._replace(tx, resource, namespace, name, obj, expected_revision)

        return self._write(op)

    def _replace(self, tx: _Tx, resource: str, namespace: str, name: str, obj: Obj,
                 expected_revision: int | None) -> Obj:
        rev = tx.next_revision()
        new = _with_revision(obj, rev)
        body = orjson.dumps(new)
        params = {"k_resource": resource, "k_namespace": namespace, "k_name": name,
                  "n_uid": _uid_of(new), "n_rv": rev, "n_body": body}
        if expected_revision is None:
            res = tx.conn.execute(_UPD_OBJ, params)
        else:
            params["k_rv"] = expected_revision
            res = tx.conn.execute(_UPD_OBJ_IF_RV, params)
        if res.rowcount != 1:
            exists = tx.conn.execute(_SEL_OBJ, {"k_resource": resource, "k_namespace": namespace,
                                                "k_name": name}).first()
            raise _conflict(resource, name) if exists is not None else _not_found(resource, name)
        tx.dirty = True
        tx.logged(rev, "MODIFIED", resource, namespace, name, body)
        return new

    def guaranteed_update(self, resource: str, namespace: str, name: str,
                          mutate: Callable[[Obj], Obj | None]) -> Obj:
        """Read-modify-write in one transaction (see base.Store). `mutate` runs while
        the store's writer token is held: keep it quick and never write to the store
        from it."""

        def op(tx: _Tx) -> Obj:
            row = tx.conn.execute(_SEL_OBJ, {"k_resource": resource, "k_namespace": namespace,
                                             "k_name": name}).first()
            if row is None:
                raise _not_found(resource, name)
            current = orjson.loads(row[0])
            new = mutate(current)
            if new is None:
                return cast(Obj, orjson.loads(row[0]))
            return self._replace(tx, resource, namespace, name, new, int(row[1]))

        return self._write(op)

    def delete(self, resource: str, namespace: str, name: str,
               expected_revision: int | None = None, expected_uid: str | None = None) -> Obj:
        """Remove; returns the last state carrying the delete's revision."""

        def op(tx: _Tx) -> Obj:
            key = {"k_resource": resource, "k_namespace": namespace, "k_name": name}
            row = tx.conn.execute(_SEL_OBJ, key).first()
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
            last = _with_revision(orjson.loads(body), rev)
            tx.conn.execute(_DEL_OBJ, key)
            tx.dirty = True
            tx.logged(rev, "DELETED", resource, namespace, name, orjson.dumps(last))
            return last

        return self._write(op)

    # ------------------------------------------------------------------ group commit

    @contextmanager
    def _writer_token(self) -> Iterator[None]:
        """Exclusive in-process write access (used by compaction)."""
        with self._cond:
            while self._writing:
                self._cond.wait()
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()

    def _write(self, op: Callable[[_Tx], Obj]) -> Obj:
        """Run `op` in a write transaction (possibly shared with other writers) and
        return its result once committed; re-raise its error otherwise."""
        p = _Pending(op)
        with self._cond:
            if self._closed:
                raise errors.ServiceUnavailable("the store is closed")
            self._queue.append(p)
        while True:
            with self._cond:
                while not p.done and self._writing:
                    self._cond.wait()
                if p.done:
                    break
                self._writing = True
                batch = self._queue[:_MAX_BATCH]
                del self._queue[:_MAX_BATCH]
            try:
                self._run_batch(batch)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
        if p.error is not None:
            raise p.error
        return cast(Obj, p.result)

    def _run_batch(self, batch: builtins.list[_Pending]) -> None:
        """Leader only: commit `batch` in one transaction, then notify subscribers."""
        try:
            rows = self._commit(batch)
        except _BatchFailed:
            # Some operation failed after writing; rerun each alone so that only it fails.
            rows = []
            for p in batch:
                p.result, p.error = None, None
                try:
                    rows.extend(self._commit([p]))
                except _BatchFailed as e:
                    p.error = e.__cause__ or e
                except Exception as e:  # commit itself failed
                    p.error = e
        except Exception as e:  # BEGIN/COMMIT failed: nothing of the batch is stored
            for p in batch:
                p.result, p.error = None, e
            rows = []
        finally:
            for p in batch:
                p.done = True
        if rows:
            self._deliver_local(rows)

    def _commit(self, batch: builtins.list[_Pending]) -> builtins.list[dict[str, Any]]:
        with self._write_engine.connect() as conn, conn.begin():
            if self.is_postgres:
                # Serialise writers of *all* API servers on this database. Revisions come
                # from a sequence: without the lock, transaction A could take revision 10,
                # B take 11 and commit first; a watcher (or poll thread) that has seen 11
                # would then never look back for 10. Taking the lock before nextval and
                # holding it until commit makes revision order == commit == visibility
                # order, so "everything > last seen" is always complete.
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_WRITE_LOCK_KEY})
            tx = _Tx(self, conn)
            for p in batch:
                tx.dirty = False
                try:
                    p.result = p.op(tx)
                except Exception as e:
                    if tx.dirty or isinstance(e, DBAPIError):
                        # PostgreSQL aborts the transaction on any statement error, and a
                        # half-done operation must not be committed: roll back everything.
                        raise _BatchFailed() from e
                    p.error = e
            if tx.rows:
                conn.execute(_INS_CHANGE, tx.rows)
            rows = tx.rows
        return rows

    # ------------------------------------------------------------------ subscribers

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call `callback(change)` after each committed change, in revision order, from
        the writing (or, on PostgreSQL, poll) thread. It must be quick and must not
        write to the store. Returns the unsubscribe function."""
        with self._deliver_lock:
            if not self._subscribers and self.is_postgres:
                # Changes committed while nobody listened are not owed to anyone.
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

    def _deliver_local(self, rows: builtins.list[dict[str, Any]]) -> None:
        """Still holding the writer token: deliver a committed batch, in order."""
        with self._deliver_lock:
            if not self._subscribers:
                self._delivered = max(self._delivered, rows[-1]["revision"])
                return
            first = rows[0]["revision"]
            if self.is_postgres and first > self._delivered + 1:
                # Others (other API servers, or rolled-back sequence values) used the
                # revisions in between; deliver what exists of them first, in order.
                for ch in self._read_changes(self._delivered, first - 1):
                    if ch.revision > self._delivered:
                        self._emit(ch)
            for r in rows:
                if r["revision"] > self._delivered:
                    body = r["body"]
                    self._emit(Change(revision=r["revision"], type=r["type"], resource=r["resource"],
                                      namespace=r["namespace"], name=r["name"],
                                      obj=orjson.loads(body), raw=body))

    def _read_changes(self, after: int, upto: int | None, limit: int | None = None) -> builtins.list[Change]:
        q = select(*_CHANGE_COLS).where(_cc.revision > after)
        if upto is not None:
            q = q.where(_cc.revision <= upto)
        q = q.order_by(_cc.revision)
        if limit is not None:
            q = q.limit(limit)
        with self._engine.connect() as conn:
            return [_row_change(r) for r in conn.execute(q)]

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
        """Drop all but the newest `keep` log rows (in bounded batches, so writers are
        never blocked for long). Returns the compacted revision C: changes_since(rev)
        raises Gone for rev < C and works for rev >= C."""
        keep = max(0, int(keep))
        newest_dropped = (select(_cc.revision).order_by(_cc.revision.desc()).offset(keep).limit(1))
        with self._writer_token(), self._write_engine.connect() as conn, conn.begin():
            if self.is_postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_WRITE_LOCK_KEY})
            boundary = int(conn.execute(_SEL_COMPACTED).scalar() or 0)
            target = conn.execute(newest_dropped).scalar()
            if target is None or int(target) <= boundary:
                return boundary
            boundary = int(target)
            # The boundary is committed before any row goes: a reader never sees a
            # shortened log without also seeing the boundary that explains it.
            conn.execute(meta.update().where(meta.c.key == "compacted", meta.c.value < boundary)
                         .values(value=boundary))
        doomed = select(_cc.revision).where(_cc.revision <= boundary).order_by(_cc.revision) \
            .limit(_COMPACT_BATCH).scalar_subquery()
        while True:
            with self._writer_token(), self._write_engine.connect() as conn, conn.begin():
                n = conn.execute(changes.delete().where(_cc.revision.in_(doomed))).rowcount
            if n < _COMPACT_BATCH:
                return boundary

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop the poll thread and close all connections. Idempotent."""
        with self._cond:
            self._closed = True
        self._poll_stop.set()
        if self._poll_thread is not None and self._poll_thread is not threading.current_thread():
            self._poll_thread.join(timeout=5)
        with self._writer_token():
            self._engine.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _row_change(r: Any) -> Change:
    body = bytes(r[5])
    return Change(revision=int(r[0]), type=r[1], resource=r[2], namespace=r[3], name=r[4],
                  obj=orjson.loads(body), raw=body)
