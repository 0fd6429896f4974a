"""Retry helpers (client-go's `retry.RetryOnConflict`)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from mkube.api.errors import is_conflict

T = TypeVar("T")


def retry_on_conflict(fn: Callable[[], T], attempts: int = 5, delay: float = 0.01,
                      jitter: float = 0.1) -> T:
    """Call `fn` until it does not raise Conflict (409, reason Conflict), at most `attempts` times.

    `fn` must re-read the object each time (get, modify, update). Other errors, and the
    last Conflict, propagate. Sleeps `delay` (+ up to `jitter` of it) between tries.
    """
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as e:
            if not is_conflict(e) or attempt == attempts - 1:
                raise
            time.sleep(delay * (1 + random.random() * jitter))
    raise AssertionError("unreachable")
