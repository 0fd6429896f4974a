"""Endpoints building: addresses, ports, subsets and the published-ports annotation."""

from __future__ import annotations

import json

from mkube.api.types import (
    Container,
    ContainerPort,
    ObjectMeta,
    Pod,
    PodCondition,
    PodSpec,
    PodStatus,
    PublishedPort,
    Service,
    ServicePort,
    ServiceSpec,
)
from mkube.controllers.endpoints_util import build_subsets, find_port, published_annotation


def pod(name: str, ip: str | None, ready: bool = True, ports: list[ContainerPort] | None = None,
        phase: str = "Running", published: list[PublishedPort] | None = None, node: str = "n1") -> Pod:
    return Pod(metadata=ObjectMeta(name=name, namespace="default", uid=f"uid-{name}", labels={"app": "web"}),
               spec=PodSpec(node_name=node, containers=[Container(name="app", ports=ports)]),
               status=PodStatus(phase=phase, pod_ip=ip, host_ip=f"192.168.0.{node[-1]}",
                                conditions=[PodCondition(type="Ready", status="True" if ready else "False")],
                                published_ports=published))


def service(*ports: ServicePort, publish_not_ready: bool = False) -> Service:
    return Service(metadata=ObjectMeta(name="web", namespace="default"),
                   spec=ServiceSpec(selector={"app": "web"}, ports=list(ports), cluster_ip="10.96.0.10",
                                    publish_not_ready_addresses=publish_not_ready or None))


HTTP = [ContainerPort(name="http", container_port=8080)]


def test_ready_and_not_ready_addresses_with_target_refs() -> None:
    svc = service(ServicePort(name="web", port=80, target_port=8080))
    subsets = build_subsets(svc, [pod("b", "10.0.0.2"), pod("a", "10.0.0.1"), pod("c", "10.0.0.3", ready=False),
                                  pod("nip", None), pod("done", "10.0.0.9", phase="Succeeded")])
    assert len(subsets) == 1
    s = subsets[0]
    assert [a.ip for a in s.addresses or []] == ["10.0.0.1", "10.0.0.2"]
    assert [a.ip for a in s.not_ready_addresses or []] == ["10.0.0.3"]
    a = (s.addresses or [])[0]
    assert a.node_name == "n1" and a.target_ref is not None
    assert (a.target_ref.kind, a.target_ref.name, a.target_ref.uid) == ("Pod", "a", "uid-a")
    assert [(p.name, p.port, p.protocol) for p in s.ports or []] == [("web", 8080, "TCP")]


def test_named_target_port_and_grouping_by_port_set() -> None:
    svc = service(ServicePort(name="web", port=80, target_port="http"))
    with_port = pod("a", "10.0.0.1", ports=HTTP)
    other_port = pod("b", "10.0.0.2", ports=[ContainerPort(name="http", container_port=9090)])
    without = pod("c", "10.0.0.3")
    assert find_port(without, svc.spec.ports[0]) is None  # type: ignore[index]
    subsets = build_subsets(svc, [with_port, other_port, without])
    got = sorted(((s.ports or [])[0].port, [a.ip for a in s.addresses or []]) for s in subsets)
    assert got == [(8080, ["10.0.0.1"]), (9090, ["10.0.0.2"])]


def test_multi_port_service_one_subset() -> None:
    svc = service(ServicePort(name="a", port=80, target_port=8080), ServicePort(name="b", port=81, target_port=8081))
    subsets = build_subsets(svc, [pod("x", "10.0.0.1"), pod("y", "10.0.0.2")])
    assert len(subsets) == 1
    assert sorted(p.port for p in subsets[0].ports or []) == [8080, 8081]
    assert len(subsets[0].addresses or []) == 2


def test_publish_not_ready_addresses() -> None:
    svc = service(ServicePort(port=80, target_port=8080), publish_not_ready=True)
    subsets = build_subsets(svc, [pod("a", "10.0.0.1", ready=False)])
    assert [a.ip for a in subsets[0].addresses or []] == ["10.0.0.1"]
    assert not subsets[0].not_ready_addresses


def test_deterministic_output() -> None:
    svc = service(ServicePort(port=80, target_port=8080))
    pods = [pod(f"p{i}", f"10.0.0.{i}", ready=i % 2 == 0) for i in range(1, 8)]
    one = [s.to_dict() for s in build_subsets(svc, pods)]
    two = [s.to_dict() for s in build_subsets(svc, list(reversed(pods)))]
    assert one == two


def test_published_annotation() -> None:
    svc = service(ServicePort(port=80, target_port=8080))
    a = pod("a", "172.17.0.2", published=[PublishedPort(container_port=8080, host_port=31001)], node="n1")
    b = pod("b", "172.17.0.2", published=[PublishedPort(container_port=8080, host_port=31002,
                                                        host_ip="192.168.9.9")], node="n2")
    c = pod("c", "172.17.0.3")  # publishes nothing
    subsets = build_subsets(svc, [a, b, c])
    entries = json.loads(published_annotation(subsets, [a, b, c]) or "[]")
    # pod IPs are per-node: both pods have 172.17.0.2 and both are listed
    # nodeName tells the proxy apart two pods with the same IP on different nodes
    assert entries == [{"ip": "172.17.0.2", "port": 8080, "hostIP": "192.168.0.1", "hostPort": 31001, "nodeName": "n1"},
                       {"ip": "172.17.0.2", "port": 8080, "hostIP": "192.168.9.9", "hostPort": 31002, "nodeName": "n2"}]
    assert published_annotation(build_subsets(svc, [c]), [c]) is None
