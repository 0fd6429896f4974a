"""Node proxy routing (pure): which Service ports are served, which backends each
has from a node's point of view, and the Balancer (round-robin, ClientIP affinity,
updates, retries)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from mkube.api.types import Endpoints, Service
from mkube.kubelet.proxy.routing import (
    DEFAULT_AFFINITY_TIMEOUT,
    PUBLISHED_ANNOTATION,
    Backend,
    Balancer,
    PortKey,
    backends_for,
    desired,
    service_ports,
)

NODE, NODE_IP = "node-a", "192.168.1.10"


def svc(name: str = "web", **spec: Any) -> Service:
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("clusterIP", "10.96.0.10")
    spec.setdefault("ports", [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}])
    return Service.from_dict({"metadata": {"name": name, "namespace": "default"}, "spec": spec})


def addr(ip: str, node: str | None = NODE) -> dict[str, Any]:
    out: dict[str, Any] = {"ip": ip}
    if node is not None:
        out["nodeName"] = node
    return out


def endpoints(ready: list[dict[str, Any]], not_ready: list[dict[str, Any]] | None = None,
              published: list[dict[str, Any]] | None = None, port_name: str = "http",
              port: int = 8080) -> Endpoints:
    body: dict[str, Any] = {"metadata": {"name": "web", "namespace": "default"},
                            "subsets": [{"addresses": ready, "notReadyAddresses": not_ready or None,
                                         "ports": [{"name": port_name, "port": port, "protocol": "TCP"}]}]}
    if published is not None:
        body["metadata"]["annotations"] = {PUBLISHED_ANNOTATION: json.dumps(published)}
    return Endpoints.from_dict(body)


def pub(ip: str, host_ip: str, host_port: int, port: int = 8080, **extra: str) -> dict[str, Any]:
    return {"ip": ip, "port": port, "hostIP": host_ip, "hostPort": host_port, **extra}


def only_port(s: Service) -> Any:
    [sp] = service_ports(s)
    return sp


# ---------------------------------------------------------------- service ports

def test_service_ports_of_each_type() -> None:
    sp = only_port(svc())
    assert (sp.key, sp.port, sp.cluster_ip, sp.node_port, sp.affinity_timeout) == \
        (PortKey("default", "web", "http", "TCP"), 80, "10.96.0.10", None, None)
    np = only_port(svc(type="NodePort", ports=[{"port": 80, "protocol": "UDP", "nodePort": 30080}]))
    assert (np.node_port, np.key.port_name, np.key.protocol) == (30080, "", "UDP")
    assert service_ports(svc(clusterIP="None")) == []  # headless: nothing to proxy
    assert service_ports(svc(type="ExternalName", externalName="example.com", clusterIP=None)) == []
    # a nodePort left on a ClusterIP Service (not allowed by the API) is not served
    assert only_port(svc(ports=[{"port": 80, "nodePort": 30080}])).node_port is None


def test_session_affinity_timeout() -> None:
    assert only_port(svc(sessionAffinity="ClientIP")).affinity_timeout == DEFAULT_AFFINITY_TIMEOUT
    custom = svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    assert only_port(custom).affinity_timeout == 60.0


# ---------------------------------------------------------------- backends

def test_local_remote_and_nodeless_addresses() -> None:
    ep = endpoints(
        ready=[addr("172.17.0.2"), addr("172.17.0.3", "node-b"), addr("172.17.0.4", "node-c"),
               addr("10.0.0.9", None)],
        not_ready=[addr("172.17.0.5")],
        published=[pub("172.17.0.2", NODE_IP, 32001), pub("172.17.0.3", "192.168.1.11", 32002)])
    got = backends_for(only_port(svc()), ep, NODE, NODE_IP)
    assert got == sorted([
        Backend("172.17.0.2", 8080, (NODE_IP, 32001)),  # local: pod IP, published port as fallback
        Backend("192.168.1.11", 32002),  # remote: its node's published port
        Backend("172.17.0.4", 8080),  # remote without an entry: pod IP, best effort
        Backend("10.0.0.9", 8080),  # not a pod on a node: as given
    ], key=lambda b: (b.host, b.port, b.fallback or ("", 0)))
    assert all(b.host != "172.17.0.5" for b in got)  # not ready


def test_endpoint_ports_match_service_ports_by_name() -> None:
    ep = endpoints(ready=[addr("172.17.0.2")], port_name="metrics", port=9090)
    assert backends_for(only_port(svc()), ep, NODE, NODE_IP) == []
    assert backends_for(only_port(svc()), None, NODE, NODE_IP) == []


def test_same_pod_ip_on_two_nodes_all_ready() -> None:
    # per-node bridges: both nodes' first pod is 172.17.0.2
    ep = endpoints(ready=[addr("172.17.0.2", "node-b"), addr("172.17.0.2", "node-c")],
                   published=[pub("172.17.0.2", "192.168.1.11", 32001), pub("172.17.0.2", "192.168.1.12", 32002)])
    got = backends_for(only_port(svc()), ep, NODE, NODE_IP)
    assert got == [Backend("192.168.1.11", 32001), Backend("192.168.1.12", 32002)]


def test_same_pod_ip_mixed_readiness_is_resolved_only_with_node_names() -> None:
    ready, not_ready = [addr("172.17.0.2", "node-b")], [addr("172.17.0.2", "node-c")]
    entries = [pub("172.17.0.2", "192.168.1.11", 32001), pub("172.17.0.2", "192.168.1.12", 32002)]
    # without nodeName in the entries it is unknown which one is ready: neither is used
    assert backends_for(only_port(svc()), endpoints(ready, not_ready, entries), NODE, NODE_IP) == []
    named = [pub("172.17.0.2", "192.168.1.11", 32001, nodeName="node-b"),
             pub("172.17.0.2", "192.168.1.12", 32002, nodeName="node-c")]
    got = backends_for(only_port(svc()), endpoints(ready, not_ready, named), NODE, NODE_IP)
    assert got == [Backend("192.168.1.11", 32001)]


def test_same_pod_ip_here_and_on_another_node() -> None:
    ep = endpoints(ready=[addr("172.17.0.2"), addr("172.17.0.2", "node-b")],
                   published=[pub("172.17.0.2", NODE_IP, 32001), pub("172.17.0.2", "192.168.1.11", 32002)])
    got = backends_for(only_port(svc()), ep, NODE, NODE_IP)
    assert got == [Backend("172.17.0.2", 8080, (NODE_IP, 32001)), Backend("192.168.1.11", 32002)]


def test_desired_covers_every_port_of_every_service() -> None:
    services = [svc("web", ports=[{"name": "http", "port": 80, "protocol": "TCP"},
                                  {"name": "dns", "port": 53, "protocol": "UDP"}]),
                svc("headless", clusterIP="None")]
    eps = {"default/web": endpoints(ready=[addr("172.17.0.2")])}
    want = desired(services, eps.get, NODE, NODE_IP)
    assert set(want) == {PortKey("default", "web", "http", "TCP"), PortKey("default", "web", "dns", "UDP")}
    assert want[PortKey("default", "web", "http", "TCP")][1] == [Backend("172.17.0.2", 8080)]
    assert want[PortKey("default", "web", "dns", "UDP")][1] == []  # no such endpoint port


# ---------------------------------------------------------------- balancer

B1, B2, B3 = Backend("10.0.0.1", 80), Backend("10.0.0.2", 80), Backend("10.0.0.3", 80)


def test_round_robin_spreads_evenly() -> None:
    bal = Balancer()
    bal.update([B1, B2, B3], None)
    picks = Counter(bal.pick(f"10.9.0.{i}") for i in range(60))
    assert picks == {B1: 20, B2: 20, B3: 20}


def test_empty_balancer_and_exclusions() -> None:
    bal = Balancer()
    assert bal.pick("c") is None
    bal.update([B1, B2], None)
    assert bal.pick("c", exclude=[B1]) == B2
    assert bal.pick("c", exclude=[B1, B2]) is None


def test_update_keeps_position_and_reports_changes() -> None:
    bal = Balancer()
    assert bal.update([B1, B2, B3], None)
    assert not bal.update([B1, B2, B3], None)
    assert [bal.pick(None) for _ in range(2)] == [B1, B2]
    assert bal.update([B1, B2], None)  # B3 gone: continues from the same position, wrapped
    assert [bal.pick(None) for _ in range(3)] == [B1, B2, B1]
    assert bal.update([], None) and bal.pick(None) is None
    assert bal.update([B3], None) and bal.pick(None) == B3


def test_client_ip_affinity_sticks_and_expires() -> None:
    now = [0.0]
    bal = Balancer(clock=lambda: now[0])
    bal.update([B1, B2, B3], 60.0)
    first = {c: bal.pick(c) for c in ("a", "b", "c")}
    assert len(set(first.values())) == 3  # new clients still spread
    for _ in range(10):
        now[0] += 30
        assert {c: bal.pick(c) for c in ("a", "b", "c")} == first  # use refreshes the timeout
    now[0] += 61  # idle longer than the timeout: a fresh pick (round-robin continues)
    again = bal.pick("a")
    assert again is not None and bal.sticky_clients() >= 1


def test_affinity_forgets_clients_of_removed_backends_and_retries_elsewhere() -> None:
    bal = Balancer()
    bal.update([B1, B2], 100.0)
    chosen = bal.pick("a")
    assert chosen is not None
    other = B2 if chosen == B1 else B1
    assert bal.pick("a", exclude=[chosen]) == other  # connect to `chosen` failed: retried elsewhere
    assert bal.pick("a") == other  # and now sticky there
    bal.update([chosen], 100.0)  # `other` removed
    assert bal.pick("a") == chosen
    bal.update([B1, B2], None)  # affinity switched off
    assert bal.sticky_clients() == 0


def test_backends_that_just_failed_go_last_until_the_hold_expires() -> None:
    now = [100.0]
    a, b, c = Backend("10.0.0.1", 80), Backend("10.0.0.2", 80), Backend("10.0.0.3", 80)
    bal = Balancer(clock=lambda: now[0])
    bal.update([a, b, c], None)
    bal.mark_down(a)
    bal.mark_down(b)
    assert {bal.pick(None) for _ in range(6)} == {c}  # new connections skip the dead ones
    assert bal.pick(None, exclude=[c]) in (a, b)  # but a marked backend beats no backend
    now[0] += 6.0  # the hold is over: round robin over all again
    assert {bal.pick(None) for _ in range(6)} == {a, b, c}
