"""Services across nodes: three "VMs" (network namespaces with their own Docker engines,
see harness.py), `mkube server` on the host, `mkube agent` (kubelet + proxy) on each.

A Deployment of 3 hello pods spread over the nodes behind a NodePort: the NodePort of
*every* node reaches all 3 pods — the ones on other nodes through their node IP and
published host port (`endpoints.mkube.io/published`). The ClusterIP answers inside a
node's network (held on that node's `mkube0`) and from a pod on it, by its env vars.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

from mkube.api.errors import ApiError
from mkube.api.types import Deployment, Endpoints, Node, Pod, Service
from mkube.client import Client
from tests.e2e.cluster import wait_for as cluster_wait_for
from tests.e2e.multinode.harness import Cluster

pytestmark = [pytest.mark.multinode]
T = TypeVar("T")


def wait_for(fn: Callable[[], T | None], timeout: float, what: str, interval: float = 0.3) -> T:
    """cluster.wait_for, retrying what a service not programmed yet raises."""
    return cluster_wait_for(fn, timeout, what, interval, retry_on=(OSError, ApiError, AssertionError))


def served_by(body: str) -> str:
    marker = "hostname: "
    start = body.index(marker) + len(marker)
    return body[start:body.index("<", start)]


@pytest.mark.timeout(400)
def test_node_ports_and_cluster_ip_reach_pods_on_every_node(cluster: Cluster) -> None:
    server = cluster.start_server()
    assert server.join_token
    nodes = [cluster.node(i) for i in range(3)]
    for n in nodes:
        cluster.start_agent(n, server.url, server.join_token)
    client = Client.from_kubeconfig(server.kubeconfig)
    try:
        def all_ready() -> bool:
            ready = 0
            for n in nodes:
                cond = client.get(Node, n.name).condition("Ready")
                ready += cond is not None and cond.status == "True"
            return ready == 3

        wait_for(all_ready, 120, "3 Ready nodes")
        image = f"{cluster.registry}/hello:1"
        client.create(Deployment.from_dict({
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "hello"}},
                     "template": {"metadata": {"labels": {"app": "hello"}}, "spec": {
                         "terminationGracePeriodSeconds": 2,
                         "containers": [{"name": "hello", "image": image, "ports": [{"containerPort": 80}],
                                         "readinessProbe": {"httpGet": {"path": "/healthz", "port": 80},
                                                            "periodSeconds": 1}}]}}}}))
        svc = client.create(Service.from_dict({
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {"type": "NodePort", "selector": {"app": "hello"},
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}]}}))
        assert svc.spec.ports and svc.spec.ports[0].node_port and svc.spec.cluster_ip
        node_port, cluster_ip = svc.spec.ports[0].node_port, svc.spec.cluster_ip

        def three_ready() -> bool:
            ep = client.get(Endpoints, "hello", "default")
            return sum(len(s.addresses or []) for s in ep.subsets or []) == 3

        wait_for(three_ready, 180, "3 ready endpoints")
        pods = client.list(Pod, "default", label_selector="app=hello").items
        names = {p.metadata.name for p in pods}
        placed = {p.spec.node_name for p in pods}
        assert len(placed) >= 2, f"the pods all landed on {placed}: nothing crosses nodes"

        for n in nodes:  # every node's NodePort reaches every pod, wherever it runs
            url = f"http://{n.ip}:{node_port}/"
            wait_for(lambda url=url: cluster.http_get(url)[0] == 200, 10, f"{url}")  # type: ignore[misc]
            seen = set()
            for _ in range(30):
                status, body = cluster.http_get(url)
                assert status == 200
                seen.add(served_by(body))
            assert seen == names, f"{url}: {seen} != {names}"

        # the ClusterIP inside node1's network, and from a pod pinned to node1 by its env vars
        status, body = cluster.http_get(f"http://{cluster_ip}/", node=nodes[1])
        assert status == 200 and served_by(body) in names
        client.create(Pod.from_dict({
            "metadata": {"name": "client", "namespace": "default"},
            "spec": {"nodeName": nodes[1].name, "restartPolicy": "Never", "containers": [{
                "name": "client", "image": "mkube/busybox:latest", "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", "for i in 1 2 3; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | "
                            "nc -w 5 $HELLO_SERVICE_HOST $HELLO_SERVICE_PORT; done"]}]}}))
        wait_for(lambda: client.get(Pod, "client", "default").status.phase == "Succeeded", 60, "the client pod")
        out = client.log("default", "client")
        assert isinstance(out, str) and out.count("HTTP/1.") == 3 and served_by(out) in names
    finally:
        client.close()
