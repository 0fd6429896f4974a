"""The kubelet's container runtime layer: the `Runtime` protocol and its data types
(base), the Docker implementation (docker, import it explicitly) and an in-memory fake
for hollow nodes and tests (fake)."""

from mkube.kubelet.runtime.base import (
    ContainerConfig,
    ContainerCreateError,
    ContainerInfo,
    ContainerRuntimeError,
    ContainerStartError,
    ExecResult,
    ExecTimeout,
    ImagePullError,
    Mount,
    NodeResources,
    NotFound,
    PortMapping,
    Runtime,
    RuntimeUnavailable,
    SandboxConfig,
    SandboxCreateError,
    SandboxInfo,
)

__all__ = [
    "ContainerConfig",
    "ContainerCreateError",
    "ContainerInfo",
    "ContainerRuntimeError",
    "ContainerStartError",
    "ExecResult",
    "ExecTimeout",
    "ImagePullError",
    "Mount",
    "NodeResources",
    "NotFound",
    "PortMapping",
    "Runtime",
    "RuntimeUnavailable",
    "SandboxConfig",
    "SandboxCreateError",
    "SandboxInfo",
]
