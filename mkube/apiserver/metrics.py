"""Prometheus metrics of one API server (own registry, so several apps can share a process)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("apiserver_request_total", "API requests by verb, resource and HTTP code",
                                ["verb", "resource", "subresource", "code"], registry=self.registry)
        self.latency = Histogram("apiserver_request_duration_seconds", "API request latency (watch: until headers)",
                                 ["verb", "resource"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.watchers = Gauge("apiserver_registered_watchers", "Open watch streams by resource", ["resource"],
                              registry=self.registry)
        self.revision = Gauge("apiserver_storage_revision", "Current store revision", registry=self.registry)
        self.revision_fn: Callable[[], int] | None = None
        # labels() looks the child up under a lock on every call; a request needs two
        self._children: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}

    def observe_request(self, verb: str, resource: str, subresource: str, code: str, seconds: float) -> None:
        """Count one request and record its latency."""
        key = (verb, resource, subresource, code)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(verb, resource, subresource, code), self.latency.labels(verb, resource))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        if self.revision_fn is not None:
            with contextlib.suppress(Exception):  # a scrape never fails because of the store
                self.revision.set(self.revision_fn())
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware: counts every request once its response starts.

    The dispatcher puts the Kubernetes verb/resource into `scope["mkube.labels"]`;
    other paths are counted under verb "nonresource".
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        recorded = False

        async def send_wrapper(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                verb, resource, sub = scope.get("mkube.labels") or ("nonresource", "", "")
                self.metrics.observe_request(verb, resource, sub, str(message["status"]), time.perf_counter() - start)
            await send(message)

        await self.app(scope, receive, send_wrapper)
