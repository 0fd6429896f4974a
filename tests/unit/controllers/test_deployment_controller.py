"""Deployment + ReplicaSet controllers on a FakeClient, with a test-driven "kubelet"."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from mkube.api.types import Deployment, LabelSelector, ObjectMeta, Pod, ReplicaSet, ReplicaSetSpec
from mkube.controllers import deployment_util as du
from mkube.controllers.podutil import is_pod_ready
from tests.unit.controllers.harness import Harness, deployment


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness(("deployment", "replicaset"))
    yield harness
    harness.close()


def rss(h: Harness) -> list[ReplicaSet]:
    return sorted(h.client.list(ReplicaSet, "default").items, key=du.revision_of)


def get(h: Harness, name: str = "web") -> Deployment:
    return h.client.get(Deployment, name, "default")


def step(h: Harness, ready: bool = True) -> tuple[int, int]:
    """One kubelet round: run controllers, bind+ready new pods, confirm deletions.
    Returns (pods not being deleted, ready ones) as observed before the kubelet acts.
    (Pods being deleted do not count against maxSurge, as in Kubernetes.)"""
    h.run()
    pods = [p for p in h.client.list(Pod, "default").items if p.metadata.deletion_timestamp is None]
    observed = (len(pods), sum(1 for p in pods if is_pod_ready(p)))
    fresh = [p for p in pods if p.metadata.deletion_timestamp is None and not is_pod_ready(p)]
    if ready and fresh:
        h.make_ready(fresh)
    h.finish_deletions()
    return observed


def converge(h: Harness, rounds: int = 40, bounds: tuple[int, int] | None = None) -> None:
    for _ in range(rounds):
        total, ready = step(h)
        if bounds is not None:
            assert total <= bounds[0], f"{total} pods exist, more than {bounds[0]}"
            assert ready >= bounds[1], f"only {ready} ready pods, fewer than {bounds[1]}"
        d = get(h)
        if du.deployment_complete(d, d.status) and len(h.client.list(Pod, "default").items) == du.replicas_of(d):
            cond = du.get_condition(d.status, du.PROGRESSING)
            if cond is not None and cond.reason == du.NEW_RS_AVAILABLE:
                return
    pytest.fail(f"deployment did not converge: {get(h).status}")


def set_image(h: Harness, image: str) -> None:
    d = get(h)
    d.spec.template.spec.containers[0].image = image
    h.client.update(d)


def test_create_makes_one_replicaset_with_hash_and_revision(h: Harness) -> None:
    h.client.create(deployment(replicas=10))
    converge(h)
    (rs,) = rss(h)
    d = get(h)
    pod_hash = du.compute_hash(d.spec.template)
    assert rs.metadata.name == f"web-{pod_hash}"
    assert (rs.metadata.labels or {})[du.POD_TEMPLATE_HASH_LABEL] == pod_hash
    assert (rs.spec.selector.match_labels or {})[du.POD_TEMPLATE_HASH_LABEL] == pod_hash  # type: ignore[union-attr]
    assert (rs.spec.template.metadata.labels or {})[du.POD_TEMPLATE_HASH_LABEL] == pod_hash
    assert du.revision_of(rs) == 1 and du.revision_of(d) == 1
    ref = rs.metadata.controller_ref()
    assert ref is not None and ref.uid == d.metadata.uid and ref.block_owner_deletion
    s = d.status
    assert (s.replicas, s.updated_replicas, s.ready_replicas, s.available_replicas, s.unavailable_replicas) == \
        (10, 10, 10, 10, 0)
    assert s.observed_generation == d.metadata.generation
    avail = du.get_condition(s, du.AVAILABLE)
    prog = du.get_condition(s, du.PROGRESSING)
    assert avail is not None and (avail.status, avail.reason) == ("True", "MinimumReplicasAvailable")
    assert prog is not None and (prog.status, prog.reason) == ("True", "NewReplicaSetAvailable")
    assert f"Scaled up replica set {rs.metadata.name} to 10" in h.recorder.messages("ScalingReplicaSet")


def test_rolling_update_first_step_and_bounds(h: Harness) -> None:
    h.client.create(deployment(replicas=10, max_surge=3, max_unavailable=2))
    converge(h)
    set_image(h, "nginx:2")
    h.run()  # no pod of the new version is ready yet
    old, new = rss(h)
    # new 3 (13 pods at most); old 10 -> 8 (13 - 8 min available - 3 new unavailable);
    # then the new one may grow to 5 (13 - 8); nothing else until new pods are ready
    assert (old.spec.replicas, new.spec.replicas) == (8, 5)
    assert [m for m in h.recorder.messages("ScalingReplicaSet") if "nginx" not in m][-3:] == [
        f"Scaled up replica set {new.metadata.name} to 3", f"Scaled down replica set {old.metadata.name} to 8",
        f"Scaled up replica set {new.metadata.name} to 5"]
    assert du.revision_of(new) == 2 and du.revision_of(get(h)) == 2
    converge(h, bounds=(13, 8))
    old, new = rss(h)
    assert (old.spec.replicas, new.spec.replicas) == (0, 10)
    pods = h.client.list(Pod, "default").items
    assert all(p.spec.containers[0].image == "nginx:2" for p in pods)


@pytest.mark.parametrize(("surge", "unavailable"), [("25%", "25%"), (0, 1), (1, 0), ("100%", 0)])
def test_rolling_update_bounds_hold_throughout(h: Harness, surge: object, unavailable: object) -> None:
    h.client.create(deployment(replicas=10, max_surge=surge, max_unavailable=unavailable))
    converge(h)
    s, u = du.resolve_fenceposts(surge, unavailable, 10)  # type: ignore[arg-type]
    set_image(h, "nginx:2")
    converge(h, bounds=(10 + s, 10 - u))


def test_rollback_reuses_the_old_replicaset_with_a_new_revision(h: Harness) -> None:
    h.client.create(deployment(replicas=4))
    converge(h)
    first = rss(h)[0]
    set_image(h, "nginx:2")
    converge(h)
    # what `kubectl rollout undo` does: put the old ReplicaSet's template back
    d = get(h)
    template = first.spec.template.copy_deep()
    del template.metadata.labels[du.POD_TEMPLATE_HASH_LABEL]  # type: ignore[union-attr]
    d.spec.template = template
    h.client.update(d)
    converge(h)
    by_name = {rs.metadata.name: rs for rs in rss(h)}
    assert len(by_name) == 2  # no third ReplicaSet
    back = by_name[first.metadata.name]
    assert back.spec.replicas == 4 and du.revision_of(back) == 3
    assert (back.metadata.annotations or {})[du.REVISION_HISTORY_ANNOTATION] == "1"
    assert du.revision_of(get(h)) == 3
    assert any("to revision 1" in m for m in h.recorder.messages("DeploymentRollback"))
    assert all(p.spec.containers[0].image == "nginx:1" for p in h.client.list(Pod, "default").items)


def test_scale_up_and_down(h: Harness) -> None:
    h.client.create(deployment(replicas=10))
    converge(h)
    for n in (3, 12):
        d = get(h)
        d.spec.replicas = n
        h.client.update(d)
        converge(h)
        assert len(h.client.list(Pod, "default").items) == n
        assert get(h).status.available_replicas == n
    assert "Scaled down replica set" in " ".join(h.recorder.messages("ScalingReplicaSet"))


def test_proportional_scaling_mid_rollout(h: Harness) -> None:
    h.client.create(deployment(replicas=10, max_surge=3, max_unavailable=2))
    converge(h)
    set_image(h, "nginx:2")
    h.run()
    d = get(h)
    d.spec.replicas = 20
    h.client.update(d)
    h.run()
    old, new = rss(h)
    total = (old.spec.replicas or 0) + (new.spec.replicas or 0)
    assert total == 20 + 3  # maxSurge 3
    assert (old.spec.replicas or 0) > 8 and (new.spec.replicas or 0) > 3  # both grew
    converge(h)
    assert len(h.client.list(Pod, "default").items) == 20


def test_recreate_removes_old_pods_before_new_ones(h: Harness) -> None:
    h.client.create(deployment(replicas=3, strategy="Recreate"))
    converge(h)
    set_image(h, "nginx:2")
    h.run()
    assert len(rss(h)) == 1  # no new ReplicaSet while old pods exist
    assert rss(h)[0].spec.replicas == 0
    h.run()
    assert len(rss(h)) == 1  # old pods are still terminating
    h.finish_deletions()
    h.run()
    old, new = rss(h)
    assert new.spec.replicas == 3 and old.spec.replicas == 0
    converge(h)


def test_pause_and_resume(h: Harness) -> None:
    h.client.create(deployment(replicas=2))
    converge(h)
    d = get(h)
    d.spec.paused = True
    h.client.update(d)
    h.run()
    prog = du.get_condition(get(h).status, du.PROGRESSING)
    assert prog is not None and (prog.status, prog.reason) == ("Unknown", "DeploymentPaused")
    set_image(h, "nginx:2")
    d = get(h)
    d.spec.replicas = 4
    h.client.update(d)
    converge_paused = [step(h) for _ in range(5)]
    assert converge_paused
    assert len(rss(h)) == 1 and rss(h)[0].spec.replicas == 4  # scaled, not rolled
    d = get(h)
    d.spec.paused = False
    h.client.update(d)
    converge(h)
    assert len(rss(h)) == 2
    assert all(p.spec.containers[0].image == "nginx:2" for p in h.client.list(Pod, "default").items)


def test_restart_annotation_triggers_a_new_replicaset(h: Harness) -> None:
    h.client.create(deployment(replicas=2))
    converge(h)
    d = get(h)
    d.spec.template.metadata.annotations = {du.RESTARTED_AT_ANNOTATION: "2026-11-27T20:00:00Z"}
    h.client.update(d)
    converge(h)
    assert len(rss(h)) == 2 and rss(h)[0].spec.replicas == 0


def test_revision_history_limit_cleans_old_replicasets(h: Harness) -> None:
    h.client.create(deployment(replicas=1, revision_history_limit=1))
    converge(h)
    for i in range(2, 5):
        set_image(h, f"nginx:{i}")
        converge(h)
        h.run()
    revisions = [du.revision_of(rs) for rs in rss(h)]
    assert revisions == [3, 4]


def test_progress_deadline_exceeded_keeps_old_pods(h: Harness) -> None:
    h.client.create(deployment(replicas=4, max_surge=1, max_unavailable=0, progress_deadline_seconds=1))
    converge(h)
    set_image(h, "broken:1")
    for _ in range(3):
        step(h, ready=False)  # the new version never becomes ready
        old_ready = sum(1 for p in h.client.list(Pod, "default").items if is_pod_ready(p))
        assert old_ready == 4
    time.sleep(2.2)
    h.run()
    d = get(h)
    prog = du.get_condition(d.status, du.PROGRESSING)
    assert prog is not None and (prog.status, prog.reason) == ("False", "ProgressDeadlineExceeded")
    assert "has timed out progressing" in (prog.message or "")
    old, new = rss(h)
    assert old.spec.replicas == 4 and new.spec.replicas == 1


def test_adopts_matching_orphan_replicaset(h: Harness) -> None:
    d = deployment(replicas=2)
    template = d.spec.template.copy_deep()
    pod_hash = du.compute_hash(template)
    template.metadata.labels = {**(template.metadata.labels or {}), du.POD_TEMPLATE_HASH_LABEL: pod_hash}
    orphan = ReplicaSet(metadata=ObjectMeta(name=f"web-{pod_hash}", namespace="default",
                                            labels=dict(template.metadata.labels)),
                        spec=ReplicaSetSpec(replicas=2, template=template, selector=LabelSelector(
                            match_labels={"app": "web", du.POD_TEMPLATE_HASH_LABEL: pod_hash})))
    h.client.create(orphan)
    created = h.client.create(d)
    converge(h)
    (rs,) = rss(h)
    assert rs.metadata.name == orphan.metadata.name
    assert rs.metadata.controller_ref().uid == created.metadata.uid  # type: ignore[union-attr]
