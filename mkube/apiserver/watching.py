"""Watch streams: newline-delimited JSON `{"type": ..., "object": ...}` events.

Guarantees:
- `resourceVersion=N` (N > 0): every change after N of the selected objects,
  exactly once, in revision order (the hub is gap-free);
- no resourceVersion (or "0"), or sendInitialEvents=true: synthetic ADDED events
  for the current objects first, then the changes after that list;
- a compacted N (or a watcher the hub drops): HTTP 200 with one ERROR event whose
  object is a Status 410 Expired (what client-go and the Python client expect);
- with a selector, an object that stops matching is sent as DELETED and one that
  starts matching as ADDED (as Kubernetes' watch cache does);
- allowWatchBookmarks=true: periodic BOOKMARK events carrying only
  metadata.resourceVersion (never ahead of what this stream has delivered);
- as=Table: each event's object is a one-row Table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response

from mkube.api.errors import ApiError
from mkube.apiserver import meta, tabling
from mkube.apiserver.request import ResourceRequest
from mkube.apiserver.responses import parse_accept
from mkube.apiserver.selection import build_predicate
from mkube.apiserver.storage.base import Change
from mkube.apiserver.streaming import DisconnectAwareStream

Obj = dict[str, Any]
log = logging.getLogger("mkube.apiserver.watch")


def _event(kind: str, obj: Obj) -> bytes:
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


def _raw_event(kind: str, raw: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + raw + b"}\n"


def _key(obj: Obj) -> tuple[str, str]:
    md = obj.get("metadata") or {}
    return md.get("namespace") or "", md.get("name") or ""


async def watch(r: ResourceRequest) -> Response:
    """Validate the parameters (errors here are ordinary 4xx responses), then stream."""
    rt = r.rt
    accept = parse_accept(r.request)
    include = tabling.include_mode(r.q("includeObject")) if accept.table else "Metadata"
    predicate = build_predicate(rt, r.q("labelSelector"), r.q("fieldSelector"))
    if r.name is not None:  # watch of one object: GET .../pods/x?watch=1
        name_pred = predicate
        wanted = r.name

        def predicate(obj: Obj) -> bool:
            return (obj.get("metadata") or {}).get("name") == wanted and (name_pred is None or name_pred(obj))

    rv = meta.parse_resource_version(r.q("resourceVersion"))
    timeout = r.int_param("timeoutSeconds")
    bookmarks = r.bool_param("allowWatchBookmarks")
    initial_events = r.bool_param("sendInitialEvents")
    max_timeout = r.ctx.options.watch_max_timeout_seconds
    duration = min(float(timeout), max_timeout) if timeout else max_timeout
    namespace = r.namespace if rt.namespaced else None
    ctx = r.ctx
    interval = ctx.options.watch_bookmark_interval_seconds

    columns_sent = False

    def encode(kind: str, obj: Obj, raw: bytes | None = None) -> bytes:
        nonlocal columns_sent
        if accept.table:  # column definitions only in the first event, as Kubernetes does
            rv_of = (obj.get("metadata") or {}).get("resourceVersion", "")
            table = tabling.table(rt, [obj], include=include, table_version=accept.table_version,
                                  list_meta={"resourceVersion": rv_of}, with_columns=not columns_sent)
            columns_sent = True
            return _event(kind, table)
        if raw is not None:
            return _raw_event(kind, raw)
        return _event(kind, obj)

    def bookmark(revision: int, initial_end: bool = False) -> bytes:
        md: Obj = {"resourceVersion": str(revision)}
        if initial_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        if accept.table:
            obj: Obj = {"kind": "Table", "apiVersion": f"meta.k8s.io/{accept.table_version}", "metadata": md,
                        "columnDefinitions": [], "rows": []}
        else:
            obj = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": md}
        return _event("BOOKMARK", obj)

    async def events() -> AsyncIterator[bytes]:
        gauge = ctx.metrics.watchers.labels(rt.group_resource)
        gauge.inc()
        deadline = time.monotonic() + duration
        matched: set[tuple[str, str]] = set()
        stream = None
        try:
            if rv in (None, 0) or initial_events:
                listed = await ctx.list(rt, namespace, predicate=predicate)
                start = listed.revision
                for obj in listed.items:
                    matched.add(_key(obj))
                    yield encode("ADDED", obj)
                if initial_events and bookmarks:
                    yield bookmark(start, initial_end=True)
            else:
                start = rv
                if predicate is not None:
                    seed = await ctx.list(rt, namespace, predicate=predicate)
                    matched.update(_key(o) for o in seed.items)
            stream = ctx.hub.watch(rt.group_resource, namespace, start, None)
            await stream.start()  # errors.Gone here for a compacted start
            next_bookmark = time.monotonic() + interval
            while True:
                now = time.monotonic()
                if now >= deadline:
                    if bookmarks:
                        yield bookmark(stream.bookmark_revision)
                    return
                wait = deadline - now
                if bookmarks:
                    wait = min(wait, max(next_bookmark - now, 0.0))
                try:
                    change = await stream.next(wait)
                except StopAsyncIteration:
                    return  # closed, or too slow: the client re-watches from its last revision
                if change is None:
                    if bookmarks and time.monotonic() >= next_bookmark:
                        yield bookmark(stream.bookmark_revision)
                        next_bookmark = time.monotonic() + interval
                    continue
                kind = _select(change, predicate, matched)
                if kind is not None:
                    yield encode(kind, change.obj, change.raw)
        except ApiError as err:
            yield _event("ERROR", err.to_status())
        except Exception:  # noqa: BLE001 - reported to the client; logged with the traceback
            log.exception("watch stream failed", extra={"resource": rt.group_resource})
            yield _event("ERROR", ApiError(message="internal error in the watch stream").to_status())
        finally:
            gauge.dec()
            if stream is not None:
                stream.close()

    return DisconnectAwareStream(events(), media_type="application/json")


def _select(change: Change, predicate: Any, matched: set[tuple[str, str]]) -> str | None:
    """The event type to send for `change`, or None when this watch does not see it."""
    if predicate is None:
        return change.type
    key = (change.namespace, change.name)
    was = key in matched
    if change.type == "DELETED":
        matched.discard(key)
        return "DELETED" if (was or predicate(change.obj)) else None
    if predicate(change.obj):
        matched.add(key)
        if change.type == "ADDED":
            return "ADDED"
        return "MODIFIED" if was else "ADDED"
    if was:
        matched.discard(key)
        return "DELETED"
    return None
