"""The container runtime interface the kubelet programs against (cf. the kubelet's CRI).

One protocol, `Runtime`, with two implementations: `DockerRuntime` (runtime/docker.py,
the real thing) and `FakeRuntime` (runtime/fake.py, an in-memory hollow node). The
layer above (pod sync) maps API objects to the plain data classes defined here; this
module knows nothing about Pods.

Model: a pod is a *sandbox* (owns the network namespace, hostname, published ports and
the pod IP) plus *containers* that join it. Every object carries `io.mkube.*` labels
(see `LABEL_*`), so a restarted kubelet finds and adopts what exists by listing.

Conventions shared by all implementations:
- times are float seconds since the epoch (the `time.time()` domain), None if unset;
- `stop_*` and `remove_*` are idempotent: an id that no longer exists is not an error;
- everything else raises `NotFound` for an unknown id;
- a runtime only sees objects labelled with its own node name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol, runtime_checkable

# ---------------------------------------------------------------------------- labels

LABEL_PREFIX = "io.mkube."
LABEL_TYPE = "io.mkube.type"  # "sandbox" | "container"
LABEL_POD_UID = "io.mkube.pod.uid"
LABEL_POD_NAMESPACE = "io.mkube.pod.namespace"
LABEL_POD_NAME = "io.mkube.pod.name"
LABEL_NODE_NAME = "io.mkube.node.name"
LABEL_CONTAINER_NAME = "io.mkube.container.name"
LABEL_CONTAINER_HASH = "io.mkube.container.hash"
LABEL_CONTAINER_ATTEMPT = "io.mkube.container.attempt"
LABEL_SANDBOX_ID = "io.mkube.sandbox.id"
LABEL_SANDBOX_ATTEMPT = "io.mkube.sandbox.attempt"

TYPE_SANDBOX = "sandbox"
TYPE_CONTAINER = "container"

ContainerState = Literal["created", "running", "exited", "unknown"]
SandboxState = Literal["ready", "notready"]

# ---------------------------------------------------------------------------- errors


class ContainerRuntimeError(Exception):
    """Base of every error a Runtime raises. `reason` is a short CamelCase word
    (it becomes a container status reason, e.g. "ErrImagePull"); `message` is for humans."""

    default_reason = "RuntimeError"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class NotFound(ContainerRuntimeError):
    """The container, sandbox or image does not exist."""

    default_reason = "NotFound"


class RuntimeUnavailable(ContainerRuntimeError):
    """The runtime (Docker) did not answer."""

    default_reason = "RuntimeUnavailable"


class ImagePullError(ContainerRuntimeError):
    """Pulling an image failed. Reasons follow the kubelet: "ErrImagePull",
    "InvalidImageName", "RegistryUnavailable"."""

    default_reason = "ErrImagePull"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, reason)


class ContainerCreateError(ContainerRuntimeError):
    """The container could not be created (e.g. its image is not present)."""

    default_reason = "CreateContainerError"


class ContainerStartError(ContainerRuntimeError):
    """The container was created but would not start (e.g. executable not found)."""

    default_reason = "RunContainerError"


class SandboxCreateError(ContainerRuntimeError):
    """The pod sandbox could not be created or started (e.g. host port already in use)."""

    default_reason = "CreatePodSandboxError"


class ExecTimeout(ContainerRuntimeError):
    """An exec did not finish within its timeout. The process may still be running."""

    default_reason = "ExecTimeout"


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class PortMapping:
    """One published port of a pod. `host_port` 0 asks for an ephemeral port;
    `host_ip` "" means the runtime's default host IP."""

    container_port: int
    protocol: str = "TCP"  # TCP | UDP | SCTP
    host_port: int = 0
    host_ip: str = ""


@dataclass(slots=True)
class SandboxConfig:
    """What a pod's sandbox needs: identity, hostname, networking."""

    pod_uid: str
    namespace: str
    name: str
    hostname: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    ports: list[PortMapping] = field(default_factory=list)
    dns_servers: list[str] = field(default_factory=list)
    dns_searches: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    extra_hosts: list[tuple[str, str]] = field(default_factory=list)  # (hostname, ip)
    host_network: bool = False
    attempt: int = 0


@dataclass(slots=True)
class Mount:
    """`source` is an absolute host path (bind mount) or a named volume."""

    source: str
    container_path: str
    read_only: bool = False


@dataclass(slots=True)
class ContainerConfig:
    """One container of a pod. `command` replaces the image ENTRYPOINT, `args` its CMD
    (Kubernetes semantics: command without args ignores the image CMD).

    Restarts are the kubelet's job: the runtime never restarts a container by itself.
    `spec_hash` and `attempt` are recorded as labels for the pod-sync layer."""

    name: str
    image: str
    command: list[str] | None = None
    args: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    nano_cpus: int | None = None  # CPU limit, 1e9 = one CPU
    cpu_shares: int | None = None  # relative weight (requests.cpu, 1024 = one CPU)
    memory_limit: int | None = None  # bytes; swap is not allowed on top
    stop_signal: str | None = None  # None: the image's STOPSIGNAL, else SIGTERM
    user: str | None = None
    spec_hash: str = ""
    attempt: int = 0


def _int_label(labels: Mapping[str, str], key: str) -> int:
    try:
        return int(labels.get(key, "0"))
    except ValueError:
        return 0


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """What the runtime knows about one container. `name` is the container's name in
    the pod (not the runtime's name for it)."""

    id: str
    name: str
    labels: dict[str, str]
    image: str
    image_id: str
    state: ContainerState
    exit_code: int | None = None
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    oom_killed: bool = False
    error: str = ""

    @property
    def pod_uid(self) -> str:
        return self.labels.get(LABEL_POD_UID, "")

    @property
    def sandbox_id(self) -> str:
        return self.labels.get(LABEL_SANDBOX_ID, "")

    @property
    def spec_hash(self) -> str:
        return self.labels.get(LABEL_CONTAINER_HASH, "")

    @property
    def attempt(self) -> int:
        return _int_label(self.labels, LABEL_CONTAINER_ATTEMPT)


@dataclass(frozen=True, slots=True)
class SandboxInfo:
    """A pod sandbox. `ports` maps container port -> host port actually bound (TCP
    preferred when a port is published for several protocols); `port_mappings` has
    every binding in full. `ip` is the pod IP ("" when not running or host network)."""

    id: str
    labels: dict[str, str]
    state: SandboxState
    ip: str = ""
    ports: dict[int, int] = field(default_factory=dict)
    port_mappings: list[PortMapping] = field(default_factory=list)
    created_at: float | None = None

    @property
    def pod_uid(self) -> str:
        return self.labels.get(LABEL_POD_UID, "")

    @property
    def namespace(self) -> str:
        return self.labels.get(LABEL_POD_NAMESPACE, "")

    @property
    def name(self) -> str:
        return self.labels.get(LABEL_POD_NAME, "")

    @property
    def attempt(self) -> int:
        return _int_label(self.labels, LABEL_SANDBOX_ATTEMPT)


@dataclass(frozen=True, slots=True)
class NodeResources:
    """Capacity and identity of the machine behind the runtime."""

    cpu_millis: int
    memory_bytes: int
    os: str
    arch: str
    runtime_version: str  # e.g. "docker://20.10.24"


class ExecResult(NamedTuple):
    """Result of an exec: exit code and stdout+stderr interleaved as produced."""

    exit_code: int
    output: bytes


def ports_by_container_port(mappings: list[PortMapping]) -> dict[int, int]:
    """container port -> bound host port, TCP winning over other protocols."""
    out: dict[int, int] = {}
    for m in sorted(mappings, key=lambda m: m.protocol.upper() == "TCP"):
        out[m.container_port] = m.host_port
    return out


def sandbox_labels(cfg: SandboxConfig, node_name: str) -> dict[str, str]:
    """The labels a runtime puts on a sandbox: caller labels, then ours (ours win)."""
    labels = dict(cfg.labels)
    labels.update({
        LABEL_TYPE: TYPE_SANDBOX,
        LABEL_POD_UID: cfg.pod_uid,
        LABEL_POD_NAMESPACE: cfg.namespace,
        LABEL_POD_NAME: cfg.name,
        LABEL_NODE_NAME: node_name,
        LABEL_SANDBOX_ATTEMPT: str(cfg.attempt),
    })
    return labels


def container_labels(cfg: ContainerConfig, sandbox_id: str, sandbox_lbls: Mapping[str, str],
                     node_name: str) -> dict[str, str]:
    """The labels a runtime puts on a container: caller labels, then the pod identity
    taken from its sandbox, then the container's own (ours win)."""
    labels = dict(cfg.labels)
    for key in (LABEL_POD_UID, LABEL_POD_NAMESPACE, LABEL_POD_NAME):
        labels[key] = sandbox_lbls.get(key, "")
    labels.update({
        LABEL_TYPE: TYPE_CONTAINER,
        LABEL_NODE_NAME: node_name,
        LABEL_SANDBOX_ID: sandbox_id,
        LABEL_CONTAINER_NAME: cfg.name,
        LABEL_CONTAINER_HASH: cfg.spec_hash,
        LABEL_CONTAINER_ATTEMPT: str(cfg.attempt),
    })
    return labels


# ---------------------------------------------------------------------------- protocol


@runtime_checkable
class Runtime(Protocol):
    """The kubelet's view of a container runtime. Implementations are thread-safe."""

    node_name: str

    # -- sandboxes
    def run_sandbox(self, cfg: SandboxConfig) -> SandboxInfo:
        """Create and start the pod sandbox; returns it running, with its IP and bound
        ports. Raises SandboxCreateError (nothing is left behind on failure)."""
        ...

    def create_sandbox(self, cfg: SandboxConfig) -> str:
        """The first half of run_sandbox: create the sandbox and return its id; a runtime
        may begin starting it in the background. Containers can be created in it (not
        started) before start_sandbox, which lets the kubelet prepare a pod's containers
        while its network comes up. Raises SandboxCreateError (nothing is left behind)."""
        ...

    def start_sandbox(self, sandbox_id: str) -> SandboxInfo:
        """The second half of run_sandbox: start a created sandbox (or wait for the start
        create_sandbox began); returns it running. On failure the sandbox and every
        container created in it are removed and SandboxCreateError is raised."""
        ...

    def stop_sandbox(self, sandbox_id: str, timeout_s: float = 10) -> None:
        """Stop every container of the sandbox (SIGTERM, `timeout_s`, SIGKILL), then the
        sandbox itself. Idempotent."""
        ...

    def remove_sandbox(self, sandbox_id: str) -> None:
        """Remove the sandbox and every container in it, running or not. Idempotent."""
        ...

    def list_sandboxes(self, labels: Mapping[str, str] | None = None) -> list[SandboxInfo]:
        """Sandboxes on this node whose labels include all of `labels`."""
        ...

    def list_all(self, labels: Mapping[str, str] | None = None) -> tuple[list[SandboxInfo], list[ContainerInfo]]:
        """(list_sandboxes(labels), list_containers(labels)), from one listing where the
        runtime can: the kubelet observes a pod, and relists the node, this way."""
        ...

    def inspect_sandbox(self, sandbox_id: str) -> SandboxInfo:
        ...

    # -- containers
    def create_container(self, sandbox_id: str, cfg: ContainerConfig) -> str:
        """Create (not start) a container inside the sandbox; returns its id. The image
        must be present. Raises ContainerCreateError or NotFound (no such sandbox)."""
        ...

    def start_container(self, container_id: str) -> None:
        """Start a created container. Raises ContainerStartError or NotFound."""
        ...

    def stop_container(self, container_id: str, timeout_s: float = 10) -> None:
        """Send the stop signal, wait up to `timeout_s`, then SIGKILL. Returns when the
        container has exited. Idempotent."""
        ...

    def remove_container(self, container_id: str) -> None:
        """Remove the container (killing it if it runs). Idempotent."""
        ...

    def list_containers(self, labels: Mapping[str, str] | None = None, all: bool = True) -> list[ContainerInfo]:
        """App containers (not sandboxes) on this node whose labels include all of
        `labels`; exited ones too unless `all` is False."""
        ...

    def inspect_container(self, container_id: str) -> ContainerInfo:
        ...

    # -- images
    def pull_image(self, ref: str, auth: Mapping[str, str] | None = None) -> str:
        """Pull `ref` and return its image id. Raises ImagePullError(reason, message).
        `auth` is a Docker auth config: username, password, serveraddress."""
        ...

    def image_present(self, ref: str) -> bool:
        ...

    def image_id(self, ref: str) -> str:
        """The local image id of `ref`. Raises NotFound."""
        ...

    # -- streams
    def logs(self, container_id: str, follow: bool = False, tail: int | None = None,
             since: float | None = None, timestamps: bool = False) -> Iterator[bytes]:
        """The container's stdout+stderr as chunks of bytes. With `follow`, the iterator
        ends when the container exits (or when the caller closes it)."""
        ...

    def exec(self, container_id: str, cmd: list[str], timeout_s: float | None = None) -> ExecResult:
        """Run `cmd` in the running container, wait for it, return exit code and output.
        Raises ExecTimeout after `timeout_s`, NotFound, ContainerRuntimeError."""
        ...

    # -- node
    def info(self) -> NodeResources:
        ...

    def ping(self) -> bool:
        """True if the runtime answers. Never raises."""
        ...
