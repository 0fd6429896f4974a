"""The proxy's control loop: from Services + Endpoints to listeners and balancers.

`Proxier.sync_once()` is level-triggered: it computes what should be served
(routing.desired), then
- updates one `Balancer` per Service port in place (round-robin position and
  ClientIP stickiness survive; relays in flight are not touched);
- holds every ClusterIP on the ClusterIP interface (netif) — also those without
  endpoints, so that a connection to them is refused by this host instead of being
  routed away and hanging;
- opens a listener for every Service port that has ready backends, on each NodePort
  address and on its ClusterIP, and closes the listeners of ports that have none
  (connections are then refused at once: ECONNREFUSED, like Kubernetes' reject rule).
Only listeners whose address changed are opened or closed, so a change to one
Service never disturbs another. Informer events request a sync (debounced by
`sync_debounce`, 50 ms); a periodic resync retries listeners that could not bind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from mkube.api.types import Endpoints, Service
from mkube.kubelet.proxy import routing
from mkube.kubelet.proxy.netif import DEFAULT_NAME, ClusterIPInterface
from mkube.kubelet.proxy.routing import Balancer, PortKey
from mkube.kubelet.proxy.tcp import Stats, TcpListener
from mkube.kubelet.proxy.udp import UdpListener

log = logging.getLogger(__name__)

ListenKey = tuple[str, str, int]  # (protocol, address, port)


@dataclass
class ProxyOptions:
    """How one node's proxy serves Services."""

    node_name: str
    node_ip: str
    # Where NodePorts listen: "0.0.0.0" = every address of the node (TCP). UDP binds
    # specific addresses (replies must come from the address the client used), so
    # "0.0.0.0" means the node IP and 127.0.0.1 for UDP.
    nodeport_addresses: tuple[str, ...] = ("0.0.0.0",)
    cluster_ips: bool = True  # hold ClusterIPs on `interface` (needs root)
    interface: str = DEFAULT_NAME
    cleanup_interface: bool = True  # remove the ClusterIPs on shutdown
    connect_timeout: float = 3.0
    udp_idle_timeout: float = 30.0
    sync_debounce: float = 0.05
    resync_period: float = 5.0


class _Listener(Protocol):
    key: PortKey

    async def start(self) -> None: ...

    def close(self) -> None: ...


class Proxier:
    """See the module docstring. `run(stop)` on an event loop; `request_sync()` from any thread."""

    def __init__(self, options: ProxyOptions, services: Callable[[], Iterable[Service]],
                 endpoints: Callable[[str], Endpoints | None], *,
                 interface: ClusterIPInterface | None = None) -> None:
        self.options = options
        self.services = services
        self.endpoints = endpoints
        self.interface = interface or ClusterIPInterface(options.interface, enabled=options.cluster_ips)
        self.balancers: dict[PortKey, Balancer] = {}
        self.listeners: dict[ListenKey, _Listener] = {}
        self.stats = Stats()
        self.held_ips: set[str] = set()
        self.syncs = 0
        self.on_first_sync: Callable[[], None] | None = None  # called once the first pass is applied
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._bind_errors: dict[ListenKey, str] = {}
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ lifecycle
    def request_sync(self) -> None:
        """Ask for a sync soon; safe from informer threads."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # loop closing
            loop.call_soon_threadsafe(wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set; then close every listener (and the ClusterIPs)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await self.interface.setup()
        try:
            while not stop.is_set():
                await self.sync_once()
                if self.syncs == 1 and self.on_first_sync is not None:
                    self.on_first_sync()
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=self.options.resync_period,
                                   return_when=asyncio.FIRST_COMPLETED)
                for fut in (waiter, stopper):
                    fut.cancel()
                self._wake.clear()
                if not stop.is_set():
                    await asyncio.sleep(self.options.sync_debounce)  # coalesce bursts of events
                    self._wake.clear()
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        for listener in self.listeners.values():
            listener.close()
        self.listeners.clear()
        if self.options.cleanup_interface:
            await self.interface.cleanup()

    # ------------------------------------------------------------------ one pass
    async def sync_once(self) -> None:
        start = time.monotonic()
        self.syncs += 1
        want = routing.desired(self.services(), self.endpoints, self.options.node_name, self.options.node_ip)
        for key, (sp, backends) in want.items():
            balancer = self.balancers.get(key)
            if balancer is None:
                balancer = self.balancers[key] = Balancer()
            if balancer.update(backends, sp.affinity_timeout):
                log.info("%s -> %s", key, ", ".join(map(str, backends)) or "no ready endpoints")
        for key in set(self.balancers) - set(want):
            del self.balancers[key]
        cluster_ips = {sp.cluster_ip for sp, _ in want.values() if sp.cluster_ip and self._supported(sp.key)}
        self.held_ips = await self.interface.sync(cluster_ips)
        wanted_listeners: dict[ListenKey, PortKey] = {}
        for key, (sp, backends) in want.items():
            if not backends or not self._supported(key):
                continue
            proto = key.protocol
            if sp.node_port:
                for addr in self._nodeport_addresses(proto):
                    wanted_listeners.setdefault((proto, addr, sp.node_port), key)
            if sp.cluster_ip and sp.cluster_ip in self.held_ips:
                wanted_listeners.setdefault((proto, sp.cluster_ip, sp.port), key)
        for lkey in [k for k in self.listeners if k not in wanted_listeners]:
            self.listeners.pop(lkey).close()
            log.info("closed %s %s:%d", *lkey)
        for lkey, key in wanted_listeners.items():
            current = self.listeners.get(lkey)
            if current is not None:
                current.key = key  # another Service may have taken the address over
                continue
            await self._open(lkey, key)
        for lkey in [k for k in self._bind_errors if k not in wanted_listeners]:
            del self._bind_errors[lkey]
        log.debug("sync took %.1f ms", (time.monotonic() - start) * 1000)

    async def _open(self, lkey: ListenKey, key: PortKey) -> None:
        proto, host, port = lkey
        listener: _Listener
        if proto == "UDP":
            listener = UdpListener(host, port, key, self.balancers, idle_timeout=self.options.udp_idle_timeout)
        else:
            listener = TcpListener(host, port, key, self.balancers, self.stats, self.options.connect_timeout)
        try:
            await listener.start()
        except OSError as exc:
            message = str(exc)
            if self._bind_errors.get(lkey) != message:  # log once per address and error
                log.warning("cannot listen on %s %s:%d for %s: %s (retrying)", proto, host, port, key, message)
            self._bind_errors[lkey] = message
            listener.close()
            return
        self._bind_errors.pop(lkey, None)
        self.listeners[lkey] = listener
        log.info("listening on %s %s:%d for %s", proto, host, port, key)

    def _nodeport_addresses(self, proto: str) -> list[str]:
        if proto != "UDP":
            return list(self.options.nodeport_addresses)
        out: list[str] = []
        for addr in self.options.nodeport_addresses:
            expanded = [self.options.node_ip, "127.0.0.1"] if ipaddress.ip_address(addr).is_unspecified else [addr]
            out += [a for a in expanded if a not in out]
        return out

    def _supported(self, key: PortKey) -> bool:
        if key.protocol in ("TCP", "UDP"):
            return True
        if key.protocol not in self._warned:
            log.warning("protocol %s is not proxied (only TCP and UDP)", key.protocol)
            self._warned.add(key.protocol)
        return False

    # ------------------------------------------------------------------ introspection
    def listening(self) -> set[ListenKey]:
        return set(self.listeners)
