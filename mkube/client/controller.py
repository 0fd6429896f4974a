"""Worker loops that drain a WorkQueue into a `sync(key)` function (sample-controller style).

`sync` must be idempotent and level-triggered: read current state from informer
caches, compare desired with actual, act. An exception requeues the key with per-key
exponential backoff; a clean return forgets the key's backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import TypeVar

from mkube.api.errors import ApiError
from mkube.client.workqueue import WorkQueue

K = TypeVar("K", bound=Hashable)

log = logging.getLogger(__name__)


def process_next(queue: WorkQueue[K], sync_fn: Callable[[K], None], timeout: float | None = None,
                 max_retries: int | None = None, name: str = "") -> bool:
    """Take one key, sync it, and record the outcome. Returns False when the queue is shut
    down or nothing arrived within `timeout` (tests call this with timeout=0 to drain).

    On error: log, then `add_rate_limited(key)` unless the key failed `max_retries` times
    in a row (then it is dropped and forgotten until something adds it again).
    """
    key = queue.get(timeout)
    if key is None:
        return False
    try:
        sync_fn(key)
    except Exception as e:
        failures = queue.num_requeues(key)
        label = name or queue.name or "controller"
        if max_retries is not None and failures >= max_retries:
            log.warning("%s: dropping %s after %d failed syncs: %s", label, key, failures + 1, e)
            queue.forget(key)
        else:
            if isinstance(e, ApiError):  # expected (conflicts, not found, server down): no traceback
                log.info("%s: sync %s failed (retry %d): %s", label, key, failures + 1, e)
            else:
                log.exception("%s: sync %s failed (retry %d)", label, key, failures + 1)
            queue.add_rate_limited(key)
    else:
        queue.forget(key)
    finally:
        queue.done(key)
    return True


def run_workers(queue: WorkQueue[K], sync_fn: Callable[[K], None], n: int = 1, name: str = "",
                max_retries: int | None = None) -> list[threading.Thread]:
    """Start `n` daemon threads running `process_next` until `queue.shutdown()`.

    Returns the threads (join them after shutting the queue down).
    """
    label = name or queue.name or "controller"

    def worker() -> None:
        while not queue.shutting_down:
            try:
                process_next(queue, sync_fn, max_retries=max_retries, name=label)
            except Exception:  # a bug in the queue itself: a dead worker would stall the controller
                log.exception("%s: worker loop failed; going on", label)
                time.sleep(1.0)

    threads = [threading.Thread(target=worker, name=f"{label}-worker-{i}", daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def drain(queue: WorkQueue[K], sync_fn: Callable[[K], None], max_items: int = 10_000) -> int:
    """Process every key that is ready now, in this thread (for unit tests). Returns the count.

    Keys requeued with a backoff delay are not waited for.
    """
    count = 0
    while count < max_items and process_next(queue, sync_fn, timeout=0):
        count += 1
    return count
