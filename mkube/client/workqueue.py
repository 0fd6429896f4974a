"""A rate-limited work queue with client-go's semantics (workqueue.RateLimitingInterface).

Guarantees:
- a key is handed to at most one worker at a time (between `get` and `done`);
- adding a key that is already waiting is a no-op (keys are deduplicated);
- a key added while a worker processes it is queued again when that worker calls `done`;
- `add_after(key, delay)` makes the key available no sooner than `delay` seconds later
  (the earliest pending time wins); `add_rate_limited(key)` waits `base * 2**failures`
  seconds (capped at `max_delay`) where failures counts the calls since `forget(key)`;
- after `shutdown()`, `add*` are ignored and `get` returns None at once (pending keys are
  dropped: controllers are level-triggered and resync on start).

Keys are usually `namespace/name` strings but any hashable value works.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

DEFAULT_BASE_DELAY = 0.005
LONGEST_WAIT = 86400.0  # add_after delays and condition waits are clamped to this (not a backoff setting)
DEFAULT_MAX_DELAY = 300.0


class ExponentialBackoff(Generic[K]):
    """Per-key exponential delay: base * 2**n for the n-th failure since `forget`, capped."""

    def __init__(self, base_delay: float = DEFAULT_BASE_DELAY, max_delay: float = DEFAULT_MAX_DELAY) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[K, int] = {}
        self._lock = threading.Lock()

    def when(self, key: K) -> float:
        """The delay for this failure of `key` (and count it)."""
        with self._lock:
            n = self._failures.get(key, 0)
            self._failures[key] = n + 1
        if n > 64:  # 2**64 * base is far past any sane max; avoid float overflow
            return self.max_delay
        return min(self.base_delay * (2 ** n), self.max_delay)

    def num_requeues(self, key: K) -> int:
        with self._lock:
            return self._failures.get(key, 0)

    def forget(self, key: K) -> None:
        with self._lock:
            self._failures.pop(key, None)


class WorkQueue(Generic[K]):
    """See the module docstring. Thread-safe. `clock` is a monotonic clock (seconds)."""

    def __init__(self, name: str = "", base_delay: float = DEFAULT_BASE_DELAY,
                 max_delay: float = DEFAULT_MAX_DELAY, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.rate_limiter: ExponentialBackoff[K] = ExponentialBackoff(base_delay, max_delay)
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()  # queued or to be re-queued after done()
        self._processing: set[K] = set()
        self._waiting: list[tuple[float, int, K]] = []  # heap of (ready_at, seq, key)
        self._ready_at: dict[K, float] = {}  # the live entry per key (heap entries may be stale)
        self._seq = itertools.count()
        self._shutting_down = False

    # ------------------------------------------------------------------ adding
    def add(self, key: K) -> None:
        """Queue `key` now (no-op if already queued; deferred if being processed)."""
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._cond.notify()

    def add_after(self, key: K, delay: float) -> None:
        """Queue `key` once `delay` seconds have passed (at once if delay <= 0)."""
        with self._cond:
            if self._shutting_down:
                return
            if delay <= 0:
                self._add_locked(key)
                return
            # A delay computed from a far-future time some client stored (2.5e11 s) would
            # overflow Condition.wait; nothing needs to wait longer than a day (NaN too).
            ready_at = self._clock() + (delay if delay < LONGEST_WAIT else LONGEST_WAIT)
            current = self._ready_at.get(key)
            if current is not None and current <= ready_at:
                return
            self._ready_at[key] = ready_at
            heapq.heappush(self._waiting, (ready_at, next(self._seq), key))
            self._cond.notify_all()  # a waiter may need to wake earlier

    def add_rate_limited(self, key: K) -> None:
        """Queue `key` after its per-key exponential backoff delay."""
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        """Reset `key`'s backoff (call after a successful sync)."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        """How many times `key` was rate-limited since the last `forget`."""
        return self.rate_limiter.num_requeues(key)

    # ------------------------------------------------------------------ taking
    def _promote_due_locked(self) -> float | None:
        """Move due delayed keys into the queue; return seconds until the next one (or None)."""
        now = self._clock()
        while self._waiting:
            ready_at, _, key = self._waiting[0]
            if self._ready_at.get(key) != ready_at:  # superseded by an earlier add_after
                heapq.heappop(self._waiting)
                continue
            if ready_at > now:
                return ready_at - now
            heapq.heappop(self._waiting)
            del self._ready_at[key]
            self._add_locked(key)
        return None

    def get(self, timeout: float | None = None) -> K | None:
        """The next key, blocking up to `timeout` seconds (forever if None).

        Returns None on timeout and after `shutdown()`. The caller must call `done(key)`.
        """
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                if self._shutting_down:
                    return None
                next_due = self._promote_due_locked()
                if self._queue:
                    key = self._queue.popleft()
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                wait = next_due
                if deadline is not None:
                    remaining = deadline - self._clock()
                    if remaining <= 0:
                        return None
                    wait = remaining if wait is None else min(wait, remaining)
                self._cond.wait(None if wait is None else min(wait, LONGEST_WAIT))

    def done(self, key: K) -> None:
        """Finish processing `key`; if it was added meanwhile, queue it again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty and not self._shutting_down:
                self._queue.append(key)
                self._cond.notify()

    # ------------------------------------------------------------------ lifecycle
    def shutdown(self) -> None:
        """Stop: wake every `get` (they return None) and ignore further adds."""
        with self._cond:
            self._shutting_down = True
            self._queue.clear()
            self._dirty.clear()
            self._waiting.clear()
            self._ready_at.clear()
            self._cond.notify_all()

    @property
    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    def __len__(self) -> int:
        """Keys ready to be handed out now (delayed keys not yet due are not counted)."""
        with self._cond:
            self._promote_due_locked()
            return len(self._queue)

    def pending_delayed(self) -> int:
        """Keys waiting for their `add_after` delay."""
        with self._cond:
            return len(self._ready_at)
