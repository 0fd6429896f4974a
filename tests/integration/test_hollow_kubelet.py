"""Hollow nodes: the real kubelet code on FakeRuntimes, K nodes in one process, against a
real API server — registration, heartbeats, pods Running, logs through the API server,
exec, graceful deletion, crash loops."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from mkube.api.types import Lease, Node, Pod
from mkube.client import Client
from mkube.kubelet.agent import HOLLOW_LABEL, Agent, hollow_pod_cidr
from mkube.kubelet.options import KubeletOptions
from mkube.kubelet.runtime.fake import FakeRuntime
from tests.fixtures.apiserver import ApiServerProcess

T = TypeVar("T")
NODES = 4


def wait_for(fn: Callable[[], T], timeout: float = 15.0, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or fn}: last {last!r}")


@pytest.fixture
def hollow(api_server: ApiServerProcess, tmp_path: Any) -> Iterator[tuple[Agent, Client, list[FakeRuntime]]]:
    opts = KubeletOptions.from_kwargs(node_ip="127.0.0.1", port=0, runtime="fake", hollow_nodes=NODES,
                                      root_dir=str(tmp_path), relist_period=0.3, crashloop_backoff_initial=0.5,
                                      crashloop_backoff_max=1)
    runtimes = [FakeRuntime(f"hollow-{i}", pod_cidr=hollow_pod_cidr(i)) for i in range(NODES)]
    for rt in runtimes:
        rt.script("talker", logs=b"hello from a hollow pod\n")
        rt.script("crasher", exit_code=1, after_seconds=0.2)
        rt.script("checker", exec_results={("echo", "hi"): (0, b"hi\n")})
    client = Client(api_server.url)
    agent = Agent(client, opts, runtimes, hollow=True)
    stop = threading.Event()
    try:
        assert agent.start(stop, sync_timeout=20)
        yield agent, client, runtimes
    finally:
        stop.set()
        agent.stop()
        client.close()


def pod(name: str, node: str, container: str = "app") -> Pod:
    return Pod.from_dict({"metadata": {"name": name, "namespace": "default"},
                          "spec": {"nodeName": node, "containers": [{"name": container, "image": "mkube/hello:1"}]}})


def test_hollow_nodes_register_heartbeat_and_run_pods(hollow: tuple[Agent, Client, list[FakeRuntime]]) -> None:
    agent, client, runtimes = hollow
    nodes = {n.metadata.name: n for n in client.list(Node).items}
    assert set(nodes) == {f"hollow-{i}" for i in range(NODES)}
    for n in nodes.values():
        assert n.metadata.labels and n.metadata.labels[HOLLOW_LABEL] == "true"
        assert n.condition("Ready").status == "True"  # type: ignore[union-attr]
        assert n.status.daemon_endpoints.kubelet_endpoint.port == agent.port  # type: ignore[union-attr]
        assert client.get(Lease, n.metadata.name or "", "kube-node-lease").spec.holder_identity == n.metadata.name
    assert agent.pod_informer.field_selector == "spec.nodeName!="  # one watch for every node

    for i in range(3 * NODES):
        client.create(pod(f"p{i}", f"hollow-{i % NODES}"))

    def all_running() -> list[Pod]:
        pods = client.list(Pod, "default").items
        return pods if len(pods) == 3 * NODES and all(p.status.phase == "Running" for p in pods) else []

    pods = wait_for(all_running, what="every pod Running")
    for p in pods:
        i = int(p.spec.node_name.rsplit("-", 1)[1])  # type: ignore[union-attr]
        prefix = hollow_pod_cidr(i).rsplit(".", 1)[0]
        assert p.status.pod_ip and p.status.pod_ip.startswith(prefix + ".")
        assert p.status.container_statuses[0].container_id.startswith("fake://")  # type: ignore[index,union-attr]
    assert sum(rt.counts()[1] for rt in runtimes) == 3 * NODES


def test_logs_exec_crash_loops_and_deletion(hollow: tuple[Agent, Client, list[FakeRuntime]]) -> None:
    agent, client, runtimes = hollow
    client.create(pod("talk", "hollow-1", "talker"))
    client.create(pod("crash", "hollow-2", "crasher"))
    client.create(pod("check", "hollow-3", "checker"))
    wait_for(lambda: client.get(Pod, "talk", "default").status.phase == "Running")
    # logs: API server -> the process' kubelet server -> the pod's hollow node
    assert wait_for(lambda: client.log("default", "talk") == "hello from a hollow pod\n")
    # huge integers: a window older than the epoch is the whole log; a wait of 2^40 s is refused
    r = httpx.get(f"http://127.0.0.1:{agent.port}/containerLogs/default/talk/talker",
                  params={"sinceSeconds": str(2**62)})
    assert r.status_code == 200 and r.text == "hello from a hollow pod\n"
    r = httpx.get(f"http://127.0.0.1:{agent.port}/containerLogs/default/talk/talker", params={"tailLines": "9" * 30})
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"
    wait_for(lambda: client.get(Pod, "check", "default").status.phase == "Running")
    r = httpx.post(f"http://127.0.0.1:{agent.port}/exec/default/check/checker", params={"command": ["echo", "hi"]})
    assert r.status_code == 200 and r.json() == {"kind": "ExecResult", "apiVersion": "v1", "exitCode": 0,
                                                 "output": "hi\n"}
    r = httpx.post(f"http://127.0.0.1:{agent.port}/exec/default/check/checker",
                   params={"command": ["true"], "timeoutSeconds": str(2**40)})
    assert r.status_code == 400 and "timeoutSeconds" in r.json()["message"]
    r = httpx.post(f"http://127.0.0.1:{agent.port}/exec/default/nope/x", params={"command": ["true"]})
    assert r.status_code == 404 and r.json()["reason"] == "NotFound"

    def crash_looping() -> bool:
        cs = client.get(Pod, "crash", "default").status.container_statuses or []
        return bool(cs) and cs[0].restart_count >= 2 and cs[0].last_state is not None

    wait_for(crash_looping, what="restarts of the crashing container")

    client.delete(Pod, "talk", "default")
    wait_for(lambda: not client.exists(Pod, "talk", "default"), what="deletion confirmed by the kubelet")
    assert runtimes[1].counts() == (0, 0)
