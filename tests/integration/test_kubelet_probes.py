"""Probe handlers against real loopback sockets: httpGet, tcpSocket (and exec on a FakeRuntime)."""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mkube.api.types import Container, Probe
from mkube.kubelet.probes import Endpoint, run_probe
from mkube.kubelet.runtime.base import ContainerConfig, SandboxConfig
from mkube.kubelet.runtime.fake import FakeRuntime


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        code = {"/ok": 200, "/redirect": 302, "/broken": 500}.get(self.path, 404)
        self.send_response(code)
        if code == 302:
            self.send_header("Location", "/ok")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def probe(**kw: object) -> Probe:
    return Probe.from_dict({"timeoutSeconds": 1, **kw})


CONTAINER = Container.from_dict({"name": "web", "ports": [{"name": "http", "containerPort": 8080}]})


def test_http_get(web: int) -> None:
    ep = Endpoint(pod_ip="127.0.0.1")
    assert run_probe(probe(httpGet={"path": "/ok", "port": web}), CONTAINER, "c1", FakeRuntime(), ep) == (True, "")
    assert run_probe(probe(httpGet={"path": "/redirect", "port": web}), CONTAINER, "c1", FakeRuntime(), ep)[0]
    assert run_probe(probe(httpGet={"path": "/broken", "port": web}), CONTAINER, "c1", FakeRuntime(), ep) == (
        False, "HTTP probe failed with statuscode: 500")
    port = closed_port()
    ok, why = run_probe(probe(httpGet={"path": "/ok", "port": port}), CONTAINER, "c1", FakeRuntime(), ep)
    assert not ok and why == f'Get "http://127.0.0.1:{port}/ok": connect: connection refused'
    # a named port resolves through the container's ports; an unknown name fails clearly
    ok, why = run_probe(probe(httpGet={"path": "/ok", "port": "nope"}), CONTAINER, "c1", FakeRuntime(), ep)
    assert not ok and "named port" in why


def test_no_route_to_the_pod_ip_falls_back_to_the_published_port(web: int) -> None:
    from mkube.kubelet import probes

    ep = Endpoint(pod_ip="10.99.0.7", node_ip="127.0.0.1", published={8080: web})
    targets = probes._connect_targets(None, 8080, ep)
    assert targets == [("10.99.0.7", 8080), ("127.0.0.1", web)]
    tried: list[tuple[str, int]] = []

    def attempt(host: str, port: int) -> str:
        tried.append((host, port))
        if host == "10.99.0.7":
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        return "reached"

    assert probes._first_reachable(targets, attempt) == "reached" and tried == targets
    with pytest.raises(ConnectionRefusedError):  # refused is an answer: no fallback
        probes._first_reachable(targets, lambda h, p: (_ for _ in ()).throw(ConnectionRefusedError()))


def test_tcp_socket(web: int) -> None:
    ep = Endpoint(pod_ip="127.0.0.1")
    assert run_probe(probe(tcpSocket={"port": web}), CONTAINER, "c1", FakeRuntime(), ep) == (True, "")
    port = closed_port()
    assert run_probe(probe(tcpSocket={"port": port}), CONTAINER, "c1", FakeRuntime(), ep) == (
        False, f"dial tcp 127.0.0.1:{port}: connect: connection refused")


def test_exec() -> None:
    rt = FakeRuntime(images=["x:1"])
    rt.script("c", exec_results={("ok",): 0, ("bad",): (1, b"not healthy\n")}, exec_delay=0)
    sb = rt.run_sandbox(SandboxConfig(pod_uid="u", namespace="d", name="p"))
    cid = rt.create_container(sb.id, ContainerConfig(name="c", image="x:1"))
    rt.start_container(cid)
    ep = Endpoint(pod_ip=sb.ip)
    assert run_probe(probe(exec={"command": ["ok"]}), CONTAINER, cid, rt, ep) == (True, "")
    assert run_probe(probe(exec={"command": ["bad"]}), CONTAINER, cid, rt, ep) == (False, "not healthy")
    slow = FakeRuntime(images=["x:1"])
    slow.script("c", exec_delay=5)
    sb = slow.run_sandbox(SandboxConfig(pod_uid="u", namespace="d", name="p"))
    cid = slow.create_container(sb.id, ContainerConfig(name="c", image="x:1"))
    slow.start_container(cid)
    ok, why = run_probe(probe(exec={"command": ["sleep"]}), CONTAINER, cid, slow, ep)
    assert not ok and "timed out" in why
