"""Liveness, readiness and startup probes (the kubelet's prober and probe workers).

`run_probe()` performs one probe: exec (through the runtime), httpGet (2xx/3xx is
success) or tcpSocket (a connection is success), against the pod IP from the node,
falling back to the port published on the node when the pod IP has no route from here.

`ProbeManager` runs one worker per (pod, container, probe kind) on a shared scheduler
thread and a small pool, so probes never block pod sync and cost no thread each.
Semantics as in Kubernetes:
- nothing runs before `initialDelaySeconds` after the container started, then every
  `periodSeconds` with `timeoutSeconds`;
- a result flips after `failureThreshold` consecutive failures / `successThreshold`
  consecutive successes; the initial result is success for liveness, failure for
  readiness (unless the API status already said ready for this very container: a
  restarted kubelet keeps serving pods) and startup;
- liveness and readiness wait until the startup probe succeeded; the startup probe stops
  after its first success;
- a failed liveness or startup probe holds its worker until the container is replaced
  (the kubelet kills and restarts it, see `unhealthy()`).
Every failed run records a Warning event `Unhealthy`; result changes call `on_change`.
"""

from __future__ import annotations

import errno
import heapq
import http.client
import itertools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mkube.api.types import Container, Pod, Probe
from mkube.kubelet.runtime.base import ContainerRuntimeError, ExecTimeout, Runtime
from mkube.kubelet.status import LIVENESS, READINESS, STARTUP

log = logging.getLogger(__name__)

KINDS = (STARTUP, LIVENESS, READINESS)
_NO_ROUTE = {errno.EHOSTUNREACH, errno.ENETUNREACH}
MAX_OUTPUT = 1024


@dataclass(frozen=True)
class Endpoint:
    """Where a probe connects: the pod IP, and the node address + published port map."""

    pod_ip: str
    node_ip: str = ""
    published: Mapping[int, int] = field(default_factory=dict)  # container port -> host port


def _resolve_port(port: int | str, container: Container) -> int:
    if isinstance(port, int):
        return port
    if port.isdigit():
        return int(port)
    for p in container.ports or []:
        if p.name == port:
            return p.container_port
    raise ValueError(f"named port {port!r} not found in container {container.name}")


def _connect_targets(host: str | None, port: int, ep: Endpoint) -> list[tuple[str, int]]:
    if host:
        return [(host, port)]
    targets = [(ep.pod_ip or ep.node_ip or "127.0.0.1", port)]
    if port in ep.published and ep.node_ip:
        targets.append((ep.node_ip, ep.published[port]))
    return targets


def _first_reachable(targets: list[tuple[str, int]], attempt: Callable[[str, int], Any]) -> Any:
    """Try `attempt` on each target, moving on only when there is no route to the first."""
    last: OSError | None = None
    for host, port in targets:
        try:
            return attempt(host, port)
        except OSError as e:
            if e.errno not in _NO_ROUTE:
                raise
            last = e
    assert last is not None
    raise last


def _os_error(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connect: connection refused"
    if isinstance(e, TimeoutError | socket.timeout):
        return "i/o timeout (Client.Timeout exceeded while awaiting headers)"
    return str(e) or type(e).__name__


def http_probe(probe: Probe, container: Container, ep: Endpoint) -> tuple[bool, str]:
    action = probe.http_get
    assert action is not None
    port = _resolve_port(action.port, container)
    scheme = (action.scheme or "HTTP").upper()
    path = action.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    timeout = float(probe.timeout_seconds or 1)
    headers = {"User-Agent": "kube-probe/1.32", "Accept": "*/*"}
    for h in action.http_headers or []:
        headers[h.name] = h.value
    targets = _connect_targets(action.host, port, ep)
    url = f"{scheme.lower()}://{targets[0][0]}:{port}{path}"

    def attempt(host: str, p: int) -> int:
        conn: http.client.HTTPConnection
        if scheme == "HTTPS":
            conn = http.client.HTTPSConnection(host, p, timeout=timeout,
                                               context=ssl._create_unverified_context())
        else:
            conn = http.client.HTTPConnection(host, p, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read(MAX_OUTPUT)
            return int(resp.status)
        finally:
            conn.close()

    try:
        code = _first_reachable(targets, attempt)
    except (OSError, http.client.HTTPException) as e:
        return False, f'Get "{url}": {_os_error(e)}'
    if 200 <= code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {code}"


def tcp_probe(probe: Probe, container: Container, ep: Endpoint) -> tuple[bool, str]:
    action = probe.tcp_socket
    assert action is not None
    port = _resolve_port(action.port, container)
    timeout = float(probe.timeout_seconds or 1)
    targets = _connect_targets(action.host, port, ep)

    def attempt(host: str, p: int) -> None:
        socket.create_connection((host, p), timeout=timeout).close()

    try:
        _first_reachable(targets, attempt)
    except OSError as e:
        return False, f"dial tcp {targets[0][0]}:{port}: {_os_error(e)}"
    return True, ""


def exec_probe(probe: Probe, runtime: Runtime, container_id: str) -> tuple[bool | None, str]:
    action = probe.exec
    assert action is not None
    timeout = float(probe.timeout_seconds or 1)
    try:
        result = runtime.exec(container_id, list(action.command or []), timeout_s=timeout)
    except ExecTimeout:
        return False, f"command {action.command!r} timed out"
    except ContainerRuntimeError as e:
        return None, str(e)  # the runtime failed, not the probe: no verdict
    if result.exit_code == 0:
        return True, ""
    out = result.output[:MAX_OUTPUT].decode("utf-8", "replace").strip()
    return False, out or f"command {action.command!r} exited with {result.exit_code}"


def run_probe(probe: Probe, container: Container, container_id: str, runtime: Runtime,
              ep: Endpoint) -> tuple[bool | None, str]:
    """One probe run: (True, "") success, (False, why) failure, (None, why) no verdict."""
    try:
        if probe.exec is not None:
            return exec_probe(probe, runtime, container_id)
        if probe.http_get is not None:
            return http_probe(probe, container, ep)
        if probe.tcp_socket is not None:
            return tcp_probe(probe, container, ep)
    except ValueError as e:
        return False, str(e)
    return None, "probe has no handler"


# --------------------------------------------------------------------------- workers


@dataclass(eq=False)
class _Worker:
    key: tuple[str, str, str]  # (pod uid, container name, kind)
    kind: str
    owner: Any  # the kubelet the pod belongs to (passed back to on_change)
    pod_ref: dict[str, str]
    container: Container
    probe: Probe
    runtime: Runtime
    container_id: str
    started_at: float
    endpoint: Endpoint
    result: bool
    run: int = 0  # consecutive runs with the same raw outcome
    last_raw: bool | None = None
    on_hold: bool = False
    busy: bool = False
    stopped: bool = False
    due: float = 0.0


class ProbeManager:
    """Probe workers of every pod of the process (see module docstring). Thread-safe."""

    def __init__(self, on_change: Callable[[Any, str], None], recorder_for: Callable[[Any], Any] | None = None,
                 workers: int = 8, clock: Callable[[], float] = time.time) -> None:
        self.on_change = on_change
        self.recorder_for = recorder_for
        self.clock = clock
        self._workers: dict[tuple[str, str, str], _Worker] = {}
        self._by_pod: dict[str, set[tuple[str, str, str]]] = {}
        self._heap: list[tuple[float, int, _Worker]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="probe")
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="probe-scheduler", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ pod sync interface
    def update_pod(self, owner: Any, pod: Pod, runtime: Runtime, running: Mapping[str, tuple[str, float]],
                   endpoint: Endpoint, api_ready: Mapping[str, bool] | None = None) -> None:
        """Make the workers match the pod: one per probe of each running container.

        `running`: container name -> (container id, started_at) of its running instance.
        `api_ready`: container id -> ready as the pod's API status says (adopted as the
        initial readiness, so a restarted kubelet does not flip Ready)."""
        uid = pod.metadata.uid or ""
        wanted: set[tuple[str, str, str]] = set()
        ref = {"apiVersion": "v1", "kind": "Pod", "namespace": pod.metadata.namespace or "",
               "name": pod.metadata.name or "", "uid": uid}
        changed = False
        with self._cond:
            for c in pod.spec.containers:
                inst = running.get(c.name)
                if inst is None:
                    continue
                cid, started_at = inst
                for kind, probe in ((STARTUP, c.startup_probe), (LIVENESS, c.liveness_probe),
                                    (READINESS, c.readiness_probe)):
                    if probe is None:
                        continue
                    key = (uid, c.name, kind)
                    wanted.add(key)
                    w = self._workers.get(key)
                    if w is not None and w.container_id == cid and w.probe == probe:
                        w.endpoint = endpoint
                        continue
                    if w is not None:
                        w.stopped = True
                    initial = kind == LIVENESS
                    if kind == READINESS and api_ready is not None and api_ready.get(cid):
                        initial = True
                    w = _Worker(key, kind, owner, ref, c, probe, runtime, cid, started_at or self.clock(), endpoint,
                                result=initial)
                    self._workers[key] = w
                    self._by_pod.setdefault(uid, set()).add(key)
                    self._schedule(w, max(self.clock(), w.started_at + (probe.initial_delay_seconds or 0)))
                    changed = True
            for key in list(self._by_pod.get(uid, ())):
                if key not in wanted:
                    self._drop(key)
                    changed = True
        if changed:
            log.debug("probe workers of %s updated", uid)

    def remove_pod(self, uid: str) -> None:
        with self._cond:
            for key in list(self._by_pod.get(uid, ())):
                self._drop(key)

    def results(self, uid: str) -> dict[tuple[str, str], bool]:
        """(kind, container id) -> current result, for the pod's status."""
        with self._cond:
            return {(w.kind, w.container_id): w.result
                    for key in self._by_pod.get(uid, ()) if (w := self._workers.get(key)) is not None}

    def unhealthy(self, uid: str) -> dict[str, tuple[str, str]]:
        """Containers to restart: name -> (container id, kind) whose liveness failed, or whose
        startup probe failed past its threshold."""
        out: dict[str, tuple[str, str]] = {}
        with self._cond:
            for key in self._by_pod.get(uid, ()):
                w = self._workers.get(key)
                if w is not None and w.kind in (LIVENESS, STARTUP) and not w.result and w.on_hold:
                    out[w.container.name] = (w.container_id, w.kind)
        return out

    def count(self) -> int:
        with self._cond:
            return len(self._workers)

    # ------------------------------------------------------------------ scheduling
    def _drop(self, key: tuple[str, str, str]) -> None:
        w = self._workers.pop(key, None)
        if w is not None:
            w.stopped = True
            keys = self._by_pod.get(key[0])
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_pod[key[0]]

    def _schedule(self, w: _Worker, at: float) -> None:
        w.due = at
        heapq.heappush(self._heap, (at, next(self._seq), w))
        self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                now = self.clock()
                due: list[_Worker] = []
                while self._heap and self._heap[0][0] <= now:
                    _, _, w = heapq.heappop(self._heap)
                    if not w.stopped and not w.busy:
                        w.busy = True
                        due.append(w)
                wait = (self._heap[0][0] - now) if self._heap else 1.0
                if not due:
                    self._cond.wait(min(max(wait, 0.01), 1.0))
                    continue
            for w in due:
                try:
                    self._pool.submit(self._run, w)
                except RuntimeError:  # pool shut down
                    return

    def _gated(self, w: _Worker) -> bool:
        """Liveness and readiness wait for the startup probe of the same container."""
        if w.kind == STARTUP or w.container.startup_probe is None:
            return False
        s = self._workers.get((w.key[0], w.key[1], STARTUP))
        return s is None or s.container_id != w.container_id or not s.result

    def _run(self, w: _Worker) -> None:
        started = self.clock()
        notify = False
        try:
            with self._cond:
                skip = w.stopped or w.on_hold or self._gated(w) or (w.kind == STARTUP and w.result)
            if skip:
                return
            raw, message = run_probe(w.probe, w.container, w.container_id, w.runtime, w.endpoint)
            if raw is None:
                return
            with self._cond:
                if w.stopped:
                    return
                w.run = w.run + 1 if raw == w.last_raw else 1
                w.last_raw = raw
                threshold = (w.probe.success_threshold or 1) if raw else (w.probe.failure_threshold or 3)
                if w.kind in (LIVENESS, STARTUP) and raw:
                    threshold = 1  # successThreshold must be 1 for these
                if w.run >= threshold and w.result != raw:
                    w.result = raw
                    notify = True
                    if not raw and w.kind in (LIVENESS, STARTUP):
                        w.on_hold = True  # until the kubelet replaces the container
            if not raw:
                self._event(w, message)
        except Exception:
            log.exception("probe %s of %s failed unexpectedly", w.kind, w.key)
        finally:
            with self._cond:
                w.busy = False
                if not w.stopped and not (w.kind == STARTUP and w.result):
                    period = float(w.probe.period_seconds or 10)
                    self._schedule(w, max(started + period, self.clock() + 0.05))
            if notify:
                try:
                    self.on_change(w.owner, w.key[0])
                except Exception:
                    log.exception("probe result callback failed")

    def _event(self, w: _Worker, message: str) -> None:
        if self.recorder_for is None:
            return
        recorder = self.recorder_for(w.owner)
        if recorder is None:
            return
        ref = dict(w.pod_ref, fieldPath=f"spec.containers{{{w.container.name}}}")
        recorder.event(ref, "Warning", "Unhealthy", f"{w.kind.capitalize()} probe failed: {message}")
