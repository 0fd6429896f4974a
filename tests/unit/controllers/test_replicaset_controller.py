"""ReplicaSet controller on a FakeClient: create/delete with expectations, adopt/release, status."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mkube.api.errors import Invalid
from mkube.api.types import (
    Container,
    LabelSelector,
    ObjectMeta,
    OwnerReference,
    Pod,
    PodSpec,
    PodTemplateSpec,
    ReplicaSet,
    ReplicaSetSpec,
)
from mkube.client.fake import Action
from mkube.controllers.expectations import Expectations
from tests.unit.controllers.harness import Harness


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness(("replicaset",))
    yield harness
    harness.close()


def replicaset(replicas: int = 3, name: str = "web-abc", min_ready: int | None = None) -> ReplicaSet:
    labels = {"app": "web"}
    return ReplicaSet(metadata=ObjectMeta(name=name, namespace="default"),
                      spec=ReplicaSetSpec(replicas=replicas, selector=LabelSelector(match_labels=labels),
                                          min_ready_seconds=min_ready,
                                          template=PodTemplateSpec(metadata=ObjectMeta(labels=labels),
                                                                   spec=PodSpec(containers=[Container(name="c", image="busybox")]))))


def creates(h: Harness) -> int:
    return sum(1 for a in h.client.actions if a.verb == "create" and a.resource == "pods")


def test_creates_pods_with_owner_and_generated_names(h: Harness) -> None:
    rs = h.client.create(replicaset(3))
    h.run()
    pods = h.pods()
    assert len(pods) == 3
    for p in pods:
        assert (p.metadata.name or "").startswith("web-abc-") and len(p.metadata.name or "") == len("web-abc-") + 5
        ref = p.metadata.controller_ref()
        assert ref is not None and ref.uid == rs.metadata.uid and ref.block_owner_deletion
        assert ref.kind == "ReplicaSet" and ref.api_version == "apps/v1"
    assert len(h.recorder.messages("SuccessfulCreate")) == 3
    assert h.recorder.messages("SuccessfulCreate")[0].startswith("Created pod: web-abc-")
    got = h.client.get(ReplicaSet, "web-abc", "default")
    assert got.status.replicas == 3 and got.status.ready_replicas == 0
    assert got.status.observed_generation == got.metadata.generation


def test_stale_cache_never_double_creates(h: Harness) -> None:
    h.client.create(replicaset(4))
    h.settle()
    rsc = h.controller("replicaset")
    h.manager.informers.informer(Pod).stop()  # the pod cache freezes: it will never see the new pods
    rsc.sync("default/web-abc")
    assert creates(h) == 4
    for _ in range(3):
        rsc.sync("default/web-abc")  # cache still shows 0 pods: expectations hold the controller back
    assert creates(h) == 4
    assert rsc.expectations.pending("default/web-abc") == (4, 0)


def test_expired_expectations_let_the_controller_act_again(h: Harness) -> None:
    t = [0.0]
    rsc = h.controller("replicaset")
    rsc.expectations = Expectations(ttl=60, clock=lambda: t[0])
    h.client.create(replicaset(2))
    h.settle()
    h.manager.informers.informer(Pod).stop()
    rsc.sync("default/web-abc")
    rsc.sync("default/web-abc")
    assert creates(h) == 2
    t[0] = 61
    rsc.sync("default/web-abc")
    assert creates(h) == 4  # a lost watch event cannot block forever (Kubernetes' 5 min TTL)


def test_slow_start_stops_after_a_failing_batch(h: Harness) -> None:
    def refuse(action: Action) -> None:
        raise Invalid("Pod", "x", [])

    h.client.add_reactor("create", "pods", refuse)
    h.client.create(replicaset(50))
    h.settle()
    with pytest.raises(Invalid):
        h.controller("replicaset").sync("default/web-abc")
    assert creates(h) == 1  # the first batch of 1 failed: no 2, 4, 8 ...
    got = h.client.get(ReplicaSet, "web-abc", "default")
    assert any(c.type == "ReplicaFailure" and c.reason == "FailedCreate" for c in got.status.conditions or [])
    assert "FailedCreate" in h.recorder.reasons()
    # no expectation left waiting for pods that will never come
    assert h.controller("replicaset").expectations.satisfied("default/web-abc")


def test_scale_down_deletes_least_valuable_and_counts_ready(h: Harness) -> None:
    h.client.create(replicaset(4))
    h.run()
    pods = h.pods()
    h.make_ready(pods[:2])  # two Running+Ready, two still Pending
    h.run()
    assert h.client.get(ReplicaSet, "web-abc", "default").status.ready_replicas == 2
    rs = h.client.get(ReplicaSet, "web-abc", "default")
    rs.spec.replicas = 2
    h.client.update(rs)
    h.run()
    left = {p.metadata.name for p in h.pods()}
    assert left == {p.metadata.name for p in pods[:2]}  # the pending ones went
    assert len(h.recorder.messages("SuccessfulDelete")) == 2


def test_pods_being_deleted_or_finished_do_not_count(h: Harness) -> None:
    h.client.create(replicaset(2))
    h.run()
    h.make_ready()
    h.run()
    victim = h.pods()[0]
    h.client.delete(Pod, victim.metadata.name or "", "default")  # graceful: stays Terminating
    h.run()
    active = h.pods()
    assert len(active) == 2 and victim.metadata.name not in {p.metadata.name for p in active}
    done = active[0]
    done.status.phase = "Succeeded"
    h.client.update_status(done)
    h.run()
    assert len([p for p in h.pods() if p.status.phase != "Succeeded"]) == 2


def test_adopts_orphans_and_releases_mismatches(h: Harness) -> None:
    orphan = h.client.create(Pod(metadata=ObjectMeta(name="stray", namespace="default", labels={"app": "web"}),
                                 spec=PodSpec(containers=[Container(name="c", image="busybox")])))
    other = h.client.create(Pod(metadata=ObjectMeta(name="other", namespace="default", labels={"app": "db"}),
                                spec=PodSpec(containers=[Container(name="c", image="busybox")])))
    rs = h.client.create(replicaset(2))
    h.run()
    web = [p for p in h.pods() if (p.metadata.labels or {}).get("app") == "web"]
    assert len(web) == 2  # the stray pod counts as one of the two
    adopted = h.client.get(Pod, "stray", "default")
    assert adopted.metadata.controller_ref() is not None
    assert adopted.metadata.controller_ref().uid == rs.metadata.uid  # type: ignore[union-attr]
    assert h.client.get(Pod, "other", "default").metadata.owner_references is None
    # relabel the adopted pod: it is released and replaced
    adopted.metadata.labels = {"app": "debug"}
    h.client.update(adopted)
    h.run()
    assert not h.client.get(Pod, "stray", "default").metadata.owner_references
    assert len([p for p in h.pods() if (p.metadata.labels or {}).get("app") == "web"]) == 2
    assert orphan.metadata.uid and other.metadata.uid


def test_pods_owned_by_another_controller_are_left_alone(h: Harness) -> None:
    foreign = Pod(metadata=ObjectMeta(name="foreign", namespace="default", labels={"app": "web"},
                                      owner_references=[OwnerReference(api_version="apps/v1", kind="ReplicaSet",
                                                                       name="x", uid="someone-else",
                                                                       controller=True)]),
                  spec=PodSpec(containers=[Container(name="c", image="busybox")]))
    h.client.create(foreign)
    h.client.create(replicaset(1))
    h.run()
    assert len(h.pods()) == 2
    ref = h.client.get(Pod, "foreign", "default").metadata.controller_ref()
    assert ref is not None and ref.uid == "someone-else"


def test_min_ready_seconds_availability(h: Harness) -> None:
    h.client.create(replicaset(2, min_ready=30))
    h.run()
    h.make_ready()
    h.run()
    got = h.client.get(ReplicaSet, "web-abc", "default")
    assert got.status.ready_replicas == 2 and got.status.available_replicas == 0
    h.make_ready(since="2000-01-01T00:00:00Z")  # ready for ages
    h.run()
    assert h.client.get(ReplicaSet, "web-abc", "default").status.available_replicas == 2


def test_deleted_replicaset_forgets_its_expectations(h: Harness) -> None:
    h.client.create(replicaset(1))
    h.run()
    rsc = h.controller("replicaset")
    rsc.expectations.expect_creations("default/web-abc", 5)
    h.client.delete(ReplicaSet, "web-abc", "default")
    h.run()
    assert rsc.expectations.pending("default/web-abc") == (0, 0)
