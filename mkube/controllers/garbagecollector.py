"""Garbage collector: delete objects whose owners are gone (Kubernetes' GC).

Every namespaced and cluster-scoped kind the API serves (except Events) is watched;
ownerReferences form a graph (gc_graph.Graph). Two work queues, keyed by uid:

- attempt-to-delete: an object whose owner may be gone. Its owners are classified by
  reading them (from the cache if present with the same uid, else from the API server):
  *solid* (exists), *dangling* (absent or a different uid), or *waiting* (being deleted
  in the foreground). With a solid owner, dangling/waiting references are removed;
  otherwise the object is deleted — in the foreground if it has dependents and an owner
  waits for it, else with the propagation its own finalizers ask for (background by
  default). Objects in foreground deletion (`foregroundDeletion` finalizer) wait until
  no dependent with blockOwnerDeletion=true is left, then the finalizer is removed.
- attempt-to-orphan: an owner deleted with propagationPolicy=Orphan (`orphan`
  finalizer): its references are removed from every dependent, then the finalizer.

Deleting a Deployment (background) thus removes its ReplicaSets, then their pods.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from mkube.api import kinds
from mkube.api.errors import is_not_found
from mkube.api.kinds import ResourceType
from mkube.api.types import OwnerReference, TopLevel
from mkube.client.controller import run_workers
from mkube.client.informer import Informer
from mkube.client.interface import PropagationPolicy
from mkube.client.objects import Obj
from mkube.client.retry import retry_on_conflict
from mkube.client.workqueue import WorkQueue
from mkube.controllers.base import Context, Controller
from mkube.controllers.gc_graph import (
    FOREGROUND_FINALIZER,
    ORPHAN_FINALIZER,
    Graph,
    Identity,
    Work,
    owner_identity,
)

log = logging.getLogger(__name__)

IGNORED_KINDS = frozenset({"Event"})


def collected_resources() -> list[ResourceType]:
    """The kinds the collector watches: everything deletable and watchable but Events."""
    return [rt for rt in kinds.RESOURCES
            if rt.kind not in IGNORED_KINDS and "watch" in rt.verbs and "delete" in rt.verbs]


def _namespaced(api_version: str, kind: str) -> bool:
    rt = kinds.by_kind(api_version, kind)
    return True if rt is None else rt.namespaced


def identity_of(rt: ResourceType, obj: TopLevel) -> Identity:
    return Identity(rt.api_version, rt.kind, obj.metadata.namespace or "" if rt.namespaced else "",
                    obj.metadata.name or "", obj.metadata.uid or "")


class _AbsentOwners:
    """Owner uids verified absent (bounded LRU), so siblings need not ask again."""

    def __init__(self, size: int = 4096) -> None:
        self._items: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def add(self, uid: str) -> None:
        with self._lock:
            self._items[uid] = None
            self._items.move_to_end(uid)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def __contains__(self, uid: object) -> bool:
        with self._lock:
            return uid in self._items


class GarbageCollector(Controller):
    """See the module docstring. `self.queue` is attempt-to-delete; `orphan_queue` the other."""

    name = "garbagecollector"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx, ctx.options.gc_workers)
        self.graph = Graph(_namespaced)
        self.absent = _AbsentOwners()
        self.orphan_queue: WorkQueue[str] = WorkQueue(name="garbagecollector-orphan",
                                                      base_delay=ctx.options.backoff_base,
                                                      max_delay=ctx.options.backoff_max)
        self._orphan_threads: list[threading.Thread] = []
        self.informers: dict[tuple[str, str], Informer[Any]] = {}
        for rt in collected_resources():
            model: Any = rt.model()
            inf = self.watch(model, self._handler_add(rt), self._handler_update(rt), self._handler_delete(rt))
            self.informers[(rt.api_version, rt.kind)] = inf

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        super().start()
        self._orphan_threads = run_workers(self.orphan_queue, self.attempt_to_orphan, n=1,
                                           name="garbagecollector-orphan")

    def stop(self, timeout: float = 5.0) -> None:
        self.orphan_queue.shutdown()
        for t in self._orphan_threads:
            t.join(timeout)
        super().stop(timeout)

    # ------------------------------------------------------------------ graph events
    def _dispatch(self, work: list[Work]) -> None:
        for item in work:
            (self.orphan_queue if item.kind == "orphan" else self.queue).add(item.uid)

    def _observe(self, rt: ResourceType, obj: TopLevel) -> None:
        md = obj.metadata
        self._dispatch(self.graph.observe(identity_of(rt, obj), md.owner_references or [],
                                          md.deletion_timestamp is not None, md.finalizers or []))

    def _handler_add(self, rt: ResourceType) -> Any:
        def on_add(obj: TopLevel) -> None:
            self._observe(rt, obj)
        return on_add

    def _handler_update(self, rt: ResourceType) -> Any:
        def on_update(old: TopLevel, new: TopLevel) -> None:
            if old.metadata.uid != new.metadata.uid:
                self._dispatch(self.graph.forget(old.metadata.uid or ""))
            elif old.metadata.resource_version == new.metadata.resource_version and new.metadata.uid in self.graph:
                return
            self._observe(rt, new)
        return on_update

    def _handler_delete(self, rt: ResourceType) -> Any:
        def on_delete(obj: TopLevel) -> None:
            uid = obj.metadata.uid or ""
            node = self.graph.get(uid)
            if node is not None and node.dependents:
                self.absent.add(uid)
            self._dispatch(self.graph.forget(uid))
        return on_delete

    # ------------------------------------------------------------------ reading
    def _resource(self, ident: Identity) -> ResourceType | None:
        return kinds.by_kind(ident.api_version, ident.kind)

    def _get(self, ident: Identity) -> Obj | None:
        """The object from the API server, or None if absent or a different uid."""
        rt = self._resource(ident)
        if rt is None:
            return None
        try:
            obj = self.client.get_raw(rt, ident.name, ident.namespace or None)
        except Exception as e:
            if is_not_found(e):
                return None
            raise
        if (obj.get("metadata") or {}).get("uid") != ident.uid:
            return None
        return obj

    def _classify(self, dependent: Identity, refs: list[OwnerReference]
                  ) -> tuple[list[OwnerReference], list[OwnerReference], list[OwnerReference]]:
        """(solid, dangling, waiting-for-dependents-deletion) owners of `dependent`."""
        solid: list[OwnerReference] = []
        dangling: list[OwnerReference] = []
        waiting: list[OwnerReference] = []
        for ref in refs:
            rt = kinds.by_kind(ref.api_version or "", ref.kind or "")
            if rt is None:
                solid.append(ref)  # a kind we do not serve: never delete on its account
                continue
            ident = owner_identity(ref, dependent.namespace, rt.namespaced)
            if ident.uid in self.absent:
                dangling.append(ref)
                continue
            inf = self.informers.get((rt.api_version, rt.kind))
            cached = inf.get_by_name(ident.name, ident.namespace or None) if inf is not None else None
            if cached is not None and cached.metadata.uid == ident.uid:
                owner_md: dict[str, Any] = {"deletionTimestamp": cached.metadata.deletion_timestamp,
                                            "finalizers": cached.metadata.finalizers or []}
            else:
                owner = self._get(ident)
                if owner is None:
                    self.absent.add(ident.uid)
                    dangling.append(ref)
                    continue
                owner_md = owner.get("metadata") or {}
            if owner_md.get("deletionTimestamp") and FOREGROUND_FINALIZER in (owner_md.get("finalizers") or []):
                waiting.append(ref)
            else:
                solid.append(ref)
        return solid, dangling, waiting

    # ------------------------------------------------------------------ attempt to delete
    def sync(self, key: str) -> None:
        self.attempt_to_delete(key)

    def attempt_to_delete(self, uid: str) -> None:
        node = self.graph.get(uid)
        if node is None:
            return
        if node.being_deleted and not node.deleting_dependents:
            return
        ident = node.identity
        latest = self._get(ident)
        if latest is None:
            if node.virtual or ident.uid not in self.absent:
                self.absent.add(ident.uid)
            self._dispatch(self.graph.forget(uid))
            return
        if node.virtual:
            # it exists: the informer will report it (if we watch its kind)
            if self._resource(ident) is not None and (ident.api_version, ident.kind) in self.informers:
                self.enqueue_after(uid, 1.0)
            return
        md = latest.get("metadata") or {}
        if node.deleting_dependents:
            self._process_deleting_dependents(node.identity, md)
            return
        refs = [OwnerReference.from_dict(r) for r in md.get("ownerReferences") or []]
        if not refs:
            return
        solid, dangling, waiting = self._classify(ident, refs)
        rt = self._resource(ident)
        assert rt is not None
        if solid:
            if not dangling and not waiting:
                return
            drop = {r.uid for r in [*dangling, *waiting]}
            log.info("gc: removing dangling owner references %s from %s", sorted(u or "" for u in drop), ident)
            self._update_owner_refs(rt, ident, lambda rs: [r for r in rs if r.get("uid") not in drop])
            return
        if waiting and self.graph.dependents(uid):
            if any(d.deleting_dependents for d in self.graph.dependents(uid)):
                # break a cycle: stop blocking the owners that wait for us
                wait_uids = {r.uid for r in waiting}
                self._update_owner_refs(rt, ident, lambda rs: [
                    {**r, "blockOwnerDeletion": False} if r.get("uid") in wait_uids else r for r in rs])
            log.info("gc: deleting %s in the foreground (its owner waits for it)", ident)
            self._delete(rt, ident, "Foreground")
            return
        finalizers = md.get("finalizers") or []
        policy: PropagationPolicy = ("Orphan" if ORPHAN_FINALIZER in finalizers else
                  "Foreground" if FOREGROUND_FINALIZER in finalizers else "Background")
        log.info("gc: deleting %s (owners gone), propagation %s", ident, policy)
        self._delete(rt, ident, policy)

    def _delete(self, rt: ResourceType, ident: Identity, policy: PropagationPolicy) -> None:
        try:
            self.client.delete(rt, ident.name, ident.namespace or None, propagation_policy=policy,
                               preconditions={"uid": ident.uid})
        except Exception as e:
            if not is_not_found(e):
                raise

    def _process_deleting_dependents(self, ident: Identity, md: dict[str, Any]) -> None:
        blocking = self.graph.blocking_dependents(ident.uid)
        if not blocking:
            self._remove_finalizer(ident, FOREGROUND_FINALIZER)
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self.queue.add(dep.identity.uid)

    # ------------------------------------------------------------------ attempt to orphan
    def attempt_to_orphan(self, uid: str) -> None:
        node = self.graph.get(uid)
        if node is None:
            return
        for dep in self.graph.dependents(uid):
            rt = self._resource(dep.identity)
            if rt is None:
                continue
            self._update_owner_refs(rt, dep.identity, lambda rs: [r for r in rs if r.get("uid") != uid])
        self._remove_finalizer(node.identity, ORPHAN_FINALIZER)

    # ------------------------------------------------------------------ writes
    def _update_owner_refs(self, rt: ResourceType, ident: Identity, change: Any) -> None:
        """Read-modify-write the object's ownerReferences (retried on Conflict)."""
        def attempt() -> None:
            obj = self._get(ident)
            if obj is None:
                return
            md = obj.setdefault("metadata", {})
            refs = md.get("ownerReferences") or []
            new = change(refs)
            if new == refs:
                return
            md["ownerReferences"] = new
            self.client.update_raw(rt, obj, ident.namespace or None)

        try:
            retry_on_conflict(attempt)
        except Exception as e:
            if not is_not_found(e):
                raise

    def _remove_finalizer(self, ident: Identity, finalizer: str) -> None:
        rt = self._resource(ident)
        if rt is None:
            return

        def attempt() -> None:
            obj = self._get(ident)
            if obj is None:
                return
            md = obj.setdefault("metadata", {})
            finalizers = md.get("finalizers") or []
            if finalizer not in finalizers:
                return
            md["finalizers"] = [f for f in finalizers if f != finalizer]
            self.client.update_raw(rt, obj, ident.namespace or None)

        try:
            retry_on_conflict(attempt)
        except Exception as e:
            if not is_not_found(e):
                raise
        log.info("gc: removed finalizer %s from %s", finalizer, ident)
