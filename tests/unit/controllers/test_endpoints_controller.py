"""Endpoints controller on a FakeClient: create, follow pods, no-op, delete with the Service."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from mkube.api.errors import NotFound
from mkube.api.types import (
    Container,
    ContainerPort,
    Endpoints,
    ObjectMeta,
    Pod,
    PodSpec,
    PublishedPort,
    Service,
    ServicePort,
    ServiceSpec,
)
from mkube.controllers.endpoints_util import PUBLISHED_ANNOTATION
from tests.unit.controllers.harness import Harness


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness(("endpoints",))
    yield harness
    harness.close()


def make_pod(h: Harness, name: str, labels: dict[str, str], ready: bool = True) -> Pod:
    p = h.client.create(Pod(metadata=ObjectMeta(name=name, namespace="default", labels=labels),
                            spec=PodSpec(containers=[Container(name="c", image="busybox", ports=[
                                ContainerPort(name="http", container_port=8080)])])))
    h.make_ready([p], ready=ready)
    got = h.client.get(Pod, name, "default")
    got.status.published_ports = [PublishedPort(container_port=8080, host_port=30000 + len(name))]
    return h.client.update_status(got)


def svc(selector: dict[str, str] | None = None) -> Service:
    return Service(metadata=ObjectMeta(name="web", namespace="default", labels={"team": "a"}),
                   spec=ServiceSpec(selector=selector if selector is not None else {"app": "web"},
                                    ports=[ServicePort(name="http", port=80, target_port="http")]))


def endpoints(h: Harness) -> Endpoints:
    return h.client.get(Endpoints, "web", "default")


def test_endpoints_follow_pods(h: Harness) -> None:
    a = make_pod(h, "a", {"app": "web"})
    make_pod(h, "b", {"app": "web"}, ready=False)
    make_pod(h, "x", {"app": "other"})
    h.client.create(svc())
    h.run()
    ep = endpoints(h)
    (subset,) = ep.subsets or []
    assert [x.target_ref.name for x in subset.addresses or []] == ["a"]  # type: ignore[union-attr]
    assert [x.target_ref.name for x in subset.not_ready_addresses or []] == ["b"]  # type: ignore[union-attr]
    assert [(p.name, p.port) for p in subset.ports or []] == [("http", 8080)]
    assert (ep.metadata.labels or {}) == {"team": "a"}
    published = json.loads((ep.metadata.annotations or {})[PUBLISHED_ANNOTATION])
    assert {"ip": a.status.pod_ip, "port": 8080, "hostIP": "192.168.1.1", "hostPort": 30001,
            "nodeName": a.spec.node_name} in published
    # b becomes ready: it moves to addresses
    h.make_ready([h.client.get(Pod, "b", "default")])
    h.run()
    (subset,) = endpoints(h).subsets or []
    assert sorted(x.target_ref.name or "" for x in subset.addresses or [] if x.target_ref) == ["a", "b"]
    # a pod goes: it leaves the Endpoints
    h.client.delete(Pod, "a", "default", grace_period_seconds=0)
    h.run()
    (subset,) = endpoints(h).subsets or []
    assert [x.target_ref.name for x in subset.addresses or []] == ["b"]  # type: ignore[union-attr]


def test_no_write_when_nothing_changed(h: Harness) -> None:
    make_pod(h, "a", {"app": "web"})
    h.client.create(svc())
    h.run()
    rv = endpoints(h).metadata.resource_version
    h.client.clear_actions()
    h.controller("endpoints").sync("default/web")
    h.controller("endpoints").sync("default/web")
    assert endpoints(h).metadata.resource_version == rv
    assert not [a for a in h.client.actions if a.verb in ("update", "create") and a.resource == "endpoints"]


def test_service_deleted_takes_its_endpoints(h: Harness) -> None:
    make_pod(h, "a", {"app": "web"})
    h.client.create(svc())
    h.run()
    h.client.delete(Service, "web", "default")
    h.run()
    with pytest.raises(NotFound):
        endpoints(h)


def test_service_without_selector_is_left_to_the_user(h: Harness) -> None:
    h.client.create(svc(selector={}))
    h.client.create(Endpoints(metadata=ObjectMeta(name="web", namespace="default")))
    h.run()
    assert not endpoints(h).subsets  # untouched


def test_deleted_endpoints_are_recreated(h: Harness) -> None:
    make_pod(h, "a", {"app": "web"})
    h.client.create(svc())
    h.run()
    h.client.delete(Endpoints, "web", "default")
    h.run()
    assert endpoints(h).subsets
