"""The scheduler against the real API server (node objects only, no kubelets)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mkube.api.quantity import cpu_millis
from mkube.api.types import Event, Pod
from mkube.client import Client
from mkube.scheduler.scheduler import Scheduler
from tests.fixtures.apiserver import ApiServerProcess
from tests.unit.scheduler.builders import make_node, make_pod

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(api_server: ApiServerProcess) -> Iterator[Client]:
    c = Client(api_server.url)
    yield c
    c.close()


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def new_pod(name: str, **kw: object) -> Pod:
    pod = make_pod(name, **kw)  # type: ignore[arg-type]
    pod.metadata.uid = None
    return pod


def create_pods(client: Client, pods: list[Pod], threads: int = 4) -> None:
    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(client.create, pods))


def bound(client: Client) -> dict[str, str]:
    return {p.metadata.name or "": p.spec.node_name for p in client.list(Pod).items if p.spec.node_name}


def assert_not_overcommitted(client: Client, cpu_per_node: dict[str, int]) -> Counter[str]:
    used: Counter[str] = Counter()
    for p in client.list(Pod).items:
        if p.spec.node_name:
            for c in p.spec.containers:
                used[p.spec.node_name] += cpu_millis((c.resources.requests or {}).get("cpu", 0)
                                                     if c.resources else 0)
    for node, millis in used.items():
        assert millis <= cpu_per_node[node], f"{node} overcommitted: {millis}m > {cpu_per_node[node]}m"
    return used


@pytest.fixture
def scheduler(client: Client) -> Iterator[Scheduler]:
    s = Scheduler(client, seed=1)
    yield s
    s.stop()


def test_pods_land_only_on_nodes_that_fit(client: Client, scheduler: Scheduler) -> None:
    client.create(make_node("small", cpu="500m"))
    client.create(make_node("cordoned", cpu="8", unschedulable=True))
    client.create(make_node("notready", cpu="8", ready="False"))
    client.create(make_node("gpu", cpu="8", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
                            labels={"accel": "gpu"}))
    client.create(make_node("big", cpu="8", labels={"disk": "ssd"}))
    scheduler.start()
    create_pods(client, [new_pod(f"web-{i}", cpu="1") for i in range(4)])
    client.create(new_pod("gpu-job", cpu="1", nodeSelector={"accel": "gpu"},
                          tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu"}]))
    client.create(new_pod("tiny", cpu="100m", nodeSelector={"kubernetes.io/hostname": "small"}))
    client.create(new_pod("nowhere", cpu="1", nodeSelector={"disk": "nvme"}))
    wait_for(lambda: len(bound(client)) == 6, 10, "6 pods bound")
    placed = bound(client)
    assert {placed[f"web-{i}"] for i in range(4)} == {"big"}
    assert placed["gpu-job"] == "gpu"
    assert placed["tiny"] == "small"

    def nowhere_condition() -> str | None:
        for c in client.get(Pod, "nowhere", "default").status.conditions or ():
            if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable":
                return c.message
        return None

    wait_for(lambda: nowhere_condition() is not None, 10, "PodScheduled=False on the unschedulable pod")
    assert nowhere_condition() == (
        "0/5 nodes are available: 1 node(s) were not ready, 1 node(s) were unschedulable, "
        "3 node(s) didn't match Pod's node affinity/selector.")
    scheduler.recorder.flush()
    scheduled = {e.involved_object.name: e.message for e in client.list(Event).items if e.reason == "Scheduled"}
    assert scheduled["gpu-job"] == "Successfully assigned default/gpu-job to gpu"


def test_burst_of_500_onto_room_for_400_then_a_new_node(client: Client, scheduler: Scheduler) -> None:
    capacity = {f"node-{i}": 4000 for i in range(10)}  # 4 cpu each: 40 pods of 100m per node
    for name in capacity:
        client.create(make_node(name, cpu="4", memory="64Gi"))
    scheduler.start()
    create_pods(client, [new_pod(f"burst-{i:03d}", cpu="100m", memory="16Mi") for i in range(500)])
    wait_for(lambda: len(bound(client)) >= 400, 60, "400 pods bound")

    def failed_events() -> dict[str, str]:
        return {e.involved_object.name or "": e.message or ""
                for e in client.list(Event).items if e.reason == "FailedScheduling"}

    wait_for(lambda: len(failed_events()) >= 100, 30, "FailedScheduling events for the 100 pending pods")
    placed = bound(client)
    assert len(placed) == 400
    used = assert_not_overcommitted(client, capacity)
    assert sorted(used.values()) == [4000] * 10
    pending = {p.metadata.name for p in client.list(Pod).items if not p.spec.node_name}
    assert len(pending) == 100
    failed = failed_events()
    assert set(failed) == pending
    assert set(failed.values()) == {"0/10 nodes are available: 10 Insufficient cpu."}

    # one more node with room for exactly the pending 100
    t0 = time.monotonic()
    capacity["node-new"] = 10000
    client.create(make_node("node-new", cpu="10", memory="64Gi"))
    wait_for(lambda: len(bound(client)) == 500, 2.0, "the 100 pending pods bound within 2 s")
    elapsed = time.monotonic() - t0
    assert Counter(bound(client).values())["node-new"] == 100
    assert_not_overcommitted(client, capacity)
    print(f"\n100 pending pods bound {elapsed:.2f}s after the node was added")


class PodWatcher:
    """Records every nodeName each pod ever had, from a watch opened before the test acts."""

    def __init__(self, client: Client) -> None:
        self.history: dict[str, list[str]] = {}
        listing = client.list(Pod)
        self._watch = client.watch(Pod, resource_version=listing.resource_version, timeout_seconds=600)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for ev in self._watch:
            if ev.type == "BOOKMARK":
                continue
            node = ev.object.spec.node_name
            seen = self.history.setdefault(ev.object.metadata.name or "", [])
            if node and (not seen or seen[-1] != node):
                seen.append(node)

    def close(self) -> None:
        self._watch.close()


def start_scheduler_process(url: str, log_path: Path) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([sys.executable, "-m", "mkube.scheduler.main", "--server", url, "--seed", "7"],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    log.close()
    return proc


def test_scheduler_killed_mid_burst_loses_no_pod_and_binds_none_twice(
        client: Client, api_server: ApiServerProcess, tmp_path: Path) -> None:
    capacity = {f"node-{i}": 4000 for i in range(10)}
    for name in capacity:
        client.create(make_node(name, cpu="4", memory="64Gi"))
    watcher = PodWatcher(client)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(start_scheduler_process(api_server.url, tmp_path / "scheduler-1.log"))
        creator = threading.Thread(target=create_pods, args=(client, [new_pod(f"p-{i:03d}", cpu="100m")
                                                                      for i in range(350)]))
        creator.start()  # the burst goes on while the scheduler is killed
        try:
            wait_for(lambda: sum(1 for h in watcher.history.values() if h) >= 60, 30,
                     "the first scheduler to bind some pods")
            procs[0].kill()  # SIGKILL mid-burst: no shutdown code runs
            procs[0].wait(10)
        finally:
            creator.join(60)
        at_kill = len(bound(client))
        assert at_kill < 350, "the burst finished before the kill; the test proves nothing"
        procs.append(start_scheduler_process(api_server.url, tmp_path / "scheduler-2.log"))
        wait_for(lambda: len(bound(client)) == 350, 60, "every pod bound after the restart")
        time.sleep(0.5)  # let the watch catch up
        assert_not_overcommitted(client, capacity)
        placed = bound(client)
        assert all(watcher.history.get(name) == [node] for name, node in placed.items()), \
            {n: h for n, h in watcher.history.items() if len(h) != 1}
        print(f"\n{at_kill} pods bound before kill -9, {350 - at_kill} after the restart")
        procs[1].terminate()  # SIGTERM: a clean stop
        assert procs[1].wait(15) == 0
    finally:
        watcher.close()
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)


def test_start_waits_for_an_unreachable_api_server_until_aborted() -> None:
    from tests.fixtures.apiserver import free_port

    unreachable = Client(f"http://127.0.0.1:{free_port()}", timeout=1.0)
    s = Scheduler(unreachable)
    abort = threading.Event()
    threading.Timer(0.5, abort.set).start()
    t0 = time.monotonic()
    try:
        assert s.start(sync_timeout=None, abort=abort) is False
        assert time.monotonic() - t0 < 10
        with pytest.raises(TimeoutError):
            Scheduler(unreachable).start(sync_timeout=0.3)
    finally:
        unreachable.close()
