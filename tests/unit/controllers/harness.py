"""A controller manager on a FakeClient, driven step by step from the test thread.

Informers run (they watch the fake); controller workers do not: `run()` settles the
caches and drains the controllers' queues in this thread until nothing is left to do,
so each test sees the result of level-triggered syncs deterministically.
"""

from __future__ import annotations

import time
from typing import Any

from mkube.api.timeutil import format_time, now
from mkube.api.types import (
    Container,
    Deployment,
    DeploymentSpec,
    DeploymentStrategy,
    LabelSelector,
    Node,
    NodeCondition,
    NodeStatus,
    ObjectMeta,
    Pod,
    PodCondition,
    PodSpec,
    PodTemplateSpec,
    RollingUpdateDeployment,
)
from mkube.client.controller import process_next
from mkube.client.fake import FakeClient
from mkube.controllers.garbagecollector import GarbageCollector
from mkube.controllers.manager import ControllerManager
from mkube.controllers.options import ControllerOptions


class ListRecorder:
    """Collects events instead of writing them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []  # (object key, type, reason, message)

    def event(self, obj: Any, type_: str, reason: str, message: str, /) -> None:
        self.events.append((obj.key if hasattr(obj, "key") else str(obj), type_, reason, message))

    def reasons(self) -> list[str]:
        return [e[2] for e in self.events]

    def messages(self, reason: str) -> list[str]:
        return [e[3] for e in self.events if e[2] == reason]


class Harness:
    def __init__(self, controllers: tuple[str, ...], client: FakeClient | None = None, **opts: Any) -> None:
        self.client = client or FakeClient()
        self.recorder = ListRecorder()
        options = ControllerOptions(controllers=controllers, resync_period=0, **opts)
        self.manager = ControllerManager(self.client, options, recorder=self.recorder)
        self.manager.informers.start()
        assert self.manager.informers.wait_for_sync(5)

    def controller(self, name: str) -> Any:
        return self.manager.get(name)

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until every informer cache equals what the fake holds."""
        deadline = time.monotonic() + timeout
        informers = list(self.manager.informers._informers.values())
        while True:
            behind = False
            for inf in informers:
                want = {(o.key, o.metadata.resource_version) for o in self.client.list(inf.cls, inf.namespace)}
                have = {(o.key, o.metadata.resource_version) for o in inf.list()}
                if want != have:
                    behind = True
                    break
            if not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"informer {inf.name} did not catch up")
            time.sleep(0.005)

    def run(self, rounds: int = 200) -> int:
        """Settle + drain every controller queue until nothing is pending. Returns syncs done."""
        total = 0
        for _ in range(rounds):
            self.settle()
            did = 0
            for c in self.manager.controllers.values():
                while process_next(c.queue, c.sync, timeout=0):
                    did += 1
                if isinstance(c, GarbageCollector):
                    while process_next(c.orphan_queue, c.attempt_to_orphan, timeout=0):
                        did += 1
            total += did
            if did == 0:
                self.settle()
                if all(len(c.queue) == 0 for c in self.manager.controllers.values()):
                    return total
        raise AssertionError("controllers did not quiesce")

    def close(self) -> None:
        self.manager.informers.stop()

    # ------------------------------------------------------------------ fake kubelet
    def pods(self, namespace: str = "default", active_only: bool = True) -> list[Pod]:
        pods = self.client.list(Pod, namespace).items
        if active_only:
            pods = [p for p in pods if p.metadata.deletion_timestamp is None]
        return pods

    def make_ready(self, pods: list[Pod] | None = None, ready: bool = True, since: str | None = None,
                   node: str = "n1") -> None:
        """Bind (if needed) and mark pods Running (+Ready) the way a kubelet would."""
        for pod in pods if pods is not None else self.pods():
            fresh = self.client.get(Pod, pod.metadata.name or "", pod.metadata.namespace)
            if not fresh.spec.node_name:
                self.client.bind(fresh.metadata.namespace or "", fresh.metadata.name or "", node)
                fresh = self.client.get(Pod, pod.metadata.name or "", pod.metadata.namespace)
            stamp = since or format_time(now())
            fresh.status.phase = "Running"
            fresh.status.pod_ip = fresh.status.pod_ip or f"10.0.0.{abs(hash(fresh.metadata.name)) % 250 + 1}"
            fresh.status.host_ip = "192.168.1.1"
            fresh.status.conditions = [PodCondition(type="Ready", status="True" if ready else "False",
                                                    last_transition_time=stamp)]
            self.client.update_status(fresh)

    def finish_deletions(self, namespace: str = "default") -> None:
        """Confirm graceful deletions (what the kubelet does with gracePeriodSeconds=0)."""
        for pod in self.client.list(Pod, namespace).items:
            if pod.metadata.deletion_timestamp is not None:
                self.client.delete(Pod, pod.metadata.name or "", namespace, grace_period_seconds=0)


def deployment(name: str = "web", replicas: int = 10, image: str = "nginx:1", max_surge: Any = "25%",
               max_unavailable: Any = "25%", strategy: str = "RollingUpdate", **spec: Any) -> Deployment:
    labels = {"app": name}
    return Deployment(
        metadata=ObjectMeta(name=name, namespace="default"),
        spec=DeploymentSpec(
            replicas=replicas, selector=LabelSelector(match_labels=labels),
            template=PodTemplateSpec(metadata=ObjectMeta(labels=labels),
                                     spec=PodSpec(containers=[Container(name="app", image=image)])),
            strategy=DeploymentStrategy(type=strategy, rolling_update=RollingUpdateDeployment(
                max_surge=max_surge, max_unavailable=max_unavailable) if strategy == "RollingUpdate" else None),
            **spec))


def node(name: str, ready: str = "True", heartbeat: str | None = None) -> Node:
    stamp = heartbeat or format_time(now())
    return Node(metadata=ObjectMeta(name=name),
                status=NodeStatus(conditions=[NodeCondition(type="Ready", status=ready, last_heartbeat_time=stamp,
                                                            last_transition_time=stamp)]))
