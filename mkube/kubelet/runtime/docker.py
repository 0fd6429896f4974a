"""`DockerRuntime`: the Runtime protocol on the Docker Engine, through the Docker SDK.

Pod model: the sandbox is an infra container (`mkube/pause:latest`) on a Docker network
(the default bridge) that publishes the pod's ports and owns the pod IP, hostname,
/etc/hosts and resolv.conf; app containers join its network and IPC namespaces
(`network_mode=container:<infra-id>`), so containers of a pod share localhost.

The pause image cannot be pulled here; if it is absent it is built locally FROM scratch
around a static busybox (`/bin/busybox`), on first use.

Hot path (pod start): sandbox create + start + one inspect (IP, bound ports), then per
container create + start. Sandbox labels are cached from `run_sandbox`, so
`create_container` needs no inspect. Only the low-level `APIClient` is used: the SDK's
model layer re-inspects after every call.
"""

from __future__ import annotations

import io
import logging
import math
import tarfile
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.types import LogConfig

from mkube.kubelet.runtime.base import (
    LABEL_CONTAINER_NAME,
    LABEL_NODE_NAME,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_SANDBOX_ID,
    LABEL_TYPE,
    TYPE_CONTAINER,
    TYPE_SANDBOX,
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

log = logging.getLogger(__name__)

DEFAULT_PAUSE_IMAGE = "mkube/pause:latest"
FALLBACK_API_VERSION = "1.41"  # Docker 20.10; used only when version negotiation fails
BUILTIN_IMAGE_LABEL = "io.mkube.image.builtin"

# Same behaviour as images/pause: exit 0 at once on SIGTERM/SIGINT/SIGHUP (PID 1 has
# no default signal handlers, hence the trap; `wait` is interruptible, `sleep` is not).
_PAUSE_SCRIPT = """\
trap 'exit 0' TERM INT HUP
while :; do
    /bin/busybox sleep 86400 &
    wait $!
done
"""
_PAUSE_DOCKERFILE = f"""\
FROM scratch
COPY busybox /bin/busybox
COPY pause.sh /pause.sh
LABEL {BUILTIN_IMAGE_LABEL}=pause
STOPSIGNAL SIGTERM
ENTRYPOINT ["/bin/busybox", "sh", "/pause.sh"]
"""

_TRANSPORT_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)


def _docker_time(value: str | None) -> float | None:
    """Docker's RFC 3339 (nanosecond) timestamps -> epoch seconds; the zero time -> None."""
    if not value or value.startswith("0001-"):
        return None
    head, dot, frac = value.partition(".")
    if dot:
        digits = "".join(c for c in frac if c.isdigit())
        value = f"{head}.{digits[:6]}{frac[len(digits):]}"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _state(docker_state: str, error: str = "") -> ContainerState:
    if docker_state in ("running", "paused", "restarting"):
        return "running"
    if docker_state in ("exited", "dead", "removing"):
        return "exited"
    if docker_state == "created":
        # A start that failed leaves the container "created" with an error: it ran and ended.
        return "exited" if error else "created"
    return "unknown"


def _explanation(err: docker.errors.APIError) -> str:
    return str(err.explanation or err)


def _safe_name(*parts: str) -> str:
    """A Docker container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*) from Kubernetes names."""
    raw = "_".join(parts)
    return "".join(c if c.isalnum() or c in "_.-" else "-" for c in raw)


class DockerRuntime:
    """Runtime on a Docker Engine. Thread-safe; one SDK client (connection pool) shared.

    `base_url`: None = the environment (DOCKER_HOST or the default socket); a path
    ("/run/node1/docker.sock") or a URL ("unix://...", "tcp://...").
    `host_ip`: where published pod ports are bound unless a port names its own hostIP.
    `extra_labels`: put on everything this runtime creates (e.g. a cluster or test id).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        node_name: str = "",
        extra_labels: Mapping[str, str] | None = None,
        host_ip: str = "0.0.0.0",
        network: str = "bridge",
        pause_image: str = DEFAULT_PAUSE_IMAGE,
        busybox_path: str = "/bin/busybox",
        timeout_s: int = 60,
        max_pool_size: int = 32,
        log_max_size: str = "10m",
        log_max_files: int = 3,
    ) -> None:
        if base_url and base_url.startswith("/"):
            base_url = "unix://" + base_url
        kwargs: dict[str, Any] = {"timeout": timeout_s, "max_pool_size": max_pool_size}
        try:
            self._client = self._connect(base_url, "auto", kwargs)
        except docker.errors.DockerException:
            # Docker is not answering (yet): pin the API version so that the runtime can
            # still be built; ping() says False and calls raise RuntimeUnavailable.
            try:
                self._client = self._connect(base_url, FALLBACK_API_VERSION, kwargs)
            except docker.errors.DockerException as e:
                raise RuntimeUnavailable(f"cannot use Docker at {base_url or 'default'}: {e}") from e
        self._api = self._client.api
        self.node_name = node_name
        self.extra_labels = dict(extra_labels or {})
        self.host_ip = host_ip
        self.network = network
        self.pause_image = pause_image
        self.busybox_path = busybox_path
        self._log_config = LogConfig(type="json-file",
                                     config={"max-size": log_max_size, "max-file": str(log_max_files)})
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        # sandbox id -> its labels (immutable), so create_container needs no inspect.
        self._sandbox_labels: dict[str, dict[str, str]] = {}
        # container id -> (docker state, info). While a container stays in one state its
        # details (start/finish times, exit code) do not change, so a listing re-inspects
        # only containers whose state moved; our own calls invalidate their entry.
        self._info_cache: dict[str, tuple[str, ContainerInfo]] = {}
        # sandbox id -> its start, begun by create_sandbox, awaited by start_sandbox
        self._starting: dict[str, Future[dict[str, Any]]] = {}
        self._pool: ThreadPoolExecutor | None = None

    @staticmethod
    def _connect(base_url: str | None, version: str, kwargs: dict[str, Any]) -> docker.DockerClient:
        if base_url:
            return docker.DockerClient(base_url=base_url, version=version, **kwargs)
        return docker.from_env(version=version, **kwargs)

    def close(self) -> None:
        """Release the HTTP connections and worker threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self._client.close()

    # ------------------------------------------------------------------ helpers

    def _node_filter(self, kind: str | None, labels: Mapping[str, str] | None) -> dict[str, list[str]]:
        """Docker's label filter for this node's objects of `kind` (None: sandboxes and
        containers, i.e. anything with our type label)."""
        want = {**(labels or {})}
        if self.node_name:
            want[LABEL_NODE_NAME] = self.node_name
        return {"label": [LABEL_TYPE if kind is None else f"{LABEL_TYPE}={kind}",
                          *(f"{k}={v}" for k, v in want.items())]}

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="docker-runtime")
            return self._pool

    def _forget(self, container_id: str) -> None:
        with self._lock:
            self._info_cache.pop(container_id, None)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one API call, mapping transport failures and 404 to our errors."""
        try:
            return fn(*args, **kwargs)
        except docker.errors.NotFound as e:
            raise NotFound(f"{what}: {_explanation(e)}") from e
        except _TRANSPORT_ERRORS as e:
            raise RuntimeUnavailable(f"{what}: Docker did not answer: {e}") from e
        except docker.errors.APIError as e:
            raise ContainerRuntimeError(f"{what}: {_explanation(e)}") from e

    # ------------------------------------------------------------------ pause image

    def ensure_pause_image(self) -> None:
        """Make sure the pause image exists, building it FROM scratch if needed."""
        with self._build_lock:
            try:
                self._api.inspect_image(self.pause_image)
                return
            except docker.errors.ImageNotFound:
                pass
            self._build_pause_image()

    def _build_pause_image(self) -> None:
        busybox = Path(self.busybox_path)
        if not busybox.is_file():
            raise SandboxCreateError(f"pause image {self.pause_image} is absent and cannot be built: "
                                     f"no static busybox at {busybox}")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data, mode in (("Dockerfile", _PAUSE_DOCKERFILE.encode(), 0o644),
                                     ("pause.sh", _PAUSE_SCRIPT.encode(), 0o755),
                                     ("busybox", busybox.read_bytes(), 0o755)):
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), mode
                tar.addfile(info, io.BytesIO(data))
        buf.seek(0)
        log.info("building %s from %s", self.pause_image, busybox)
        try:
            for event in self._api.build(fileobj=buf, custom_context=True, tag=self.pause_image,
                                         rm=True, forcerm=True, decode=True):
                if "error" in event:
                    raise SandboxCreateError(f"building {self.pause_image}: {event['error']}")
        except docker.errors.APIError as e:
            raise SandboxCreateError(f"building {self.pause_image}: {_explanation(e)}") from e

    # ------------------------------------------------------------------ sandboxes

    def run_sandbox(self, cfg: SandboxConfig) -> SandboxInfo:
        return self.start_sandbox(self.create_sandbox(cfg))

    def create_sandbox(self, cfg: SandboxConfig) -> str:
        labels = {**self.extra_labels, **sandbox_labels(cfg, self.node_name)}
        name = _safe_name("mkube", "POD", cfg.name, cfg.namespace, cfg.pod_uid, str(cfg.attempt))
        exposed: list[int | tuple[int, str]] = []
        bindings: dict[str, list[tuple[str, int | None]]] = {}
        if not cfg.host_network:
            for p in cfg.ports:
                proto = p.protocol.lower()
                exposed.append(p.container_port if proto == "tcp" else (p.container_port, proto))
                bindings.setdefault(f"{p.container_port}/{proto}", []).append(
                    (p.host_ip or self.host_ip, p.host_port or None))
        host_config = self._api.create_host_config(
            network_mode="host" if cfg.host_network else self.network,
            port_bindings=bindings or None,
            ipc_mode="shareable",
            dns=cfg.dns_servers or None,
            dns_search=cfg.dns_searches or None,
            dns_opt=cfg.dns_options or None,
            extra_hosts=[f"{h}:{ip}" for h, ip in cfg.extra_hosts] or None,
            log_config=self._log_config,
        )
        create_kwargs: dict[str, Any] = dict(
            name=name, labels=labels, host_config=host_config, ports=exposed or None,
            hostname=None if cfg.host_network else (cfg.hostname or cfg.name)[:63],
            use_config_proxy=False,
        )
        try:
            try:
                created = self._api.create_container(self.pause_image, **create_kwargs)
            except docker.errors.ImageNotFound:
                self.ensure_pause_image()
                created = self._api.create_container(self.pause_image, **create_kwargs)
        except docker.errors.APIError as e:
            reason = "NameConflict" if e.status_code == 409 else None
            raise SandboxCreateError(f"creating sandbox {name}: {_explanation(e)}", reason) from e
        except _TRANSPORT_ERRORS as e:
            raise RuntimeUnavailable(f"creating sandbox {name}: {e}") from e
        sandbox_id: str = created["Id"]
        # Start it at once, in the background: the caller creates the pod's containers
        # meanwhile, and start_sandbox waits for this (the network setup is the slow part).
        starting = self._executor().submit(self._start_and_inspect, sandbox_id)
        with self._lock:
            self._sandbox_labels[sandbox_id] = labels
            self._starting[sandbox_id] = starting
        return sandbox_id

    def _start_and_inspect(self, sandbox_id: str) -> dict[str, Any]:
        self._api.start(sandbox_id)
        data: dict[str, Any] = self._api.inspect_container(sandbox_id)
        return data

    def start_sandbox(self, sandbox_id: str) -> SandboxInfo:
        with self._lock:
            starting = self._starting.pop(sandbox_id, None)
        try:
            data = starting.result() if starting is not None else self._start_and_inspect(sandbox_id)
        except (docker.errors.APIError, *_TRANSPORT_ERRORS) as e:
            msg = _explanation(e) if isinstance(e, docker.errors.APIError) else str(e)
            with self._lock:
                labels = self._sandbox_labels.get(sandbox_id, {})
            pod = f"{labels.get(LABEL_POD_NAMESPACE, '?')}/{labels.get(LABEL_POD_NAME, '?')}"
            try:
                self.remove_sandbox(sandbox_id)
            except ContainerRuntimeError as cleanup:
                log.warning("could not remove sandbox %s of pod %s: %s", sandbox_id, pod, cleanup)
            raise SandboxCreateError(f"starting sandbox of pod {pod}: {msg}") from e
        return self._sandbox_from_inspect(data)

    def _sandbox_from_inspect(self, data: dict[str, Any]) -> SandboxInfo:
        net = data.get("NetworkSettings") or {}
        ip = ""
        for n in (net.get("Networks") or {}).values():
            ip = n.get("IPAddress") or ip
        ip = ip or net.get("IPAddress") or ""
        mappings: list[PortMapping] = []
        for key, binds in (net.get("Ports") or {}).items():
            port, _, proto = key.partition("/")
            for b in binds or []:
                if b.get("HostPort"):
                    mappings.append(PortMapping(int(port), proto.upper(), int(b["HostPort"]), b.get("HostIp", "")))
        running = bool(data["State"].get("Running"))
        return SandboxInfo(
            id=data["Id"], labels=data["Config"].get("Labels") or {},
            state="ready" if running else "notready", ip=ip if running else "",
            ports=ports_by_container_port(mappings), port_mappings=mappings,
            created_at=_docker_time(data.get("Created")),
        )

    def _sandbox_from_summary(self, s: dict[str, Any]) -> SandboxInfo:
        running = s.get("State") == "running"
        ip = ""
        for n in ((s.get("NetworkSettings") or {}).get("Networks") or {}).values():
            ip = n.get("IPAddress") or ip
        mappings = [PortMapping(p["PrivatePort"], p.get("Type", "tcp").upper(), p["PublicPort"], p.get("IP", ""))
                    for p in s.get("Ports") or [] if p.get("PublicPort")]
        return SandboxInfo(
            id=s["Id"], labels=s.get("Labels") or {}, state="ready" if running else "notready",
            ip=ip if running else "", ports=ports_by_container_port(mappings), port_mappings=mappings,
            created_at=float(s["Created"]) if s.get("Created") else None,
        )

    def inspect_sandbox(self, sandbox_id: str) -> SandboxInfo:
        data = self._call(f"inspecting sandbox {sandbox_id}", self._api.inspect_container, sandbox_id)
        if (data["Config"].get("Labels") or {}).get(LABEL_TYPE) != TYPE_SANDBOX:
            raise NotFound(f"{sandbox_id} is not a pod sandbox")
        return self._sandbox_from_inspect(data)

    def list_sandboxes(self, labels: Mapping[str, str] | None = None) -> list[SandboxInfo]:
        summaries = self._call("listing sandboxes", self._api.containers, all=True,
                               filters=self._node_filter(TYPE_SANDBOX, labels))
        return self._sandboxes_from(summaries)

    def _sandboxes_from(self, summaries: list[dict[str, Any]]) -> list[SandboxInfo]:
        out = [self._sandbox_from_summary(s) for s in summaries]
        with self._lock:
            for sb in out:
                self._sandbox_labels.setdefault(sb.id, sb.labels)
        return out

    def list_all(self, labels: Mapping[str, str] | None = None) -> tuple[list[SandboxInfo], list[ContainerInfo]]:
        summaries = self._call("listing sandboxes and containers", self._api.containers, all=True,
                               filters=self._node_filter(None, labels))
        by_type: dict[str, list[dict[str, Any]]] = {TYPE_SANDBOX: [], TYPE_CONTAINER: []}
        for s in summaries:
            kind = (s.get("Labels") or {}).get(LABEL_TYPE)
            if kind in by_type:
                by_type[kind].append(s)
        return self._sandboxes_from(by_type[TYPE_SANDBOX]), self._containers_from(by_type[TYPE_CONTAINER])

    def _containers_of(self, sandbox_id: str, running_only: bool = False) -> list[str]:
        summaries = self._call("listing containers", self._api.containers, all=not running_only,
                               filters=self._node_filter(TYPE_CONTAINER, {LABEL_SANDBOX_ID: sandbox_id}))
        return [s["Id"] for s in summaries]

    def _parallel(self, fn: Any, ids: list[str], *args: Any) -> None:
        if len(ids) <= 1:
            for i in ids:
                fn(i, *args)
            return
        for f in [self._executor().submit(fn, i, *args) for i in ids]:
            f.result()

    def stop_sandbox(self, sandbox_id: str, timeout_s: float = 10) -> None:
        self._parallel(self.stop_container, self._containers_of(sandbox_id, running_only=True), timeout_s)
        self.stop_container(sandbox_id, min(timeout_s, 2))

    def remove_sandbox(self, sandbox_id: str) -> None:
        self._parallel(self.remove_container, self._containers_of(sandbox_id))
        self.remove_container(sandbox_id)
        with self._lock:
            self._sandbox_labels.pop(sandbox_id, None)

    # ------------------------------------------------------------------ containers

    def _sandbox_labels_of(self, sandbox_id: str) -> dict[str, str]:
        with self._lock:
            cached = self._sandbox_labels.get(sandbox_id)
        if cached is not None:
            return cached
        sb = self.inspect_sandbox(sandbox_id)
        with self._lock:
            self._sandbox_labels[sandbox_id] = sb.labels
        return sb.labels

    def create_container(self, sandbox_id: str, cfg: ContainerConfig) -> str:
        sb_labels = self._sandbox_labels_of(sandbox_id)
        labels = {**self.extra_labels, **container_labels(cfg, sandbox_id, sb_labels, self.node_name)}
        name = _safe_name("mkube", cfg.name, labels["io.mkube.pod.name"], labels["io.mkube.pod.namespace"],
                          labels["io.mkube.pod.uid"], str(cfg.attempt))
        host_config = self._api.create_host_config(
            network_mode=f"container:{sandbox_id}",
            ipc_mode=f"container:{sandbox_id}",
            binds=[f"{m.source}:{m.container_path}:{'ro' if m.read_only else 'rw'}" for m in cfg.mounts] or None,
            mem_limit=cfg.memory_limit,
            # No swap on top of the limit, as in Kubernetes (cgroup v1 needs swap accounting).
            memswap_limit=cfg.memory_limit,
            nano_cpus=cfg.nano_cpus,
            cpu_shares=cfg.cpu_shares,
            log_config=self._log_config,
        )
        try:
            created = self._api.create_container(
                cfg.image, command=cfg.args, entrypoint=cfg.command,
                environment=[f"{k}={v}" for k, v in cfg.env.items()] or None,
                working_dir=cfg.working_dir or None, labels=labels, name=name, host_config=host_config,
                stop_signal=cfg.stop_signal, user=cfg.user or None, tty=False, stdin_open=False,
                use_config_proxy=False,
            )
        except docker.errors.ImageNotFound as e:
            raise ContainerCreateError(f"image {cfg.image} is not present: {_explanation(e)}",
                                       "ImageNotPresent") from e
        except docker.errors.NotFound as e:
            raise NotFound(f"creating container {name}: {_explanation(e)}") from e
        except docker.errors.APIError as e:
            reason = "NameConflict" if e.status_code == 409 else None
            raise ContainerCreateError(f"creating container {name}: {_explanation(e)}", reason) from e
        except _TRANSPORT_ERRORS as e:
            raise RuntimeUnavailable(f"creating container {name}: {e}") from e
        return str(created["Id"])

    def start_container(self, container_id: str) -> None:
        self._forget(container_id)
        try:
            self._api.start(container_id)
        except docker.errors.NotFound as e:
            raise NotFound(f"starting {container_id}: {_explanation(e)}") from e
        except docker.errors.APIError as e:
            raise ContainerStartError(_explanation(e)) from e
        except _TRANSPORT_ERRORS as e:
            raise RuntimeUnavailable(f"starting {container_id}: {e}") from e
        finally:
            self._forget(container_id)

    def stop_container(self, container_id: str, timeout_s: float = 10) -> None:
        t = max(0, math.ceil(timeout_s))
        try:
            # Docker sends the stop signal, waits t seconds, then SIGKILLs; returns when stopped.
            self._api.stop(container_id, timeout=t)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            raise ContainerRuntimeError(f"stopping {container_id}: {_explanation(e)}") from e
        except _TRANSPORT_ERRORS as e:
            raise RuntimeUnavailable(f"stopping {container_id}: {e}") from e
        finally:
            self._forget(container_id)

    def remove_container(self, container_id: str) -> None:
        try:
            self._api.remove_container(container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            if e.status_code != 409 or "already in progress" not in _explanation(e):
                raise ContainerRuntimeError(f"removing {container_id}: {_explanation(e)}") from e
        except _TRANSPORT_ERRORS as e:
            raise RuntimeUnavailable(f"removing {container_id}: {e}") from e
        finally:
            self._forget(container_id)

    def _container_from_inspect(self, data: dict[str, Any]) -> ContainerInfo:
        st = data.get("State") or {}
        labels = data["Config"].get("Labels") or {}
        error = st.get("Error") or ""
        state = _state(st.get("Status", ""), error)
        return ContainerInfo(
            id=data["Id"],
            name=labels.get(LABEL_CONTAINER_NAME) or data.get("Name", "").lstrip("/"),
            labels=labels,
            image=data["Config"].get("Image", ""),
            image_id=data.get("Image", ""),
            state=state,
            exit_code=int(st.get("ExitCode", 0)) if state == "exited" else None,
            created_at=_docker_time(data.get("Created")),
            started_at=_docker_time(st.get("StartedAt")),
            finished_at=_docker_time(st.get("FinishedAt")),
            oom_killed=bool(st.get("OOMKilled")),
            error=error,
        )

    def inspect_container(self, container_id: str) -> ContainerInfo:
        data = self._call(f"inspecting {container_id}", self._api.inspect_container, container_id)
        return self._container_from_inspect(data)

    def list_containers(self, labels: Mapping[str, str] | None = None, all: bool = True) -> list[ContainerInfo]:
        summaries = self._call("listing containers", self._api.containers, all=all,
                               filters=self._node_filter(TYPE_CONTAINER, labels))
        return self._containers_from(summaries)

    def _containers_from(self, summaries: list[dict[str, Any]]) -> list[ContainerInfo]:
        """ContainerInfo of listed containers: cached while their state is unchanged,
        else inspected (a listing lacks exit codes and times)."""
        out: list[ContainerInfo] = []
        for s in summaries:
            cid, docker_state = s["Id"], s.get("State", "")
            with self._lock:
                hit = self._info_cache.get(cid)
            if hit is not None and hit[0] == docker_state:
                out.append(hit[1])
                continue
            try:
                info = self.inspect_container(cid)
            except NotFound:
                continue  # removed between list and inspect
            with self._lock:
                self._info_cache[cid] = (docker_state, info)
                if len(self._info_cache) > 20000:  # bound it even if ids leak
                    self._info_cache.clear()
            out.append(info)
        return out

    # ------------------------------------------------------------------ images

    def pull_image(self, ref: str, auth: Mapping[str, str] | None = None) -> str:
        try:
            stream = self._api.pull(ref, stream=True, decode=True, auth_config=dict(auth) if auth else None)
            for event in stream:
                if "error" in event:
                    msg = str(event.get("errorDetail", {}).get("message") or event["error"])
                    raise ImagePullError(_pull_reason(msg), f"pulling {ref}: {msg}")
        except docker.errors.APIError as e:
            msg = _explanation(e)
            raise ImagePullError(_pull_reason(msg), f"pulling {ref}: {msg}") from e
        except docker.errors.DockerException as e:  # e.g. InvalidRepository from the SDK
            raise ImagePullError("InvalidImageName", f"pulling {ref}: {e}") from e
        except _TRANSPORT_ERRORS as e:
            raise RuntimeUnavailable(f"pulling {ref}: {e}") from e
        try:
            return self.image_id(ref)
        except NotFound as e:
            raise ImagePullError("ErrImagePull", f"pulling {ref}: image absent after pull") from e

    def image_present(self, ref: str) -> bool:
        try:
            self.image_id(ref)
            return True
        except NotFound:
            return False

    def image_id(self, ref: str) -> str:
        return str(self._call(f"inspecting image {ref}", self._api.inspect_image, ref)["Id"])

    # ------------------------------------------------------------------ streams

    def logs(self, container_id: str, follow: bool = False, tail: int | None = None,
             since: float | None = None, timestamps: bool = False) -> Iterator[bytes]:
        stream = self._call(
            f"logs of {container_id}", self._api.logs, container_id, stdout=True, stderr=True, stream=True,
            follow=follow, tail="all" if tail is None else max(0, tail),
            since=since if since and since > 0 else None, timestamps=timestamps,
        )
        return _closing(stream)

    def exec(self, container_id: str, cmd: list[str], timeout_s: float | None = None) -> ExecResult:
        what = f"exec in {container_id}"
        try:
            exec_id = self._api.exec_create(container_id, cmd, stdout=True, stderr=True, tty=False)["Id"]
        except docker.errors.NotFound as e:
            raise NotFound(f"{what}: {_explanation(e)}") from e
        except docker.errors.APIError as e:
            reason = "ContainerNotRunning" if e.status_code == 409 else None
            raise ContainerRuntimeError(f"{what}: {_explanation(e)}", reason) from e
        except _TRANSPORT_ERRORS as e:
            raise RuntimeUnavailable(f"{what}: {e}") from e
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        output = self._exec_output(exec_id, deadline, what)
        # The stream ends when the process does; its exit code can lag a few ms behind.
        for _ in range(100):
            data = self._call(what, self._api.exec_inspect, exec_id)
            if not data.get("Running") and data.get("ExitCode") is not None:
                return ExecResult(int(data["ExitCode"]), output)
            time.sleep(0.01)
        raise ContainerRuntimeError(f"{what}: no exit code reported")

    def _exec_output(self, exec_id: str, deadline: float | None, what: str) -> bytes:
        """Start the exec attached and read its multiplexed stream until EOF or `deadline`.
        (The SDK's reader blocks in poll() without a timeout, hence this one.)"""
        api = self._api
        try:
            res = api._post_json(api._url("/exec/{0}/start", exec_id), headers={"Connection": "Upgrade",
                                 "Upgrade": "tcp"}, data={"Tty": False, "Detach": False}, stream=True)
            api._raise_for_status(res)
        except docker.errors.APIError as e:
            raise ContainerRuntimeError(f"{what}: {_explanation(e)}") from e
        except _TRANSPORT_ERRORS as e:
            raise RuntimeUnavailable(f"{what}: {e}") from e
        fp = res.raw._fp.fp  # buffered reader: may already hold bytes read with the headers
        sock = fp.raw._sock
        chunks: list[bytes] = []
        if deadline is None:
            sock.settimeout(None)  # not the client's default request timeout

        def read_exact(n: int) -> bytes:
            buf = b""
            while len(buf) < n:
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError
                    sock.settimeout(remaining)
                got = fp.read1(n - len(buf))
                if not got:
                    return buf
                buf += got
            return buf

        try:
            while True:
                header = read_exact(8)
                if len(header) < 8:
                    break
                length = int.from_bytes(header[4:8], "big")
                chunks.append(read_exact(length))
        except (TimeoutError, OSError) as e:
            if deadline is not None and time.monotonic() >= deadline:
                raise ExecTimeout(f"{what}: command timed out") from e
            raise ContainerRuntimeError(f"{what}: {e}") from e
        finally:
            res.close()
        return b"".join(chunks)

    # ------------------------------------------------------------------ node

    def info(self) -> NodeResources:
        data = self._call("docker info", self._api.info)
        return NodeResources(
            cpu_millis=int(data.get("NCPU", 0)) * 1000,
            memory_bytes=int(data.get("MemTotal", 0)),
            os=str(data.get("OSType", "linux")),
            arch=_go_arch(str(data.get("Architecture", ""))),
            runtime_version=f"docker://{data.get('ServerVersion', 'unknown')}",
        )

    def ping(self) -> bool:
        try:
            return bool(self._api.ping())
        except Exception:  # any failure means "not answering"
            return False


def _closing(stream: Any) -> Iterator[bytes]:
    try:
        yield from stream
    finally:
        stream.close()


def _pull_reason(message: str) -> str:
    low = message.lower()
    if "invalid reference format" in low or "invalid repository name" in low:
        return "InvalidImageName"
    if any(s in low for s in ("connection refused", "no such host", "i/o timeout", "tls handshake",
                              "dial tcp", "server misbehaving", "network is unreachable")):
        return "RegistryUnavailable"
    return "ErrImagePull"


def _go_arch(machine: str) -> str:
    """Docker reports `uname -m` (x86_64); Kubernetes uses GOARCH names (amd64)."""
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def _conforms(rt: DockerRuntime) -> Runtime:
    """Static check (mypy): DockerRuntime implements the Runtime protocol."""
    return rt
