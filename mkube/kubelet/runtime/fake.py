"""`FakeRuntime`: the Runtime protocol in memory, for hollow nodes (cf. kubemark) and tests.

It behaves like Docker as the kubelet sees it, without processes or threads: state is
computed from the clock when asked, so thousands of fake containers cost only memory.

- Images are present only once pulled (or listed in `images=`); pulling is instant
  unless the reference is in `missing_images` (-> ImagePullError).
- A started container becomes "running" after `start_delay` seconds, then runs forever
  or exits as scripted: `fake.script("busybox", exit_code=1, after_seconds=2)`.
- Sandboxes get IPs from `pod_cidr` and ephemeral host ports from 32768 upwards;
  asking for a host port already bound raises SandboxCreateError, as Docker does.
- `stop_container` returns at once (no real waiting): exit code 143 after SIGTERM, or
  137 if the script says the process ignores SIGTERM.
- `clock` is injectable (`FakeClock`) so tests control time exactly.

Thread-safe: one lock per instance.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mkube.kubelet.runtime.base import (
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    ContainerConfig,
    ContainerCreateError,
    ContainerInfo,
    ContainerRuntimeError,
    ContainerStartError,
    ContainerState,
    ExecResult,
    ExecTimeout,
    ImagePullError,
    NodeResources,
    NotFound,
    PortMapping,
    Runtime,
    RuntimeUnavailable,
    SandboxConfig,
    SandboxCreateError,
    SandboxInfo,
    container_labels,
    ports_by_container_port,
    sandbox_labels,
)

ExecSpec = ExecResult | tuple[int, bytes] | int
ExecResults = ExecSpec | Sequence[ExecSpec] | Mapping[tuple[str, ...], ExecSpec] | Callable[[list[str]], ExecSpec]

EPHEMERAL_PORTS = range(32768, 61000)


class FakeClock:
    """A settable clock for tests: `clock()` returns the time, `advance(s)` moves it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now


@dataclass
class Script:
    """How containers matching a key behave. Sequences are per instance: the n-th
    container created for the same pod and container name uses element n (the last
    element repeats), so "crash twice, then run" is `exit_code=[1, 1, None]`."""

    exit_code: int | None | Sequence[int | None] = None  # None: run until stopped
    after_seconds: float | Sequence[float] = 0.0  # run time before exiting
    start_delay: float | None = None  # None: the runtime's default
    exec_results: ExecResults | None = None  # default: exit 0, no output
    exec_delay: float = 0.0  # an exec "takes" this long (timeout if > timeout_s)
    oom_killed: bool = False  # the scripted exit is an OOM kill (exit code 137)
    ignore_sigterm: bool = False  # stop ends with SIGKILL (137) instead of 143
    start_error: str | None = None  # start_container raises ContainerStartError
    logs: bytes = b""  # written when the container starts


def _pick(value: Any, index: int) -> Any:
    if isinstance(value, (list, tuple)):
        return value[min(index, len(value) - 1)] if value else None
    return value


def _as_exec_result(spec: ExecSpec) -> ExecResult:
    if isinstance(spec, ExecResult):
        return spec
    if isinstance(spec, int):
        return ExecResult(spec, b"")
    return ExecResult(int(spec[0]), bytes(spec[1]))


def normalize_image(ref: str) -> str:
    """"busybox" and "busybox:latest" name the same image."""
    if "@" in ref:
        return ref
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else ref + ":latest"


@dataclass
class _Sandbox:
    id: str
    labels: dict[str, str]
    ip: str
    mappings: list[PortMapping]
    created_at: float
    stopped: bool = False
    started: bool = True


@dataclass
class _Container:
    id: str
    name: str
    sandbox_id: str
    labels: dict[str, str]
    image: str
    image_id: str
    script: Script
    exit_code: int | None  # scripted exit, None: runs until stopped
    run_seconds: float
    start_delay: float
    created_at: float
    start_at: float | None = None  # when start_container was called
    stop_at: float | None = None
    stop_exit_code: int = 143
    error: str = ""
    exec_count: int = 0
    logs: list[tuple[float, bytes]] = field(default_factory=list)

    def running_from(self) -> float | None:
        return None if self.start_at is None else self.start_at + self.start_delay

    def status(self, now: float) -> tuple[ContainerState, int | None, float | None, float | None, bool]:
        """(state, exit code, started_at, finished_at, oom_killed) at time `now`."""
        if self.error:
            return "exited", 128, None, self.start_at, False
        begin = self.running_from()
        natural_end = None if begin is None or self.exit_code is None else begin + self.run_seconds
        if self.stop_at is not None and (natural_end is None or self.stop_at < natural_end):
            started = begin if begin is not None and begin <= self.stop_at else None
            return "exited", self.stop_exit_code if started is not None else 137, started, self.stop_at, False
        if begin is None or now < begin:
            return "created", None, None, None, False
        if natural_end is None or now < natural_end:
            return "running", None, begin, None, False
        return "exited", self.exit_code, begin, natural_end, self.script.oom_killed


class FakeRuntime:
    """An in-memory Runtime. See the module docstring for its behaviour."""

    def __init__(
        self,
        node_name: str = "fake-node",
        *,
        clock: Callable[[], float] = time.time,
        start_delay: float = 0.0,
        pod_cidr: str = "10.88.0.0/16",
        images: Iterable[str] = (),
        missing_images: Iterable[str] = (),
        cpu_millis: int = 4000,
        memory_bytes: int = 16 * 1024**3,
    ) -> None:
        self.node_name = node_name
        self.clock = clock
        self.start_delay = start_delay
        self.missing_images = {normalize_image(r) for r in missing_images}
        self.available = True
        self.calls: Counter[str] = Counter()
        self.history: deque[tuple[str, str]] = deque(maxlen=2000)
        self._resources = NodeResources(cpu_millis, memory_bytes, "linux", "amd64", "fake://0.1")
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._net = ipaddress.ip_network(pod_cidr)
        self._ip_iter = itertools.islice(self._net.hosts(), 1, None)  # .1 is the "gateway"
        self._free_ips: list[str] = []
        self._bound: dict[tuple[int, str], str] = {}  # (host port, proto) -> sandbox id
        self._next_port = EPHEMERAL_PORTS.start
        self._images: dict[str, str] = {}
        self._sandboxes: dict[str, _Sandbox] = {}
        # created, not yet started sandboxes: the ports and network they will bind
        self._wanted_ports: dict[str, list[tuple[PortMapping, str]]] = {}
        self._host_network: dict[str, bool] = {}
        self._containers: dict[str, _Container] = {}
        self._scripts: dict[str, Script] = {}
        self._instances: Counter[tuple[str, str]] = Counter()
        self._errors: dict[str, list[Exception]] = {}
        for ref in images:
            self._images[normalize_image(ref)] = self._image_digest(ref)

    # ------------------------------------------------------------------ scripting

    def script(self, key: str, **behaviour: Any) -> Script:
        """Script containers whose "namespace/pod/container", container name or image is
        `key` (checked in that order). Keyword arguments are `Script` fields."""
        s = Script(**behaviour)
        with self._lock:
            self._scripts[key] = s
        return s

    def inject_error(self, method: str, error: Exception, times: int = 1) -> None:
        """The next `times` calls of `method` (e.g. "run_sandbox") raise `error`."""
        with self._lock:
            self._errors.setdefault(method, []).extend([error] * times)

    def add_image(self, ref: str) -> None:
        with self._lock:
            self._images[normalize_image(ref)] = self._image_digest(ref)

    def _enter(self, method: str, subject: str = "") -> None:
        """Count the call, fail if the runtime is "down" or an error is injected."""
        self.calls[method] += 1
        self.history.append((method, subject))
        if not self.available:
            raise RuntimeUnavailable(f"{method}: fake runtime is unavailable")
        queued = self._errors.get(method)
        if queued:
            raise queued.pop(0)

    @staticmethod
    def _image_digest(ref: str) -> str:
        return "sha256:" + hashlib.sha256(normalize_image(ref).encode()).hexdigest()

    def _new_id(self) -> str:
        return hashlib.sha256(f"{self.node_name}/{next(self._ids)}".encode()).hexdigest()

    # ------------------------------------------------------------------ sandboxes

    def _alloc_ip(self) -> str:
        if self._free_ips:
            return self._free_ips.pop()
        try:
            return str(next(self._ip_iter))
        except StopIteration:
            raise SandboxCreateError(f"pod CIDR {self._net} exhausted") from None

    def _alloc_port(self, proto: str) -> int:
        for _ in range(len(EPHEMERAL_PORTS)):
            port = self._next_port
            self._next_port = port + 1 if port + 1 < EPHEMERAL_PORTS.stop else EPHEMERAL_PORTS.start
            if (port, proto) not in self._bound:
                return port
        raise SandboxCreateError("no free ephemeral host port")

    def run_sandbox(self, cfg: SandboxConfig) -> SandboxInfo:
        with self._lock:
            self._enter("run_sandbox", f"{cfg.namespace}/{cfg.name}")
            return self.start_sandbox(self.create_sandbox(cfg))

    def create_sandbox(self, cfg: SandboxConfig) -> str:
        with self._lock:
            self._enter("create_sandbox", f"{cfg.namespace}/{cfg.name}")
            sid = self._new_id()
            sb = _Sandbox(sid, sandbox_labels(cfg, self.node_name), "", [], self.clock(), started=False)
            self._wanted_ports[sid] = [] if cfg.host_network else [(p, p.protocol.upper()) for p in cfg.ports]
            self._host_network[sid] = cfg.host_network
            self._sandboxes[sid] = sb
            return sid

    def start_sandbox(self, sandbox_id: str) -> SandboxInfo:
        """Binds the ports and the IP, as Docker does when the infra container starts."""
        with self._lock:
            sb = self._sandboxes.get(sandbox_id)
            try:
                self._enter("start_sandbox", sandbox_id)
                if sb is None:
                    raise SandboxCreateError(f"no such sandbox: {sandbox_id}")
                wanted = self._wanted_ports.pop(sandbox_id, [])
                for p, proto in wanted:
                    if p.host_port and (p.host_port, proto) in self._bound:
                        raise SandboxCreateError(f"Bind for {p.host_ip or '0.0.0.0'}:{p.host_port} failed: "
                                                 "port is already allocated")
                mappings: list[PortMapping] = []
                for p, proto in wanted:
                    host_port = p.host_port or self._alloc_port(proto)
                    self._bound[(host_port, proto)] = sandbox_id
                    mappings.append(PortMapping(p.container_port, proto, host_port, p.host_ip or "0.0.0.0"))
                sb.mappings = mappings
                sb.ip = "" if self._host_network.pop(sandbox_id, False) else self._alloc_ip()
            except RuntimeUnavailable:
                raise
            except ContainerRuntimeError:
                self._drop_sandbox(sandbox_id)  # nothing is left behind, as on Docker
                raise
            sb.started = True
            return self._sandbox_info(sb)

    def _sandbox_info(self, sb: _Sandbox) -> SandboxInfo:
        return SandboxInfo(id=sb.id, labels=dict(sb.labels), state="ready" if sb.started and not sb.stopped else "notready",
                           ip="" if sb.stopped else sb.ip, ports=ports_by_container_port(sb.mappings),
                           port_mappings=list(sb.mappings), created_at=sb.created_at)

    def _unbind(self, sb: _Sandbox) -> None:
        for m in sb.mappings:
            if self._bound.get((m.host_port, m.protocol)) == sb.id:
                del self._bound[(m.host_port, m.protocol)]

    def _release(self, sb: _Sandbox) -> None:
        self._unbind(sb)
        if sb.ip:
            self._free_ips.append(sb.ip)
            sb.ip = ""

    def stop_sandbox(self, sandbox_id: str, timeout_s: float = 10) -> None:
        with self._lock:
            self._enter("stop_sandbox", sandbox_id)
            sb = self._sandboxes.get(sandbox_id)
            if sb is None:
                return
            for c in list(self._containers.values()):
                if c.sandbox_id == sandbox_id:
                    self._stop(c)
            if not sb.stopped:
                sb.stopped = True
                self._unbind(sb)  # Docker frees the published ports when the infra container stops

    def remove_sandbox(self, sandbox_id: str) -> None:
        with self._lock:
            self._enter("remove_sandbox", sandbox_id)
            self._drop_sandbox(sandbox_id)

    def _drop_sandbox(self, sandbox_id: str) -> None:
        """Forget the sandbox and its containers (caller holds the lock)."""
        sb = self._sandboxes.pop(sandbox_id, None)
        self._wanted_ports.pop(sandbox_id, None)
        self._host_network.pop(sandbox_id, None)
        if sb is None:
            return
        for cid in [c.id for c in self._containers.values() if c.sandbox_id == sandbox_id]:
            del self._containers[cid]
        self._release(sb)

    def list_sandboxes(self, labels: Mapping[str, str] | None = None) -> list[SandboxInfo]:
        with self._lock:
            self._enter("list_sandboxes")
            want = labels.items() if labels else ()
            return [self._sandbox_info(sb) for sb in self._sandboxes.values()
                    if all(sb.labels.get(k) == v for k, v in want)]

    def list_all(self, labels: Mapping[str, str] | None = None) -> tuple[list[SandboxInfo], list[ContainerInfo]]:
        with self._lock:  # one consistent view, as one Docker listing gives
            return self.list_sandboxes(labels), self.list_containers(labels)

    def inspect_sandbox(self, sandbox_id: str) -> SandboxInfo:
        with self._lock:
            self._enter("inspect_sandbox", sandbox_id)
            sb = self._sandboxes.get(sandbox_id)
            if sb is None:
                raise NotFound(f"no such sandbox: {sandbox_id}")
            return self._sandbox_info(sb)

    # ------------------------------------------------------------------ containers

    def _script_for(self, labels: Mapping[str, str], cfg: ContainerConfig) -> Script:
        for key in (f"{labels.get(LABEL_POD_NAMESPACE)}/{labels.get(LABEL_POD_NAME)}/{cfg.name}",
                    cfg.name, cfg.image, normalize_image(cfg.image), cfg.image.removesuffix(":latest")):
            s = self._scripts.get(key)
            if s is not None:
                return s
        return Script()

    def create_container(self, sandbox_id: str, cfg: ContainerConfig) -> str:
        with self._lock:
            self._enter("create_container", cfg.name)
            sb = self._sandboxes.get(sandbox_id)
            if sb is None:
                raise NotFound(f"no such sandbox: {sandbox_id}")
            image_id = self._images.get(normalize_image(cfg.image))
            if image_id is None:
                raise ContainerCreateError(f"image {cfg.image} is not present", "ImageNotPresent")
            labels = container_labels(cfg, sandbox_id, sb.labels, self.node_name)
            key = (labels[LABEL_POD_UID], cfg.name)
            n = self._instances[key]
            self._instances[key] = n + 1
            script = self._script_for(labels, cfg)
            cid = self._new_id()
            exit_code = _pick(script.exit_code, n)
            if script.oom_killed and exit_code is None:
                exit_code = 137
            self._containers[cid] = _Container(
                id=cid, name=cfg.name, sandbox_id=sandbox_id, labels=labels, image=cfg.image, image_id=image_id,
                script=script, exit_code=exit_code, run_seconds=float(_pick(script.after_seconds, n) or 0.0),
                start_delay=self.start_delay if script.start_delay is None else script.start_delay,
                created_at=self.clock(),
            )
            return cid

    def _get(self, container_id: str) -> _Container:
        c = self._containers.get(container_id)
        if c is None:
            raise NotFound(f"no such container: {container_id}")
        return c

    def start_container(self, container_id: str) -> None:
        with self._lock:
            self._enter("start_container", container_id)
            c = self._get(container_id)
            if c.start_at is not None or c.error:
                raise ContainerStartError(f"container {container_id} was already started")
            sb = self._sandboxes.get(c.sandbox_id)
            if sb is None or sb.stopped or not sb.started:
                c.error = "cannot join network of a non running container"
                raise ContainerStartError(c.error)
            now = self.clock()
            if c.script.start_error:
                c.error, c.start_at = c.script.start_error, now
                raise ContainerStartError(c.error)
            c.start_at = now
            if c.script.logs:
                c.logs.append((now + c.start_delay, c.script.logs))

    def _stop(self, c: _Container) -> None:
        now = self.clock()
        if c.status(now)[0] == "exited" or c.stop_at is not None:
            return
        c.stop_at = now
        c.stop_exit_code = 137 if c.script.ignore_sigterm else 143

    def stop_container(self, container_id: str, timeout_s: float = 10) -> None:
        with self._lock:
            self._enter("stop_container", container_id)
            c = self._containers.get(container_id)
            if c is not None:
                self._stop(c)

    def remove_container(self, container_id: str) -> None:
        with self._lock:
            self._enter("remove_container", container_id)
            self._containers.pop(container_id, None)

    def _info(self, c: _Container, now: float) -> ContainerInfo:
        state, code, started, finished, oom = c.status(now)
        return ContainerInfo(id=c.id, name=c.name, labels=dict(c.labels), image=c.image, image_id=c.image_id,
                             state=state, exit_code=code, created_at=c.created_at, started_at=started,
                             finished_at=finished, oom_killed=oom, error=c.error)

    def list_containers(self, labels: Mapping[str, str] | None = None, all: bool = True) -> list[ContainerInfo]:
        with self._lock:
            self._enter("list_containers")
            now = self.clock()
            want = labels.items() if labels else ()
            out = [self._info(c, now) for c in self._containers.values()
                   if all_match(c.labels, want)]
            return out if all else [i for i in out if i.state == "running"]

    def inspect_container(self, container_id: str) -> ContainerInfo:
        with self._lock:
            self._enter("inspect_container", container_id)
            return self._info(self._get(container_id), self.clock())

    # ------------------------------------------------------------------ images

    def pull_image(self, ref: str, auth: Mapping[str, str] | None = None) -> str:
        with self._lock:
            self._enter("pull_image", ref)
            norm = normalize_image(ref)
            if not ref or ref != ref.strip() or any(c.isupper() for c in ref.split("/")[-1].split(":")[0]):
                raise ImagePullError("InvalidImageName", f"invalid reference format: {ref!r}")
            if norm in self.missing_images:
                raise ImagePullError("ErrImagePull", f"pulling {ref}: manifest for {norm} not found")
            digest = self._images.setdefault(norm, self._image_digest(ref))
            return digest

    def image_present(self, ref: str) -> bool:
        with self._lock:
            self._enter("image_present", ref)
            return normalize_image(ref) in self._images

    def image_id(self, ref: str) -> str:
        with self._lock:
            self._enter("image_id", ref)
            try:
                return self._images[normalize_image(ref)]
            except KeyError:
                raise NotFound(f"no such image: {ref}") from None

    # ------------------------------------------------------------------ streams

    def write_log(self, container_id: str, data: bytes) -> None:
        """Append output to a container's log, as if it had printed `data` now."""
        with self._lock:
            self._get(container_id).logs.append((self.clock(), data))

    def logs(self, container_id: str, follow: bool = False, tail: int | None = None,
             since: float | None = None, timestamps: bool = False) -> Iterator[bytes]:
        with self._lock:
            self._enter("logs", container_id)
            self._get(container_id)
        return self._log_iter(container_id, follow, tail, since, timestamps)

    def _log_lines(self, c: _Container, since: float | None, timestamps: bool, now: float) -> list[bytes]:
        lines: list[bytes] = []
        for at, data in c.logs:
            if at > now or (since is not None and at < since):
                continue
            for line in data.splitlines(keepends=True):
                if timestamps:
                    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                    line = stamp.encode() + b" " + line
                lines.append(line)
        return lines

    def _log_iter(self, container_id: str, follow: bool, tail: int | None, since: float | None,
                  timestamps: bool) -> Iterator[bytes]:
        sent = 0
        first = True
        while True:
            with self._lock:
                c = self._containers.get(container_id)
                if c is None:
                    return
                now = self.clock()
                lines = self._log_lines(c, since, timestamps, now)
                running = c.status(now)[0] in ("running", "created") and c.start_at is not None
            if first:
                first = False
                if tail is not None:
                    sent = max(0, len(lines) - tail)
            yield from lines[sent:]
            sent = len(lines)
            if not follow or not running:
                return
            time.sleep(0.05)

    def exec(self, container_id: str, cmd: list[str], timeout_s: float | None = None) -> ExecResult:
        with self._lock:
            self._enter("exec", container_id)
            c = self._get(container_id)
            if c.status(self.clock())[0] != "running":
                raise ContainerRuntimeError(f"container {container_id} is not running", "ContainerNotRunning")
            s = c.script
            if timeout_s is not None and s.exec_delay > timeout_s:
                raise ExecTimeout(f"exec in {container_id}: command timed out")
            n = c.exec_count
            c.exec_count += 1
            spec = s.exec_results
            if spec is None:
                return ExecResult(0, b"")
            if callable(spec):
                return _as_exec_result(spec(list(cmd)))
            if isinstance(spec, Mapping):
                return _as_exec_result(spec.get(tuple(cmd), ExecResult(126, b"executable file not found\n")))
            if isinstance(spec, ExecResult) or (isinstance(spec, tuple) and len(spec) == 2
                                                 and isinstance(spec[1], bytes)):
                return _as_exec_result(spec)  # type: ignore[arg-type]
            return _as_exec_result(_pick(spec, n))

    # ------------------------------------------------------------------ node

    def info(self) -> NodeResources:
        with self._lock:
            self._enter("info")
            return self._resources

    def ping(self) -> bool:
        return self.available

    # ------------------------------------------------------------------ test helpers

    def sandbox_of(self, container_id: str) -> str:
        with self._lock:
            return self._get(container_id).sandbox_id

    def counts(self) -> tuple[int, int]:
        """(sandboxes, containers) currently known."""
        with self._lock:
            return len(self._sandboxes), len(self._containers)


def all_match(labels: Mapping[str, str], want: Iterable[tuple[str, str]]) -> bool:
    return all(labels.get(k) == v for k, v in want)


def _conforms(rt: FakeRuntime) -> Runtime:
    """Static check (mypy): FakeRuntime implements the Runtime protocol."""
    return rt
