"""Binder: writes the scheduler's decisions (pods/<name>/binding) off the scheduling loop.

Bindings run on a small thread pool so the loop can decide the next pod while the API
server stores the last one. The API server refuses a second binding of a pod with 409
Conflict; the binder reports that as ALREADY_BOUND (an earlier scheduler process, or an
earlier attempt whose answer was lost, bound it), never as a failure to retry, so no pod
is ever bound twice.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mkube.api.errors import ApiError
from mkube.client import BaseClient
from mkube.scheduler.nodeinfo import PodInfo

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    BOUND = "bound"
    ALREADY_BOUND = "already-bound"  # 409: bound before (or being deleted): nothing to do
    GONE = "gone"  # 404: the pod was deleted
    FAILED = "failed"  # anything else: forget the assumption and retry with backoff


@dataclass(frozen=True)
class BindResult:
    outcome: Outcome
    node: str
    message: str = ""


def binding_body(pod: PodInfo, node: str) -> dict[str, object]:
    """A v1 Binding; metadata.uid guards against binding a re-created pod of the same name."""
    meta: dict[str, str] = {"name": pod.name, "namespace": pod.namespace}
    if pod.uid:
        meta["uid"] = pod.uid
    return {"apiVersion": "v1", "kind": "Binding", "metadata": meta,
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


class Binder:
    """Binds pods through `client` on `workers` threads."""

    def __init__(self, client: BaseClient, workers: int = 4) -> None:
        self.client = client
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scheduler-bind")

    def bind(self, pod: PodInfo, node: str) -> BindResult:
        """Bind now, in the calling thread. Never raises for API errors."""
        try:
            self.client.create_raw("pods", binding_body(pod, node), pod.namespace, name=pod.name,
                                   subresource="binding")
        except ApiError as e:
            if e.code == 409:
                return BindResult(Outcome.ALREADY_BOUND, node, e.message)
            if e.code == 404:
                return BindResult(Outcome.GONE, node, e.message)
            return BindResult(Outcome.FAILED, node, e.message)
        except Exception as e:  # a bug or transport error must not lose the pod
            log.exception("binding %s to %s failed", pod.key, node)
            return BindResult(Outcome.FAILED, node, str(e))
        return BindResult(Outcome.BOUND, node)

    def bind_async(self, pod: PodInfo, node: str, done: Callable[[BindResult], None]) -> None:
        """Bind on the pool; `done(result)` runs on the pool thread afterwards."""

        def work() -> None:
            result = self.bind(pod, node)
            try:
                done(result)
            except Exception:
                log.exception("bind callback for %s failed", pod.key)

        self._pool.submit(work)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
