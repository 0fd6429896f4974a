"""The TCP data path: a listener per served address, and a relay per connection.

Each accepted connection gets a backend from its port's `Balancer` (looked up at
accept time, so a listener survives backend changes and never needs a rebind). A
backend that refuses or does not answer within `connect_timeout` is skipped and the
next one tried (up to `MAX_ATTEMPTS`); a local pod's published host port is tried
when its pod IP fails. With no backend left the client is reset.

The relay is two `asyncio.Protocol`s wired back to back: bytes the event loop reads
from one socket are written straight to the other's transport — no coroutine or
task per chunk, one task per connection (the connect). Flow control is the
transports' own: when one side's write buffer passes its high-water mark (64 KiB,
the loops' default) reading from the other side pauses until it drains, so a fast
sender never balloons memory. TCP_NODELAY is on for both sockets (asyncio and uvloop
set it on every TCP transport; tests/integration/test_proxy.py checks it). Measured
(bench/proxy.py, uvloop): about 150 µs of proxy CPU per short HTTP connection.
Half-close is passed through (EOF from one side becomes `write_eof` on the other; the
pair closes once both directions are done), so request/response protocols that shut
down their sending side keep working.

Closing a listener (no ready endpoints, Service gone) stops new connections only:
established relays are independent of listeners and keep running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from mkube.kubelet.proxy.routing import Backend, Balancer, PortKey

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
HIGH_WATER = 64 * 1024
Lookup = Callable[[], Balancer | None]


@dataclass
class Stats:
    accepted: int = 0
    active: int = 0
    failed: int = 0  # no backend reachable


class _Upstream(asyncio.Protocol):
    """The backend side of one relay."""

    def __init__(self, client: _Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio subclasses

    def data_received(self, data: bytes) -> None:
        self.client.transport.write(data)

    def eof_received(self) -> bool:
        self.client.upstream_eof()
        return True  # keep our sending direction open until the client is done

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.upstream_lost(exc)

    def pause_writing(self) -> None:  # the backend is slow: stop reading the client
        self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        if not self.client.closed:
            self.client.transport.resume_reading()


class _Client(asyncio.Protocol):
    """The client side of one relay; connects to a backend when accepted."""

    transport: asyncio.Transport

    def __init__(self, lookup: Lookup, stats: Stats, connect_timeout: float, label: str) -> None:
        self.lookup = lookup
        self.stats = stats
        self.connect_timeout = connect_timeout
        self.label = label
        self.upstream: _Upstream | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.closed = False
        self._client_eof = False
        self._upstream_eof = False
        self._early: list[bytes] = []  # read before the backend answered (uvloop may start reading anyway)

    # ------------------------------------------------------------------ client events
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = t = cast(asyncio.Transport, transport)  # uvloop's are not asyncio subclasses
        self.stats.accepted += 1
        self.stats.active += 1
        t.pause_reading()  # nothing to forward to until the backend answers
        balancer = self.lookup()
        if balancer is None or not balancer.backends:
            self._fail()
            return
        client_ip = None
        if balancer.affinity_timeout:  # the peer address costs a syscall: only for ClientIP affinity
            peer = t.get_extra_info("peername")
            client_ip = peer[0] if isinstance(peer, tuple) and peer else None
        self.connecting = asyncio.get_running_loop().create_task(self._connect(balancer, client_ip))

    def data_received(self, data: bytes) -> None:
        up = self.upstream
        if up is not None and up.transport is not None:
            up.transport.write(data)
        else:
            self._early.append(data)
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._client_eof = True
        up = self.upstream
        if up is not None and up.transport is not None:
            self._forward_eof(up.transport)
        self._maybe_close()
        return True

    @staticmethod
    def _forward_eof(transport: asyncio.Transport) -> None:
        if transport.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                transport.write_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self.stats.active -= 1
        if self.connecting is not None and not self.connecting.done():
            self.connecting.cancel()
        up = self.upstream
        if up is not None and up.transport is not None:
            if exc is None:
                up.transport.close()  # flushes what the client sent last
            else:
                up.transport.abort()

    def pause_writing(self) -> None:  # the client is slow: stop reading the backend
        up = self.upstream
        if up is not None and up.transport is not None:
            up.transport.pause_reading()

    def resume_writing(self) -> None:
        up = self.upstream
        if up is not None and up.transport is not None and not up.transport.is_closing():
            up.transport.resume_reading()

    # ------------------------------------------------------------------ upstream events
    def upstream_eof(self) -> None:
        self._upstream_eof = True
        if not self.closed and self.transport.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                self.transport.write_eof()
        self._maybe_close()

    def upstream_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        if exc is None:
            self.transport.close()  # after flushing the backend's last bytes
        else:
            self.transport.abort()

    def _maybe_close(self) -> None:
        if self._client_eof and self._upstream_eof:
            self.transport.close()
            up = self.upstream
            if up is not None and up.transport is not None:
                up.transport.close()

    # ------------------------------------------------------------------ connecting
    async def _connect(self, balancer: Balancer, client_ip: str | None) -> None:
        loop = asyncio.get_running_loop()
        tried: list[Backend] = []
        for _ in range(MAX_ATTEMPTS):
            backend = balancer.pick(client_ip, tried)
            if backend is None:
                break
            tried.append(backend)
            targets = [(backend.host, backend.port)] + ([backend.fallback] if backend.fallback else [])
            for index, (host, port) in enumerate(targets):
                upstream = _Upstream(self)
                try:
                    async with asyncio.timeout(self.connect_timeout):  # no extra task, unlike wait_for
                        await loop.create_connection(_factory(upstream), host, port)
                except (OSError, TimeoutError) as exc:
                    log.debug("%s: backend %s:%s failed: %s", self.label, host, port, exc)
                    if index == len(targets) - 1:
                        balancer.mark_down(backend)
                    continue
                if self.closed:  # the client went away meanwhile
                    if upstream.transport is not None:
                        upstream.transport.close()
                    return
                self.upstream = upstream
                assert upstream.transport is not None
                for data in self._early:
                    upstream.transport.write(data)
                self._early.clear()
                if self._client_eof:
                    self._forward_eof(upstream.transport)
                else:
                    self.transport.resume_reading()
                return
        log.info("%s: no reachable backend (tried %s)", self.label, ", ".join(map(str, tried)) or "none")
        self._fail()

    def _fail(self) -> None:
        self.stats.failed += 1
        self.transport.abort()


def _factory(protocol: _Upstream) -> Callable[[], _Upstream]:
    return lambda: protocol


class TcpListener:
    """A listening socket for one served address; `key` says which Service port it is
    (re-pointing it is enough when another Service takes over the address)."""

    def __init__(self, host: str, port: int, key: PortKey, balancers: dict[PortKey, Balancer],
                 stats: Stats, connect_timeout: float) -> None:
        self.host = host
        self.port = port
        self.key = key
        self.balancers = balancers
        self.stats = stats
        self.connect_timeout = connect_timeout
        self.server: asyncio.Server | None = None

    def _lookup(self) -> Balancer | None:
        return self.balancers.get(self.key)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        label = f"{self.key} via {self.host}:{self.port}"
        self.server = await loop.create_server(
            lambda: _Client(self._lookup, self.stats, self.connect_timeout, label),
            self.host, self.port, reuse_address=True, backlog=1024)

    def close(self) -> None:
        """Stop accepting; established connections are not touched."""
        if self.server is not None:
            self.server.close()
            self.server = None
