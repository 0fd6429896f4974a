"""The Controller base: informers -> handlers enqueue keys -> workers run `sync(key)`.

Like sample-controller:
- informer handlers only enqueue `namespace/name` keys (`enqueue`, `enqueue_after`);
- N worker threads take keys from a WorkQueue (a key is never synced by two workers at
  once) and call `sync(key)`;
- `sync` reads the informer caches, compares desired with actual, acts through the
  client, and is safe to run again at any time; it never mutates a cached object
  (`copy_deep()` first) and writes status through `/status` (`client.update_status`);
- an exception requeues the key with per-key exponential backoff; success forgets it.

Subclasses set `name` and `workers`, register handlers in `__init__` through
`self.ctx.informer(...)`, and implement `sync`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from mkube.api.types import ObjectReference, TopLevel
from mkube.client.controller import run_workers
from mkube.client.informer import Informer, SharedInformerFactory
from mkube.client.interface import BaseClient
from mkube.client.objects import key_of
from mkube.client.workqueue import WorkQueue
from mkube.controllers.options import ControllerOptions

M = TypeVar("M", bound=TopLevel)

log = logging.getLogger(__name__)


class Recorder(Protocol):
    """What controllers need of an event recorder (client.events.EventRecorder fits)."""

    def event(self, obj: Any, type_: str, reason: str, message: str, /) -> None: ...


@dataclass
class Context:
    """What every controller of one manager shares."""

    client: BaseClient
    informers: SharedInformerFactory
    recorder: Recorder
    options: ControllerOptions

    def informer(self, cls: type[M], namespace: str | None = None) -> Informer[M]:
        return self.informers.informer(cls, namespace)


class Controller:
    """See the module docstring."""

    name: str = "controller"

    def __init__(self, ctx: Context, workers: int = 2) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.options = ctx.options
        self.recorder = ctx.recorder
        self.workers = workers
        self.queue: WorkQueue[str] = WorkQueue(name=self.name, base_delay=ctx.options.backoff_base,
                                               max_delay=ctx.options.backoff_max)
        self._threads: list[threading.Thread] = []
        self._informers: list[Informer[Any]] = []

    # ------------------------------------------------------------------ wiring
    def watch(self, cls: type[M], on_add: Callable[[M], None] | None = None,
              on_update: Callable[[M, M], None] | None = None,
              on_delete: Callable[[M], None] | None = None, namespace: str | None = None) -> Informer[M]:
        """The shared informer of `cls`, with these handlers registered."""
        inf = self.ctx.informer(cls, namespace)
        if on_add or on_update or on_delete:
            inf.add_handler(on_add, on_update, on_delete)
        if inf not in self._informers:
            self._informers.append(inf)
        return inf

    def enqueue(self, obj: Any) -> None:
        """Queue the object's key (handlers call this and nothing slower)."""
        self.queue.add(obj if isinstance(obj, str) else key_of(obj))

    def enqueue_after(self, obj: Any, delay: float) -> None:
        self.queue.add_after(obj if isinstance(obj, str) else key_of(obj), delay)

    # ------------------------------------------------------------------ lifecycle
    def has_synced(self) -> bool:
        return all(inf.has_synced() for inf in self._informers)

    def start(self) -> None:
        """Start the worker threads (informers are started by the manager)."""
        self._threads = run_workers(self.queue, self._sync_logged, n=self.workers, name=self.name)

    def stop(self, timeout: float = 5.0) -> None:
        self.queue.shutdown()
        for t in self._threads:
            t.join(timeout)

    def _sync_logged(self, key: str) -> None:
        self.sync(key)

    def sync(self, key: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        """Record an Event; never lets a recorder failure break a sync."""
        try:
            self.recorder.event(obj, type_, reason, message)
        except Exception as e:  # events are best-effort, as in Kubernetes
            log.debug("%s: event %s for %s not recorded: %s", self.name, reason, key_of(obj), e)


def object_reference(obj: TopLevel) -> ObjectReference:
    return ObjectReference(api_version=obj.api_version, kind=obj.kind, namespace=obj.metadata.namespace,
                           name=obj.metadata.name, uid=obj.metadata.uid,
                           resource_version=obj.metadata.resource_version)


def split_key(key: str) -> tuple[str, str]:
    """`ns/name` -> (ns, name); `name` -> ("", name)."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else ("", ns)
