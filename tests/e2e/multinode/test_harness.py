"""Smoke tests of the multi-node harness: the "VMs" are real enough to run a cluster on."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from tests.e2e.multinode.harness import Cluster, Node
from tests.fixtures.docker import REPO_ROOT, MkubeImages

pytestmark = [pytest.mark.multinode]

WEB_PORT = 18080
LABELS = {"mkube.test": "1"}


def serve_text(cluster: Cluster, node: Node, text: str, port: int = WEB_PORT) -> Container:
    """A busybox httpd on the node's engine answering `text`, published on `port`."""
    script = f"mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www"
    container: Container = cluster.docker_client(node).containers.run(
        "mkube/busybox:latest", ["sh", "-c", script], detach=True, ports={"80/tcp": port}, labels=LABELS
    )
    return container


def test_each_node_has_its_own_address_and_engine(cluster: Cluster) -> None:
    assert cluster.timings["total"] < 30, cluster.timings
    engine_ids = set()
    for node in cluster.nodes:
        client = cluster.docker_client(node)
        assert client.ping()
        info = client.info()
        engine_ids.add(info["ID"])
        assert info["DockerRootDir"] == str(node.data_root)
        assert info["Driver"] == cluster.used_storage_driver
        assert info["RegistryConfig"]["IndexConfigs"][cluster.registry]["Secure"] is False
        tags = {tag for image in client.images.list() for tag in image.tags}
        assert {"mkube/pause:latest", "mkube/busybox:latest"} <= tags
        assert not any("hello" in tag for tag in tags), "hello must come from the registry"

        addr = cluster.run(node, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
        assert f"inet {node.ip}/24" in addr
        route = cluster.run(node, ["ip", "route", "show", "default"]).stdout
        assert f"default via {cluster.bridge_ip} dev eth0" in route
        links = cluster.run(node, ["ip", "-o", "link"]).stdout
        assert cluster.bridge not in links and "docker0" in links
    assert len(engine_ids) == len(cluster.nodes)


def test_published_port_answers_on_the_node_ip_from_host_and_other_nodes(cluster: Cluster) -> None:
    for node in cluster.nodes:
        serve_text(cluster, node, f"I-am-{node.name}")

    for node in cluster.nodes:
        url = f"http://{node.ip}:{WEB_PORT}/"
        other = cluster.nodes[(node.index + 1) % len(cluster.nodes)]
        assert cluster.wait_http(url, timeout=15)[1].strip() == f"I-am-{node.name}"
        assert cluster.wait_http(url, node=other, timeout=15)[1].strip() == f"I-am-{node.name}"
        # The node's own loopback reaches it too (docker-proxy), like on a real machine.
        assert cluster.http_get(f"http://127.0.0.1:{WEB_PORT}/", node=node)[1].strip() == f"I-am-{node.name}"


def test_nodes_pull_from_the_registry_on_the_bridge(cluster: Cluster) -> None:
    hello = f"{cluster.registry}/hello:1"
    pushed = cluster.push_image("mkube/busybox:latest", "busybox:e2e")
    assert pushed == f"{cluster.registry}/busybox:e2e"

    def pull_and_run(node: Node) -> None:
        client = cluster.docker_client(node)
        client.images.pull(hello)
        client.containers.run(hello, detach=True, ports={"80/tcp": WEB_PORT}, labels=LABELS)
        status, body = cluster.wait_http(f"http://{node.ip}:{WEB_PORT}/", timeout=15)
        assert status == 200 and "hello from" in body.lower()
        client.images.pull(pushed)
        out = client.containers.run(pushed, ["echo", "pulled"], remove=True, labels=LABELS)
        assert out.strip() == b"pulled"

    with ThreadPoolExecutor(len(cluster.nodes)) as pool:
        list(pool.map(pull_and_run, cluster.nodes))  # re-raises the first failure


def test_cut_link_partitions_the_node_and_restore_heals_it(cluster: Cluster) -> None:
    cut, other = cluster.nodes[1], cluster.nodes[0]
    serve_text(cluster, cut, "cut")
    serve_text(cluster, other, "other")
    cluster.wait_http(f"http://{cut.ip}:{WEB_PORT}/", timeout=15)
    cluster.wait_http(f"http://{other.ip}:{WEB_PORT}/", timeout=15)

    cluster.cut_link(cut)
    try:
        assert not cluster.link_is_up(cut)
        assert not cluster.tcp_reachable(cut.ip, WEB_PORT, timeout=1)  # host -> node
        assert not cluster.tcp_reachable(cut.ip, WEB_PORT, node=other, timeout=1)  # node -> node
        assert not cluster.tcp_reachable(other.ip, WEB_PORT, node=cut, timeout=1)
        assert not cluster.tcp_reachable(cluster.bridge_ip, cluster.registry_port or 5000, node=cut, timeout=1)
        # The node itself keeps running; the rest of the cluster is unaffected.
        assert cluster.http_get(f"http://127.0.0.1:{WEB_PORT}/", node=cut)[1].strip() == "cut"
        assert cluster.http_get(f"http://{other.ip}:{WEB_PORT}/")[1].strip() == "other"
    finally:
        cluster.restore_link(cut)

    assert cluster.wait_http(f"http://{cut.ip}:{WEB_PORT}/", timeout=10)[1].strip() == "cut"
    assert cluster.wait_http(f"http://{cut.ip}:{WEB_PORT}/", node=other, timeout=10)[1].strip() == "cut"
    assert cluster.wait_http(f"http://{other.ip}:{WEB_PORT}/", node=cut, timeout=10)[1].strip() == "other"


# Not http.server: it looks up the bind address's name, which takes a DNS timeout when
# the resolver is unreachable.
_TINY_SERVER = """
import socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
while True:
    conn, (peer, _) = server.accept()
    conn.recv(65536)
    print("request from", peer, flush=True)
    conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
    conn.close()
"""


def test_processes_run_in_the_node_network_namespace(cluster: Cluster) -> None:
    node = cluster.nodes[2]
    server = cluster.start_process(node, [sys.executable, "-c", _TINY_SERVER, node.ip, "18090"], name="tiny")
    assert cluster.wait_http(f"http://{node.ip}:18090/", timeout=15) == (200, "ok")
    assert cluster.wait_http(f"http://{node.ip}:18090/", node=cluster.nodes[0], timeout=5) == (200, "ok")
    assert os.readlink(f"/proc/{server.pid}/ns/net") == f"net:[{os.stat(node.netns_path).st_ino}]"

    assert cluster.kill(server, signal.SIGTERM) == -signal.SIGTERM
    assert server not in cluster.processes
    assert not cluster.tcp_reachable(node.ip, 18090)
    assert f"request from {cluster.bridge_ip}" in server.logs()
    assert f"request from {cluster.nodes[0].ip}" in server.logs()
    assert server.log_path.parent == cluster.log_dir

    agent = cluster.start_agent(node, f"https://{cluster.bridge_ip}:6443", "K10abc::secret", ["-v"])
    assert agent.argv == [
        cluster.mkube_bin, "agent", "--server", f"https://{cluster.bridge_ip}:6443", "--token", "K10abc::secret",
        "--node-name", node.name, "--node-ip", node.ip, "--docker-host", node.docker_host,
        "--data-dir", str(node.agent_data_dir), "-v",
    ]
    assert cluster.processes == [agent]  # reset() kills it after the test


def test_engine_restart_and_reset(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    container = serve_text(cluster, node, "before")
    cluster.wait_http(f"http://{node.ip}:{WEB_PORT}/", timeout=15)

    cluster.stop_engine(node, kill=True)  # like a power cut: engine and containers die
    assert not cluster.engine_running(node)
    assert not cluster.tcp_reachable(node.ip, WEB_PORT)

    cluster.start_engine(node)
    client = cluster.docker_client(node)
    assert client.containers.get(str(container.id)).status == "exited"

    assert cluster.reset() == []
    assert client.containers.list(all=True) == []
    assert {t for i in client.images.list() for t in i.tags} >= {"mkube/busybox:latest", "mkube/pause:latest"}


_CRASH_SCRIPT = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from tests.e2e.multinode.harness import Cluster
c = Cluster(**json.loads(sys.argv[2]))
c.start()
for n in c.nodes:
    c.docker_client(n).containers.run("mkube/busybox:latest", ["sleep", "1000"], detach=True)
    c.start_process(n, ["sleep", "1000"])
c.start_process(None, ["sleep", "1001"])
print("READY", flush=True)
time.sleep(1000)
"""


def _system_state(prefix: str, bridge: str) -> list[str]:
    """What a cluster named `prefix` on `bridge` could leave, found without the harness."""
    found = [f"netns {ns}" for ns in os.listdir("/var/run/netns") if prefix in ns] if os.path.isdir(
        "/var/run/netns") else []
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    found += [f"link {m}" for m in re.findall(r"^\d+: ([^:@]+)", links, re.M) if m == bridge or prefix in m]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"mkube-{prefix}" in cmd or "sleep 1001" in cmd:
            found.append(f"process {pid}: {cmd}")
    mounts = Path("/proc/self/mountinfo").read_text()
    found += [f"mount {line}" for line in mounts.splitlines() if f"mkube-{prefix}" in line]
    found += [f"path {p}" for base in ("/run", "/var/lib") for p in Path(base).glob(f"mkube-{prefix}*")]
    found += [f"path {p}" for p in Path("/run").glob(f"mkube-multinode-{bridge}*")]
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(f"*/mkube-{prefix}*")]
    rules = subprocess.run(["iptables", "-w", "5", "-S"], capture_output=True, text=True).stdout
    found += [f"iptables {r}" for r in rules.splitlines() if bridge in r]
    return found


@pytest.mark.timeout(240)
def test_teardown_leaves_nothing_behind_even_after_a_crash(mkube_images: MkubeImages) -> None:
    # Its own naming, so that it runs beside the session cluster.
    config: dict[str, Any] = {"nodes": 3, "bridge": "mkbr9", "subnet": "10.77.9.0/24", "name_prefix": "mnt",
              "netns_prefix": "mk-", "registry_port": None, "push": {}, "images": ["mkube/busybox:latest"]}
    assert not (problems := Cluster.preflight(registry=False)), problems
    assert _system_state("mnt", "mkbr9") == []

    # A test session that dies with its cluster up (SIGKILL: no finalizer, no atexit).
    crashed = subprocess.Popen([sys.executable, "-c", _CRASH_SCRIPT, str(REPO_ROOT), json.dumps(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        assert crashed.stdout is not None
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = crashed.stdout.readline()
            lines.append(line)
            if line.strip() == "READY" or not line:
                break
        assert lines[-1].strip() == "READY", "".join(lines)
    finally:
        os.killpg(crashed.pid, signal.SIGKILL)
        crashed.wait()
    left = _system_state("mnt", "mkbr9")
    for kind in ("netns mk-mnt0", "link mkbr9", "process", "mount", "cgroup", "iptables"):
        assert any(item.startswith(kind) for item in left), (kind, left)

    # The next run sweeps the crashed one's leftovers, and stops cleanly twice in a row.
    for run in range(2):
        c = Cluster(**config)
        try:
            c.start()
            assert bool(c.stale) == (run == 0), c.stale
            for node in c.nodes:
                out = c.docker_client(node).containers.run("mkube/busybox:latest", ["echo", node.name],
                                                           labels=LABELS, detach=False)
                assert out.strip() == node.name.encode()
            c.docker_client(c.nodes[0]).containers.run("mkube/busybox:latest", ["sleep", "1000"], detach=True)
            c.start_process(c.nodes[1], ["sleep", "1000"])
        finally:
            assert c.stop() == []
        assert c.leftovers() == []
        assert _system_state("mnt", "mkbr9") == []
        assert c.timings["stop"] < 20, c.timings


def test_docker_client_talks_to_the_node_engine_only(cluster: Cluster) -> None:
    node0, node1 = cluster.nodes[0], cluster.nodes[1]
    c0 = serve_text(cluster, node0, "zero")
    with pytest.raises(docker.errors.NotFound):
        cluster.docker_client(node1).containers.get(str(c0.id))
    direct = docker.DockerClient(base_url=node0.docker_host)
    try:
        assert direct.containers.get(str(c0.id)).id == c0.id
    finally:
        direct.close()
