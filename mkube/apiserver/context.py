"""The state one API server shares between requests, and the store calls it makes.

`ServerContext` methods run the blocking store in the threadpool and translate the
store's errors into messages named after the REST resource, as Kubernetes words them
(`deployments.apps "web" not found`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from mkube.api.errors import AlreadyExists, ApiError, Conflict, NotFound
from mkube.api.kinds import ResourceType
from mkube.apiserver.metrics import Metrics
from mkube.apiserver.options import ApiServerOptions
from mkube.apiserver.storage.base import ListResult, Store, write_async
from mkube.apiserver.storage.watch import WatchHub

Obj = dict[str, Any]
T = TypeVar("T")
log = logging.getLogger("mkube.apiserver")

MODIFIED_MESSAGE = "the object has been modified; please apply your changes to the latest version and try again"


def store_namespace(rt: ResourceType, namespace: str | None) -> str:
    """The store's namespace key: "" for cluster-scoped kinds."""
    return (namespace or "") if rt.namespaced else ""


@dataclass
class ServerContext:
    options: ApiServerOptions
    store: Store
    hub: WatchHub
    metrics: Metrics
    namespace_phases: dict[str, str] = field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    http: Any = None  # httpx.AsyncClient for the kubelet (pod logs)
    authenticator: Any = None  # auth.Authenticator; None with --insecure-http (no authn/authz)
    ready: bool = False

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_in_threadpool(fn, *args, **kwargs)

    def _translate(self, rt: ResourceType, name: str, err: ApiError) -> ApiError:
        group = rt.group or None
        if err.code == 404 and err.reason == "NotFound":
            return NotFound(rt.plural, name, group=group)
        if err.code == 409 and err.reason == "AlreadyExists":
            return AlreadyExists(rt.plural, name, group=group)
        if err.code == 409:
            return Conflict(rt.plural, name, MODIFIED_MESSAGE, group=group)
        return err

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        try:
            if getattr(self.store, "reads_never_block", False):
                # a WAL read of one row by key takes microseconds and never waits for a
                # writer: the thread hop would cost more than the read
                return self.store.get(rt.group_resource, store_namespace(rt, namespace), name)
            return await self.call(self.store.get, rt.group_resource, store_namespace(rt, namespace), name)
        except ApiError as err:
            raise self._translate(rt, name, err) from None

    async def create(self, rt: ResourceType, namespace: str | None, name: str, obj: Obj) -> Obj:
        try:
            return await write_async(self.store, "create", rt.group_resource, store_namespace(rt, namespace), name, obj)
        except ApiError as err:
            raise self._translate(rt, name, err) from None

    async def update(self, rt: ResourceType, namespace: str | None, name: str, obj: Obj,
                     expected_revision: int | None) -> Obj:
        try:
            return await write_async(self.store, "update", rt.group_resource, store_namespace(rt, namespace), name, obj,
                                     expected_revision)
        except ApiError as err:
            raise self._translate(rt, name, err) from None

    async def guaranteed_update(self, rt: ResourceType, namespace: str | None, name: str,
                                mutate: Callable[[Obj], Obj | None]) -> Obj:
        try:
            return await write_async(self.store, "guaranteed_update", rt.group_resource, store_namespace(rt, namespace),
                                     name, mutate)
        except ApiError as err:
            if err.code in (404, 409) and err.reason in ("NotFound", "Conflict", "AlreadyExists"):
                raise self._translate(rt, name, err) from None
            raise

    async def delete(self, rt: ResourceType, namespace: str | None, name: str,
                     expected_revision: int | None = None, expected_uid: str | None = None) -> Obj:
        try:
            return await write_async(self.store, "delete", rt.group_resource, store_namespace(rt, namespace), name,
                                     expected_revision, expected_uid)
        except ApiError as err:
            raise self._translate(rt, name, err) from None

    async def list(self, rt: ResourceType, namespace: str | None, *, limit: int | None = None,
                   continue_token: str | None = None,
                   predicate: Callable[[Obj], bool] | None = None) -> ListResult:
        ns = namespace if rt.namespaced else None
        return await self.call(self.store.list, rt.group_resource, ns, limit=limit,
                               continue_token=continue_token, predicate=predicate)

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        """Run a background coroutine, keeping a reference and logging its failure."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self.tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task failed", extra={"task": name}, exc_info=t.exception())

        task.add_done_callback(done)
        return task
