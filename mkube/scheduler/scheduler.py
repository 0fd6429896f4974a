"""Scheduler: informers -> queue -> schedule_one -> assume -> bind (async) -> events.

- The pod informer routes every pod: assigned pods (spec.nodeName set) feed the cache
  (confirming our own assumptions); unassigned pods of our schedulerName that are not
  being deleted nor finished wait in the queue. The node informer feeds the cache, and
  node changes that may let parked pods fit move them back to the active queue.
- One loop thread pops a pod, takes a snapshot, runs the pure `schedule_one`, assumes
  the pod on the chosen node (so the next decision sees it) and hands the binding to
  the Binder's threads. On bind failure the assumption is forgotten and the pod retried
  with backoff; a 409 means an earlier binding stands.
- Unschedulable pods get a `FailedScheduling` event with the FitError summary and a
  PodScheduled=False/Unschedulable condition (status subresource); bound ones a
  `Scheduled` event.

Restart-safe by construction: all state is rebuilt from the API server at start (the
cache from assigned pods, the queue from pending ones), and the server refuses a second
binding, so a scheduler killed at any point loses no pod and binds none twice.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mkube.api import timeutil
from mkube.api.errors import ApiError
from mkube.api.types import Node, Pod
from mkube.client import BaseClient, EventRecorder, Informer
from mkube.scheduler.binder import Binder, BindResult, Outcome
from mkube.scheduler.cache import AlreadyInCache, SchedulerCache
from mkube.scheduler.framework import FitError, Profile, SchedulingError, schedule_one
from mkube.scheduler.nodeinfo import PodInfo
from mkube.scheduler.plugins import default_profile
from mkube.scheduler.queue import QueuedPod, SchedulingQueue

log = logging.getLogger(__name__)

DEFAULT_SCHEDULER_NAME = "default-scheduler"
TERMINAL_PHASES = ("Succeeded", "Failed")


def pod_ref(pod: PodInfo) -> dict[str, str]:
    """An ObjectReference for events (cheaper than serialising the whole pod)."""
    return {"apiVersion": "v1", "kind": "Pod", "namespace": pod.namespace, "name": pod.name, "uid": pod.uid}


def _node_scheduling_view(node: Node) -> tuple[Any, ...]:
    """What about a Node can make a parked pod fit (heartbeats change none of it)."""
    conditions = tuple(sorted((c.type, c.status) for c in node.status.conditions or ()))
    taints = tuple(sorted((t.key, t.value or "", t.effect) for t in node.spec.taints or ()))
    alloc = node.status.allocatable or node.status.capacity or {}
    return (bool(node.spec.unschedulable), conditions, taints, tuple(sorted((k, str(v)) for k, v in alloc.items())),
            tuple(sorted((node.metadata.labels or {}).items())))


class Scheduler:
    """The scheduler of one profile (see the module docstring). `start()`, then `stop()`."""

    def __init__(self, client: BaseClient, *, scheduler_name: str = DEFAULT_SCHEDULER_NAME,
                 profile: Profile | None = None, seed: int | None = None, bind_workers: int = 8,
                 assumed_ttl: float = 30.0, initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 max_unschedulable: float = 60.0, recorder: EventRecorder | None = None,
                 event_queue_size: int = 20000) -> None:
        self.client = client
        self.name = scheduler_name
        self.profile = profile or default_profile(scheduler_name)
        self.rng = random.Random(seed)
        self.cache = SchedulerCache(assumed_ttl=assumed_ttl, seed=seed or 0)
        self.queue = SchedulingQueue(initial_backoff, max_backoff, max_unschedulable)
        self.binder = Binder(client, bind_workers)
        self.recorder = recorder or EventRecorder(client, DEFAULT_SCHEDULER_NAME, queue_size=event_queue_size)
        self.pods: Informer[Pod] = Informer(client, Pod)
        self.nodes: Informer[Node] = Informer(client, Node)
        self._status_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scheduler-status")
        self._next_start = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._counts_lock = threading.Lock()
        self.scheduled = 0  # pods bound by this process (for tests and metrics)
        self.failed_attempts = 0  # attempts that found no node or hit a plugin error

    # ------------------------------------------------------------------ lifecycle
    def start(self, sync_timeout: float | None = 60.0, abort: threading.Event | None = None) -> bool:
        """Start informers, wait until both listed (the informers retry while the API
        server is unreachable), then start the loop. Returns False, stopped, if `abort`
        was set meanwhile; raises TimeoutError after `sync_timeout` s (None: no limit)."""
        self.nodes.add_handler(self._on_node_add, self._on_node_update, self._on_node_delete)
        self.pods.add_handler(self._on_pod_add, self._on_pod_update, self._on_pod_delete)
        self.nodes.start()
        self.pods.start()
        deadline = None if sync_timeout is None else time.monotonic() + sync_timeout
        while not (self.nodes.has_synced() and self.pods.has_synced()):
            if abort is not None and abort.is_set():
                self.stop()
                return False
            if deadline is not None and time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("scheduler: informers did not sync (is the API server reachable?)")
            time.sleep(0.05)
        for target, name in ((self._loop, "scheduler-loop"), (self._housekeeping, "scheduler-housekeeping")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        log.info("scheduler %s started: %d nodes, %d pending pods", self.name, len(self.cache.node_names()),
                 len(self.queue))
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop, informers and workers (in-flight bindings finish first)."""
        self._stop.set()
        self.queue.close()
        for t in self._threads:
            t.join(timeout)
        self.pods.stop(timeout)
        self.nodes.stop(timeout)
        self.binder.shutdown(wait=True)
        self._status_pool.shutdown(wait=True)
        self.recorder.stop(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.schedule_next(timeout=1.0)
            except Exception:  # keep scheduling whatever one pod did
                log.exception("scheduler: unexpected error in the scheduling loop")

    def _housekeeping(self) -> None:
        while not self._stop.wait(1.0):
            expired = self.cache.cleanup_expired()
            if expired:
                log.warning("scheduler: assumed pods never seen bound, forgotten: %s", ", ".join(expired))
                self.queue.move_all("AssumedPodExpired")

    # ------------------------------------------------------------------ routing pods
    def _responsible(self, pod: Pod) -> bool:
        return ((pod.spec.scheduler_name or DEFAULT_SCHEDULER_NAME) == self.name
                and pod.metadata.deletion_timestamp is None and pod.status.phase not in TERMINAL_PHASES)

    def _on_pod_add(self, pod: Pod) -> None:
        key = pod.metadata.key
        if pod.spec.node_name:
            self.queue.delete(key)
            if pod.status.phase in TERMINAL_PHASES:
                if self.cache.remove_pod(key):
                    self.queue.move_all("AssignedPodTerminated")
            else:
                self.cache.add_pod(pod)
        elif self._responsible(pod):
            if not self.cache.is_assumed(key):  # an update while we bind it changes nothing
                self.queue.add(PodInfo(pod))
        else:
            self.queue.delete(key)

    def _on_pod_update(self, old: Pod, new: Pod) -> None:
        self._on_pod_add(new)

    def _on_pod_delete(self, pod: Pod) -> None:
        key = pod.metadata.key
        self.queue.delete(key)
        if self.cache.remove_pod(key):
            self.queue.move_all("AssignedPodDelete")

    # ------------------------------------------------------------------ routing nodes
    def _on_node_add(self, node: Node) -> None:
        self.cache.add_node(node)
        self.queue.move_all("NodeAdd")

    def _on_node_update(self, old: Node, new: Node) -> None:
        self.cache.update_node(new)
        if _node_scheduling_view(old) != _node_scheduling_view(new):
            self.queue.move_all("NodeUpdate")

    def _on_node_delete(self, node: Node) -> None:
        self.cache.remove_node(node.metadata.name or "")

    # ------------------------------------------------------------------ one cycle
    def schedule_next(self, timeout: float | None = None) -> bool:
        """Pop one pod and schedule it (binding continues asynchronously).
        Returns False when nothing was popped within `timeout`."""
        qp = self.queue.pop(timeout)
        if qp is None:
            return False
        pod = qp.pod
        current = self.pods.get(pod.key)
        if (current is None or current.metadata.uid != pod.uid or not self._responsible(current)
                or current.spec.node_name or self.cache.has_pod(pod.key)):
            self.queue.done(qp)  # gone, bound, or being bound: nothing to do
            return True
        if current is not pod.pod:  # updated while its PodInfo waited (e.g. during a failed bind)
            pod = qp.pod = PodInfo(current)
        try:
            result = schedule_one(pod, self.cache.snapshot(), self.profile, self._next_start, self.rng)
        except SchedulingError as e:
            log.warning("scheduler: error scheduling %s: %s", pod.key, e)
            self.failed_attempts += 1
            self.recorder.warning(pod_ref(pod), "FailedScheduling", f"running filter/score plugins: {e}")
            self.queue.requeue_backoff(qp)
            return True
        if isinstance(result, FitError):
            self.failed_attempts += 1
            self._report_unschedulable(current, pod, result)
            self.queue.requeue_unschedulable(qp)
            return True
        self._next_start = result.next_start_index
        try:
            self.cache.assume_pod(pod, result.node_name)
        except AlreadyInCache:  # the watch showed it bound since the check above
            self.queue.done(qp)
            return True
        self.binder.bind_async(pod, result.node_name, lambda res: self._bind_done(qp, res))
        return True

    def _bind_done(self, qp: QueuedPod, res: BindResult) -> None:
        pod = qp.pod
        if res.outcome is Outcome.BOUND:
            self.cache.finish_binding(pod.key)
            self.queue.done(qp)
            with self._counts_lock:
                self.scheduled += 1
            self.recorder.normal(pod_ref(pod), "Scheduled",
                                 f"Successfully assigned {pod.namespace}/{pod.name} to {res.node}")
        elif res.outcome is Outcome.ALREADY_BOUND:
            # Bound before (e.g. by a scheduler that died before seeing it) or being deleted:
            # the watch will show the truth; keep the assumption until it does (or expires).
            log.info("scheduler: %s: binding refused, already bound: %s", pod.key, res.message)
            self.cache.finish_binding(pod.key)
            self.queue.done(qp)
        else:
            self.cache.forget_pod(pod.key)
            self.queue.move_all("AssumedPodForgotten")  # the resources it held are free again
            if res.outcome is Outcome.GONE:
                self.queue.done(qp)
                return
            log.warning("scheduler: binding %s to %s failed: %s", pod.key, res.node, res.message)
            self.recorder.warning(pod_ref(pod), "FailedScheduling", f"Binding rejected: {res.message}")
            self.queue.requeue_backoff(qp)

    # ------------------------------------------------------------------ reporting
    def _report_unschedulable(self, current: Pod, pod: PodInfo, fit: FitError) -> None:
        message = fit.message
        log.info("scheduler: %s unschedulable: %s", pod.key, message)
        self.recorder.warning(pod_ref(pod), "FailedScheduling", message)
        for cond in current.status.conditions or ():
            if (cond.type == "PodScheduled" and cond.status == "False" and cond.reason == "Unschedulable"
                    and cond.message == message):
                return  # already says so: do not write the same status again
        self._status_pool.submit(self._write_unschedulable_condition, current, message)

    def _write_unschedulable_condition(self, current: Pod, message: str) -> None:
        conditions = [c.to_dict() for c in current.status.conditions or () if c.type != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                           "message": message, "lastProbeTime": None,
                           "lastTransitionTime": timeutil.now_str()})
        patch = {"metadata": {"resourceVersion": current.metadata.resource_version},
                 "status": {"conditions": conditions}}
        try:
            self.client.patch_raw("pods", current.metadata.name or "", patch, current.metadata.namespace,
                                  "merge", "status")
        except ApiError as e:
            # 409: the pod changed meanwhile (e.g. it was bound); 404: deleted. The next
            # failed attempt writes the condition again if it still applies.
            log.debug("scheduler: PodScheduled condition of %s not written: %s", current.metadata.key, e)
