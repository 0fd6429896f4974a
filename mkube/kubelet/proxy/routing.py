"""What the node proxy serves, computed from Services and Endpoints (pure, no I/O).

`service_ports(svc)` lists the ports of a Service the proxy handles (ClusterIP and
NodePort). `backends_for(port, endpoints, node_name, node_ip)` lists where a
connection to it may go:

- a ready address on this node -> `podIP:port` (pods are on this node's Docker bridge,
  which the host routes), with the pod's published `hostIP:hostPort` as a fallback;
- a ready address on another node -> `hostIP:hostPort` from the Endpoints annotation
  `endpoints.mkube.io/published` (pod IPs are per-node bridge addresses; only the
  published port is reachable from elsewhere); without any entry for its pod IP,
  `podIP:port` as a best effort (e.g. several nodes on one Docker engine share a
  bridge, or a port the pod does not declare and so does not publish);
- an address without a node (the `kubernetes` Service, hand-written Endpoints)
  -> `ip:port` as given.

Pod IPs are unique per node only, so the annotation may hold several entries for one
`ip:port`. An entry naming its `nodeName` is matched exactly; otherwise entries are
matched by `ip:port` when that is unambiguous, and an ambiguous ready/not-ready mix is
left out rather than risk sending traffic to a pod that is not ready (or, via its pod
IP, to an unrelated local pod that happens to have the same address).

`Balancer` spreads connections round-robin over a port's backends, with
`sessionAffinity: ClientIP` stickiness (per client IP, refreshed on use, expiring after
the configured timeout).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from mkube.api.types import EndpointAddress, EndpointPort, Endpoints, Service

log = logging.getLogger(__name__)

PUBLISHED_ANNOTATION = "endpoints.mkube.io/published"
DEFAULT_AFFINITY_TIMEOUT = 10800.0
NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


@dataclass(frozen=True)
class PortKey:
    """One port of one Service: `namespace/name:portName/protocol`."""

    namespace: str
    name: str
    port_name: str
    protocol: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port_name or '-'}/{self.protocol}"


@dataclass(frozen=True)
class ServicePort:
    """A port the proxy serves and how."""

    key: PortKey
    port: int
    cluster_ip: str | None  # None: headless / ExternalName / not allocated
    node_port: int | None
    affinity_timeout: float | None  # seconds of ClientIP stickiness; None: no affinity


@dataclass(frozen=True)
class Backend:
    """Where to connect: `host:port`, or `fallback` when that fails."""

    host: str
    port: int
    fallback: tuple[str, int] | None = None

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def service_ports(svc: Service) -> list[ServicePort]:
    """The ports of `svc` the proxy serves (none for ExternalName)."""
    spec = svc.spec
    if spec.type == "ExternalName":
        return []
    ip = spec.cluster_ip if spec.cluster_ip and spec.cluster_ip != "None" else None
    affinity: float | None = None
    if spec.session_affinity == "ClientIP":
        cfg = spec.session_affinity_config.client_ip if spec.session_affinity_config else None
        timeout = (cfg or {}).get("timeoutSeconds")
        affinity = float(timeout) if isinstance(timeout, int | float) and timeout > 0 else DEFAULT_AFFINITY_TIMEOUT
    out = []
    for p in spec.ports or []:
        node_port = p.node_port if spec.type in NODE_PORT_TYPES and p.node_port else None
        if ip is None and node_port is None:
            continue
        key = PortKey(svc.metadata.namespace or "", svc.metadata.name or "", p.name or "", p.protocol or "TCP")
        out.append(ServicePort(key, p.port, ip, node_port, affinity))
    return out


@dataclass(frozen=True)
class Published:
    ip: str
    port: int
    host_ip: str
    host_port: int
    node_name: str | None


def published_entries(ep: Endpoints) -> list[Published]:
    """The parsed annotation (malformed entries are skipped)."""
    raw = (ep.metadata.annotations or {}).get(PUBLISHED_ANNOTATION)
    if not raw:
        return []
    try:
        entries = json.loads(raw)
    except ValueError:
        log.warning("endpoints %s: malformed %s annotation", ep.key, PUBLISHED_ANNOTATION)
        return []
    out = []
    for e in entries if isinstance(entries, list) else []:
        try:
            out.append(Published(str(e["ip"]), int(e["port"]), str(e["hostIP"]), int(e["hostPort"]),
                                 str(e["nodeName"]) if e.get("nodeName") else None))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _matching_port(subset_ports: Sequence[EndpointPort], sp: ServicePort) -> int | None:
    """The endpoint port of a Service port: same name (as Kubernetes matches them) and protocol."""
    for ep_port in subset_ports:
        if (ep_port.name or "") == sp.key.port_name and (ep_port.protocol or "TCP") == sp.key.protocol:
            return ep_port.port
    return None


def backends_for(sp: ServicePort, ep: Endpoints | None, node_name: str, node_ip: str) -> list[Backend]:
    """Ready backends of `sp` seen from node `node_name` (see module docstring), in a
    stable order (so round-robin positions survive unrelated updates)."""
    if ep is None:
        return []
    entries = published_entries(ep)
    out: list[Backend] = []
    for subset in ep.subsets or []:
        port = _matching_port(subset.ports or [], sp)
        if port is None:
            continue
        ready = list(subset.addresses or [])
        not_ready = list(subset.not_ready_addresses or [])
        relevant = [e for e in entries if e.port == port]
        for addr in ready:
            if addr.node_name is None:
                out.append(Backend(addr.ip, port))
            elif addr.node_name == node_name:
                local = _local_entry(addr, relevant, node_name, node_ip)
                out.append(Backend(addr.ip, port, (local.host_ip, local.host_port) if local else None))
            elif not any(e.ip == addr.ip for e in relevant):
                out.append(Backend(addr.ip, port))  # not published: its pod IP, best effort
            else:
                remote = _remote_entry(addr, relevant, ready, not_ready, node_name, node_ip)
                if remote is not None:
                    out.append(Backend(remote.host_ip, remote.host_port))
    return sorted(set(out), key=lambda b: (b.host, b.port, b.fallback or ("", 0)))


def _local_entry(addr: EndpointAddress, entries: list[Published], node_name: str,
                 node_ip: str) -> Published | None:
    same_ip = [e for e in entries if e.ip == addr.ip and e.node_name in (None, node_name)]
    exact = [e for e in same_ip if e.node_name == node_name] or [e for e in same_ip if e.host_ip == node_ip]
    found = exact or same_ip
    return found[0] if found else None


def _remote_entry(addr: EndpointAddress, entries: list[Published], ready: list[EndpointAddress],
                  not_ready: list[EndpointAddress], node_name: str, node_ip: str) -> Published | None:
    by_node = [e for e in entries if e.ip == addr.ip and e.node_name == addr.node_name]
    if by_node:
        return by_node[0]
    candidates = [e for e in entries if e.ip == addr.ip and e.node_name is None]
    local_count = sum(1 for a in (*ready, *not_ready) if a.ip == addr.ip and a.node_name == node_name)
    for _ in range(local_count):  # entries of this node's pods with the same IP are not candidates
        mine = next((e for e in candidates if e.host_ip == node_ip), None)
        if mine is None:
            break
        candidates.remove(mine)
    remote_ready = [a for a in ready if a.ip == addr.ip and a.node_name not in (None, node_name)]
    remote_not_ready = [a for a in not_ready if a.ip == addr.ip and a.node_name not in (None, node_name)]
    if len(candidates) == 1 and len(remote_ready) == 1 and not remote_not_ready:
        return candidates[0]
    if not remote_not_ready and len(candidates) == len(remote_ready):
        # every remote pod with this IP is ready: each entry is a ready backend; give this
        # address the entry at its position so that all of them are used
        return candidates[remote_ready.index(addr)] if addr in remote_ready else None
    return None  # ambiguous: unknown which entry is ready


def desired(services: Iterable[Service], endpoints: Callable[[str], Endpoints | None], node_name: str,
            node_ip: str) -> dict[PortKey, tuple[ServicePort, list[Backend]]]:
    """Every served port with its backends. `endpoints(key)` looks up `namespace/name`."""
    out: dict[PortKey, tuple[ServicePort, list[Backend]]] = {}
    for svc in services:
        ports = service_ports(svc)
        if not ports:
            continue
        ep = endpoints(svc.key)
        for sp in ports:
            out[sp.key] = (sp, backends_for(sp, ep, node_name, node_ip))
    return out


@dataclass
class _Sticky:
    backend: Backend
    last_used: float


DOWN_HOLD_SECONDS = 5.0


@dataclass
class Balancer:
    """Round-robin over backends with optional ClientIP affinity. Thread-safe."""

    backends: list[Backend] = field(default_factory=list)
    affinity_timeout: float | None = None
    clock: Callable[[], float] = time.monotonic
    _next: int = 0
    _sticky: dict[str, _Sticky] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _picks: int = 0
    _down: dict[Backend, float] = field(default_factory=dict)  # backend -> avoid until (clock)

    def update(self, backends: Sequence[Backend], affinity_timeout: float | None) -> bool:
        """Replace the backends; True if anything changed. Sticky clients whose backend
        is gone are forgotten; the round-robin position is kept."""
        with self._lock:
            new = list(backends)
            changed = new != self.backends or affinity_timeout != self.affinity_timeout
            if not changed:
                return False
            alive = set(new)
            self.backends = new
            self.affinity_timeout = affinity_timeout
            if affinity_timeout is None:
                self._sticky.clear()
            else:
                self._sticky = {c: s for c, s in self._sticky.items() if s.backend in alive}
            if new:
                self._next %= len(new)
            else:
                self._next = 0
            return True

    def pick(self, client_ip: str | None, exclude: Iterable[Backend] = ()) -> Backend | None:
        """The backend for a new connection from `client_ip` (None when there is none
        left after `exclude`, the backends already tried for this connection)."""
        skip = set(exclude)
        with self._lock:
            if not self.backends:
                return None
            now = self.clock()
            sticky = self._sticky.get(client_ip) if client_ip and self.affinity_timeout else None
            if sticky is not None:
                assert self.affinity_timeout is not None
                if now - sticky.last_used <= self.affinity_timeout and sticky.backend not in skip:
                    sticky.last_used = now
                    return sticky.backend
                del self._sticky[client_ip]  # type: ignore[arg-type]
            chosen: Backend | None = None
            n = len(self.backends)
            # backends that failed a moment ago go last: after a node is lost, new
            # connections stop paying a connect timeout per dead backend
            down = {b for b, until in self._down.items() if until > now}
            for avoid in (skip | down, skip):
                for i in range(n):
                    candidate = self.backends[(self._next + i) % n]
                    if candidate not in avoid:
                        chosen = candidate
                        self._next = (self._next + i + 1) % n
                        break
                if chosen is not None:
                    break
            if chosen is not None and client_ip and self.affinity_timeout:
                self._sticky[client_ip] = _Sticky(chosen, now)
            self._picks += 1
            if self._picks % 1024 == 0 and self._sticky:
                self._expire(now)
            return chosen

    def mark_down(self, backend: Backend, seconds: float = DOWN_HOLD_SECONDS) -> None:
        """`backend` refused or timed out: prefer the others for `seconds`."""
        with self._lock:
            now = self.clock()
            self._down = {b: t for b, t in self._down.items() if t > now}
            self._down[backend] = now + seconds

    def _expire(self, now: float) -> None:
        timeout = self.affinity_timeout or 0.0
        self._sticky = {c: s for c, s in self._sticky.items() if now - s.last_used <= timeout}

    def sticky_clients(self) -> int:
        with self._lock:
            return len(self._sticky)
