"""The node proxy against the real API server, with loopback backends (no Docker).

Services and Endpoints are written through the API as the endpoints controller would;
backends are small threaded servers on 127.0.0.x that greet with their name and then
echo. The proxy runs in this process (`ProxyThread`) serving NodePorts on 127.0.0.1."""

from __future__ import annotations

import json
import random
import socket
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mkube.api.types import Endpoints, Service
from mkube.client import Client
from mkube.kubelet.proxy.main import ProxyThread
from mkube.kubelet.proxy.routing import PUBLISHED_ANNOTATION

NODE = "node-a"


class _Greeter(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.sendall(self.server.name.encode() + b"\n")  # type: ignore[attr-defined]
        while data := sock.recv(65536):
            sock.sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Backend:
    """A TCP (and UDP) server on `ip:port` that greets with `name` and echoes."""

    def __init__(self, name: str, ip: str, port: int = 0) -> None:
        self.name = name
        self.tcp = _Server((ip, port), _Greeter)
        self.tcp.name = name  # type: ignore[attr-defined]
        self.ip, self.port = self.tcp.server_address[0], self.tcp.server_address[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((self.ip, self.port))
        self.threads = [threading.Thread(target=self.tcp.serve_forever, daemon=True),
                        threading.Thread(target=self._udp_loop, daemon=True)]
        for t in self.threads:
            t.start()

    def _udp_loop(self) -> None:
        while True:
            try:
                data, addr = self.udp.recvfrom(65536)
            except OSError:
                return
            self.udp.sendto(self.name.encode() + b":" + data, addr)

    def close(self) -> None:
        self.tcp.shutdown()
        self.tcp.server_close()
        self.udp.close()


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    port = random.randint(20000, 29000)
    made: list[Backend] = []
    for _ in range(20):
        try:
            made = [Backend(f"b{i}", f"127.0.0.{11 + i}", port) for i in range(3)]
            break
        except OSError:  # taken on one of the addresses: another port for all three
            for b in made:
                b.close()
            made = []
            port = random.randint(20000, 29000)
    assert len(made) == 3
    yield made
    for b in made:
        b.close()


@pytest.fixture
def cluster(make_api_server: Any) -> Iterator[tuple[Client, ProxyThread]]:
    # NodePorts above the ephemeral range (32768-60999), where no outgoing connection can hold them
    first = random.randrange(61000, 65400, 100)
    server = make_api_server(extra_args=["--service-node-port-range", f"{first}-{first + 99}"])
    client = Client(server.url)
    proxy = ProxyThread(server.url, None, NODE, "127.0.0.1", nodeport_addresses=("127.0.0.1",),
                        cluster_ips=False)
    proxy.start()
    assert proxy.ready.wait(30), "the proxy did not sync"
    try:
        yield client, proxy
    finally:
        proxy.stop()
        client.close()


def make_service(client: Client, name: str, protocol: str = "TCP", **spec: Any) -> Service:
    body = {"metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "NodePort", "ports": [{"name": "p", "port": 80, "protocol": protocol}], **spec}}
    return client.create(Service.from_dict(body))


def set_endpoints(client: Client, name: str, addresses: list[dict[str, Any]], port: int,
                  protocol: str = "TCP", published: list[dict[str, Any]] | None = None) -> None:
    ep = Endpoints.from_dict({
        "metadata": {"name": name, "namespace": "default",
                     "annotations": {PUBLISHED_ANNOTATION: json.dumps(published)} if published else None},
        "subsets": [{"addresses": addresses, "ports": [{"name": "p", "port": port, "protocol": protocol}]}]
        if addresses else []})
    try:
        current = client.get(Endpoints, name, "default")
    except Exception:
        client.create(ep)
        return
    ep.metadata.resource_version = current.metadata.resource_version
    client.update(ep)


def node_port(svc: Service) -> int:
    assert svc.spec.ports and svc.spec.ports[0].node_port
    return svc.spec.ports[0].node_port


def greet(port: int, timeout: float = 3.0) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        f = s.makefile("rb")
        return f.readline().decode().strip()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if check():
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout} s")


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def test_node_port_round_robin_over_ready_endpoints(cluster: tuple[Client, ProxyThread],
                                                   backends: list[Backend]) -> None:
    client, _ = cluster
    svc = make_service(client, "web")
    set_endpoints(client, "web", [{"ip": b.ip} for b in backends], backends[0].port)
    port = node_port(svc)
    wait_until(lambda: greet(port) != "", 5, "NodePort serves")
    seen = Counter(greet(port) for _ in range(60))
    assert seen == {"b0": 20, "b1": 20, "b2": 20}


def test_endpoint_changes_apply_within_a_second(cluster: tuple[Client, ProxyThread],
                                               backends: list[Backend]) -> None:
    client, _ = cluster
    svc = make_service(client, "web")
    port = node_port(svc)
    set_endpoints(client, "web", [{"ip": backends[0].ip}], backends[0].port)
    wait_until(lambda: greet(port) == "b0", 5, "first endpoint")
    set_endpoints(client, "web", [{"ip": b.ip} for b in backends[1:]], backends[0].port)
    took = wait_until(lambda: {greet(port) for _ in range(4)} == {"b1", "b2"}, 1.0, "endpoint switch")
    assert took < 1.0
    # no ready endpoints: refused at once, not a hang
    set_endpoints(client, "web", [], backends[0].port)
    start = time.monotonic()
    wait_until(lambda: refused(port), 1.0, "refused without endpoints")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    assert time.monotonic() - start < 1.5
    set_endpoints(client, "web", [{"ip": backends[2].ip}], backends[0].port)
    wait_until(lambda: greet(port) == "b2", 1.0, "listener back")


def test_established_connections_survive_changes(cluster: tuple[Client, ProxyThread],
                                                backends: list[Backend]) -> None:
    client, _ = cluster
    svc = make_service(client, "web")
    port = node_port(svc)
    set_endpoints(client, "web", [{"ip": b.ip} for b in backends], backends[0].port)
    wait_until(lambda: greet(port) != "", 5, "serving")
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    f = conn.makefile("rb")
    name = f.readline().decode().strip()
    conn.sendall(b"one\n")
    assert f.readline() == b"one\n"
    # unrelated Services come and go; this Service's endpoints change, even to none
    other = make_service(client, "other")
    set_endpoints(client, "other", [{"ip": backends[0].ip}], backends[0].port)
    client.delete(Service, "other", "default")
    set_endpoints(client, "web", [{"ip": b.ip} for b in backends if b.name != name], backends[0].port)
    time.sleep(0.5)
    set_endpoints(client, "web", [], backends[0].port)
    wait_until(lambda: refused(port), 2, "listener closed")
    assert other.metadata.name == "other"
    conn.sendall(b"two\n")
    assert f.readline() == b"two\n"  # the relay to the removed backend is still up
    conn.close()


def test_large_transfer_and_half_close(cluster: tuple[Client, ProxyThread], backends: list[Backend]) -> None:
    client, _ = cluster
    svc = make_service(client, "bulk")
    port = node_port(svc)
    set_endpoints(client, "bulk", [{"ip": backends[0].ip}], backends[0].port)
    wait_until(lambda: greet(port) == "b0", 5, "serving")
    payload = random.randbytes(8 * 1024 * 1024)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        received = bytearray()

        def reader() -> None:
            while chunk := s.recv(1 << 16):
                received.extend(chunk)

        t = threading.Thread(target=reader)
        t.start()
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)  # half-close: the echo must still come back in full
        t.join(20)
    assert bytes(received) == b"b0\n" + payload


def test_client_ip_affinity(cluster: tuple[Client, ProxyThread], backends: list[Backend]) -> None:
    client, _ = cluster
    svc = make_service(client, "sticky", sessionAffinity="ClientIP",
                       sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    port = node_port(svc)
    set_endpoints(client, "sticky", [{"ip": b.ip} for b in backends], backends[0].port)
    wait_until(lambda: greet(port) != "", 5, "serving")
    assert len({greet(port) for _ in range(20)}) == 1


def test_unreachable_backend_is_skipped(cluster: tuple[Client, ProxyThread], backends: list[Backend]) -> None:
    client, _ = cluster
    svc = make_service(client, "flaky")
    port = node_port(svc)
    dead = "127.0.0.99"  # nothing listens there: connection refused
    set_endpoints(client, "flaky", [{"ip": dead}, {"ip": backends[1].ip}], backends[0].port)
    wait_until(lambda: greet(port) == "b1", 5, "serving")
    assert {greet(port) for _ in range(10)} == {"b1"}


def test_endpoint_on_another_node_is_reached_through_its_published_port(
        cluster: tuple[Client, ProxyThread], backends: list[Backend]) -> None:
    client, _ = cluster
    svc = make_service(client, "remote")
    port = node_port(svc)
    # the pod's IP is on node-b's bridge; node-b publishes it on 127.0.0.12:<port>
    set_endpoints(client, "remote", [{"ip": "172.31.250.2", "nodeName": "node-b"}], 80,
                  published=[{"ip": "172.31.250.2", "port": 80, "hostIP": backends[1].ip,
                              "hostPort": backends[1].port}])
    wait_until(lambda: greet(port) == "b1", 5, "remote endpoint")


def test_udp_node_port(cluster: tuple[Client, ProxyThread], backends: list[Backend]) -> None:
    client, _ = cluster
    svc = make_service(client, "dns", protocol="UDP")
    port = node_port(svc)
    set_endpoints(client, "dns", [{"ip": b.ip} for b in backends], backends[0].port, protocol="UDP")
    answers: Counter[str] = Counter()

    def ask(payload: bytes) -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1.0)
            s.connect(("127.0.0.1", port))
            s.send(payload)
            return s.recv(65536)

    wait_until(lambda: ask(b"ping").endswith(b":ping"), 3, "UDP serves")
    for i in range(30):
        name, _, rest = ask(b"q%d" % i).partition(b":")
        assert rest == b"q%d" % i
        answers[name.decode()] += 1
    assert set(answers) == {"b0", "b1", "b2"}


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_event_loops_set_tcp_nodelay_on_both_relay_sockets(loop_kind: str) -> None:
    """The relay relies on the loop's default TCP_NODELAY (it does not set it itself)."""
    import asyncio

    from mkube.kubelet.proxy.main import new_event_loop

    seen: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        server = await loop.create_server(Probe, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(Probe, "127.0.0.1", port)
        await asyncio.sleep(0.1)
        transport.close()
        server.close()

    loop = new_event_loop() if loop_kind == "uvloop" else asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert len(seen) == 2 and all(seen)  # accepted and connected sockets
