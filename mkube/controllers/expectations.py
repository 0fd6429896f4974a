"""Expectations: what a controller has asked for and not yet seen in its informer cache.

Kubernetes' ControllerExpectations / UIDTrackingControllerExpectations. After a
ReplicaSet controller creates 3 pods, its cache may not show them for a while; a sync
in that window would count too few pods and create 3 more. So the controller records
"expect 3 creations" and skips managing replicas for that key until the informer has
reported the 3 pods (or the record is older than `ttl`, in case an event was lost).
Deletions are tracked per pod key, so a pod that was already gone is not counted twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

DEFAULT_TTL = 300.0  # Kubernetes' ExpectationsTimeout (5 minutes)


@dataclass
class _Record:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    stamp: float = 0.0


class Expectations:
    """Thread-safe map controller key -> pending creations and deletions."""

    def __init__(self, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}

    def satisfied(self, key: str) -> bool:
        """True when the controller may act on `key`: nothing pending, or the record expired.

        A key never seen before is satisfied (a new controller must be able to act).
        """
        with self._lock:
            rec = self._records.get(key)
            if rec is None:
                return True
            if rec.adds <= 0 and not rec.deletes:
                return True
            return self._clock() - rec.stamp > self.ttl

    def expect_creations(self, key: str, count: int) -> None:
        """Replace the record of `key` with `count` pending creations."""
        with self._lock:
            self._records[key] = _Record(adds=count, stamp=self._clock())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        """Replace the record of `key` with these pending pod deletions."""
        with self._lock:
            self._records[key] = _Record(deletes=set(pod_keys), stamp=self._clock())

    def creation_observed(self, key: str) -> None:
        """One expected pod appeared (informer ADDED) or one creation failed."""
        with self._lock:
            rec = self._records.get(key)
            if rec is not None and rec.adds > 0:
                rec.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        """The pod `pod_key` is gone or being deleted (or its deletion failed)."""
        with self._lock:
            rec = self._records.get(key)
            if rec is not None:
                rec.deletes.discard(pod_key)

    def delete(self, key: str) -> None:
        """Forget `key` (its controller object is gone)."""
        with self._lock:
            self._records.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still expected for `key` (for tests and logs)."""
        with self._lock:
            rec = self._records.get(key)
            return (0, 0) if rec is None else (max(rec.adds, 0), len(rec.deletes))
