"""Test helpers: "hollow" kubelets for fake nodes, a scheduler, and a pod-count sampler.

Until `mkube kubelet --runtime fake --hollow-nodes N` exists, `HollowNodes` plays the
kubelet of N fake nodes against a real API server:
- registers the Node objects (capacity, InternalIP on loopback — no traffic is sent),
  posts Ready=True and renews each node's Lease in kube-node-lease every `heartbeat` s;
- marks pods bound to its nodes Running (+ podIP, hostIP, publishedPorts) and, after
  `ready_after` seconds, Ready through /status — unless `ready(pod)` says no (a failing
  readiness probe);
- confirms graceful deletions of its pods (DELETE with gracePeriodSeconds=0);
- `stop_node(name)` makes one node go silent (no heartbeats, ignores its pods), like a
  machine that lost power; `start_node(name)` brings it back.

The real scheduler (`mkube.scheduler`) binds pods to the nodes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from mkube.api.errors import is_not_found
from mkube.api.timeutil import format_micro, format_time, now
from mkube.api.types import (
    Lease,
    LeaseSpec,
    Node,
    NodeAddress,
    NodeCondition,
    NodeStatus,
    ObjectMeta,
    Pod,
    PodCondition,
    PodIP,
    PublishedPort,
)
from mkube.client import Client, Informer, WorkQueue, run_workers
from mkube.scheduler.scheduler import Scheduler

log = logging.getLogger(__name__)


def always_ready(pod: Pod) -> bool:
    return True


class HollowNodes:
    """See the module docstring. Use as a context manager (stops its threads)."""

    def __init__(self, server_url: str, count: int, prefix: str = "hollow", heartbeat: float = 1.0,
                 ready: Callable[[Pod], bool] = always_ready, workers: int = 8, scheduler: bool = True,
                 ready_after: float = 0.0) -> None:
        self.client = Client(server_url, user_agent="hollow-kubelet")
        self.names = [f"{prefix}-{i}" for i in range(count)]
        self.heartbeat = heartbeat
        self.ready = ready
        self.ready_after = ready_after  # seconds from Running to Ready (a readiness probe's delay)
        self._running_since: dict[str, float] = {}
        self.workers = workers
        self._dead: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.queue: WorkQueue[str] = WorkQueue(name="hollow-kubelet")
        self.pods: Informer[Pod] = Informer(self.client, Pod)
        self._ips: dict[str, str] = {}
        self._ip_seq = 0
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="hollow-hb")
        self.scheduler: Scheduler | None = Scheduler(self.client, seed=1, bind_workers=8) if scheduler else None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> HollowNodes:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        list(self._pool.map(self._register, self.names))
        self.pods.add_handler(lambda p: self._maybe(p), lambda o, n: self._maybe(n), None)
        self.pods.start()
        assert self.pods.wait_for_sync(30)
        self._threads = run_workers(self.queue, self._sync, n=self.workers, name="hollow-kubelet")
        t = threading.Thread(target=self._heartbeats, name="hollow-heartbeats", daemon=True)
        t.start()
        self._threads.append(t)
        if self.scheduler is not None:
            self.scheduler.start()

    def stop(self) -> None:
        self._stop.set()
        if self.scheduler is not None:
            self.scheduler.stop()
        self.queue.shutdown()
        self.pods.stop()
        for t in self._threads:
            t.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    def stop_node(self, name: str) -> None:
        with self._lock:
            self._dead.add(name)

    def start_node(self, name: str) -> None:
        with self._lock:
            self._dead.discard(name)
        self._post_ready(name)
        for pod in self.pods.list():
            if pod.spec.node_name == name:
                self.queue.add(pod.key)

    def alive(self, name: str | None) -> bool:
        with self._lock:
            return name in self._ip_names() and name not in self._dead

    def _ip_names(self) -> set[str]:
        return set(self.names)

    # ------------------------------------------------------------------ nodes
    def _register(self, name: str) -> None:
        i = self.names.index(name)
        ip = f"127.0.{1 + i // 250}.{1 + i % 250}"
        self._ips[name] = ip
        node = Node(metadata=ObjectMeta(name=name, labels={"kubernetes.io/hostname": name}),
                    status=NodeStatus(capacity={"cpu": "32", "memory": "64Gi", "pods": "110"},
                                      allocatable={"cpu": "32", "memory": "64Gi", "pods": "110"},
                                      addresses=[NodeAddress(type="InternalIP", address=ip)]))
        try:
            created = self.client.create(node)
        except Exception as e:
            if "already exists" not in str(e):
                raise
            created = self.client.get(Node, name)
        created.status = node.status
        self.client.update_status(created)
        self._post_ready(name)
        self._renew(name)

    def _post_ready(self, name: str) -> None:
        stamp = format_time(now())
        for _ in range(5):
            try:
                node = self.client.get(Node, name)
                conds = [c for c in node.status.conditions or [] if c.type != "Ready"]
                old = node.condition("Ready")
                transition = old.last_transition_time if old is not None and old.status == "True" else stamp
                conds.append(NodeCondition(type="Ready", status="True", reason="KubeletReady",
                                           message="kubelet is posting ready status", last_heartbeat_time=stamp,
                                           last_transition_time=transition))
                node.status.conditions = conds
                self.client.update_status(node)
                return
            except Exception as e:
                if "Conflict" not in type(e).__name__ and getattr(e, "code", 0) != 409:
                    raise

    def _renew(self, name: str) -> None:
        stamp = format_micro(now())
        try:
            lease = self.client.get(Lease, name, "kube-node-lease")
            lease.spec.renew_time = stamp
            self.client.update(lease)
        except Exception as e:
            if not is_not_found(e):
                raise
            self.client.create(Lease(metadata=ObjectMeta(name=name, namespace="kube-node-lease"),
                                     spec=LeaseSpec(holder_identity=name, lease_duration_seconds=40,
                                                    renew_time=stamp)))

    def _heartbeats(self) -> None:
        while not self._stop.wait(self.heartbeat):
            live = [n for n in self.names if self.alive(n)]
            for result in self._pool.map(self._safe_renew, live):
                del result

    def _safe_renew(self, name: str) -> None:
        try:
            self._renew(name)
        except Exception as e:
            log.debug("lease renewal of %s failed: %s", name, e)

    # ------------------------------------------------------------------ pods
    def _maybe(self, pod: Pod) -> None:
        if pod.spec.node_name and self.alive(pod.spec.node_name):
            self.queue.add(pod.key)

    def _next_ip(self) -> str:
        with self._lock:
            self._ip_seq += 1
            n = self._ip_seq
        return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"

    def _sync(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None or not self.alive(pod.spec.node_name):
            return
        if pod.metadata.deletion_timestamp is not None:
            try:
                self.client.delete(Pod, pod.metadata.name or "", pod.metadata.namespace, grace_period_seconds=0,
                                   preconditions={"uid": pod.metadata.uid or ""})
            except Exception as e:
                if not is_not_found(e) and getattr(e, "code", 0) != 409:
                    raise
            return
        want_ready = self.ready(pod)
        if want_ready and self.ready_after > 0:
            with self._lock:
                running = self._running_since.setdefault(pod.metadata.uid or key, time.monotonic())
            left = running + self.ready_after - time.monotonic()
            if left > 0:
                want_ready = False
                self.queue.add_after(key, left)
        cur = next((c for c in pod.status.conditions or [] if c.type == "Ready"), None)
        if pod.status.phase == "Running" and cur is not None and (cur.status == "True") == want_ready:
            return
        new = pod.copy_deep()
        stamp = format_time(now())
        node_ip = self._ips.get(pod.spec.node_name or "", "127.0.0.1")
        ip = new.status.pod_ip or self._next_ip()
        new.status.phase = "Running"
        new.status.host_ip = node_ip
        new.status.pod_ip = ip
        new.status.pod_ips = [PodIP(ip=ip)]
        new.status.start_time = new.status.start_time or stamp
        ports = [p for c in pod.spec.containers for p in c.ports or []]
        new.status.published_ports = [PublishedPort(container_port=p.container_port, host_port=31000 + i,
                                                     host_ip=node_ip) for i, p in enumerate(ports)] or None
        status = "True" if want_ready else "False"
        transition = cur.last_transition_time if cur is not None and cur.status == status else None
        ready_since = transition or stamp
        new.status.conditions = [
            PodCondition(type="PodScheduled", status="True", last_transition_time=stamp),
            PodCondition(type="Initialized", status="True", last_transition_time=stamp),
            PodCondition(type="ContainersReady", status=status, last_transition_time=ready_since),
            PodCondition(type="Ready", status=status, last_transition_time=ready_since),
        ]
        try:
            self.client.update_status(new)
        except Exception as e:
            if not is_not_found(e):
                raise


class PodSampler:
    """Watches pods of one label selector and records, after every event, how many exist
    (not being deleted) and how many of those are Ready — the rollout bounds."""

    def __init__(self, server_url: str, label_selector: str) -> None:
        self.client = Client(server_url, user_agent="pod-sampler")
        self.informer: Informer[Pod] = Informer(self.client, Pod, label_selector=label_selector)
        self.samples: list[tuple[float, int, int]] = []
        self._lock = threading.Lock()
        self._armed = False

    def _sample(self, *_: object) -> None:
        if not self._armed:
            return
        pods = [p for p in self.informer.list() if p.metadata.deletion_timestamp is None]
        ready = sum(1 for p in pods for c in p.status.conditions or [] if c.type == "Ready" and c.status == "True")
        with self._lock:
            self.samples.append((time.monotonic(), len(pods), ready))

    def __enter__(self) -> PodSampler:
        self.informer.add_handler(self._sample, self._sample, self._sample)
        self.informer.start()
        assert self.informer.wait_for_sync(30)
        self._armed = True
        self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        self.informer.stop()
        self.client.close()

    def max_pods(self) -> int:
        with self._lock:
            return max(s[1] for s in self.samples)

    def min_ready(self) -> int:
        with self._lock:
            return min(s[2] for s in self.samples)
