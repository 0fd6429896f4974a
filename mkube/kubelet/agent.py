"""`Agent`: one kubelet process running one node — or K hollow nodes — on shared machinery.

Every node gets its own `Kubelet` (the same sync code for Docker and for the fake
runtime); what costs threads, sockets or memory per process is shared:

- one `Client` (an HTTP keep-alive pool);
- one pod informer: `spec.nodeName=<node>` for a single node, every bound pod for
  hollow nodes, dispatched to the node's kubelet by an index on spec.nodeName (one watch
  instead of K); one Services informer (service environment variables);
- one work queue of (node, pod uid) keys and a few worker threads (a pod is synced by
  one worker at a time; failures retry with per-key back-off);
- one APScheduler (coalesce, max_instances=1) for heartbeats (Lease renewals), node
  status, runtime relists (PLEG), periodic resyncs and housekeeping;
- one probe scheduler, one pool for graceful stops of deleted pods, and one HTTP server
  (logs/exec), which finds the pod's node;
- hollow nodes share a few event recorders (their events name no source host).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor as JobExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from mkube.api.types import Pod, Service
from mkube.client import BaseClient, EventRecorder, Informer, WorkQueue, run_workers
from mkube.kubelet.kubelet import Kubelet
from mkube.kubelet.nodeip import detect_node_ip
from mkube.kubelet.nodestatus import HostInfo
from mkube.kubelet.options import KubeletOptions
from mkube.kubelet.probes import ProbeManager
from mkube.kubelet.runtime.base import Runtime
from mkube.kubelet.server import Authenticate, KubeletHTTPServer, Target
from mkube.kubelet.volumes import ConfigSource, VolumeManager

log = logging.getLogger(__name__)

UID_INDEX = "uid"
NODE_INDEX = "node"
HOLLOW_LABEL = "mkube.io/hollow-node"


def hollow_pod_cidr(index: int) -> str:
    """A distinct /24 per hollow node inside 10.64.0.0/10 (up to 16384 nodes)."""
    base = int(ipaddress.IPv4Address("10.64.0.0")) + (index % 16384) * 256
    return f"{ipaddress.IPv4Address(base)}/24"


class Agent(Target):
    """See the module docstring. `start()`, then `stop()`."""

    def __init__(self, client: BaseClient, options: KubeletOptions, runtimes: Sequence[Runtime], *,
                 hollow: bool = False, authenticate: Authenticate | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if not runtimes:
            raise ValueError("an agent needs at least one runtime (node)")
        self.client = client
        self.options = options
        self.hollow = hollow
        self.clock = clock
        self.node_ip = options.node_ip or detect_node_ip()
        selector = f"spec.nodeName={runtimes[0].node_name}" if len(runtimes) == 1 else "spec.nodeName!="
        self.pod_informer: Informer[Pod] = Informer(client, Pod, field_selector=selector)
        self.pod_informer.add_index(UID_INDEX, lambda p: [p.metadata.uid or ""])
        self.pod_informer.add_index(NODE_INDEX, lambda p: [p.spec.node_name or ""])
        self.service_informer: Informer[Service] = Informer(client, Service)
        self.queue: WorkQueue[tuple[str, str]] = WorkQueue(name="kubelet", base_delay=0.2, max_delay=30.0)
        self.probes = ProbeManager(on_change=self._probe_changed, recorder_for=lambda kl: kl.recorder,
                                   workers=options.probe_workers, clock=clock)
        self.config = ConfigSource(client)
        self.volumes = VolumeManager(options.root_dir, self.config, dry_run=hollow)
        self.server = KubeletHTTPServer((options.address or self.node_ip, options.port), self, authenticate)
        self.port = self.server.port
        hostname = socket.gethostname()
        self.terminator = ThreadPoolExecutor(max_workers=32, thread_name_prefix="kubelet-stop")
        self.kubelets: dict[str, Kubelet] = {}
        self._recorders: list[EventRecorder] = []
        # Hollow nodes share a few recorders (a few writer threads and connections, not K):
        # their events name no source host. A real node's events carry its name.
        hollow_recorders = min(4, len(runtimes)) if len(runtimes) > 1 else 0
        self._recorders = [EventRecorder(client, "kubelet", queue_size=10_000) for _ in range(hollow_recorders)]
        for i, rt in enumerate(runtimes):
            shared = self._recorders[i % hollow_recorders] if hollow_recorders else None
            host = HostInfo.detect(rt.node_name if hollow else hostname)
            extra = dict(options.labels)
            if hollow:
                extra[HOLLOW_LABEL] = "true"
            recorder = shared or EventRecorder(client, "kubelet", host=rt.node_name)
            if shared is None:
                self._recorders.append(recorder)
            self.kubelets[rt.node_name] = Kubelet(
                rt.node_name, rt, client, options, source=self, enqueue=self.enqueue, node_ip=self.node_ip,
                port=self.port, host=host, volumes=self.volumes, config=self.config, probes=self.probes,
                recorder=recorder, clock=clock, extra_labels=extra, terminator=self.terminator)
        self.scheduler = BackgroundScheduler(
            executors={"default": JobExecutor(4)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
        self._workers: list[threading.Thread] = []
        self._stopped = threading.Event()
        self._synced = threading.Event()
        self._fanout = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kubelet-node")

    # ------------------------------------------------------------------ PodSource
    def pod_by_uid(self, uid: str) -> Pod | None:
        found = self.pod_informer.by_index(UID_INDEX, uid)
        return found[0] if found else None

    def pod_by_key(self, namespace: str, name: str) -> Pod | None:
        return self.pod_informer.get(f"{namespace}/{name}")

    def pods_on_node(self, node_name: str) -> list[Pod]:
        return self.pod_informer.by_index(NODE_INDEX, node_name)

    def services(self) -> list[Service]:
        return self.service_informer.list()

    # ------------------------------------------------------------------ server Target
    def find_pod(self, namespace: str, name: str) -> tuple[Kubelet, Pod] | None:
        pod = self.pod_by_key(namespace, name)
        if pod is None:
            return None
        kubelet = self.kubelets.get(pod.spec.node_name or "")
        return None if kubelet is None else (kubelet, pod)

    def pods(self) -> list[Pod]:
        return [p for p in self.pod_informer.list() if p.spec.node_name in self.kubelets]

    # ------------------------------------------------------------------ queue
    def enqueue(self, node_name: str, uid: str, delay: float = 0.0) -> None:
        if not uid:
            return
        if delay > 0:
            self.queue.add_after((node_name, uid), delay)
        else:
            self.queue.add((node_name, uid))

    def _probe_changed(self, kubelet: Any, uid: str) -> None:
        self.enqueue(kubelet.node_name, uid)

    def _sync(self, key: tuple[str, str]) -> None:
        kubelet = self.kubelets.get(key[0])
        if kubelet is not None:
            kubelet.sync(key[1])

    # ------------------------------------------------------------------ informer handlers
    def _on_add(self, pod: Pod) -> None:
        if pod.spec.node_name in self.kubelets:
            self.enqueue(pod.spec.node_name or "", pod.metadata.uid or "")

    def _on_update(self, old: Pod, new: Pod) -> None:
        kubelet = self.kubelets.get(new.spec.node_name or "")
        if kubelet is None or kubelet.is_own_write(new):
            return  # our own status write coming back: nothing to do
        self.enqueue(kubelet.node_name, new.metadata.uid or "")

    def _on_delete(self, pod: Pod) -> None:
        if pod.spec.node_name in self.kubelets:
            self.enqueue(pod.spec.node_name or "", pod.metadata.uid or "")

    # ------------------------------------------------------------------ periodic jobs
    def _each(self, what: str, fn: Callable[[Kubelet], object]) -> None:
        """Run `fn` for every node (in parallel for hollow nodes); log failures per node."""
        def one(kl: Kubelet) -> None:
            try:
                fn(kl)
            except Exception as e:
                log.warning("%s: %s failed: %s", kl.node_name, what, e)

        kubelets = list(self.kubelets.values())
        if len(kubelets) == 1:
            one(kubelets[0])
        else:
            list(self._fanout.map(one, kubelets))

    def _heartbeat(self) -> None:
        self._each("lease renewal", lambda kl: kl.renew_lease() if kl.registered else kl.register())

    def _node_status(self) -> None:
        self._each("node status update", lambda kl: kl.update_node_status())

    def _relist(self) -> None:
        if self._synced.is_set():
            self._each("relist", lambda kl: kl.relist())

    def _resync(self) -> None:
        if self._synced.is_set():
            self._each("resync", lambda kl: kl.resync())

    def _housekeeping(self) -> None:
        if self._synced.is_set():
            self._each("housekeeping", lambda kl: kl.housekeeping())

    def _add_job(self, fn: Callable[[], None], seconds: float, name: str) -> None:
        self.scheduler.add_job(fn, "interval", seconds=seconds, id=name, name=name)

    # ------------------------------------------------------------------ lifecycle
    def start(self, stop: threading.Event | None = None, sync_timeout: float | None = None) -> bool:
        """Serve, register the nodes, start informers and workers; returns once the caches
        synced (False if `stop` was set or `sync_timeout` passed first)."""
        stop = stop or self._stopped
        self.server.start()
        log.info("kubelet: %d node(s) [%s], node IP %s, serving on %s:%d", len(self.kubelets),
                 ", ".join(list(self.kubelets)[:3]) + (" ..." if len(self.kubelets) > 3 else ""),
                 self.node_ip, self.server.server_address[0], self.port)
        self._each("registration", _register)
        self.pod_informer.add_handler(self._on_add, self._on_update, self._on_delete)
        self.pod_informer.start()
        self.service_informer.start()
        self.probes.start()
        o = self.options
        self.scheduler.start()
        self._add_job(self._heartbeat, o.lease_renew_interval, "heartbeat")
        self._add_job(self._node_status, o.node_status_update_frequency, "node-status")
        deadline = None if sync_timeout is None else time.monotonic() + sync_timeout
        while not (self.pod_informer.has_synced() and self.service_informer.has_synced()):
            if stop.is_set() or self._stopped.is_set() or (deadline is not None and time.monotonic() > deadline):
                return False
            stop.wait(0.05)
        # workers start once the service cache is complete, so service env is never partial
        self._workers = run_workers(self.queue, self._sync, n=o.workers, name="kubelet")
        self._synced.set()
        self._relist()
        self._add_job(self._relist, o.relist_period, "relist")
        self._add_job(self._resync, o.resync_period, "resync")
        self._add_job(self._housekeeping, o.housekeeping_period, "housekeeping")
        return True

    def stop(self) -> None:
        """Stop serving and syncing. Running containers are left alone (as the kubelet does)."""
        self._stopped.set()
        with contextlib.suppress(Exception):  # not started
            self.scheduler.shutdown(wait=False)
        self.queue.shutdown()
        self.pod_informer.stop()
        self.service_informer.stop()
        self.probes.stop()
        self.server.stop()
        for t in self._workers:
            t.join(5)
        for recorder in self._recorders:
            recorder.stop(1.0)
        self._fanout.shutdown(wait=False)
        self.terminator.shutdown(wait=False, cancel_futures=True)


def _register(kubelet: Kubelet) -> None:
    kubelet.register()
    kubelet.renew_lease()
