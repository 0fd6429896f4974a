"""The UDP data path: per-client sessions, like conntrack entries.

The first datagram from a client address picks a backend (round-robin / ClientIP
affinity, as for TCP) and opens a connected socket to it; later datagrams of that
client reuse the session, and the backend's replies go back to the client from the
listening socket (so the client sees them come from the address it sent to — which
is why a UDP listener binds a specific address, never 0.0.0.0). A session idle for
`idle_timeout` seconds (30, conntrack's default for UDP) is closed; at most
`max_sessions` are kept (the least recently used goes first).

Datagrams that arrive while a session's socket is being opened are queued (bounded).
Closing the listener closes its sessions: UDP has no established connections to keep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Any, cast

from mkube.kubelet.proxy.routing import Backend, Balancer, PortKey

log = logging.getLogger(__name__)

Addr = tuple[Any, ...]
MAX_PENDING = 64


class _Session(asyncio.DatagramProtocol):
    def __init__(self, listener: UdpListener, client: Addr, backend: Backend) -> None:
        self.listener = listener
        self.client = client
        self.backend = backend
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []
        self.last_used = time.monotonic()
        self.closed = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._open())

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(lambda: self, remote_addr=(self.backend.host, self.backend.port))
        except OSError as exc:
            log.debug("udp %s: backend %s failed: %s", self.listener.key, self.backend, exc)
            self.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.DatagramTransport, transport)  # uvloop's are not asyncio subclasses
        if self.closed:
            transport.close()
            return
        self.transport = transport
        for data in self.pending:
            transport.sendto(data)
        self.pending.clear()

    def send(self, data: bytes) -> None:
        self.last_used = time.monotonic()
        if self.transport is not None:
            self.transport.sendto(data)
        elif len(self.pending) < MAX_PENDING:
            self.pending.append(data)

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.last_used = time.monotonic()
        out = self.listener.transport
        if out is not None:
            out.sendto(data, self.client)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a dead backend: forget the session so that the
        # client's next datagram picks another backend
        log.debug("udp %s: backend %s: %s", self.listener.key, self.backend, exc)
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.listener.forget(self)
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.transport is not None:
            self.transport.close()


class UdpListener(asyncio.DatagramProtocol):
    """A UDP socket for one served address (see module docstring)."""

    def __init__(self, host: str, port: int, key: PortKey, balancers: dict[PortKey, Balancer],
                 idle_timeout: float = 30.0, max_sessions: int = 4096) -> None:
        self.host = host
        self.port = port
        self.key = key
        self.balancers = balancers
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self.transport: asyncio.DatagramTransport | None = None
        self.sessions: OrderedDict[Addr, _Session] = OrderedDict()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self.port), reuse_port=False)
        self._sweeper = loop.create_task(self._sweep())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.DatagramTransport, transport)  # uvloop's are not asyncio subclasses
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        session = self.sessions.get(addr)
        if session is not None:
            self.sessions.move_to_end(addr)
            session.send(data)
            return
        balancer = self.balancers.get(self.key)
        backend = balancer.pick(str(addr[0])) if balancer is not None else None
        if backend is None:
            return  # no endpoints: dropped (the listener is about to close)
        while len(self.sessions) >= self.max_sessions:
            _, oldest = self.sessions.popitem(last=False)
            oldest.close()
        session = _Session(self, addr, backend)
        self.sessions[addr] = session
        session.start()
        session.send(data)

    def forget(self, session: _Session) -> None:
        if self.sessions.get(session.client) is session:
            del self.sessions[session.client]

    async def _sweep(self) -> None:
        interval = max(0.5, min(5.0, self.idle_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            cutoff = time.monotonic() - self.idle_timeout
            for session in [s for s in self.sessions.values() if s.last_used < cutoff]:
                session.close()

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for session in list(self.sessions.values()):
            session.close()
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.close()
            self.transport = None
