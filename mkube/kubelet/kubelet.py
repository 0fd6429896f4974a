"""`Kubelet`: the agent of one node — registration, heartbeats, and the pod sync.

`sync(uid)` is level-triggered and safe to run at any time (the process's work queue
runs at most one sync per pod at a time):

1. read the pod from the informer cache (by uid) and list its sandbox and containers
   from the runtime by label — never from memory, so a restarted kubelet adopts what
   runs and restart counts continue from the attempt labels;
2. a pod that is gone from the API (or is an orphan found by label) is stopped with the
   grace period recorded on its containers, then removed with its directory; a pod with
   deletionTimestamp is stopped with min(deletionGracePeriodSeconds,
   terminationGracePeriodSeconds), removed, then confirmed with DELETE
   gracePeriodSeconds=0 (precondition uid). Graceful stops run on the `terminator` pool,
   so deleting many pods waits one grace period, not one per worker round;
3. otherwise volumes are set up, `podsync.plan` decides (restart policies,
   CrashLoopBackOff, init containers, liveness kills), `podsync.execute` acts through a
   `PodRuntime` that records events and adds the service environment (graceful kills of
   a live pod's containers also run on the `terminator` pool, then the pod is synced again);
4. the status is computed from a fresh listing (`status.compute_pod_status`) and written
   through `pods/{name}/status` (merge patch, uid precondition) only when it changed;
5. probe workers follow the running containers; the pod is requeued when a back-off
   expires or a waiting state needs refreshing. A sync that found nothing to do records
   a fingerprint of its inputs; resyncs with the same fingerprint stop after the listing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any, Protocol

from mkube.api.errors import AlreadyExists, ApiError, BadRequest, NotFound, is_conflict, is_not_found
from mkube.api.timeutil import format_micro
from mkube.api.types import Lease, Node, Pod, PodStatus, Service
from mkube.client import BaseClient
from mkube.kubelet import podsync
from mkube.kubelet.envvars import pod_service_env
from mkube.kubelet.nodestatus import (
    HostInfo,
    lease_object,
    node_labels,
    node_object,
    node_status,
    without_heartbeat,
)
from mkube.kubelet.options import NODE_LEASE_NAMESPACE, KubeletOptions
from mkube.kubelet.podspec import grace_seconds
from mkube.kubelet.podsync import (
    BackOff,
    CreateSandbox,
    KillContainer,
    KillSandbox,
    StartContainer,
    SyncResult,
)
from mkube.kubelet.probes import Endpoint, ProbeManager
from mkube.kubelet.recording import PodRuntime, Recorder, container_ref
from mkube.kubelet.runtime.base import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_UID,
    ContainerInfo,
    ContainerRuntimeError,
    ExecResult,
    NodeResources,
    Runtime,
    SandboxInfo,
)
from mkube.kubelet.status import (
    TERMINAL_PHASES,
    by_name,
    compute_pod_status,
    current_sandbox,
)
from mkube.kubelet.volumes import ConfigSource, VolumeError, VolumeManager

log = logging.getLogger(__name__)

#: The status fields the kubelet owns; others (nominatedNodeName, reason...) are left alone.
MANAGED_STATUS = ("phase", "conditions", "hostIP", "hostIPs", "podIP", "podIPs", "startTime",
                  "initContainerStatuses", "containerStatuses", "qosClass", "publishedPorts")
_PULL_REASONS = ("ErrImagePull", "ImagePullBackOff")
_PULL_FAILURES = ("RegistryUnavailable", "ImagePullError")
_UNKNOWN_RESOURCES = NodeResources(0, 0, "linux", "amd64", "unknown://")


class PodSource(Protocol):
    """What a kubelet reads from the process's informer caches."""

    def pod_by_uid(self, uid: str) -> Pod | None: ...

    def pod_by_key(self, namespace: str, name: str) -> Pod | None: ...

    def pods_on_node(self, node_name: str) -> list[Pod]: ...

    def services(self) -> list[Service]: ...


Enqueue = Callable[[str, str, float], None]  # (node name, pod uid, delay seconds)


def _rv(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _pod_label(pod: Pod) -> str:
    m = pod.metadata
    return f"{m.name}_{m.namespace}({m.uid})"


class Kubelet:
    """The kubelet of node `node_name` (see module docstring). Thread-safe."""

    def __init__(self, node_name: str, runtime: Runtime, client: BaseClient, options: KubeletOptions, *,
                 source: PodSource, enqueue: Enqueue, node_ip: str, port: int, host: HostInfo,
                 volumes: VolumeManager, config: ConfigSource, probes: ProbeManager | None = None,
                 recorder: Recorder | None = None, clock: Callable[[], float] = time.time,
                 extra_labels: dict[str, str] | None = None, terminator: Executor | None = None) -> None:
        self.node_name = node_name
        self.runtime = runtime
        self.client = client
        self.options = options
        self.source = source
        self.enqueue = enqueue
        self.node_ip = node_ip
        self.port = port
        self.host = host
        self.volumes = volumes
        self.config = config
        self.probes = probes
        self.recorder = recorder
        self.clock = clock
        self.extra_labels = dict(extra_labels or {})
        self.terminator = terminator  # runs graceful stops of deleted pods (None: inline)
        self._terminating: set[str] = set()
        self.backoff = podsync.Backoff(options.crashloop_backoff_initial, options.crashloop_backoff_max)
        self.pull_backoff = podsync.Backoff(options.image_pull_backoff_initial, options.image_pull_backoff_max)
        self._lock = threading.Lock()
        self._resources: NodeResources | None = None
        # uid -> (resourceVersion, status as written) of our last status write
        self._written: dict[str, tuple[int, dict[str, Any]]] = {}
        self._relisted: dict[str, tuple[str, str]] = {}  # runtime id -> (pod uid, state)
        self._volumes_at: dict[str, float] = {}
        self._settled: dict[str, tuple[Any, ...]] = {}  # uid -> fingerprint of a sync with nothing to do
        self._node: Node | None = None
        self._node_sent: dict[str, object] | None = None
        self._node_reported_at = 0.0
        self._lease: Lease | None = None
        self.registered = False

    # ------------------------------------------------------------------ helpers
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def resources(self) -> NodeResources:
        """The runtime's capacity (asked once; unknown while the runtime does not answer)."""
        if self._resources is None:
            try:
                self._resources = self.runtime.info()
            except ContainerRuntimeError as e:
                log.warning("%s: runtime info unavailable: %s", self.node_name, e)
                return _UNKNOWN_RESOURCES
        return self._resources

    @property
    def id_scheme(self) -> str:
        return self.resources().runtime_version.partition("://")[0] or "docker"

    def _observe(self, uid: str) -> tuple[list[SandboxInfo], list[ContainerInfo]]:
        return self.runtime.list_all({LABEL_POD_UID: uid})

    def _event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(obj, type_, reason, message)

    # ------------------------------------------------------------------ node
    def _labels(self) -> dict[str, str]:
        return node_labels(self.node_name, self.resources(), self.extra_labels)

    def _node_status(self) -> Any:
        up = self.runtime.ping()
        if up and self._resources is None:
            self.resources()
        return node_status(resources=self.resources(), runtime_up=up, node_ip=self.node_ip, host=self.host,
                           port=self.port, max_pods=self.options.max_pods, now=self.now(),
                           old=self._node.status if self._node is not None else None)

    def register(self) -> bool:
        """Create the Node, or update the one that exists (labels merged, status written).
        Returns True when the API server has it."""
        status = self._node_status()
        labels = self._labels()
        try:
            self._node = self.client.create(node_object(self.node_name, labels, status))
        except AlreadyExists:
            self.client.patch(Node, self.node_name, {"metadata": {"labels": labels}})
            self._node = self.client.patch(Node, self.node_name, {"status": status.to_dict()}, subresource="status")
        self._node_sent = without_heartbeat(status)
        self._node_reported_at = time.monotonic()
        self.registered = True
        log.info("%s: node registered (InternalIP %s, kubelet port %d)", self.node_name, self.node_ip, self.port)
        return True

    def update_node_status(self, force: bool = False) -> None:
        """Write the node status if it changed or `node_status_report_frequency` passed."""
        if not self.registered:
            self.register()
            return
        status = self._node_status()
        key = without_heartbeat(status)
        due = time.monotonic() - self._node_reported_at >= self.options.node_status_report_frequency
        if not force and not due and key == self._node_sent:
            return
        try:
            self._node = self.client.patch(Node, self.node_name, {"status": status.to_dict()}, subresource="status")
        except NotFound:
            self.registered = False  # deleted under us: register again
            self.register()
            return
        self._node_sent = key
        self._node_reported_at = time.monotonic()

    def renew_lease(self) -> None:
        """Renew (or create) the node's Lease in kube-node-lease."""
        now = self.now()
        lease = self._lease
        if lease is None:
            try:
                lease = self.client.get(Lease, self.node_name, NODE_LEASE_NAMESPACE)
            except NotFound:
                try:
                    self._lease = self.client.create(lease_object(self._node, self.node_name,
                                                                  self.options.lease_duration_seconds, now))
                except AlreadyExists:
                    self._lease = None
                return
        renewed = lease.copy_deep()
        renewed.spec.holder_identity = self.node_name
        renewed.spec.lease_duration_seconds = self.options.lease_duration_seconds
        renewed.spec.renew_time = format_micro(now)
        try:
            self._lease = self.client.update(renewed)
        except ApiError as e:
            self._lease = None  # re-read next time (conflict, deleted)
            if not (is_conflict(e) or is_not_found(e)):
                raise

    # ------------------------------------------------------------------ periodic work
    def relist(self) -> None:
        """PLEG: list the node's sandboxes and containers; enqueue pods whose state changed."""
        try:
            sandboxes, containers = self.runtime.list_all()
        except ContainerRuntimeError as e:
            log.debug("%s: relist failed: %s", self.node_name, e)
            return
        snapshot: dict[str, tuple[str, str]] = {sb.id: (sb.pod_uid, sb.state) for sb in sandboxes}
        snapshot.update({c.id: (c.pod_uid, c.state) for c in containers})
        changed: set[str] = set()
        with self._lock:
            previous = self._relisted
            self._relisted = snapshot
        for rid, value in snapshot.items():
            if previous.get(rid) != value:
                changed.add(value[0])
        for rid, value in previous.items():
            if rid not in snapshot:
                changed.add(value[0])
        for uid in changed:
            if uid:
                self.enqueue(self.node_name, uid, 0)

    def runtime_uids(self) -> set[str]:
        with self._lock:
            return {uid for uid, _ in self._relisted.values() if uid}

    def housekeeping(self) -> None:
        """Enqueue orphans (runtime objects or pod dirs whose pod is gone); forget stale state."""
        known = {p.metadata.uid for p in self.source.pods_on_node(self.node_name)}
        for uid in (self.runtime_uids() | set(self.volumes.pod_uids())) - known:
            self.enqueue(self.node_name, uid, 0)
        with self._lock:
            for uid in [u for u in self._written if u not in known]:
                del self._written[uid]
            for uid in [u for u in self._volumes_at if u not in known]:
                del self._volumes_at[uid]
            for uid in [u for u in self._settled if u not in known]:
                del self._settled[uid]
        now = self.clock()
        self.backoff.gc(now)
        self.pull_backoff.gc(now)

    def resync(self) -> None:
        """Enqueue every pod of the node, spread over half the resync period."""
        pods = self.source.pods_on_node(self.node_name)
        spread = self.options.resync_period / 2
        for i, pod in enumerate(pods):
            self.enqueue(self.node_name, pod.metadata.uid or "", spread * i / max(1, len(pods)))

    # ------------------------------------------------------------------ pod sync
    def sync(self, uid: str) -> None:
        """Bring pod `uid` to its desired state and report its status (module docstring)."""
        with self._lock:
            if uid in self._terminating:
                return  # a graceful stop is in progress; it requeues the pod when done
        pod = self.source.pod_by_uid(uid)
        if pod is not None and pod.spec.node_name != self.node_name:
            pod = None
        sandboxes, containers = self._observe(uid)
        if pod is not None and pod.metadata.deletion_timestamp is None:
            self._sync_pod(pod, sandboxes, containers)
            return
        alive = any(c.state in ("running", "created", "unknown") for c in containers) or any(
            sb.state == "ready" for sb in sandboxes)
        if alive and self.terminator is not None:
            # Stopping waits up to the grace period: do it off the sync workers, every pod at once.
            with self._lock:
                self._terminating.add(uid)
            self.terminator.submit(self._terminate, uid, pod, sandboxes, containers)
            return
        if not self._teardown(uid, pod, sandboxes, containers):
            self.enqueue(self.node_name, uid, 1.0)
        elif pod is not None:
            self._confirm_deletion(pod)

    def _terminate(self, uid: str, pod: Pod | None, sandboxes: list[SandboxInfo],
                   containers: list[ContainerInfo]) -> None:
        try:
            self._teardown(uid, pod, sandboxes, containers)
        except Exception as e:
            log.warning("%s: stopping pod %s failed: %s", self.node_name, uid, e)
        finally:
            with self._lock:
                self._terminating.discard(uid)
            self.enqueue(self.node_name, uid, 0)  # confirm the deletion / retry

    def _run_kills(self, uid: str, kills: Sequence[podsync.Action]) -> None:
        try:
            podsync.execute(kills, None, self.runtime, now=self.clock())
        except Exception as e:
            log.warning("%s: stopping containers of pod %s failed: %s", self.node_name, uid, e)
        finally:
            with self._lock:
                self._terminating.discard(uid)
            self.enqueue(self.node_name, uid, 0)

    def _teardown(self, uid: str, pod: Pod | None, sandboxes: list[SandboxInfo],
                  containers: list[ContainerInfo]) -> bool:
        """Stop (gracefully) and remove everything of the pod; True when nothing is left."""
        target: Pod | None = None
        if pod is not None:
            target = pod.copy_deep()
            spec_grace = pod.spec.termination_grace_period_seconds
            grace = grace_seconds(pod)
            if spec_grace is not None:
                grace = min(grace, max(0, spec_grace))
            target.metadata.deletion_grace_period_seconds = grace
            if target.metadata.deletion_timestamp is None:
                target.metadata.deletion_timestamp = format_micro(self.now())
        for _ in range(4):
            if not sandboxes and not containers:
                break
            actions = podsync.plan(target, sandboxes, containers, self.clock(), self.backoff)
            if not actions:
                break
            if pod is not None:
                self._kill_events(pod, actions, {})
            podsync.execute(actions, target, self.runtime, now=self.clock())
            sandboxes, containers = self._observe(uid)
        if sandboxes or containers:
            return False
        self.volumes.cleanup(uid)
        if self.probes is not None:
            self.probes.remove_pod(uid)
        with self._lock:
            self._written.pop(uid, None)
            self._volumes_at.pop(uid, None)
            self._settled.pop(uid, None)
        return True

    def _confirm_deletion(self, pod: Pod) -> None:
        try:
            self.client.delete(Pod, pod.metadata.name or "", pod.metadata.namespace, grace_period_seconds=0,
                               preconditions={"uid": pod.metadata.uid or ""})
        except ApiError as e:
            if not (is_not_found(e) or is_conflict(e)):
                raise

    def _unhealthy(self, pod: Pod, containers: list[ContainerInfo]) -> tuple[set[str], dict[str, str]]:
        """Names of running containers a liveness/startup probe condemned, and the probe kind."""
        if self.probes is None:
            return set(), {}
        condemned = self.probes.unhealthy(pod.metadata.uid or "")
        if not condemned:
            return set(), {}
        latest = {name: inst[0] for name, inst in by_name(containers).items()}
        names: set[str] = set()
        kinds: dict[str, str] = {}
        for name, (cid, kind) in condemned.items():
            c = latest.get(name)
            if c is not None and c.id == cid and c.state == "running":
                names.add(name)
                kinds[name] = kind
        return names, kinds

    def _fingerprint(self, pod: Pod, sandboxes: list[SandboxInfo], containers: list[ContainerInfo],
                     unhealthy: set[str]) -> tuple[Any, ...]:
        """Everything a sync of a settled pod depends on: equal means the sync would do nothing."""
        uid = pod.metadata.uid or ""
        probes = self.probes.results(uid) if self.probes is not None else {}
        with self._lock:
            written = self._written.get(uid)
        return (pod.metadata.resource_version, written[0] if written else None,
                sorted((sb.id, sb.state, sb.ip) for sb in sandboxes),
                sorted((c.id, c.state, c.exit_code) for c in containers),
                sorted(probes.items()), sorted(unhealthy))

    def _sync_pod(self, pod: Pod, sandboxes: list[SandboxInfo], containers: list[ContainerInfo]) -> None:
        uid = pod.metadata.uid or ""
        now = self.clock()
        unhealthy, kinds = self._unhealthy(pod, containers)
        fingerprint = self._fingerprint(pod, sandboxes, containers, unhealthy)
        volumes_due = bool(pod.spec.volumes) and (
            now - self._volumes_at.get(uid, 0.0) >= self.options.volume_refresh_period)
        with self._lock:
            settled = self._settled.get(uid) == fingerprint
        if settled and not volumes_due:
            return  # nothing changed since a sync that had nothing to do (the common resync)
        base = self.pod_status_base(pod)
        if base is not pod.status:  # our last write is newer than the cache: build on it
            pod = pod.model_copy(update={"status": base})
        actions = podsync.plan(pod, sandboxes, containers, now, self.backoff, unhealthy=unhealthy)
        if pod.status.phase in TERMINAL_PHASES:  # a finished pod never runs anything again
            actions = [a for a in actions if isinstance(a, KillContainer | KillSandbox)]
        if self.terminator is not None and any(isinstance(a, KillContainer) and a.grace_s > 0 for a in actions):
            # A graceful kill (liveness, changed spec, dead sandbox) may take the whole grace
            # period: run the kills off the sync workers, then sync again to start replacements.
            self._kill_events(pod, actions, kinds)
            kills = [a for a in actions if isinstance(a, KillContainer | KillSandbox)]
            with self._lock:
                self._terminating.add(uid)
                self._settled.pop(uid, None)
            self.terminator.submit(self._run_kills, uid, kills)
            return
        starting = any(isinstance(a, StartContainer | CreateSandbox) for a in actions)
        volume_paths: dict[str, str] = {}
        mount_error: str | None = None
        if pod.spec.volumes and (starting or volumes_due):
            try:
                volume_paths = self.volumes.prepare(pod)
                with self._lock:
                    self._volumes_at[uid] = now
            except VolumeError as e:
                mount_error = str(e)
                actions = [a for a in actions if not isinstance(a, StartContainer | CreateSandbox)]
                starting = False
                self._event(pod, "Warning", "FailedMount", mount_error)
        base_env = pod_service_env(pod, self.source.services()) if starting else {}
        self._kill_events(pod, actions, kinds)
        ready = [s for s in sandboxes if s.state == "ready"]
        prt = PodRuntime(self.runtime, pod, self.recorder, base_env)
        res = self.resources()
        t_exec = time.monotonic()
        result = podsync.execute(
            actions, pod, prt, now=now, sandbox=current_sandbox(ready), backoff=self.backoff,
            pull_backoff=self.pull_backoff, volume_paths=volume_paths, lookup=self.config.lookup,
            host_ip=self.node_ip, node_cpu_millis=res.cpu_millis, node_memory=res.memory_bytes)
        for name, (reason, message) in list(result.waiting.items()):
            if reason in _PULL_FAILURES:  # the API shows every failed pull as ErrImagePull
                result.waiting[name] = ("ErrImagePull", message)
        t_observe = time.monotonic()
        if any(not isinstance(a, BackOff) for a in actions):
            sandboxes, containers = self._observe(uid)
        t_status = time.monotonic()
        self._result_events(pod, result)
        probe_results = self.probes.results(uid) if self.probes is not None else {}
        status = compute_pod_status(pod, sandboxes, containers, node_ip=self.node_ip, now=self.now(),
                                    waiting=result.waiting, probes=probe_results, id_scheme=self.id_scheme,
                                    sandbox_error=result.sandbox_error)
        wrote = self._write_status(pod, status)
        if actions and log.isEnabledFor(logging.DEBUG):
            log.debug("%s: synced %s/%s: %d action(s); execute %.3fs, observe %.3fs, status %.3fs (wrote %s)",
                      self.node_name, pod.metadata.namespace, pod.metadata.name, len(actions),
                      t_observe - t_exec, t_status - t_observe, time.monotonic() - t_status, wrote)
        self._update_probes(pod, sandboxes, containers)
        self._requeue(pod, actions, result, mount_error, containers)
        quiet = not actions and not result.waiting and result.sandbox_error is None and mount_error is None
        with self._lock:
            if quiet and not wrote and all(c.state in ("running", "exited") for c in containers):
                self._settled[uid] = fingerprint
            else:
                self._settled.pop(uid, None)

    # ------------------------------------------------------------------ events
    def _kill_events(self, pod: Pod, actions: Iterable[podsync.Action], kinds: dict[str, str]) -> None:
        for a in actions:
            if not isinstance(a, KillContainer):
                continue
            if a.reason == "liveness probe failed":
                msg = f"Container {a.name} failed {kinds.get(a.name, 'liveness')} probe, will be restarted"
            elif a.reason == "container spec changed":
                msg = f"Container {a.name} definition changed, will be restarted"
            else:
                msg = f"Stopping container {a.name}"
            self._event(container_ref(pod, a.name), "Normal", "Killing", msg)

    def _image_of(self, pod: Pod, name: str) -> str:
        for c in list(pod.spec.init_containers or []) + list(pod.spec.containers):
            if c.name == name:
                return c.image or ""
        return ""

    def _result_events(self, pod: Pod, result: SyncResult) -> None:
        if result.sandbox_error is not None:
            self._event(pod, "Warning", "FailedCreatePodSandBox",
                        f"Failed to create pod sandbox: {result.sandbox_error[1]}")
        for name, (reason, message) in result.waiting.items():
            ref = container_ref(pod, name)
            image = self._image_of(pod, name)
            if reason == "CrashLoopBackOff":
                self._event(ref, "Warning", "BackOff",
                            f"Back-off restarting failed container {name} in pod {_pod_label(pod)}")
            elif reason == "ErrImagePull":
                self._event(ref, "Warning", "Failed", f'Failed to pull image "{image}": {message}')
                self._event(ref, "Warning", "Failed", "Error: ErrImagePull")
            elif reason == "ImagePullBackOff":
                self._event(ref, "Normal", "BackOff", f'Back-off pulling image "{image}"')
                self._event(ref, "Warning", "Failed", "Error: ImagePullBackOff")
            elif reason == "ErrImageNeverPull":
                self._event(ref, "Warning", "ErrImageNeverPull", message)
                self._event(ref, "Warning", "Failed", "Error: ErrImageNeverPull")
            elif reason in ("CreateContainerConfigError", "InvalidImageName"):
                self._event(ref, "Warning", "Failed", f"Error: {message}")
            # create/start failures were recorded by PodRuntime as they happened

    # ------------------------------------------------------------------ status
    def _write_status(self, pod: Pod, status: PodStatus) -> bool:
        """Write the status if it differs from what the API (or our last write) has; True if written."""
        uid = pod.metadata.uid or ""
        new = status.to_dict()
        managed = {k: new.get(k) for k in MANAGED_STATUS}
        cached_rv = _rv(pod.metadata.resource_version)
        with self._lock:
            written = self._written.get(uid)
        if written is not None and written[0] >= cached_rv:
            if {k: written[1].get(k) for k in MANAGED_STATUS} == managed:  # the cache lags our last write
                return False
        else:
            old = pod.status.to_dict()
            if {k: old.get(k) for k in MANAGED_STATUS} == managed:
                return False
        body = {"metadata": {"uid": uid}, "status": managed}
        try:
            obj = self.client.patch_raw("pods", pod.metadata.name or "", body, pod.metadata.namespace,
                                        "merge", "status")
        except ApiError as e:
            if is_not_found(e) or is_conflict(e):
                return False  # the pod is gone (or was replaced by another with the same name)
            raise
        rv = _rv((obj.get("metadata") or {}).get("resourceVersion"))
        with self._lock:
            self._written[uid] = (rv, obj.get("status") or {})
        return True

    def is_own_write(self, pod: Pod) -> bool:
        """True if this cached version of the pod is the result of our own status write."""
        with self._lock:
            written = self._written.get(pod.metadata.uid or "")
        return written is not None and written[0] == _rv(pod.metadata.resource_version)

    def pod_status_base(self, pod: Pod) -> PodStatus:
        """The freshest status we know for the pod: the cache's or our last write's."""
        with self._lock:
            written = self._written.get(pod.metadata.uid or "")
        if written is not None and written[0] > _rv(pod.metadata.resource_version):
            return PodStatus.from_dict(written[1])
        return pod.status

    # ------------------------------------------------------------------ probes, requeue
    def _update_probes(self, pod: Pod, sandboxes: list[SandboxInfo], containers: list[ContainerInfo]) -> None:
        if self.probes is None:
            return
        has_probes = any(c.liveness_probe or c.readiness_probe or c.startup_probe for c in pod.spec.containers)
        if not has_probes:
            return
        running: dict[str, tuple[str, float]] = {}
        for name, inst in by_name(containers).items():
            if inst[0].state == "running":
                running[name] = (inst[0].id, inst[0].started_at or self.clock())
        sb = current_sandbox([s for s in sandboxes if s.state == "ready"])
        pod_ip = (self.node_ip if pod.spec.host_network else sb.ip) if sb is not None else ""
        endpoint = Endpoint(pod_ip=pod_ip, node_ip=self.options.publish_address or self.node_ip,
                            published=dict(sb.ports) if sb is not None else {})
        api_ready = {}
        for cs in self.pod_status_base(pod).container_statuses or []:
            if cs.container_id and cs.ready:
                api_ready[cs.container_id.partition("://")[2]] = True
        self.probes.update_pod(self, pod, self.runtime, running, endpoint, api_ready)

    def _requeue(self, pod: Pod, actions: list[podsync.Action], result: SyncResult, mount_error: str | None,
                 containers: list[ContainerInfo]) -> None:
        uid = pod.metadata.uid or ""
        now = self.clock()
        delays: list[float] = []
        for a in actions:
            if isinstance(a, BackOff):
                delays.append(a.until - now + 0.05)
        for name, (reason, _) in result.waiting.items():
            if reason in _PULL_REASONS:
                until = self.pull_backoff.until_since_update(f"pull/{self._image_of(pod, name)}", now)
                delays.append(1.0 if reason == "ErrImagePull" or until is None else until - now + 0.05)
            elif reason != "CrashLoopBackOff":
                delays.append(2.0)
        if result.sandbox_error is not None or mount_error is not None:
            delays.append(2.0)
        if any(c.state == "created" for c in containers):
            delays.append(1.0)
        if delays:
            self.enqueue(self.node_name, uid, max(0.05, min(delays)))

    # ------------------------------------------------------------------ logs and exec
    def _pod_containers(self, pod: Pod, container: str) -> list[ContainerInfo]:
        names = [c.name for c in list(pod.spec.containers) + list(pod.spec.init_containers or [])]
        if container not in names:
            raise BadRequest(f"container {container} is not valid for pod {pod.metadata.name}")
        found = self.runtime.list_containers({LABEL_POD_UID: pod.metadata.uid or "", LABEL_CONTAINER_NAME: container})
        return by_name(found).get(container, [])

    def log_container(self, pod: Pod, container: str, previous: bool) -> ContainerInfo:
        """The instance whose log `kubectl logs [--previous]` shows (the kubelet's rules):
        the newest instance; with `previous`, the last exited one before it — or the newest
        itself while it waits to be restarted."""
        instances = self._pod_containers(pod, container)
        name = pod.metadata.name
        if not instances:
            raise BadRequest(f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
        latest = instances[0]
        if not previous:
            return latest
        older = next((c for c in instances[1:] if c.state == "exited"), None)
        if latest.state == "exited" and pod.status.phase not in TERMINAL_PHASES:
            policy = pod.spec.restart_policy or "Always"
            if policy == "Always" or (policy == "OnFailure" and latest.exit_code != 0):
                return latest
        if older is None:
            raise BadRequest(f'previous terminated container "{container}" in pod "{name}" not found')
        return older

    def exec_in(self, pod: Pod, container: str, command: list[str], timeout_s: float | None) -> ExecResult:
        """Run `command` in the running instance of `container`."""
        instances = self._pod_containers(pod, container)
        if not instances or instances[0].state != "running":
            raise BadRequest(f"container {container} is not running in pod {pod.metadata.name}")
        return self.runtime.exec(instances[0].id, command, timeout_s)
