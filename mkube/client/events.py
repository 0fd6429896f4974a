"""EventRecorder: report what a component did to an object as core/v1 Events.

`recorder.event(obj, "Normal", "Scheduled", "Successfully assigned default/web-1 to n1")`
returns at once: events are written by one background thread. Repeats of the same
(object, type, reason, message) are aggregated into one Event whose `count` and
`lastTimestamp` are patched (as client-go's correlator does), so a crash-looping pod
does not flood the store. Failures to write are logged, never raised: losing an event
must not break the caller. The queue is bounded; when full, new events are dropped
(and logged).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mkube.api import timeutil
from mkube.api.errors import NotFound
from mkube.client.interface import BaseClient
from mkube.client.objects import Obj, resource_for

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"


@dataclass(frozen=True)
class _Pending:
    involved: tuple[tuple[str, str], ...]
    type: str
    reason: str
    message: str
    timestamp: datetime


def object_reference(obj: Any) -> Obj:
    """An ObjectReference (wire dict) to a model, a wire dict, or an ObjectReference."""
    data: Obj = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    if "involvedObject" in data:
        data = data["involvedObject"]
    md = data.get("metadata")
    if md is None:  # already a reference
        ref = {k: data[k] for k in ("apiVersion", "kind", "namespace", "name", "uid", "resourceVersion",
                                    "fieldPath") if data.get(k)}
        return ref
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if (not api_version or not kind) and not isinstance(obj, dict):
        try:
            rt = resource_for(type(obj))
            api_version, kind = api_version or rt.api_version, kind or rt.kind
        except Exception:
            pass
    ref = {"apiVersion": api_version, "kind": kind, "namespace": md.get("namespace"),
           "name": md.get("name"), "uid": md.get("uid"), "resourceVersion": md.get("resourceVersion")}
    return {k: v for k, v in ref.items() if v}


class EventRecorder:
    """Records Events for `component` (the event source; `host` is the node, if any)."""

    def __init__(self, client: BaseClient, component: str, host: str | None = None, *,
                 queue_size: int = 1000, cache_size: int = 4096,
                 clock: Callable[[], datetime] = timeutil.now) -> None:
        self.client = client
        self.component = component
        self.host = host
        self._clock = clock
        self._queue_size = queue_size
        self._cache_size = cache_size
        self._cond = threading.Condition()
        self._pending: deque[_Pending] = deque()
        self._busy = False
        self._stopped = False
        self._thread: threading.Thread | None = None
        # (reference, type, reason, message) -> (namespace, event name, count)
        self._seen: OrderedDict[tuple[Any, ...], tuple[str, str, int]] = OrderedDict()
        self.dropped = 0

    def event(self, obj: Any, type: str, reason: str, message: str) -> None:
        """Queue an event about `obj` (model, wire dict or ObjectReference). Never raises."""
        try:
            ref = object_reference(obj)
            item = _Pending(tuple(sorted(ref.items())), type, reason, message[:1024], self._clock())
        except Exception:
            log.exception("%s: cannot record event %s %s", self.component, reason, message)
            return
        with self._cond:
            if self._stopped:
                return
            if len(self._pending) >= self._queue_size:
                self.dropped += 1
                # one line per power of two dropped: a storm of events must not become a storm of logs
                if self.dropped & (self.dropped - 1) == 0:
                    log.warning("%s: event queue full, %d event(s) dropped so far (latest %s: %s)",
                                self.component, self.dropped, reason, message)
                return
            self._pending.append(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"events-{self.component}", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def normal(self, obj: Any, reason: str, message: str) -> None:
        self.event(obj, NORMAL, reason, message)

    def warning(self, obj: Any, reason: str, message: str) -> None:
        self.event(obj, WARNING, reason, message)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was written (or failed). False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued (up to `timeout`), then stop the thread."""
        self.flush(timeout)
        with self._cond:
            self._stopped = True
            self._pending.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # ------------------------------------------------------------------ the writer
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                item = self._pending.popleft()
                self._busy = True
            try:
                self._write(item)
            except Exception as e:  # never let one event kill the writer
                log.warning("%s: could not write event %s for %s: %s", self.component, item.reason,
                            dict(item.involved).get("name"), e)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _write(self, item: _Pending) -> None:
        ref = dict(item.involved)
        # As client-go: the object's resourceVersion is not part of what makes a repeat.
        identity = tuple(kv for kv in item.involved if kv[0] != "resourceVersion")
        key = (identity, item.type, item.reason, item.message)
        stamp = timeutil.format_time(item.timestamp)
        seen = self._seen.get(key)
        if seen is not None:
            namespace, name, count = seen
            try:
                self.client.patch_raw("events", name, {"count": count + 1, "lastTimestamp": stamp}, namespace)
                self._remember(key, (namespace, name, count + 1))
                return
            except NotFound:
                pass  # the event expired or was deleted: write a new one
        namespace = ref.get("namespace") or "default"
        name = f"{ref.get('name') or 'unknown'}.{time.time_ns():x}"
        body: Obj = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": ref, "reason": item.reason, "message": item.message, "type": item.type,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.host or "",
        }
        self.client.create_raw("events", body, namespace)
        self._remember(key, (namespace, name, 1))

    def _remember(self, key: tuple[Any, ...], value: tuple[str, str, int]) -> None:
        self._seen[key] = value
        self._seen.move_to_end(key)
        while len(self._seen) > self._cache_size:
            self._seen.popitem(last=False)
