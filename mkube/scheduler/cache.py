"""The scheduler's view of nodes and the pods on them, including its own decisions.

A pod is *assumed* on a node the moment the scheduler decides, before the binding is
written or observed, so the next decision already sees the node's resources as used:
back-to-back decisions can never overcommit a node. Then exactly one of:
- `add_pod` (the informer shows the pod bound): the assumption is confirmed (moved if
  the server bound it elsewhere, e.g. an earlier scheduler process did);
- `forget_pod` (the binding failed): the pod is taken off the node;
- expiry: an assumed pod whose binding finished (`finish_binding`) but which the watch
  has not shown bound within `assumed_ttl` seconds is dropped by `cleanup_expired`.

Thread-safe (one lock). `snapshot()` is cheap: NodeInfos are immutable, so a Snapshot
is a tuple of references, rebuilt only when something changed.
"""

from __future__ import annotations

import hashlib
import threading
import time
from bisect import insort
from collections.abc import Callable
from dataclasses import dataclass

from mkube.api.types import Node, Pod
from mkube.scheduler.nodeinfo import NodeInfo, PodInfo, Snapshot


@dataclass
class _PodState:
    pod: PodInfo
    node: str
    assumed: bool
    binding_finished: bool = False
    deadline: float | None = None


class AlreadyInCache(Exception):
    """assume_pod for a pod the cache already holds (assumed or bound)."""


class SchedulerCache:
    def __init__(self, assumed_ttl: float = 30.0, seed: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.RLock()
        self._ttl = assumed_ttl
        self._seed = seed
        self._clock = clock
        self._infos: dict[str, NodeInfo] = {}  # includes nodes we only know from pods (node=None)
        self._order: list[tuple[bytes, str]] = []  # nodes with a Node object, in seeded order
        # The snapshot's node list, kept in step with _infos so that a snapshot costs one
        # tuple copy; rebuilt from _order only after nodes come or go.
        self._list: list[NodeInfo] = []
        self._index: dict[str, int] = {}
        self._order_dirty = False
        self._soft_tainted = 0  # nodes with PreferNoSchedule taints
        self._pods: dict[str, _PodState] = {}
        self._generation = 0
        self._snapshot: Snapshot = Snapshot(())
        self._snapshot_generation = 0

    # ------------------------------------------------------------------ nodes
    def _order_key(self, name: str) -> tuple[bytes, str]:
        """A stable pseudo-random position per node: a seeded shuffle that does not
        reshuffle the others when a node comes or goes."""
        return hashlib.blake2b(f"{self._seed}:{name}".encode(), digest_size=8).digest(), name

    def _put(self, name: str, info: NodeInfo | None) -> None:
        """Replace (None: drop) a node's NodeInfo, keeping the snapshot list in step."""
        old = self._infos.get(name)
        if old is not None and old.node is not None and old.soft_taints:
            self._soft_tainted -= 1
        if info is None:
            self._infos.pop(name, None)
        else:
            self._infos[name] = info
            if info.node is not None and info.soft_taints:
                self._soft_tainted += 1
            idx = self._index.get(name)
            if idx is not None and not self._order_dirty:
                self._list[idx] = info
        self._generation += 1

    def add_node(self, node: Node) -> None:
        """Add or update a Node (idempotent)."""
        name = node.metadata.name or ""
        with self._lock:
            old = self._infos.get(name)
            if old is None or old.node is None:
                insort(self._order, self._order_key(name))
                self._order_dirty = True
            self._put(name, NodeInfo(node) if old is None else old.with_node(node))

    update_node = add_node

    def remove_node(self, name: str) -> None:
        """Forget a Node; pods still recorded on it stay until they are removed."""
        with self._lock:
            old = self._infos.get(name)
            if old is None or old.node is None:
                return
            self._order.remove(self._order_key(name))
            self._order_dirty = True
            self._put(name, old.with_node(None) if old.pods else None)

    def node_names(self) -> list[str]:
        with self._lock:
            return [name for _, name in self._order]

    def node_info(self, name: str) -> NodeInfo | None:
        with self._lock:
            return self._infos.get(name)

    # ------------------------------------------------------------------ pods
    def _place(self, pod: PodInfo, node: str) -> None:
        info = self._infos.get(node)
        self._put(node, (info or NodeInfo(None, node)).with_pod(pod))

    def _unplace(self, key: str, node: str) -> None:
        info = self._infos.get(node)
        if info is None:
            return
        info = info.without_pod(key)
        self._put(node, None if info.node is None and not info.pods else info)

    def assume_pod(self, pod: PodInfo, node: str) -> None:
        """Count `pod` on `node` now. Raises AlreadyInCache if the pod is known."""
        with self._lock:
            if pod.key in self._pods:
                raise AlreadyInCache(pod.key)
            self._pods[pod.key] = _PodState(pod, node, assumed=True)
            self._place(pod, node)

    def finish_binding(self, key: str) -> None:
        """The binding call returned: start the assumed pod's expiry clock."""
        with self._lock:
            st = self._pods.get(key)
            if st is not None and st.assumed:
                st.binding_finished = True
                st.deadline = self._clock() + self._ttl

    def forget_pod(self, key: str) -> bool:
        """Undo an assumption (binding failed). True if an assumed pod was removed."""
        with self._lock:
            st = self._pods.get(key)
            if st is None or not st.assumed:
                return False
            del self._pods[key]
            self._unplace(key, st.node)
            return True

    def add_pod(self, pod: Pod | PodInfo) -> None:
        """A pod observed bound to `spec.nodeName` (add or update; confirms an assumption)."""
        if isinstance(pod, PodInfo):
            key, node, uid = pod.key, pod.node_name, pod.uid
        else:
            key, node, uid = pod.metadata.key, pod.spec.node_name or "", pod.metadata.uid or ""
        if not node:
            return
        with self._lock:
            st = self._pods.get(key)
            if st is not None and st.assumed and st.node == node and st.pod.uid == uid:
                # Our own binding, observed: the node already counts this pod (pod specs
                # are immutable where resources and ports are concerned), so confirming
                # changes no NodeInfo and leaves the snapshot as it is.
                st.assumed, st.binding_finished, st.deadline = False, False, None
                return
        info = pod if isinstance(pod, PodInfo) else PodInfo(pod)
        with self._lock:
            st = self._pods.get(info.key)
            if st is not None:
                self._unplace(info.key, st.node)
            self._pods[info.key] = _PodState(info, node, assumed=False)
            self._place(info, node)

    update_pod = add_pod

    def remove_pod(self, key: str) -> bool:
        """The pod is gone (deleted or finished), assumed or not. True if it was here."""
        with self._lock:
            st = self._pods.pop(key, None)
            if st is None:
                return False
            self._unplace(key, st.node)
            return True

    def is_assumed(self, key: str) -> bool:
        with self._lock:
            st = self._pods.get(key)
            return st is not None and st.assumed

    def has_pod(self, key: str) -> bool:
        with self._lock:
            return key in self._pods

    def node_of(self, key: str) -> str | None:
        with self._lock:
            st = self._pods.get(key)
            return st.node if st is not None else None

    def assumed_count(self) -> int:
        with self._lock:
            return sum(1 for st in self._pods.values() if st.assumed)

    def pod_count(self) -> int:
        with self._lock:
            return len(self._pods)

    def cleanup_expired(self, now: float | None = None) -> list[str]:
        """Drop assumed pods whose binding finished more than `assumed_ttl` ago without
        the watch ever showing them bound. Returns their keys."""
        with self._lock:
            now = self._clock() if now is None else now
            expired = [key for key, st in self._pods.items()
                       if st.assumed and st.binding_finished and st.deadline is not None and st.deadline <= now]
            for key in expired:
                st = self._pods.pop(key)
                self._unplace(key, st.node)
            return expired

    # ------------------------------------------------------------------ snapshot
    def snapshot(self) -> Snapshot:
        """The current nodes (those with a Node object), read-only, in seeded order."""
        with self._lock:
            if self._snapshot_generation != self._generation:
                if self._order_dirty:
                    self._list = [self._infos[name] for _, name in self._order]
                    self._index = {name: i for i, (_, name) in enumerate(self._order)}
                    self._order_dirty = False
                self._snapshot = Snapshot(self._list, has_soft_taints=self._soft_tainted > 0)
                self._snapshot_generation = self._generation
            return self._snapshot
