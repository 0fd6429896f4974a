"""The watch hub: fans store changes out to watchers on the asyncio event loop.

One store subscription per hub. The store calls the hub from the writing thread (in
revision order); the hub appends to an inbox and wakes the loop with a single
`call_soon_threadsafe` per burst, and the loop hands each change to the watchers of
its resource. Each watcher has a bounded buffer: one too slow to keep up is ended
(its client re-watches from the last revision it saw) instead of growing without
bound.

Gap-free start from revision N: register the watcher first (live changes are
buffered from then on), then replay `changes_since(N)` from the store, then yield the
buffer, skipping what the replay already covered. A change fanned out before the
watcher was registered was committed before the replay's snapshot, so it is in the
replay; one fanned out after is in the buffer. Every change after N arrives exactly
once, in revision order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable

from mkube.apiserver.storage.base import Change, Obj, Store

log = logging.getLogger(__name__)

DEFAULT_MAX_QUEUE = 10_000


class Watch:
    """One watcher: an async iterator of `Change`s (already filtered).

    Use `async for change in watch` (this starts it), or `await watch.start()` first
    to have errors.Gone raised before anything is sent to the client. Iteration ends
    when the watch is closed or fell too far behind (`ended_reason == "overflow"`).
    """

    def __init__(self, hub: WatchHub, resource: str, namespace: str | None, from_revision: int | None,
                 predicate: Callable[[Obj], bool] | None, max_queue: int) -> None:
        self._hub = hub
        self.resource = resource
        self.namespace = namespace or None
        self.from_revision = int(from_revision or 0)
        self._predicate = predicate
        self._max_queue = max_queue
        self._replay: deque[Change] = deque()
        self._buffer: deque[Change] = deque()
        self._skip_upto = 0  # live changes at or below this were in the replay
        self._waiter: asyncio.Future[None] | None = None
        self._started = False
        self._live = False  # start() has finished: the buffer is now the live feed
        self._last_revision = self.from_revision
        self.ended_reason: str | None = None  # "closed" | "overflow" | "error"

    # ------------------------------------------------------------------ start

    async def start(self) -> None:
        """Register and replay. Raises errors.Gone if `from_revision` is compacted."""
        if self._started:
            return
        self._started = True
        hub = self._hub
        hub._register(self)
        if self.from_revision <= 0:
            self._last_revision = hub.revision
            self._live = True
            return
        try:
            replay = await asyncio.to_thread(hub.store.changes_since, self.from_revision, self.resource)
        except BaseException:
            hub._unregister(self)
            self.ended_reason = "closed"
            raise
        self._skip_upto = max(self.from_revision, replay[-1].revision if replay else 0)
        self._replay.extend(c for c in replay if self._accepts(c))
        self._live = True

    def _accepts(self, change: Change) -> bool:
        if self.namespace is not None and change.namespace != self.namespace:
            return False
        return self._predicate is None or self._predicate(change.obj)

    # ------------------------------------------------------------------ loop side

    def _push(self, change: Change) -> None:
        """On the loop: offer one change of this watcher's resource."""
        if self.ended_reason is not None or not self._accepts(change):
            return
        if len(self._buffer) >= self._max_queue:
            self._end("overflow")
            return
        self._buffer.append(change)
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                w.set_result(None)

    def _end(self, reason: str) -> None:
        if self.ended_reason is None:
            self.ended_reason = reason
        self._buffer.clear()
        self._replay.clear()
        self._hub._unregister(self)
        self._wake()

    def close(self) -> None:
        """Stop the watch; a pending `__anext__` ends the iteration. Call on the loop."""
        self._end("closed")

    async def aclose(self) -> None:
        self.close()

    # ------------------------------------------------------------------ iteration

    def __aiter__(self) -> Watch:
        return self

    def _pop_ready(self) -> Change | None:
        """The next change already here, or None. StopAsyncIteration once ended."""
        if self._replay:
            ch = self._replay.popleft()
            self._last_revision = ch.revision
            return ch
        if self.ended_reason is not None:
            raise StopAsyncIteration
        while self._buffer:
            ch = self._buffer.popleft()
            if ch.revision > self._skip_upto:
                self._last_revision = ch.revision
                return ch
        return None

    async def _arrival(self, timeout: float | None) -> None:
        """Wait until something is pushed, the watch ends, or `timeout` passes."""
        fut = asyncio.get_running_loop().create_future()
        self._waiter = fut
        try:
            if timeout is None:
                await fut
            else:
                await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            self._waiter = None

    async def __anext__(self) -> Change:
        if not self._started:
            await self.start()
        while True:
            ch = self._pop_ready()
            if ch is not None:
                return ch
            await self._arrival(None)

    async def next(self, timeout: float | None = None) -> Change | None:
        """The next change, or None if none arrives within `timeout` seconds (time
        for a BOOKMARK). Raises StopAsyncIteration when the watch has ended."""
        if not self._started:
            await self.start()  # never under the timeout: a cancelled replay is lost
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            ch = self._pop_ready()
            if ch is not None:
                return ch
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return None
            await self._arrival(left)

    @property
    def bookmark_revision(self) -> int:
        """A revision this watcher has fully seen (for a BOOKMARK event): every change
        of its resource at or below it has been yielded or filtered out."""
        if self._live and not self._replay and not self._buffer:
            return max(self._last_revision, self._hub.revision)
        return self._last_revision


class WatchHub:
    """Fans `store.subscribe` changes out to `Watch`es on one asyncio event loop.

    Create it anywhere (e.g. the app factory); it binds to the running loop on the
    first `watch()`. `close()` unsubscribes and ends every watch.
    """

    def __init__(self, store: Store, *, loop: asyncio.AbstractEventLoop | None = None,
                 max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        self.store = store
        self._max_queue = max_queue
        self._loop = loop
        self._lock = threading.Lock()
        self._inbox: list[Change] = []
        self._scheduled = False
        self._watchers: dict[str, set[Watch]] = {}
        self._revision = 0
        self._unsubscribe = store.subscribe(self._on_change)
        # Subscribed first, then read: nothing committed in between is missed.
        current = store.current_revision()
        with self._lock:
            self._revision = max(self._revision, current)

    @property
    def revision(self) -> int:
        """The newest revision fanned out to watchers (or committed before the hub
        started): the current revision for BOOKMARK events."""
        return self._revision

    def watch(self, resource: str, namespace: str | None = None, from_revision: int | None = None,
              predicate: Callable[[Obj], bool] | None = None) -> Watch:
        """A watch of `resource` (optionally one namespace) for changes after
        `from_revision`; 0/None means "from now" (list first for the current state).
        Iterate it with `async for`; errors.Gone (compacted) comes from `start()` or
        the first step, before any change."""
        return Watch(self, resource, namespace, from_revision, predicate, self._max_queue)

    def watcher_count(self) -> int:
        return sum(len(s) for s in self._watchers.values())

    def close(self) -> None:
        """Unsubscribe from the store and end every watch (call on the loop)."""
        self._unsubscribe()
        self.end_watches()

    def end_watches(self) -> None:
        """End every open watch (call on the loop); the hub keeps serving new ones.
        A server shutting down does this first so that clients re-watch at once
        instead of holding the shutdown until its grace period runs out."""
        for watchers in list(self._watchers.values()):
            for w in list(watchers):
                w.close()

    # ------------------------------------------------------------------ internals

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._loop is loop:
                return
            if self._loop is not None and not self._loop.is_closed():
                raise RuntimeError("WatchHub is bound to another event loop")
            stale = [w for ws in self._watchers.values() for w in ws]
            self._watchers.clear()
            self._inbox.clear()
            self._scheduled = False
            self._loop = loop
        for w in stale:  # watches of a closed loop: end them, nobody can wait on them
            w.ended_reason = w.ended_reason or "closed"

    def _register(self, w: Watch) -> None:
        self._bind_loop()
        self._watchers.setdefault(w.resource, set()).add(w)

    def _unregister(self, w: Watch) -> None:
        watchers = self._watchers.get(w.resource)
        if watchers is not None:
            watchers.discard(w)
            if not watchers:
                del self._watchers[w.resource]

    def _on_change(self, change: Change) -> None:
        """Store callback, on the writing thread: queue for the loop, wake it once."""
        with self._lock:
            loop = self._loop
            if loop is None:  # no watch yet, hence nobody to deliver to
                self._revision = max(self._revision, change.revision)
                return
            self._inbox.append(change)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # loop closed (shutdown): drop
            with self._lock:
                self._inbox.clear()
                self._scheduled = False

    def _drain(self) -> None:
        """On the loop: fan out everything queued, in revision order."""
        with self._lock:
            batch, self._inbox = self._inbox, []
            self._scheduled = False
        for change in batch:
            if change.revision <= self._revision:
                continue
            self._revision = change.revision
            watchers = self._watchers.get(change.resource)
            if watchers:
                for w in list(watchers):
                    try:
                        w._push(change)
                    except Exception:  # a broken predicate ends its own watch only
                        log.exception("watch predicate failed; ending the watch")
                        w._end("error")
