"""ClusterIP / NodePort allocation through the real API server over HTTP: the
`kubernetes` Service, uniqueness under concurrent creates, persistence across a
restart, freeing on update/delete, and the internal records staying internal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

Obj = dict[str, Any]
SVC = "/api/v1/namespaces/default/services"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def client(api_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.url, timeout=30) as c:
        yield c


def nodeport_service(name: str, node_port: int | None = None, ports: int = 1) -> Obj:
    spec_ports: list[Obj] = [{"name": f"p{i}", "port": 80 + i, "protocol": "TCP"} for i in range(ports)]
    if node_port is not None:
        spec_ports[0]["nodePort"] = node_port
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "NodePort", "selector": {"app": name}, "ports": spec_ports}}


def node_ports(svc: Obj) -> list[int]:
    return [p["nodePort"] for p in svc["spec"]["ports"]]


def all_services(c: httpx.Client) -> list[Obj]:
    r = c.get("/api/v1/services")
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def test_kubernetes_service_exists_and_points_at_the_server(client: httpx.Client, api_server: Any) -> None:
    svc = client.get(f"{SVC}/kubernetes").json()
    assert svc["spec"]["clusterIP"] == "10.96.0.1" and svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": api_server.port}]
    assert "selector" not in svc["spec"]
    ep = client.get("/api/v1/namespaces/default/endpoints/kubernetes").json()
    assert ep["subsets"] == [{"addresses": [{"ip": "127.0.0.1"}],
                              "ports": [{"name": "https", "port": api_server.port, "protocol": "TCP"}]}]


def test_concurrent_creates_never_share_a_node_port_or_cluster_ip(client: httpx.Client, api_server: Any) -> None:
    def create(i: int) -> Obj:
        with httpx.Client(base_url=api_server.url, timeout=60) as c:
            r = c.post(SVC, json=nodeport_service(f"svc-{i}", ports=2))
            assert r.status_code == 201, r.text
            return r.json()  # type: ignore[no-any-return]

    with ThreadPoolExecutor(32) as pool:
        created = list(pool.map(create, range(96)))
    ports = [p for svc in created for p in node_ports(svc)]
    ips = [svc["spec"]["clusterIP"] for svc in created] + ["10.96.0.1"]
    assert len(ports) == 192 and len(set(ports)) == 192
    assert all(30000 <= p <= 32767 for p in ports)
    assert len(set(ips)) == len(ips) == 97
    # what the server stored agrees with what it answered
    stored = {s["metadata"]["name"]: s for s in all_services(client)}
    assert {name: node_ports(s) for name, s in stored.items() if name.startswith("svc-")} == \
        {s["metadata"]["name"]: node_ports(s) for s in created}


def test_concurrent_requests_for_one_node_port_have_exactly_one_winner(api_server: Any) -> None:
    def create(i: int) -> httpx.Response:
        with httpx.Client(base_url=api_server.url, timeout=60) as c:
            return c.post(SVC, json=nodeport_service(f"want-{i}", node_port=30080))

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(create, range(24)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [422] * 23
    refused = next(r for r in responses if r.status_code == 422).json()
    assert refused["reason"] == "Invalid"
    assert refused["details"]["causes"][0]["field"] == "spec.ports[0].nodePort"
    assert "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated" in refused["message"]


def test_requested_values_are_checked_against_the_ranges(client: httpx.Client) -> None:
    r = client.post(SVC, json=nodeport_service("low", node_port=20000))
    assert r.status_code == 422
    assert ("spec.ports[0].nodePort: Invalid value: 20000: provided port is not in the valid range. "
            "The range of valid ports is 30000-32767") in r.json()["message"]
    body: Obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ip"},
            "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}}
    r = client.post(SVC, json=body)
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "spec.clusterIP"
    assert ('spec.clusterIP: Invalid value: "10.0.0.1": provided IP is not in the valid range. The range of '
            "valid IPs is 10.96.0.0/12") in r.json()["message"]
    body["spec"]["clusterIP"] = "10.96.0.1"  # the kubernetes Service's
    r = client.post(SVC, json=body)
    assert r.status_code == 422 and "provided IP is already allocated" in r.json()["message"]
    body["spec"]["clusterIP"] = "10.100.1.2"
    r = client.post(SVC, json=body)
    assert r.status_code == 201 and r.json()["spec"]["clusterIP"] == "10.100.1.2"
    body["metadata"]["name"] = "headless"
    body["spec"]["clusterIP"] = "None"
    r = client.post(SVC, json=body)
    assert r.status_code == 201 and r.json()["spec"]["clusterIP"] == "None"


def test_update_and_delete_free_values_for_others(client: httpx.Client) -> None:
    assert client.post(SVC, json=nodeport_service("a", node_port=30100)).status_code == 201
    # NodePort -> ClusterIP with a plain merge patch: the carried-over nodePort is dropped and freed
    r = client.patch(f"{SVC}/a", json={"spec": {"type": "ClusterIP"}}, headers=MERGE)
    assert r.status_code == 200, r.text
    assert "nodePort" not in r.json()["spec"]["ports"][0] and r.json()["spec"]["clusterIP"]
    r = client.post(SVC, json=nodeport_service("b", node_port=30100))
    assert r.status_code == 201, r.text
    # ClusterIP -> NodePort: a port is allocated, and a requested one honoured when free
    r = client.patch(f"{SVC}/a", json={"spec": {"type": "NodePort", "ports": [
        {"name": "p0", "port": 80, "protocol": "TCP", "nodePort": 30100}]}}, headers=MERGE)
    assert r.status_code == 422 and "provided port is already allocated" in r.json()["message"]
    r = client.patch(f"{SVC}/a", json={"spec": {"type": "NodePort"}}, headers=MERGE)
    assert r.status_code == 200 and node_ports(r.json())[0] != 30100
    # deleting b frees 30100
    assert client.delete(f"{SVC}/b").status_code == 200
    r = client.post(SVC, json=nodeport_service("c", node_port=30100))
    assert r.status_code == 201, r.text
    # an update that omits the nodePort keeps it (kubectl replace of the original manifest)
    c = r.json()
    del c["spec"]["ports"][0]["nodePort"]
    r = client.put(f"{SVC}/c", json=c)
    assert r.status_code == 200 and node_ports(r.json()) == [30100]


def test_namespace_deletion_frees_its_services_values(client: httpx.Client) -> None:
    assert client.post("/api/v1/namespaces", json={"metadata": {"name": "gone"}}).status_code == 201
    r = client.post("/api/v1/namespaces/gone/services", json=nodeport_service("x", node_port=30200))
    assert r.status_code == 201, r.text
    assert client.delete("/api/v1/namespaces/gone").status_code == 200
    for _ in range(100):
        if client.get("/api/v1/namespaces/gone").status_code == 404:
            break
        time.sleep(0.1)
    r = client.post(SVC, json=nodeport_service("y", node_port=30200))
    assert r.status_code == 201, r.text


def test_allocations_survive_a_restart(make_api_server: Any) -> None:
    server = make_api_server(extra_args=["--service-node-port-range", "30000-30005",
                                         "--service-cluster-ip-range", "10.200.0.0/29"])
    with httpx.Client(base_url=server.url, timeout=30) as c:
        before = [c.post(SVC, json=nodeport_service(f"s{i}")).json() for i in range(3)]
    taken = {p for s in before for p in node_ports(s)}
    ips = {s["spec"]["clusterIP"] for s in before}
    assert len(taken) == 3 and len(ips) == 3
    server.stop()
    server.start()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        after = {s["metadata"]["name"]: s for s in all_services(c)}
        for s in before:
            kept = after[s["metadata"]["name"]]
            assert node_ports(kept) == node_ports(s) and kept["spec"]["clusterIP"] == s["spec"]["clusterIP"]
        # /29: .1 (kubernetes) + 3 taken of .2-.6: two new ones fit, and get the free values
        new = [c.post(SVC, json=nodeport_service(f"n{i}")).json() for i in range(2)]
        new_ports = {p for s in new for p in node_ports(s)}
        assert len(new_ports) == 2 and not new_ports & taken
        assert not {s["spec"]["clusterIP"] for s in new} & (ips | {"10.200.0.1"})
        r = c.post(SVC, json=nodeport_service("full"))
        assert r.status_code == 422 and "range is full" in r.json()["message"]
        assert c.get(f"{SVC}/kubernetes").json()["spec"]["clusterIP"] == "10.200.0.1"


def test_allocation_records_are_not_served(client: httpx.Client) -> None:
    resources = [r["name"] for r in client.get("/api/v1").json()["resources"]]
    assert not [r for r in resources if "alloc" in r]
    groups = [g["name"] for g in client.get("/apis").json()["groups"]]
    assert "mkube.io" not in groups
    for path in ("/apis/mkube.io/v1/allocations", "/api/v1/allocations",
                 "/apis/mkube.io/v1/namespaces/default/allocations"):
        assert client.get(path).status_code == 404


@pytest.mark.postgres
def test_two_api_servers_on_one_postgres_never_share_a_value(make_api_server: Any, postgres_db_url: str) -> None:
    servers = [make_api_server(datastore_url=postgres_db_url, extra_args=["--service-node-port-range", "30000-30199"])
               for _ in range(2)]

    def create(i: int) -> Obj:
        with httpx.Client(base_url=servers[i % 2].url, timeout=60) as c:
            r = c.post(SVC, json=nodeport_service(f"pg-{i}"))
            assert r.status_code == 201, r.text
            return r.json()  # type: ignore[no-any-return]

    def want_30080(i: int) -> int:
        with httpx.Client(base_url=servers[i % 2].url, timeout=60) as c:
            return c.post(SVC, json=nodeport_service(f"want-{i}", node_port=30080)).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = sorted(pool.map(want_30080, range(16)))  # one requested port, raced on both servers
        created = list(pool.map(create, range(64)))
    assert codes == [201] + [422] * 15
    ports = [p for s in created for p in node_ports(s)]
    ips = [s["spec"]["clusterIP"] for s in created]
    assert len(set(ports)) == len(ports) == 64 and 30080 not in ports
    assert len(set(ips)) == 64
    with httpx.Client(base_url=servers[0].url, timeout=30) as c:
        kubernetes = [s for s in all_services(c) if s["metadata"]["name"] == "kubernetes"]
        assert len(kubernetes) == 1 and kubernetes[0]["spec"]["clusterIP"] == "10.96.0.1"
