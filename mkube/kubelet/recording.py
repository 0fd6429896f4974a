"""`PodRuntime`: the node's Runtime seen through one pod sync.

It delegates every call and, on the way, (1) records the kubelet's events for what it
does to the pod's containers, worded as the kubelet words them (Pulling, Pulled,
Created, Started, Failed), and (2) puts the service environment variables under each
container's own environment (the container's env and envFrom win, as in Kubernetes).
One instance per sync of one pod; not shared between threads.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from mkube.api.types import Pod
from mkube.kubelet.runtime.base import (
    ContainerConfig,
    ContainerInfo,
    ContainerRuntimeError,
    ExecResult,
    ImagePullError,
    NodeResources,
    Runtime,
    SandboxConfig,
    SandboxInfo,
)


def _duration(seconds: float) -> str:
    """Go's Duration.String() of a time truncated to milliseconds, as the kubelet prints
    pull times: "845ms", "1.234s", "1m2.5s"."""
    ms = int(seconds * 1000)
    if ms < 1000:
        return f"{ms}ms"
    minutes, rest = divmod(ms, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


class Recorder(Protocol):
    """What the kubelet needs of an event recorder (mkube.client.EventRecorder is one)."""

    def event(self, obj: Any, type: str, reason: str, message: str) -> None: ...


def container_ref(pod: Pod, name: str) -> dict[str, Any]:
    """An ObjectReference to the pod with the container's fieldPath, as kubelet events carry."""
    init = any(c.name == name for c in pod.spec.init_containers or [])
    return {"apiVersion": "v1", "kind": "Pod", "namespace": pod.metadata.namespace or "",
            "name": pod.metadata.name or "", "uid": pod.metadata.uid or "",
            "fieldPath": f"spec.{'initContainers' if init else 'containers'}{{{name}}}"}


class PodRuntime:
    """See the module docstring."""

    def __init__(self, inner: Runtime, pod: Pod, recorder: Recorder | None,
                 base_env: Mapping[str, str] | None = None) -> None:
        self.inner = inner
        self.node_name = inner.node_name
        self.pod = pod
        self.recorder = recorder
        self.base_env = dict(base_env or {})
        self.pulled: set[str] = set()
        self.pull_failed: dict[str, ImagePullError] = {}
        self._names: dict[str, str] = {}  # container id -> name
        self._image_of: dict[str, str] = {}  # container name -> image (for events)

    def _event(self, name: str, type_: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(container_ref(self.pod, name), type_, reason, message)

    def _name_for_image(self, ref: str) -> str:
        for c in list(self.pod.spec.init_containers or []) + list(self.pod.spec.containers):
            if c.image == ref:
                return c.name
        return ""

    # -- images (events)
    def pull_image(self, ref: str, auth: Mapping[str, str] | None = None) -> str:
        name = self._name_for_image(ref)
        self._event(name, "Normal", "Pulling", f'Pulling image "{ref}"')
        t0 = time.monotonic()
        try:
            image_id = self.inner.pull_image(ref, auth)
        except ImagePullError as e:
            self.pull_failed[ref] = e
            raise
        took = _duration(time.monotonic() - t0)
        self.pulled.add(ref)
        self._event(name, "Normal", "Pulled", f'Successfully pulled image "{ref}" in {took} ({took} including waiting)')
        return image_id

    def image_present(self, ref: str) -> bool:
        return self.inner.image_present(ref)

    def image_id(self, ref: str) -> str:
        return self.inner.image_id(ref)

    # -- containers (events, service env)
    def create_container(self, sandbox_id: str, cfg: ContainerConfig) -> str:
        if self.base_env:
            cfg.env = {**self.base_env, **cfg.env}
        if cfg.image not in self.pulled:
            self._event(cfg.name, "Normal", "Pulled", f'Container image "{cfg.image}" already present on machine')
        try:
            cid = self.inner.create_container(sandbox_id, cfg)
        except ContainerRuntimeError as e:
            self._event(cfg.name, "Warning", "Failed", f"Error: {e.message}")
            raise
        self._names[cid] = cfg.name
        self._event(cfg.name, "Normal", "Created", f"Created container {cfg.name}")
        return cid

    def start_container(self, container_id: str) -> None:
        name = self._names.get(container_id, "")
        try:
            self.inner.start_container(container_id)
        except ContainerRuntimeError as e:
            self._event(name, "Warning", "Failed", f"Error: failed to start container \"{name}\": {e.message}")
            raise
        self._event(name, "Normal", "Started", f"Started container {name}")

    # -- plain delegation
    def run_sandbox(self, cfg: SandboxConfig) -> SandboxInfo:
        return self.inner.run_sandbox(cfg)

    def create_sandbox(self, cfg: SandboxConfig) -> str:
        return self.inner.create_sandbox(cfg)

    def start_sandbox(self, sandbox_id: str) -> SandboxInfo:
        return self.inner.start_sandbox(sandbox_id)

    def stop_sandbox(self, sandbox_id: str, timeout_s: float = 10) -> None:
        self.inner.stop_sandbox(sandbox_id, timeout_s)

    def remove_sandbox(self, sandbox_id: str) -> None:
        self.inner.remove_sandbox(sandbox_id)

    def list_sandboxes(self, labels: Mapping[str, str] | None = None) -> list[SandboxInfo]:
        return self.inner.list_sandboxes(labels)

    def list_all(self, labels: Mapping[str, str] | None = None) -> tuple[list[SandboxInfo], list[ContainerInfo]]:
        return self.inner.list_all(labels)

    def inspect_sandbox(self, sandbox_id: str) -> SandboxInfo:
        return self.inner.inspect_sandbox(sandbox_id)

    def stop_container(self, container_id: str, timeout_s: float = 10) -> None:
        self.inner.stop_container(container_id, timeout_s)

    def remove_container(self, container_id: str) -> None:
        self.inner.remove_container(container_id)

    def list_containers(self, labels: Mapping[str, str] | None = None, all: bool = True) -> list[ContainerInfo]:
        return self.inner.list_containers(labels, all)

    def inspect_container(self, container_id: str) -> ContainerInfo:
        return self.inner.inspect_container(container_id)

    def logs(self, container_id: str, follow: bool = False, tail: int | None = None,
             since: float | None = None, timestamps: bool = False) -> Iterator[bytes]:
        return self.inner.logs(container_id, follow, tail, since, timestamps)

    def exec(self, container_id: str, cmd: list[str], timeout_s: float | None = None) -> ExecResult:
        return self.inner.exec(container_id, cmd, timeout_s)

    def info(self) -> NodeResources:
        return self.inner.info()

    def ping(self) -> bool:
        return self.inner.ping()


def _conforms(rt: PodRuntime) -> Runtime:
    """Static check (mypy): PodRuntime implements the Runtime protocol."""
    return rt
