"""Controller-manager settings (the timers and sizes `mkube controller-manager` exposes)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

ALL_CONTROLLERS = ("deployment", "replicaset", "endpoints", "nodelifecycle", "garbagecollector")


@dataclass
class ControllerOptions:
    """Timers in seconds. Defaults are Kubernetes' defaults."""

    #: A node whose kubelet posted no heartbeat (Lease renewal or Ready condition) for
    #: this long is marked Ready=Unknown and tainted unreachable.
    node_monitor_grace_period: float = 40.0
    #: How often node health is checked.
    node_monitor_period: float = 5.0
    #: tolerationSeconds for pods without their own toleration of the not-ready /
    #: unreachable NoExecute taints (Kubernetes' DefaultTolerationSeconds admission).
    pod_eviction_timeout: int = 300
    #: Informer resync period: every cached object is handed to the handlers again.
    resync_period: float = 300.0
    #: How long expected pod creations/deletions are waited for before acting anyway.
    expectations_ttl: float = 300.0
    #: Worker threads per controller.
    deployment_workers: int = 5
    replicaset_workers: int = 5
    endpoints_workers: int = 5
    gc_workers: int = 5
    nodelifecycle_workers: int = 2
    #: Most pods a ReplicaSet creates or deletes in one sync (Kubernetes' burstReplicas).
    burst_replicas: int = 500
    #: Per-key backoff after a failed sync: base * 2**failures, capped.
    backoff_base: float = 0.005
    backoff_max: float = 60.0
    #: Which controllers run.
    controllers: tuple[str, ...] = field(default=ALL_CONTROLLERS)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> ControllerOptions:
        """Build from keyword arguments, refusing unknown names (typos in timers)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown controller option(s): {', '.join(unknown)}")
        return cls(**{k: v for k, v in kwargs.items() if v is not None})
