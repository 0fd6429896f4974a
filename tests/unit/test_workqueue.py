"""WorkQueue and worker loops: client-go semantics."""

from __future__ import annotations

import threading
import time

import pytest

from mkube.api.errors import Conflict
from mkube.client.controller import drain, process_next, run_workers
from mkube.client.workqueue import LONGEST_WAIT, WorkQueue


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_adding_a_queued_key_is_a_noop() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add("b")
    q.add("a")
    assert len(q) == 2
    assert [q.get(0), q.get(0), q.get(0)] == ["a", "b", None]


def test_key_added_while_processing_is_requeued_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get(0) == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0  # never handed out twice at once
    assert q.get(0) is None
    q.done("a")
    assert len(q) == 1
    assert q.get(0) == "a"
    q.done("a")
    assert q.get(0) is None


def test_done_without_readd_does_not_requeue() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get(0) == "a"
    q.done("a")
    assert len(q) == 0


def blocked_get_then_add(q: WorkQueue[str], key: str, got: list[str | None]) -> None:
    """A thread blocks in q.get(); `key` is added while it waits; its result lands in `got`."""
    getter = threading.Thread(target=lambda: got.append(q.get()))
    getter.start()
    time.sleep(0.1)
    q.add(key)
    getter.join(5)


def test_get_blocks_until_add_and_shutdown_wakes_getters() -> None:
    q: WorkQueue[str] = WorkQueue()
    got: list[str | None] = []
    blocked_get_then_add(q, "x", got)
    assert got == ["x"]

    waiters = [threading.Thread(target=lambda: got.append(q.get())) for _ in range(3)]
    for w in waiters:
        w.start()
    time.sleep(0.05)
    q.shutdown()
    for w in waiters:
        w.join(2)
        assert not w.is_alive()
    assert got == ["x", None, None, None]
    q.add("y")  # ignored after shutdown
    assert q.get(0) is None
    assert q.shutting_down


def test_get_timeout_returns_none() -> None:
    q: WorkQueue[str] = WorkQueue()
    start = time.monotonic()
    assert q.get(timeout=0.05) is None
    assert time.monotonic() - start >= 0.04


def test_add_after_waits_and_earliest_time_wins() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("a", 10)
    q.add_after("a", 30)  # later than the pending 10 s: ignored
    q.add_after("b", 5)
    assert q.get(0) is None
    assert q.pending_delayed() == 2
    clock.now += 5
    assert q.get(0) == "b"
    clock.now += 4.9
    assert q.get(0) is None
    clock.now += 0.1
    assert q.get(0) == "a"
    q.done("a")
    q.add_after("c", 30)
    q.add_after("c", 1)  # earlier than the pending 30 s: wins
    clock.now += 1
    assert q.get(0) == "c"
    q.done("c")
    clock.now += 100
    assert q.get(0) is None  # the superseded entry does not fire again


def test_absurd_delays_are_clamped_to_a_day() -> None:
    """A delay computed from a far-future time a client stored (year 9999: 2.5e11 s) or a
    NaN used to overflow Condition.wait and kill the worker thread."""
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("far", 2.5e11)
    q.add_after("nan", float("nan"))
    q.add_after("inf", float("inf"))
    assert q.get(0) is None
    clock.now += LONGEST_WAIT - 1
    assert q.get(0) is None
    clock.now += 1
    assert sorted(k for k in (q.get(0), q.get(0), q.get(0)) if k) == ["far", "inf", "nan"]


def test_a_blocked_get_survives_a_far_future_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("far", 2.5e11)  # Condition.wait(2.5e11) raises OverflowError
    got: list[str | None] = []
    blocked_get_then_add(q, "now", got)
    assert got == ["now"]


def test_a_failing_queue_does_not_kill_the_workers() -> None:
    class Flaky(WorkQueue[str]):
        failures = 0

        def get(self, timeout: float | None = None) -> str | None:
            if self.failures < 2:
                self.failures += 1
                raise OverflowError("boom")
            return super().get(timeout)

    q = Flaky()
    seen: list[str] = []
    threads = run_workers(q, seen.append, n=1, name="flaky")
    q.add("a")
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
    q.shutdown()
    for t in threads:
        t.join(5)
    assert seen == ["a"]


def test_add_after_with_real_time_wakes_blocked_get() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", 0.05)
    start = time.monotonic()
    assert q.get(timeout=2) == "a"
    assert 0.04 <= time.monotonic() - start < 1.5


def test_add_after_zero_is_immediate_and_dedups_with_queue() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add_after("a", 0)
    assert len(q) == 1


def test_rate_limited_backoff_doubles_caps_and_forget_resets() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock, base_delay=0.005, max_delay=0.02)
    q.add_rate_limited("a")
    assert q.num_requeues("a") == 1
    assert q.get(0) is None
    clock.now += 0.005
    assert q.get(0) == "a"
    q.done("a")
    q.add_rate_limited("a")  # 10 ms
    clock.now += 0.009
    assert q.get(0) is None
    clock.now += 0.001
    assert q.get(0) == "a"
    q.done("a")
    assert q.rate_limiter.when("a") == 0.02  # 3rd failure: 20 ms
    assert q.rate_limiter.when("a") == 0.02  # capped
    assert q.num_requeues("a") == 4
    q.forget("a")
    assert q.num_requeues("a") == 0
    assert q.rate_limiter.when("a") == 0.005


def test_default_backoff_is_5ms_to_5min() -> None:
    q: WorkQueue[str] = WorkQueue()
    delays = [q.rate_limiter.when("k") for _ in range(30)]
    assert delays[0] == 0.005
    assert delays[1] == 0.01
    assert delays[-1] == 300.0


def test_concurrent_workers_never_process_one_key_twice() -> None:
    q: WorkQueue[int] = WorkQueue()
    active: set[int] = set()
    lock = threading.Lock()
    violations: list[int] = []
    processed: list[int] = []

    def sync(key: int) -> None:
        with lock:
            if key in active:
                violations.append(key)
            active.add(key)
        time.sleep(0.001)
        with lock:
            active.discard(key)
            processed.append(key)

    threads = run_workers(q, sync, n=8)
    for _ in range(20):
        for k in range(10):
            q.add(k)
        time.sleep(0.002)
    deadline = time.monotonic() + 5
    while (len(q) or any(k in active for k in range(10))) and time.monotonic() < deadline:
        time.sleep(0.01)
    q.shutdown()
    for t in threads:
        t.join(2)
    assert violations == []
    assert set(processed) == set(range(10))


def test_run_workers_retries_failures_with_backoff_then_forgets() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.001)
    attempts: list[float] = []
    ok = threading.Event()

    def sync(key: str) -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 4:
            raise Conflict("pods", key, "try again")
        ok.set()

    threads = run_workers(q, sync, n=2, name="test")
    q.add("default/a")
    assert ok.wait(5)
    time.sleep(0.02)
    assert len(attempts) == 4
    assert q.num_requeues("default/a") == 0  # forgotten after success
    q.shutdown()
    for t in threads:
        t.join(2)
        assert not t.is_alive()


def test_process_next_drops_after_max_retries() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    calls: list[str] = []

    def sync(key: str) -> None:
        calls.append(key)
        raise RuntimeError("boom")

    q.add("k")
    for _ in range(3):
        clock.now += 1000
        assert process_next(q, sync, timeout=0, max_retries=2)
    assert calls == ["k", "k", "k"]
    clock.now += 1000
    assert q.get(0) is None  # dropped after 2 retries
    assert q.num_requeues("k") == 0


def test_drain_processes_ready_keys_in_order() -> None:
    q: WorkQueue[str] = WorkQueue()
    seen: list[str] = []
    for k in ("b", "a", "c", "a"):
        q.add(k)
    assert drain(q, seen.append) == 3
    assert seen == ["b", "a", "c"]


@pytest.mark.parametrize("n", [1, 4])
def test_shutdown_stops_workers(n: int) -> None:
    q: WorkQueue[str] = WorkQueue()
    threads = run_workers(q, lambda k: None, n=n)
    q.shutdown()
    for t in threads:
        t.join(2)
        assert not t.is_alive()
