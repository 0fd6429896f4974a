"""The storage contract the API server programs against.

One global revision counter (like etcd/kine): every create, update and delete writes
the current-state row and appends one row to the change log in the same transaction;
the log row's revision *is* the object's new `metadata.resourceVersion` (as a string
on the wire). Reads of current state never scan the log.

Objects cross this boundary as wire dicts (camelCase). The store owns exactly one
field of the body: `metadata.resourceVersion`, which it sets on every write. All
other metadata (uid, creationTimestamp, generation, deletionTimestamp) is the API
server's job.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Obj = dict[str, Any]
EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True)
class Change:
    """One row of the change log, as watchers receive it.

    `obj` is the object after the change (for DELETED: its last state, with the
    delete's revision as resourceVersion). `raw` is `obj` serialised once as JSON
    bytes, so that N watchers do not serialise it N times. Never mutate `obj`.
    """

    revision: int
    type: EventType
    resource: str  # plural with group, e.g. "pods", "deployments.apps"
    namespace: str  # "" for cluster-scoped
    name: str
    obj: Obj
    raw: bytes


@dataclass(frozen=True)
class ListResult:
    """A page of objects plus the revision the page is consistent with."""

    items: list[Obj]
    revision: int  # the store revision at read time -> list metadata.resourceVersion
    continue_token: str | None  # opaque; None when this is the last page
    remaining: int | None = None  # remainingItemCount when paging


class Store(Protocol):
    """Implemented by `apiserver.storage.sql.SqlStore` (SQLite or PostgreSQL).

    `resource` is the group-qualified plural ("pods", "deployments.apps").
    `namespace` is "" for cluster-scoped resources. All methods are thread-safe;
    they may block (call them from a worker thread, not the event loop).
    """

    def create(self, resource: str, namespace: str, name: str, obj: Obj) -> Obj:
        """Insert; returns the stored object with resourceVersion set.
        Raises errors.AlreadyExists if (resource, namespace, name) exists."""
        ...

    def get(self, resource: str, namespace: str, name: str) -> Obj:
        """Current state. Raises errors.NotFound."""
        ...

    def list(self, resource: str, namespace: str | None, *, limit: int | None = None,
             continue_token: str | None = None,
             predicate: Callable[[Obj], bool] | None = None) -> ListResult:
        """Objects ordered by (namespace, name); namespace None = all namespaces.
        `predicate` filters before `limit` is applied. A bad/expired continue token
        raises errors.Gone (410) or errors.BadRequest."""
        ...

    def update(self, resource: str, namespace: str, name: str, obj: Obj,
               expected_revision: int | None = None) -> Obj:
        """Replace. If expected_revision is given and differs from the stored
        resourceVersion -> errors.Conflict. Raises errors.NotFound."""
        ...

    def guaranteed_update(self, resource: str, namespace: str, name: str,
                          mutate: Callable[[Obj], Obj | None]) -> Obj:
        """Read-modify-write in one transaction: `mutate(current_copy)` returns the new
        object, or None for "no change" (then nothing is written and the current object
        is returned). Exceptions from `mutate` abort the transaction and propagate."""
        ...

    def delete(self, resource: str, namespace: str, name: str,
               expected_revision: int | None = None, expected_uid: str | None = None) -> Obj:
        """Remove; returns the last state with the delete's revision as resourceVersion.
        Precondition mismatch -> errors.Conflict. Raises errors.NotFound."""
        ...

    def current_revision(self) -> int:
        ...

    def changes_since(self, revision: int, resource: str | None = None) -> builtins.list[Change]:
        """Log rows with revision > `revision`, oldest first (optionally one resource).
        Raises errors.Gone if `revision` is older than the compacted window."""
        ...

    def compact(self, keep: int) -> int:
        """Drop all but the newest `keep` log rows; returns the new oldest-kept boundary.
        Watches from before it then get 410 Gone."""
        ...

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call `callback` (from the writing thread) after each committed change, in
        revision order; returns an unsubscribe function. For several API servers on one
        PostgreSQL the store also polls the log and delivers others' changes."""
        ...

    def close(self) -> None:
        ...


WRITE_METHODS = ("create", "update", "guaranteed_update", "delete")


async def write_async(store: Store, method: str, *args: Any) -> Obj:
    """Await the store write `method` (one of WRITE_METHODS) from an event loop.

    A store that offers `<method>_async` (SqlStore: a future its writer thread resolves)
    is awaited directly, without a threadpool hop; any other store's blocking method
    runs in a worker thread. Same result and errors as the blocking call."""
    assert method in WRITE_METHODS, method
    direct = getattr(store, method + "_async", None)
    if direct is not None:
        result: Obj = await direct(*args)
        return result
    return await asyncio.to_thread(getattr(store, method), *args)  # type: ignore[no-any-return]
