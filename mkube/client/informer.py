"""Informer: a list+watch cache of one kind, kept current by a background thread.

Guarantees:
- After `wait_for_sync()` returned True, the cache holds what the server had at one
  resourceVersion or later, and follows every change the server reports.
- Handlers run in the informer's thread, one event at a time, in the order of the
  server's changes, *after* the cache reflects the change. `on_add(obj)`,
  `on_update(old, new)`, `on_delete(obj)` (the last known state; also for objects that
  vanished while the watch was broken and were noticed by a relist). A handler added
  later first receives `on_add` for every cached object. Handlers must be quick (enqueue
  a key and return); exceptions in handlers are logged and do not stop the informer.
- Watches resume from the last seen resourceVersion (BOOKMARK events advance it). On
  410 Gone the informer relists and reconciles the cache, firing add/update/delete for
  the differences. Other failures (server down, broken stream) are retried with
  exponential backoff (0.5 s doubling to 30 s).
- `resync_period`: every so often, `on_update(obj, obj)` for every cached object (so
  controllers re-check state that may drift outside the API).

Cached objects are shared, read-only instances: `get`/`list`/`by_index` and handlers
hand out the cached object itself for speed. Never mutate one; call `.copy_deep()` first.
"""

from __future__ import annotations

import builtins
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic

from mkube.api.errors import ApiError
from mkube.api.kinds import ResourceType
from mkube.client.interface import BaseClient
from mkube.client.objects import M, ObjectList, ResourceLike, Watch, key_of, resource_for

log = logging.getLogger(__name__)

IndexFunc = Callable[[Any], Iterable[str]]
NAMESPACE_INDEX = "namespace"


@dataclass(eq=False)
class HandlerRegistration(Generic[M]):
    """Returned by `add_handler`; pass to `remove_handler`."""

    on_add: Callable[[M], None] | None = None
    on_update: Callable[[M, M], None] | None = None
    on_delete: Callable[[M], None] | None = None


def _namespace_index(obj: Any) -> list[str]:
    return [obj.metadata.namespace or ""]


class _Backoff:
    def __init__(self, initial: float = 0.5, maximum: float = 30.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * (2 ** min(self.failures, 16)))
        self.failures += 1
        return delay * (0.8 + 0.4 * random.random())

    def reset(self) -> None:
        self.failures = 0


class Informer(Generic[M]):
    """See the module docstring. Create, add handlers/indexes, `start()`, `wait_for_sync()`."""

    def __init__(self, client: BaseClient, cls: type[M], namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resync_period: float | None = None, watch_timeout: tuple[int, int] = (300, 600)) -> None:
        self.client = client
        self.cls = cls
        self.resource: ResourceType = resource_for(cls)
        self.namespace = namespace if self.resource.namespaced else None
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.watch_timeout = watch_timeout
        self.name = f"informer-{self.resource.group_resource}" + (f"-{namespace}" if namespace else "")

        self._lock = threading.RLock()  # guards the cache and indices
        self._dispatch = threading.RLock()  # serialises cache changes + handler calls
        self._items: dict[str, M] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self._handlers: list[HandlerRegistration[M]] = []
        self._synced = threading.Event()
        self._stopped = threading.Event()
        self._started = False
        self._thread: threading.Thread | None = None
        self._resync_thread: threading.Thread | None = None
        self._watch: Watch[M] | None = None
        self._resource_version = ""
        self.add_index(NAMESPACE_INDEX, _namespace_index)

    # ------------------------------------------------------------------ configuration
    def add_index(self, name: str, fn: Callable[[M], Iterable[str]]) -> None:
        """Maintain index `name`: each object is filed under every value `fn(obj)` returns."""
        with self._lock:
            self._indexers[name] = fn
            index: dict[str, set[str]] = {}
            for key, obj in self._items.items():
                for value in self._index_values(fn, obj):
                    index.setdefault(value, set()).add(key)
            self._indices[name] = index

    def add_handler(self, on_add: Callable[[M], None] | None = None,
                    on_update: Callable[[M, M], None] | None = None,
                    on_delete: Callable[[M], None] | None = None) -> HandlerRegistration[M]:
        """Register callbacks (see module docstring); existing objects are replayed as adds."""
        reg: HandlerRegistration[M] = HandlerRegistration(on_add, on_update, on_delete)
        with self._dispatch:
            if on_add is not None:
                for obj in self.list():
                    self._call(on_add, obj)
            self._handlers.append(reg)
        return reg

    def remove_handler(self, reg: HandlerRegistration[M]) -> None:
        with self._dispatch:
            if reg in self._handlers:
                self._handlers.remove(reg)

    # ------------------------------------------------------------------ reading the cache
    def get(self, key: str) -> M | None:
        """The cached object of `namespace/name` (or `name` for cluster-scoped kinds)."""
        with self._lock:
            return self._items.get(key)

    def get_by_name(self, name: str, namespace: str | None = None) -> M | None:
        return self.get(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str | None = None) -> builtins.list[M]:
        """Cached objects (of one namespace if given), ordered by key."""
        with self._lock:
            if namespace is None:
                return [self._items[k] for k in sorted(self._items)]
            keys = self._indices[NAMESPACE_INDEX].get(namespace, set())
            return [self._items[k] for k in sorted(keys)]

    def keys(self) -> builtins.list[str]:
        with self._lock:
            return sorted(self._items)

    def by_index(self, name: str, value: str) -> builtins.list[M]:
        """Cached objects filed under `value` in index `name` (KeyError if no such index)."""
        with self._lock:
            keys = self._indices[name].get(value, set())
            return [self._items[k] for k in sorted(keys)]

    def index_keys(self, name: str, value: str) -> builtins.list[str]:
        with self._lock:
            return sorted(self._indices[name].get(value, set()))

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def last_sync_resource_version(self) -> str:
        """The resourceVersion the cache is known to be current at."""
        return self._resource_version

    def has_synced(self) -> bool:
        """True once the first list is in the cache and its handlers ran."""
        return self._synced.is_set()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Block until synced (True) or `timeout` seconds passed / the informer stopped (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._synced.is_set() and not self._stopped.is_set():
            remaining = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if remaining <= 0:
                break
            self._synced.wait(remaining)
        return self._synced.is_set()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the list+watch thread (and the resync thread); idempotent."""
        with self._lock:
            if self._started:
                return
            self._started = True
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
            if self.resync_period:
                self._resync_thread = threading.Thread(target=self._resync_loop, name=f"{self.name}-resync",
                                                       daemon=True)
                self._resync_thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads (the open watch is closed); waits up to `timeout` seconds."""
        self._stopped.set()
        with self._lock:
            watch = self._watch
        if watch is not None:
            watch.close()
        current = threading.current_thread()
        for t in (self._thread, self._resync_thread):
            if t is not None and t is not current:
                t.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        backoff = _Backoff()
        resource_version: str | None = None  # None: (re)list first
        watch_failures = 0
        while not self._stopped.is_set():
            try:
                if resource_version is None:
                    resource_version = self._relist()
                    watch_failures = 0
                resource_version = self._watch_once(resource_version)
                backoff.reset()
                watch_failures = 0
            except ApiError as e:
                if self._stopped.is_set():
                    break
                if e.code == 410:
                    log.info("%s: resourceVersion %s expired (%s); relisting", self.name, resource_version, e)
                    resource_version = None
                    if backoff.failures == 0:  # relist at once the first time
                        backoff.failures = 1
                        continue
                else:
                    watch_failures += 1
                    log.warning("%s: list/watch failed: %s", self.name, e)
                    if watch_failures >= 3:
                        resource_version = None  # the server may have lost our place; start over
                self._stopped.wait(backoff.next())
            except Exception:
                if self._stopped.is_set():
                    break
                log.exception("%s: unexpected error in list/watch", self.name)
                watch_failures += 1
                if watch_failures >= 3:
                    resource_version = None
                self._stopped.wait(backoff.next())
        log.debug("%s: stopped", self.name)

    def _relist(self) -> str:
        listed: ObjectList[M] = self.client.list(self.cls, self.namespace, self.label_selector,
                                                 self.field_selector)
        fresh = {key_of(obj): obj for obj in listed.items}
        with self._dispatch:
            with self._lock:
                old = self._items
                self._items = fresh
                self._rebuild_indices()
                self._resource_version = listed.resource_version
            for key in sorted(fresh):
                obj = fresh[key]
                before = old.get(key)
                if before is None:
                    self._notify_add(obj)
                elif before.metadata.resource_version != obj.metadata.resource_version:
                    self._notify_update(before, obj)
            for key in sorted(set(old) - set(fresh)):
                self._notify_delete(old[key])
            self._synced.set()
        return listed.resource_version

    def _watch_once(self, resource_version: str) -> str:
        """Follow one watch stream until it ends; returns the last resourceVersion seen."""
        watch = self.client.watch(self.cls, self.namespace, resource_version, self.label_selector,
                                  self.field_selector, timeout_seconds=random.randint(*self.watch_timeout),
                                  allow_bookmarks=True)
        with self._lock:
            self._watch = watch
        try:
            if self._stopped.is_set():
                return resource_version
            for event in watch:
                if self._stopped.is_set():
                    break
                rv = event.object.metadata.resource_version or resource_version
                if event.type == "BOOKMARK":
                    resource_version = rv
                    self._resource_version = rv
                    continue
                self._apply(event.type, event.object)
                resource_version = rv
        finally:
            with self._lock:
                self._watch = None
            watch.close()
        return resource_version

    def _apply(self, etype: str, obj: M) -> None:
        key = key_of(obj)
        with self._dispatch:
            with self._lock:
                before = self._items.get(key)
                if etype == "DELETED":
                    self._items.pop(key, None)
                else:
                    self._items[key] = obj
                self._reindex(key, before, None if etype == "DELETED" else obj)
                self._resource_version = obj.metadata.resource_version or self._resource_version
            if etype == "DELETED":
                self._notify_delete(obj)
            elif etype in ("ADDED", "MODIFIED"):
                if before is None:
                    self._notify_add(obj)
                else:
                    self._notify_update(before, obj)
            else:
                log.warning("%s: ignoring watch event of type %s", self.name, etype)

    def _resync_loop(self) -> None:
        assert self.resync_period
        while not self._stopped.wait(self.resync_period):
            if not self._synced.is_set():
                continue
            with self._dispatch:
                for obj in self.list():
                    if self._stopped.is_set():
                        return
                    self._notify_update(obj, obj)

    # ------------------------------------------------------------------ indices
    @staticmethod
    def _index_values(fn: IndexFunc, obj: Any) -> builtins.list[str]:
        try:
            return [str(v) for v in fn(obj) or ()]
        except Exception:
            log.exception("index function failed for %s", key_of(obj))
            return []

    def _rebuild_indices(self) -> None:
        for name, fn in self._indexers.items():
            index: dict[str, set[str]] = {}
            for key, obj in self._items.items():
                for value in self._index_values(fn, obj):
                    index.setdefault(value, set()).add(key)
            self._indices[name] = index

    def _reindex(self, key: str, before: M | None, after: M | None) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            if before is not None:
                for value in self._index_values(fn, before):
                    keys = index.get(value)
                    if keys is not None:
                        keys.discard(key)
                        if not keys:
                            del index[value]
            if after is not None:
                for value in self._index_values(fn, after):
                    index.setdefault(value, set()).add(key)

    # ------------------------------------------------------------------ handlers
    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("%s: event handler %s failed", self.name, getattr(fn, "__qualname__", fn))

    def _notify_add(self, obj: M) -> None:
        for h in list(self._handlers):
            if h.on_add is not None:
                self._call(h.on_add, obj)

    def _notify_update(self, old: M, new: M) -> None:
        for h in list(self._handlers):
            if h.on_update is not None:
                self._call(h.on_update, old, new)

    def _notify_delete(self, obj: M) -> None:
        for h in list(self._handlers):
            if h.on_delete is not None:
                self._call(h.on_delete, obj)


class SharedInformerFactory:
    """One informer per (kind, namespace, selectors), shared by every controller of a process.

    `informer(Pod)` returns the same Informer each time; `start()` starts those not yet
    running (informers requested after `start()` start at once); `wait_for_sync()` waits
    for all of them; `stop()` stops all.
    """

    def __init__(self, client: BaseClient, resync_period: float | None = None,
                 namespace: str | None = None) -> None:
        self.client = client
        self.resync_period = resync_period
        self.namespace = namespace
        self._lock = threading.Lock()
        self._informers: dict[tuple[ResourceType, str | None, str | None, str | None], Informer[Any]] = {}
        self._started = False

    def informer(self, cls: type[M], namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None) -> Informer[M]:
        ns = namespace if namespace is not None else self.namespace
        rt = resource_for(cls)
        key = (rt, ns if rt.namespaced else None, label_selector or None, field_selector or None)
        with self._lock:
            inf = self._informers.get(key)
            if inf is None:
                inf = Informer(self.client, cls, ns, label_selector, field_selector, self.resync_period)
                self._informers[key] = inf
                if self._started:
                    inf.start()
            return inf

    def for_resource(self, resource: ResourceLike) -> Informer[Any]:
        """The informer of a kind named by ResourceType or string ("pods")."""
        return self.informer(resource_for(resource).model())  # type: ignore[type-var]

    def start(self) -> None:
        with self._lock:
            self._started = True
            informers = list(self._informers.values())
        for inf in informers:
            inf.start()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        """True when every informer synced within `timeout` seconds (in total)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            informers = list(self._informers.values())
        for inf in informers:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not inf.wait_for_sync(remaining):
                return False
        return True

    def stop(self) -> None:
        with self._lock:
            informers = list(self._informers.values())
        for inf in informers:
            inf._stopped.set()
        for inf in informers:
            inf.stop()
