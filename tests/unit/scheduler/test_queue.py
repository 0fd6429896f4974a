"""SchedulingQueue: order, backoff, parking and moving unschedulable pods."""

from __future__ import annotations

import threading
import time

from mkube.scheduler.framework import PodInfo
from mkube.scheduler.queue import ACTIVE, BACKOFF, IN_FLIGHT, UNSCHEDULABLE, QueuedPod, SchedulingQueue
from tests.unit.scheduler.builders import make_pod


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pod(name: str, priority: int | None = None, **kw: object) -> PodInfo:
    return PodInfo(make_pod(name, priority=priority, **kw))  # type: ignore[arg-type]


def test_priority_then_age() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    for name, prio in [("old-low", 0), ("high", 10), ("new-low", 0), ("mid", 5)]:
        q.add(pod(name, prio))
        clock.now += 1
    order = [q.pop(timeout=0).key for _ in range(4)]  # type: ignore[union-attr]
    assert order == ["default/high", "default/mid", "default/old-low", "default/new-low"]
    assert q.pop(timeout=0) is None


def test_backoff_doubles_to_ten_seconds() -> None:
    q = SchedulingQueue()
    assert [q.backoff_duration(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_failed_pod_waits_out_its_backoff() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.add(pod("p"))
    qp = q.pop(timeout=0)
    assert qp is not None and q.where("default/p") == IN_FLIGHT
    q.requeue_backoff(qp)
    assert q.where("default/p") == BACKOFF
    assert q.pop(timeout=0) is None
    clock.now += 1.0
    again = q.pop(timeout=0)
    assert again is qp and again.attempts == 2
    q.requeue_backoff(again)
    clock.now += 1.5
    assert q.pop(timeout=0) is None  # second failure: 2 s
    clock.now += 0.5
    assert q.pop(timeout=0) is qp


def test_unschedulable_pods_park_until_a_cluster_event() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.add(pod("p"))
    qp = q.pop(timeout=0)
    assert qp is not None
    q.requeue_unschedulable(qp)
    assert q.where("default/p") == UNSCHEDULABLE
    clock.now += 30
    assert q.pop(timeout=0) is None
    assert q.move_all("NodeAdd") == 1
    assert q.where("default/p") == ACTIVE  # backoff (1 s) long over
    assert q.pop(timeout=0) is qp


def test_moved_pod_still_in_backoff_goes_to_backoff() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.add(pod("p"))
    qp = q.pop(timeout=0)
    assert qp is not None
    q.requeue_unschedulable(qp)
    clock.now += 0.2
    q.move_all("NodeAdd")
    assert q.where("default/p") == BACKOFF
    clock.now += 1
    assert q.pop(timeout=0) is qp


def test_leftover_unschedulable_pods_retry_after_60_seconds() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.add(pod("p"))
    qp = q.pop(timeout=0)
    assert qp is not None
    q.requeue_unschedulable(qp)
    clock.now += 59
    assert q.pop(timeout=0) is None
    clock.now += 2
    assert q.pop(timeout=0) is qp


def test_event_during_attempt_sends_failed_pod_to_backoff_not_parking() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.add(pod("p"))
    qp = q.pop(timeout=0)
    assert qp is not None
    q.move_all("NodeAdd")  # a node arrived while we were deciding
    q.requeue_unschedulable(qp)
    assert q.where("default/p") == BACKOFF


def test_updates_deletes_and_recreation() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.add(pod("p"))
    qp = q.pop(timeout=0)
    assert qp is not None
    q.requeue_unschedulable(qp)
    # a status-only update (our own PodScheduled condition) does not move it
    status_only = make_pod("p")
    status_only.status.phase = "Pending"
    q.add(PodInfo(status_only))
    assert q.where("default/p") == UNSCHEDULABLE
    # a spec change may make it fit: move it
    clock.now += 5
    q.add(pod("p", nodeSelector={"disk": "ssd"}))
    assert q.where("default/p") == ACTIVE
    q.delete("default/p")
    assert q.pop(timeout=0) is None and len(q) == 0
    # deleted while in flight: the failed attempt does not resurrect it
    q.add(pod("r"))
    inflight = q.pop(timeout=0)
    assert inflight is not None
    q.delete("default/r")
    q.requeue_backoff(inflight)
    assert len(q) == 0
    # re-created under the same name while in flight: the new pod is queued, the old attempt dropped
    q.add(pod("s", uid="one"))
    first = q.pop(timeout=0)
    assert first is not None
    q.add(pod("s", uid="two"))
    q.requeue_unschedulable(first)
    nxt = q.pop(timeout=0)
    assert nxt is not None and nxt.pod.uid == "two"
    q.done(nxt)
    assert len(q) == 0


def test_pop_blocks_until_add_or_close() -> None:
    q = SchedulingQueue()
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(q.pop(timeout=5)))
    t.start()
    time.sleep(0.05)
    q.add(pod("p"))
    t.join(2)
    assert got and got[0] is not None
    t2 = threading.Thread(target=lambda: got.append(q.pop()))
    t2.start()
    time.sleep(0.05)
    q.close()
    t2.join(2)
    assert got[-1] is None


def test_pop_wakes_when_backoff_expires() -> None:
    q = SchedulingQueue(initial_backoff=0.1)
    q.add(pod("p"))
    qp = q.pop(timeout=0)
    assert qp is not None
    q.requeue_backoff(qp)
    t0 = time.monotonic()
    assert q.pop(timeout=2) is qp
    assert 0.05 < time.monotonic() - t0 < 1.0
    assert q.counts() == {"active": 0, "backoff": 0, "unschedulable": 0, "in-flight": 1}


def test_random_operations_keep_every_pod_in_exactly_one_place() -> None:
    import random

    clock = Clock()
    q = SchedulingQueue(clock=clock)
    rng = random.Random(3)
    inflight: dict[str, QueuedPod] = {}
    for step in range(3000):
        op = rng.random()
        name = f"p{rng.randrange(30)}"
        if op < 0.3:
            q.add(pod(name, uid=f"{name}-{rng.randrange(2)}", priority=rng.randrange(3)))
        elif op < 0.4:
            q.delete(f"default/{name}")
        elif op < 0.65:
            qp = q.pop(timeout=0)
            if qp is not None:
                inflight[qp.key] = qp
        elif op < 0.85 and inflight:
            key = rng.choice(sorted(inflight))
            finish = rng.choice([q.requeue_unschedulable, q.requeue_backoff, q.done])
            finish(inflight.pop(key))
        elif op < 0.9:
            q.move_all("event")
        else:
            clock.now += rng.random() * 20
        counts = q.counts()
        assert sum(counts.values()) == len(q)
        assert counts["unschedulable"] == len(q._parked), step
        assert all(qp.where == "unschedulable" for qp in q._parked.values())
