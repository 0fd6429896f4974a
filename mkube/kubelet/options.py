"""KubeletOptions: every knob of the kubelet agent, with Kubernetes' defaults.

Timers are seconds. Test-only speed-ups (short back-offs, fast heartbeats) are plain
options so that tests and benchmarks pass them as flags; the defaults are the kubelet's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

KUBELET_VERSION = "v1.32.0-mkube"
DEFAULT_PORT = 10250
DEFAULT_MAX_PODS = 110
NODE_LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_S = 40


@dataclass
class KubeletOptions:
    """Configuration of one kubelet process (shared by every node it runs)."""

    node_ip: str = ""  # "" = detect the address of the default route, else 127.0.0.1
    port: int = DEFAULT_PORT  # logs/exec server; 0 = any free port (advertised as bound)
    address: str = ""  # bind address of the server; "" = node_ip
    root_dir: str = "/var/lib/mkube/kubelet"  # per-pod dirs (emptyDir, configMap, secret files)
    max_pods: int = DEFAULT_MAX_PODS
    workers: int = 8  # pod sync threads of the process (shared by hollow nodes)
    # heartbeats
    lease_renew_interval: float = 10.0
    lease_duration_seconds: int = LEASE_DURATION_S
    node_status_update_frequency: float = 10.0  # compute node status this often
    node_status_report_frequency: float = 10.0  # write it at least this often (else on change)
    # pod sync
    relist_period: float = 1.0  # runtime relist (PLEG): notices exits and restarts
    resync_period: float = 10.0  # full sync of every pod
    housekeeping_period: float = 10.0  # orphans, pod dirs, back-off garbage
    crashloop_backoff_initial: float = 10.0  # CrashLoopBackOff 10 s doubling to 5 min
    crashloop_backoff_max: float = 300.0
    image_pull_backoff_initial: float = 10.0
    image_pull_backoff_max: float = 300.0
    volume_refresh_period: float = 60.0  # configMap/secret volume files are rewritten this often
    probe_workers: int = 8
    # runtime
    runtime: str = "docker"  # docker | fake
    docker_host: str | None = None
    publish_address: str = ""  # host IP of published pod ports; "" = node_ip
    hollow_nodes: int = 0  # > 0: run this many fake-runtime nodes `<node_name>-<i>`
    labels: dict[str, str] = field(default_factory=dict)  # extra node labels
    runtime_labels: dict[str, str] = field(default_factory=dict)  # put on every container (e.g. a test id)

    #: Defaults for hollow nodes (many nodes per process): kubemark-like, quieter timers.
    HOLLOW_DEFAULTS: ClassVar[dict[str, float]] = {
        "relist_period": 5.0, "resync_period": 60.0, "housekeeping_period": 30.0,
        "node_status_report_frequency": 60.0,
    }

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> KubeletOptions:
        """Options from keyword arguments; None means "the default". Unknown names raise TypeError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(kwargs) - names
        if unknown:
            raise TypeError(f"unknown kubelet option(s): {', '.join(sorted(unknown))}")
        given = {k: v for k, v in kwargs.items() if v is not None}
        if given.get("hollow_nodes"):
            given = {**cls.HOLLOW_DEFAULTS, **given}
        return cls(**given)
