"""Waiting for conditions by polling: objects to disappear (delete --wait), pods to show
up (logs deploy/web). Deadlines use the monotonic clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from mkube.api.errors import ApiError, is_not_found
from mkube.api.kinds import ResourceType
from mkube.client.interface import BaseClient

T = TypeVar("T")


class TimedOut(Exception):
    """The condition did not hold before the deadline."""


def poll(check: Callable[[], T | None], timeout: float | None, interval: float = 0.1,
         max_interval: float = 1.0) -> T:
    """Call `check` until it returns something other than None; back off up to `max_interval`.
    `timeout` None waits forever. Raises TimedOut."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = interval
    while True:
        result = check()
        if result is not None:
            return result
        if deadline is not None and time.monotonic() >= deadline:
            raise TimedOut()
        time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic())))
        delay = min(delay * 1.5, max_interval)


def gone(client: BaseClient, rt: ResourceType, name: str, namespace: str | None, uid: str) -> bool:
    """Whether the object (this uid) no longer exists."""
    try:
        obj = client.get_raw(rt, name, namespace)
    except ApiError as e:
        if is_not_found(e):
            return True
        raise
    return bool(uid) and (obj.get("metadata") or {}).get("uid") != uid
