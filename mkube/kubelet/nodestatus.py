"""The Node object a kubelet registers and the status it reports (pure builders).

- `node_object(...)`: metadata (labels kubernetes.io/hostname|os|arch) and the full status;
- `node_status(...)`: capacity/allocatable (cpu and memory of the runtime, pods),
  conditions (Ready, MemoryPressure, DiskPressure, PIDPressure) keeping
  lastTransitionTime while unchanged and stamping lastHeartbeatTime, addresses
  (InternalIP, Hostname), daemonEndpoints.kubeletEndpoint.Port, nodeInfo;
- `lease_object(...)`: the heartbeat Lease in kube-node-lease.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mkube.api.quantity import format_cpu, format_memory
from mkube.api.timeutil import format_micro, format_time
from mkube.api.types import (
    DaemonEndpoint,
    Lease,
    LeaseSpec,
    Node,
    NodeAddress,
    NodeCondition,
    NodeDaemonEndpoints,
    NodeStatus,
    NodeSystemInfo,
    ObjectMeta,
    OwnerReference,
)
from mkube.kubelet.options import KUBELET_VERSION, NODE_LEASE_NAMESPACE
from mkube.kubelet.runtime.base import NodeResources

READY_MESSAGE = "kubelet is posting ready status"
RUNTIME_DOWN_MESSAGE = "container runtime is down"


@dataclass(frozen=True)
class HostInfo:
    """What the kubelet knows about its machine (constant for its life)."""

    hostname: str
    kernel_version: str = ""
    os_image: str = ""
    machine_id: str = ""
    boot_id: str = ""

    @classmethod
    def detect(cls, hostname: str) -> HostInfo:
        def read(path: str) -> str:
            try:
                return Path(path).read_text().strip()
            except OSError:
                return ""

        os_image = ""
        for line in read("/etc/os-release").splitlines():
            if line.startswith("PRETTY_NAME="):
                os_image = line.split("=", 1)[1].strip().strip('"')
        return cls(hostname=hostname, kernel_version=platform.release(), os_image=os_image,
                   machine_id=read("/etc/machine-id"), boot_id=read("/proc/sys/kernel/random/boot_id"))


def node_labels(node_name: str, resources: NodeResources, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "kubernetes.io/hostname": node_name,
        "kubernetes.io/os": resources.os or "linux",
        "kubernetes.io/arch": resources.arch or "amd64",
        "beta.kubernetes.io/os": resources.os or "linux",
        "beta.kubernetes.io/arch": resources.arch or "amd64",
        **(extra or {}),
    }


def _condition(old: dict[str, NodeCondition], type_: str, status: str, reason: str, message: str,
               stamp: str) -> NodeCondition:
    prev = old.get(type_)
    since = prev.last_transition_time if prev is not None and prev.status == status else None
    return NodeCondition(type=type_, status=status, reason=reason, message=message,
                         last_heartbeat_time=stamp, last_transition_time=since or stamp)


def node_status(*, resources: NodeResources, runtime_up: bool, node_ip: str, host: HostInfo, port: int,
                max_pods: int, now: datetime, old: NodeStatus | None = None) -> NodeStatus:
    """The status the kubelet reports. Conditions keep their lastTransitionTime from `old`
    while their status is unchanged; every condition gets lastHeartbeatTime = now."""
    stamp = format_time(now)
    prev = {c.type: c for c in (old.conditions if old else None) or []}
    if runtime_up:
        ready = _condition(prev, "Ready", "True", "KubeletReady", READY_MESSAGE, stamp)
    else:
        ready = _condition(prev, "Ready", "False", "KubeletNotReady", RUNTIME_DOWN_MESSAGE, stamp)
    conditions = [
        _condition(prev, "MemoryPressure", "False", "KubeletHasSufficientMemory",
                   "kubelet has sufficient memory available", stamp),
        _condition(prev, "DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", stamp),
        _condition(prev, "PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available",
                   stamp),
        ready,
    ]
    capacity: dict[str, str | int | float] = {
        "cpu": format_cpu(resources.cpu_millis), "memory": format_memory(resources.memory_bytes // 1024 * 1024),
        "pods": str(max_pods),
    }
    return NodeStatus(
        capacity=dict(capacity), allocatable=dict(capacity), conditions=conditions,
        addresses=[NodeAddress(type="InternalIP", address=node_ip), NodeAddress(type="Hostname", address=host.hostname)],
        daemon_endpoints=NodeDaemonEndpoints(kubelet_endpoint=DaemonEndpoint(port=port)),
        node_info=NodeSystemInfo(
            machine_id=host.machine_id or None, system_uuid=host.machine_id or None, boot_id=host.boot_id or None,
            kernel_version=host.kernel_version or None, os_image=host.os_image or None,
            container_runtime_version=resources.runtime_version, kubelet_version=KUBELET_VERSION,
            kube_proxy_version=KUBELET_VERSION, operating_system=resources.os or "linux",
            architecture=resources.arch or "amd64"),
    )


def node_object(name: str, labels: dict[str, str], status: NodeStatus) -> Node:
    return Node(metadata=ObjectMeta(name=name, labels=labels), status=status)


def without_heartbeat(status: NodeStatus) -> dict[str, object]:
    """The status with heartbeat stamps removed: equal means "nothing changed"."""
    d = status.to_dict()
    for c in d.get("conditions") or []:
        c.pop("lastHeartbeatTime", None)
    return d


def lease_object(node: Node | None, node_name: str, duration_s: int, now: datetime) -> Lease:
    owner = None
    if node is not None and node.metadata.uid:
        owner = [OwnerReference(api_version="v1", kind="Node", name=node_name, uid=node.metadata.uid)]
    return Lease(metadata=ObjectMeta(name=node_name, namespace=NODE_LEASE_NAMESPACE, owner_references=owner),
                 spec=LeaseSpec(holder_identity=node_name, lease_duration_seconds=duration_s,
                                renew_time=format_micro(now)))
