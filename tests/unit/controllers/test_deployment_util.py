"""Rolling-update math, hashing, revisions and status (deployment_util), no I/O."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from mkube.api.timeutil import format_time, now
from mkube.api.types import (
    Container,
    ObjectMeta,
    PodSpec,
    PodTemplateSpec,
    ReplicaSet,
    ReplicaSetSpec,
    ReplicaSetStatus,
    ResourceRequirements,
)
from mkube.controllers import deployment_util as du
from tests.unit.controllers.harness import deployment


def rs(name: str, replicas: int, available: int | None = None, revision: int | None = None,
       age: int = 0, image: str = "nginx:1", max_replicas: int | None = None) -> ReplicaSet:
    ann = {}
    if revision is not None:
        ann[du.REVISION_ANNOTATION] = str(revision)
    if max_replicas is not None:
        ann[du.MAX_REPLICAS_ANNOTATION] = str(max_replicas)
    return ReplicaSet(
        metadata=ObjectMeta(name=name, namespace="default", uid=f"uid-{name}", annotations=ann or None,
                            creation_timestamp=format_time(now() - timedelta(seconds=1000 - age))),
        spec=ReplicaSetSpec(replicas=replicas, template=PodTemplateSpec(
            metadata=ObjectMeta(labels={"app": "web"}), spec=PodSpec(containers=[Container(name="app", image=image)]))),
        status=ReplicaSetStatus(replicas=replicas, ready_replicas=available if available is not None else replicas,
                                available_replicas=available if available is not None else replicas))


def test_hash_is_stable_short_and_uses_the_safe_alphabet() -> None:
    t = deployment().spec.template
    h = du.compute_hash(t)
    assert h == du.compute_hash(t.copy_deep())
    assert re.fullmatch(r"[bcdfghjklmnpqrstvwxz2456789]{1,10}", h)
    other = t.copy_deep()
    other.spec.containers[0].image = "nginx:2"
    assert du.compute_hash(other) != h
    assert du.compute_hash(t, collision_count=1) != h


def test_hash_ignores_the_pod_template_hash_label() -> None:
    t = deployment().spec.template
    labelled = t.copy_deep()
    labelled.metadata.labels = {**(labelled.metadata.labels or {}), du.POD_TEMPLATE_HASH_LABEL: "abc"}
    assert du.compute_hash(labelled) == du.compute_hash(t)
    assert du.equal_ignore_hash(labelled, t)


def test_empty_fields_do_not_change_the_hash() -> None:
    """kubectl sends `resources: {}` and `creationTimestamp: null` (Go zero values)."""
    t = deployment().spec.template
    noisy = PodTemplateSpec.from_dict({**t.to_dict(), "metadata": {**t.metadata.to_dict(), "creationTimestamp": None}})
    noisy.spec.containers[0].resources = ResourceRequirements()
    noisy.spec.containers[0].env = []
    assert noisy.to_dict() != t.to_dict()
    assert du.compute_hash(noisy) == du.compute_hash(t) and du.equal_ignore_hash(noisy, t)


def test_restarted_at_annotation_changes_the_hash() -> None:
    t = deployment().spec.template
    restarted = t.copy_deep()
    restarted.metadata.annotations = {du.RESTARTED_AT_ANNOTATION: "2026-01-01T00:00:00Z"}
    assert du.compute_hash(restarted) != du.compute_hash(t)


@pytest.mark.parametrize(("surge", "unavail", "replicas", "expected"), [
    ("25%", "25%", 10, (3, 2)),      # surge rounds up, unavailable down
    ("25%", "25%", 4, (1, 1)),
    ("10%", "10%", 5, (1, 0)),
    (0, 0, 10, (0, 1)),              # never both zero
    ("0%", "0%", 3, (0, 1)),
    (2, 1, 10, (2, 1)),
    ("50%", "0", 3, (2, 0)),
    ("100%", "100%", 7, (7, 7)),
])
def test_fenceposts(surge: object, unavail: object, replicas: int, expected: tuple[int, int]) -> None:
    assert du.resolve_fenceposts(surge, unavail, replicas) == expected  # type: ignore[arg-type]


def test_max_unavailable_never_exceeds_replicas_and_recreate_has_none() -> None:
    assert du.max_unavailable(deployment(replicas=2, max_unavailable=5)) == 2
    assert du.max_unavailable(deployment(replicas=0)) == 0
    assert du.max_surge(deployment(strategy="Recreate")) == 0
    assert du.max_unavailable(deployment(strategy="Recreate")) == 0


def test_new_rs_replicas_respects_max_surge() -> None:
    d = deployment(replicas=10, max_surge=3, max_unavailable=2)
    old = rs("old", 10)
    new = rs("new", 0, age=10)
    assert du.new_rs_replicas(d, [old, new], new) == 3  # 10 + 3 total
    new = rs("new", 3, available=0, age=10)
    assert du.new_rs_replicas(d, [old, new], new) == 3  # 13 pods already: no more
    old = rs("old", 8)
    assert du.new_rs_replicas(d, [old, new], new) == 5
    assert du.new_rs_replicas(deployment(replicas=10, strategy="Recreate"), [old, new], new) == 10


def test_new_rs_waits_for_old_pods_to_go() -> None:
    """Old RS scaled 10 -> 8 still has 10 pods: the new one may not grow past 12 - 10."""
    d = deployment(replicas=10, max_surge=2, max_unavailable=1)
    old = rs("old", 8)
    old.status.replicas = 10
    new = rs("new", 2, available=2, age=10)
    assert du.new_rs_replicas(d, [old, new], new) == 2
    old.status.replicas = 8  # the pods went
    assert du.new_rs_replicas(d, [old, new], new) == 4
    # the pod cache knows first: 2 of old's 10 pods are being deleted
    old.status.replicas = 10
    assert du.new_rs_replicas(d, [old, new], new, {"uid-old": 8, "uid-new": 2}) == 4


def test_old_scale_down_keeps_min_available() -> None:
    d = deployment(replicas=10, max_surge=3, max_unavailable=2)
    old = rs("old", 10)
    new = rs("new", 3, available=0, age=10)
    # 13 pods, min available 8, 3 new unavailable -> may remove 13 - 8 - 3 = 2
    assert du.plan_old_scale_down(d, [old, new], [old], new) == {"old": 8}
    # the new pods became available: 13 available, keep 8 -> remove 5
    new = rs("new", 3, available=3, age=10)
    assert du.plan_old_scale_down(d, [old, new], [old], new) == {"old": 5}


def test_old_scale_down_removes_unhealthy_old_pods_first() -> None:
    d = deployment(replicas=10, max_surge=0, max_unavailable=1)
    oldest = rs("a", 4, available=1, age=0)   # 3 unhealthy
    older = rs("b", 6, available=6, age=5)
    new = rs("new", 0, age=10)
    plan = du.plan_old_scale_down(d, [oldest, older, new], [oldest, older], new)
    # max scaled down = 10 - 9 - 0 = 1, taken from the unhealthy replicas of "a"
    assert plan == {"a": 3}


def test_old_scale_down_does_not_trust_a_status_that_lags_a_scale_down() -> None:
    """Old RS just scaled 10 -> 8: its status still says 10 available (2 pods being deleted)."""
    d = deployment(replicas=10, max_surge=3, max_unavailable=2)
    old = rs("old", 8, available=10)
    new = rs("new", 3, available=1, age=10)
    # really available: 8 old + 1 new = 9; minimum 8 -> at most 1 more old pod may go
    assert du.plan_old_scale_down(d, [old, new], [old], new) == {"old": 7}


def test_old_scale_down_does_nothing_while_new_pods_are_unavailable() -> None:
    d = deployment(replicas=10, max_surge=3, max_unavailable=0)
    old = rs("old", 10)
    new = rs("new", 3, available=0, age=10)
    assert du.plan_old_scale_down(d, [old, new], [old], new) == {}


def test_rolling_update_simulation_never_breaks_the_bounds() -> None:
    """Step the controller math with instantly-ready pods: bounds hold, rollout completes."""
    for surge, unavail in [("25%", "25%"), (0, 1), (1, 0), ("50%", "0%"), (3, 2)]:
        d = deployment(replicas=10, max_surge=surge, max_unavailable=unavail)
        s, u = du.resolve_fenceposts(surge, unavail, 10)  # type: ignore[arg-type]
        old = rs("old", 10)
        new = rs("new", 0, age=10)
        for _ in range(50):
            total_spec = (old.spec.replicas or 0) + (new.spec.replicas or 0)
            assert total_spec <= 10 + s
            available = (old.status.available_replicas or 0) + (new.status.available_replicas or 0)
            assert available >= 10 - u
            if new.spec.replicas == 10 and old.spec.replicas == 0:
                break
            want = du.new_rs_replicas(d, [old, new], new)
            if want != new.spec.replicas:
                new.spec.replicas = want
            else:
                plan = du.plan_old_scale_down(d, [old, new], du.filter_active([old]), new)
                if "old" in plan:
                    old.spec.replicas = plan["old"]
            # pods appear/disappear and become available at once
            for r in (old, new):
                r.status.replicas = r.status.available_replicas = r.status.ready_replicas = r.spec.replicas or 0
        else:
            pytest.fail(f"rollout with surge={surge} unavailable={unavail} did not finish")


def test_proportional_scaling_during_a_rollout() -> None:
    # 10 replicas, surge 3: old 8, new 5 (13 total). Scale to 20 -> allowed 20 + 5 = 25.
    d = deployment(replicas=20, max_surge=3, max_unavailable=2)
    d.spec.strategy.rolling_update.max_surge = 5  # type: ignore[union-attr]
    old = rs("old", 8, max_replicas=13)
    new = rs("new", 5, max_replicas=13, age=10)
    sizes, op = du.plan_proportional_scale(d, new, [old])
    assert op == "up"
    assert sum(sizes.values()) == 25
    assert sizes["old"] > 8 and sizes["new"] > 5
    # scale down to 5: surge 5 -> allowed 10
    d.spec.replicas = 5
    sizes, op = du.plan_proportional_scale(d, new, [old])
    assert op == "down"
    assert sum(sizes.values()) == 10


def test_find_new_and_revisions() -> None:
    d = deployment(image="nginx:1")
    a = rs("a", 0, revision=1, image="nginx:1")
    b = rs("b", 10, revision=2, image="nginx:2", age=5)
    assert du.find_new_rs(d, [b, a]) is a
    assert du.max_revision([a, b]) == 2
    # promoting "a" (a rollback) gives it revision 3 and remembers 1
    copy = a.copy_deep()
    changed, promoted = du.set_new_rs_annotations(d, copy, 3, exists=True)
    assert changed and promoted == 1
    assert copy.metadata.annotations[du.REVISION_ANNOTATION] == "3"  # type: ignore[index]
    assert copy.metadata.annotations[du.REVISION_HISTORY_ANNOTATION] == "1"  # type: ignore[index]
    # already the newest: nothing changes
    assert du.set_new_rs_annotations(d, copy, 3, exists=True) == (False, None)


def test_status_and_conditions() -> None:
    d = deployment(replicas=10, max_surge=3, max_unavailable=2)
    d.metadata.generation = 4
    old = rs("old", 5, available=5)
    new = rs("new", 5, available=3, age=10)
    status = du.calculate_status([old, new], new, d)
    assert (status.replicas, status.updated_replicas, status.available_replicas, status.unavailable_replicas,
            status.observed_generation) == (10, 5, 8, 2, 4)
    avail = du.get_condition(status, du.AVAILABLE)
    assert avail is not None and avail.status == "True" and avail.reason == du.MIN_REPLICAS_AVAILABLE
    new.status.available_replicas = 1
    status = du.calculate_status([old, new], new, d)
    assert du.get_condition(status, du.AVAILABLE).status == "False"  # type: ignore[union-attr]
    assert not du.deployment_complete(d, status)


def test_progress_deadline() -> None:
    d = deployment(progress_deadline_seconds=5)
    status = d.status.copy_deep()
    du.set_condition(status, du.new_condition(du.PROGRESSING, "True", du.RS_UPDATED, "x",
                                              at=now() - timedelta(seconds=10)))
    assert du.deployment_timed_out(d, status)
    du.set_condition(status, du.new_condition(du.PROGRESSING, "True", du.NEW_RS_AVAILABLE, "done"))
    assert not du.deployment_timed_out(d, status)
    assert du.progress_deadline(deployment(progress_deadline_seconds=du.MAX_INT32)) is None


def test_set_condition_keeps_transition_time_when_status_unchanged() -> None:
    status = deployment().status.copy_deep()
    du.set_condition(status, du.new_condition(du.PROGRESSING, "True", du.NEW_RS_CREATED, "a",
                                              at=now() - timedelta(seconds=100)))
    first = du.get_condition(status, du.PROGRESSING)
    assert first is not None
    du.set_condition(status, du.new_condition(du.PROGRESSING, "True", du.RS_UPDATED, "b"))
    second = du.get_condition(status, du.PROGRESSING)
    assert second is not None and second.reason == du.RS_UPDATED
    assert second.last_transition_time == first.last_transition_time
    assert second.last_update_time != first.last_update_time
