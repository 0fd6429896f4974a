"""The scheduler's precomputed views of pods and nodes, and the per-cycle Snapshot.

`PodInfo` parses a pod once (requests, host ports, owner, tolerations) so that filters
running against hundreds of nodes never touch pydantic models or quantity strings.
`NodeInfo` is immutable (copy-on-write): the cache replaces a node's NodeInfo when a pod
lands on it or the Node object changes, so a `Snapshot` is just a tuple of references
that no later event can change under a running scheduling cycle.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from mkube.api.quantity import bytes_, cpu_millis
from mkube.api.types import Container, Node, Pod, Taint, Toleration

#: Requests assumed for a container that sets none, when *scoring* (not filtering),
#: as kube-scheduler does, so that request-less pods still spread by count.
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024

NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"
PREFER_NO_SCHEDULE = "PreferNoSchedule"

_generations = itertools.count(1)


class HostPort(NamedTuple):
    """A port a pod wants on its node's address: ("0.0.0.0" means every address)."""

    ip: str
    protocol: str
    port: int


def _quantity(parse: Any, value: Any) -> int:
    try:
        return int(parse(value))
    except (TypeError, ValueError, ArithmeticError):
        return 0


def _container_requests(c: Container) -> tuple[int, int, bool, bool]:
    """(cpu millis, memory bytes, cpu set?, memory set?); requests fall back to limits
    (what API defaulting does, repeated here so un-defaulted objects behave the same)."""
    res = c.resources
    requests = (res.requests if res else None) or {}
    limits = (res.limits if res else None) or {}
    cpu_q = requests.get("cpu", limits.get("cpu"))
    mem_q = requests.get("memory", limits.get("memory"))
    cpu = _quantity(cpu_millis, cpu_q) if cpu_q is not None else 0
    mem = _quantity(bytes_, mem_q) if mem_q is not None else 0
    return cpu, mem, cpu_q is not None, mem_q is not None


class PodInfo:
    """A pod plus everything the plugins need from it, computed once per pod version.

    `state` is a per-pod memo for plugins (compiled selectors ...), keyed by plugin name.
    """

    __slots__ = ("pod", "key", "uid", "namespace", "name", "cpu", "memory", "nonzero_cpu",
                 "nonzero_memory", "host_ports", "owner_uid", "priority", "tolerations",
                 "node_name", "state")

    def __init__(self, pod: Pod) -> None:
        meta = pod.metadata
        spec = pod.spec
        self.pod = pod
        self.namespace = meta.namespace or ""
        self.name = meta.name or ""
        self.key = f"{self.namespace}/{self.name}" if self.namespace else self.name
        self.uid = meta.uid or ""
        self.node_name = spec.node_name or ""
        self.priority = spec.priority or 0
        self.tolerations: tuple[Toleration, ...] = tuple(spec.tolerations or ())
        ref = meta.controller_ref()
        self.owner_uid = ref.uid if ref is not None and ref.uid else None
        self.state: dict[str, Any] = {}

        cpu = mem = nz_cpu = nz_mem = 0
        for c in spec.containers:
            c_cpu, c_mem, cpu_set, mem_set = _container_requests(c)
            cpu += c_cpu
            mem += c_mem
            nz_cpu += c_cpu if cpu_set else DEFAULT_MILLI_CPU
            nz_mem += c_mem if mem_set else DEFAULT_MEMORY
        # Init containers run one at a time before the app containers: the pod needs
        # the largest of them or the sum of the app containers, whichever is more.
        for c in spec.init_containers or ():
            c_cpu, c_mem, cpu_set, mem_set = _container_requests(c)
            cpu = max(cpu, c_cpu)
            mem = max(mem, c_mem)
            nz_cpu = max(nz_cpu, c_cpu if cpu_set else DEFAULT_MILLI_CPU)
            nz_mem = max(nz_mem, c_mem if mem_set else DEFAULT_MEMORY)
        self.cpu, self.memory, self.nonzero_cpu, self.nonzero_memory = cpu, mem, nz_cpu, nz_mem

        ports: list[HostPort] = []
        host_network = bool(spec.host_network)
        for c in spec.containers:
            for p in c.ports or ():
                host_port = p.host_port or (p.container_port if host_network else 0)
                if host_port:
                    ip = p.host_ip or "0.0.0.0"
                    ports.append(HostPort("0.0.0.0" if ip == "::" else ip, p.protocol or "TCP", host_port))
        self.host_ports: tuple[HostPort, ...] = tuple(ports)

    def __repr__(self) -> str:
        return f"PodInfo({self.key}, cpu={self.cpu}m, memory={self.memory})"


def _count(value: Any) -> int:
    """A plain count ("110", 110); 0 when absent or unparsable."""
    try:
        return int(str(value)) if value is not None else 0
    except ValueError:
        return 0


class NodeInfo:
    """One node and the pods on it (assumed ones included). Immutable: the `with_*`
    methods return a new NodeInfo with a new `generation`."""

    __slots__ = ("node", "name", "labels", "alloc_cpu", "alloc_memory", "alloc_pods",
                 "requested_cpu", "requested_memory", "nonzero_cpu", "nonzero_memory", "pods",
                 "used_ports", "owner_counts", "unschedulable", "ready", "taints", "hard_taints",
                 "soft_taints", "generation")

    node: Node | None
    pods: dict[str, PodInfo]
    used_ports: dict[tuple[str, int], tuple[str, ...]]
    owner_counts: dict[str, int]

    def __init__(self, node: Node | None, name: str = "") -> None:
        self.pods = {}
        self.used_ports = {}
        self.owner_counts = {}
        self.requested_cpu = self.requested_memory = self.nonzero_cpu = self.nonzero_memory = 0
        self._set_node(node, name)
        self.generation = next(_generations)

    def _set_node(self, node: Node | None, name: str = "") -> None:
        self.node = node
        if node is None:
            self.name = name
            self.labels: dict[str, str] = {}
            self.alloc_cpu = self.alloc_memory = self.alloc_pods = 0
            self.unschedulable = True
            self.ready = ""
            self.taints: tuple[Taint, ...] = ()
        else:
            self.name = node.metadata.name or name
            self.labels = dict(node.metadata.labels or {})
            alloc = node.status.allocatable or node.status.capacity or {}
            self.alloc_cpu = _quantity(cpu_millis, alloc["cpu"]) if "cpu" in alloc else 0
            self.alloc_memory = _quantity(bytes_, alloc["memory"]) if "memory" in alloc else 0
            self.alloc_pods = _count(alloc.get("pods"))
            self.unschedulable = bool(node.spec.unschedulable)
            cond = node.condition("Ready")
            self.ready = cond.status if cond is not None else ""
            self.taints = tuple(node.spec.taints or ())
        self.hard_taints: tuple[Taint, ...] = tuple(t for t in self.taints
                                                    if t.effect in (NO_SCHEDULE, NO_EXECUTE))
        self.soft_taints: tuple[Taint, ...] = tuple(t for t in self.taints if t.effect == PREFER_NO_SCHEDULE)

    # ------------------------------------------------------------------ copy-on-write
    def _clone(self) -> NodeInfo:
        new = NodeInfo.__new__(NodeInfo)
        for attr in NodeInfo.__slots__:
            setattr(new, attr, getattr(self, attr))
        new.generation = next(_generations)
        return new

    def with_node(self, node: Node | None) -> NodeInfo:
        """The same pods on a new version of the Node (None: node deleted, pods remain)."""
        new = self._clone()
        new._set_node(node, self.name)
        return new

    def with_pod(self, pod: PodInfo) -> NodeInfo:
        """This node with `pod` added (replacing an older version of the same pod)."""
        new = self.without_pod(pod.key) if pod.key in self.pods else self._clone()
        new.pods = {**new.pods, pod.key: pod}
        new.requested_cpu += pod.cpu
        new.requested_memory += pod.memory
        new.nonzero_cpu += pod.nonzero_cpu
        new.nonzero_memory += pod.nonzero_memory
        if pod.host_ports:
            ports = dict(new.used_ports)
            for hp in pod.host_ports:
                ports[(hp.protocol, hp.port)] = (*ports.get((hp.protocol, hp.port), ()), hp.ip)
            new.used_ports = ports
        if pod.owner_uid:
            owners = dict(new.owner_counts)
            owners[pod.owner_uid] = owners.get(pod.owner_uid, 0) + 1
            new.owner_counts = owners
        return new

    def without_pod(self, key: str) -> NodeInfo:
        """This node without the pod `key` (self when the pod is not here)."""
        pod = self.pods.get(key)
        if pod is None:
            return self
        new = self._clone()
        new.pods = {k: v for k, v in self.pods.items() if k != key}
        new.requested_cpu -= pod.cpu
        new.requested_memory -= pod.memory
        new.nonzero_cpu -= pod.nonzero_cpu
        new.nonzero_memory -= pod.nonzero_memory
        if pod.host_ports:
            ports = dict(new.used_ports)
            for hp in pod.host_ports:
                ips = list(ports.get((hp.protocol, hp.port), ()))
                if hp.ip in ips:
                    ips.remove(hp.ip)
                if ips:
                    ports[(hp.protocol, hp.port)] = tuple(ips)
                else:
                    ports.pop((hp.protocol, hp.port), None)
            new.used_ports = ports
        if pod.owner_uid:
            owners = dict(new.owner_counts)
            left = owners.get(pod.owner_uid, 0) - 1
            if left > 0:
                owners[pod.owner_uid] = left
            else:
                owners.pop(pod.owner_uid, None)
            new.owner_counts = owners
        return new

    def __repr__(self) -> str:
        return (f"NodeInfo({self.name}, pods={len(self.pods)}/{self.alloc_pods}, "
                f"cpu={self.requested_cpu}/{self.alloc_cpu}m, memory={self.requested_memory}/{self.alloc_memory})")


class Snapshot:
    """The nodes as one scheduling cycle sees them (read-only, never changes).

    `nodes` is in the cache's stable, seeded order; that order plus the round-robin
    start index decides which nodes a large cluster's partial search looks at.
    """

    __slots__ = ("nodes", "_by_name", "has_soft_taints")

    def __init__(self, nodes: Iterable[NodeInfo], has_soft_taints: bool | None = None) -> None:
        self.nodes: tuple[NodeInfo, ...] = tuple(nodes)
        self._by_name: dict[str, NodeInfo] | None = None
        #: whether any node has a PreferNoSchedule taint (else that scoring is skipped)
        self.has_soft_taints = (any(n.soft_taints for n in self.nodes) if has_soft_taints is None
                                else has_soft_taints)

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[NodeInfo]:
        return iter(self.nodes)

    def get(self, name: str) -> NodeInfo | None:
        if self._by_name is None:
            self._by_name = {n.name: n for n in self.nodes}
        return self._by_name.get(name)

    @classmethod
    def of(cls, nodes: Iterable[Node], pods: Iterable[Pod] = ()) -> Snapshot:
        """A snapshot built directly from objects (for tests and one-off callers)."""
        infos = {n.metadata.name or "": NodeInfo(n) for n in nodes}
        for pod in pods:
            info = infos.get(pod.spec.node_name or "")
            if info is not None:
                infos[info.name] = info.with_pod(PodInfo(pod))
        return cls(infos.values())
