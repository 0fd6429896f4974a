"""The scheduling queue: which pending pod to try next, and when to retry one that failed.

Three places a pod waits, as in kube-scheduler:
- active: ready to be tried, ordered by priority (high first) then age (first enqueued);
- backoff: tried and failed, waiting out its backoff (1 s doubling per attempt, 10 s cap);
- unschedulable: no node fitted; parked until the cluster changes in a way that may help
  (`move_all`: a node added or made roomier, a pod deleted) and in any case for at most
  `max_unschedulable` seconds (60 s). A moved pod still in backoff goes to backoff.

A pod popped for scheduling is *in flight* until `done` (scheduled and bound) or
`requeue_unschedulable` / `requeue_backoff`. If a move request came while it was in
flight (the cluster changed during its attempt), a failed pod goes to backoff rather
than being parked, so that the change is never missed.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mkube.scheduler.nodeinfo import PodInfo

ACTIVE, BACKOFF, UNSCHEDULABLE, IN_FLIGHT = "active", "backoff", "unschedulable", "in-flight"


@dataclass(eq=False)
class QueuedPod:
    """A pending pod and its scheduling history."""

    pod: PodInfo
    timestamp: float  # first enqueued: the "age" used for ordering
    attempts: int = 0
    failed_at: float = 0.0
    cycle: int = 0  # scheduling cycle of the last pop
    where: str = ACTIVE
    seq: int = field(default=0)

    @property
    def key(self) -> str:
        return self.pod.key


def _spec_changed(old: PodInfo, new: PodInfo) -> bool:
    """Whether an update may change where the pod fits (status-only writes do not)."""
    a, b = old.pod, new.pod
    return a.spec != b.spec or a.metadata.labels != b.metadata.labels


class SchedulingQueue:
    def __init__(self, initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 max_unschedulable: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self._clock = clock
        self._cond = threading.Condition()
        self._pods: dict[str, QueuedPod] = {}
        self._parked: dict[str, QueuedPod] = {}  # the UNSCHEDULABLE subset of _pods
        self._active: list[tuple[int, float, int, QueuedPod]] = []
        self._backoff: list[tuple[float, int, QueuedPod]] = []
        self._seq = itertools.count()
        self._cycle = 0
        self._move_request_cycle = -1
        self._next_leftover_check = 0.0
        self._closed = False

    # ------------------------------------------------------------------ bookkeeping
    def backoff_duration(self, attempts: int) -> float:
        """1 s for the first failure, doubling per attempt, capped at `max_backoff`."""
        return min(self.initial_backoff * (2 ** max(attempts - 1, 0)), self.max_backoff)

    def _backoff_expiry(self, qp: QueuedPod) -> float:
        return qp.failed_at + self.backoff_duration(qp.attempts)

    def _unpark(self, qp: QueuedPod) -> None:
        if self._parked.get(qp.key) is qp:
            del self._parked[qp.key]

    def _push_active(self, qp: QueuedPod) -> None:
        self._unpark(qp)
        qp.where = ACTIVE
        qp.seq = next(self._seq)
        heapq.heappush(self._active, (-qp.pod.priority, qp.timestamp, qp.seq, qp))
        self._cond.notify()

    def _push_backoff(self, qp: QueuedPod) -> None:
        self._unpark(qp)
        qp.where = BACKOFF
        qp.seq = next(self._seq)
        heapq.heappush(self._backoff, (self._backoff_expiry(qp), qp.seq, qp))
        self._cond.notify()

    def _live(self, qp: QueuedPod, where: str) -> bool:
        """Heap entries are removed lazily: an entry counts only if still current."""
        return self._pods.get(qp.key) is qp and qp.where == where

    def _to_active_or_backoff(self, qp: QueuedPod, now: float) -> None:
        if qp.attempts and self._backoff_expiry(qp) > now:
            self._push_backoff(qp)
        else:
            self._push_active(qp)

    # ------------------------------------------------------------------ informer side
    def add(self, pod: PodInfo) -> None:
        """A pending pod was added or updated. New pods go to active; an update to a
        parked pod that may change where it fits moves it out of unschedulable."""
        with self._cond:
            qp = self._pods.get(pod.key)
            if qp is not None and qp.pod.uid == pod.uid:
                old, qp.pod = qp.pod, pod
                if qp.where == UNSCHEDULABLE and _spec_changed(old, pod):
                    self._to_active_or_backoff(qp, self._clock())
                elif qp.where == ACTIVE and old.priority != pod.priority:
                    self._push_active(qp)  # re-sort; the old entry is now stale
                return
            qp = QueuedPod(pod, timestamp=self._clock())
            self._pods[pod.key] = qp
            self._parked.pop(pod.key, None)  # a pod re-created under the same name
            self._push_active(qp)

    def delete(self, key: str) -> None:
        """The pod is gone or no longer pending (deleted, bound)."""
        with self._cond:
            self._pods.pop(key, None)
            self._parked.pop(key, None)

    def move_all(self, reason: str = "") -> int:
        """The cluster changed in a way that may help parked pods: move them all to
        active (or backoff while their backoff lasts). Returns how many moved."""
        with self._cond:
            self._move_request_cycle = self._cycle
            now = self._clock()
            moved = list(self._parked.values())
            for qp in moved:
                self._to_active_or_backoff(qp, now)
            return len(moved)

    # ------------------------------------------------------------------ scheduler side
    def pop(self, timeout: float | None = None) -> QueuedPod | None:
        """The next pod to try (it is then in flight), or None on timeout / close."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while not self._closed:
                now = self._clock()
                self._flush(now)
                while self._active:
                    _, _, _, qp = heapq.heappop(self._active)
                    if self._live(qp, ACTIVE):
                        self._cycle += 1
                        qp.cycle = self._cycle
                        qp.attempts += 1
                        qp.where = IN_FLIGHT
                        return qp
                wait = self._next_leftover_check - now
                if self._backoff:
                    wait = min(wait, self._backoff[0][0] - now)
                if deadline is not None:
                    if now >= deadline:
                        return None
                    wait = min(wait, deadline - now)
                self._cond.wait(max(wait, 0.001))
            return None

    def _flush(self, now: float) -> None:
        while self._backoff and self._backoff[0][0] <= now:
            _, _, qp = heapq.heappop(self._backoff)
            if self._live(qp, BACKOFF):
                self._push_active(qp)
        if now >= self._next_leftover_check:
            self._next_leftover_check = now + 1.0
            for qp in [qp for qp in self._parked.values() if now - qp.failed_at >= self.max_unschedulable]:
                self._to_active_or_backoff(qp, now)

    def done(self, qp: QueuedPod) -> None:
        """The attempt succeeded (the pod is bound): the queue forgets it."""
        with self._cond:
            if self._pods.get(qp.key) is qp:
                del self._pods[qp.key]

    def requeue_unschedulable(self, qp: QueuedPod) -> None:
        """No node fitted: park the pod (or back it off if the cluster changed meanwhile)."""
        with self._cond:
            if self._pods.get(qp.key) is not qp:
                return  # deleted or replaced while in flight
            qp.failed_at = self._clock()
            if self._move_request_cycle >= qp.cycle:
                self._push_backoff(qp)
            else:
                qp.where = UNSCHEDULABLE
                self._parked[qp.key] = qp

    def requeue_backoff(self, qp: QueuedPod) -> None:
        """The attempt failed for a transient reason (bind error): retry after backoff."""
        with self._cond:
            if self._pods.get(qp.key) is not qp:
                return
            qp.failed_at = self._clock()
            self._push_backoff(qp)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # ------------------------------------------------------------------ introspection
    def counts(self) -> dict[str, int]:
        """How many pods wait where (active, backoff, unschedulable, in-flight)."""
        with self._cond:
            out = {ACTIVE: 0, BACKOFF: 0, UNSCHEDULABLE: 0, IN_FLIGHT: 0}
            for qp in self._pods.values():
                out[qp.where] += 1
            return out

    def where(self, key: str) -> str | None:
        with self._cond:
            qp = self._pods.get(key)
            return qp.where if qp is not None else None

    def __len__(self) -> int:
        with self._cond:
            return len(self._pods)
