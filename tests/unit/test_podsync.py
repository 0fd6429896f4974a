"""Pod sync planner (pure) and executor, driven against the FakeRuntime with a fake clock."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest

from mkube.api.types import Pod
from mkube.kubelet.podspec import LABEL_GRACE
from mkube.kubelet.podsync import (
    BackOff,
    Backoff,
    CreateSandbox,
    KillContainer,
    KillSandbox,
    RemoveContainer,
    RemoveSandbox,
    StartContainer,
    SyncResult,
    execute,
    plan,
)
from mkube.kubelet.runtime.base import LABEL_POD_UID, ContainerConfig, ContainerInfo, SandboxInfo
from mkube.kubelet.runtime.fake import FakeClock, FakeRuntime

IMG = "mkube/busybox:1"


def make_pod(containers: list[dict[str, Any]] | None = None, *, policy: str = "Always",
             init: list[dict[str, Any]] | None = None, uid: str = "uid-1", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "uid": uid},
        "spec": {"restartPolicy": policy, "terminationGracePeriodSeconds": 30,
                 "containers": containers or [{"name": "app", "image": IMG}], **spec},
    }
    if init:
        body["spec"]["initContainers"] = init
    return body


class Kubelet:
    """The minimal loop an agent runs: observe by pod uid, plan, execute."""

    def __init__(self, rt: FakeRuntime, clock: FakeClock) -> None:
        self.rt, self.clock = rt, clock
        self.backoff = Backoff()
        self.pull_backoff = Backoff()

    def observe(self, uid: str) -> tuple[list[SandboxInfo], list[ContainerInfo]]:
        return self.rt.list_sandboxes({LABEL_POD_UID: uid}), self.rt.list_containers({LABEL_POD_UID: uid})

    def plan(self, pod: dict[str, Any] | None, uid: str = "uid-1", **kw: Any) -> list[Any]:
        sbs, cs = self.observe(uid)
        return plan(pod, sbs, cs, self.clock(), self.backoff, **kw)

    def sync(self, pod: dict[str, Any] | None, uid: str = "uid-1", **kw: Any) -> tuple[list[Any], SyncResult]:
        sbs, cs = self.observe(uid)
        actions = plan(pod, sbs, cs, self.clock(), self.backoff, unhealthy=kw.pop("unhealthy", ()))
        ready = [s for s in sbs if s.state == "ready"]
        current = max(ready, key=lambda s: s.attempt) if ready else None
        result = execute(actions, pod, self.rt, now=self.clock(), sandbox=current, backoff=self.backoff,
                         pull_backoff=self.pull_backoff, **kw)
        return actions, result

    def containers(self, uid: str = "uid-1", name: str | None = None) -> list[ContainerInfo]:
        cs = self.rt.list_containers({LABEL_POD_UID: uid})
        return sorted((c for c in cs if name is None or c.name == name), key=lambda c: c.attempt)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rt(clock: FakeClock) -> FakeRuntime:
    return FakeRuntime("node-1", clock=clock, images=[IMG, "mkube/busybox:2"])


@pytest.fixture
def kl(rt: FakeRuntime, clock: FakeClock) -> Kubelet:
    return Kubelet(rt, clock)


def kinds(actions: list[Any]) -> list[str]:
    return [type(a).__name__ for a in actions]


def no_gc(actions: list[Any]) -> list[Any]:
    """The actions without the removal of superseded attempts (garbage collection)."""
    return [a for a in actions if not (isinstance(a, RemoveContainer) and a.reason.startswith("superseded"))]


# --------------------------------------------------------------------------- basics


def test_fresh_pod_creates_sandbox_then_starts_containers_and_converges(kl: Kubelet) -> None:
    pod = make_pod([{"name": "app", "image": IMG, "ports": [{"containerPort": 8080}]},
                    {"name": "side", "image": IMG}])
    actions, result = kl.sync(pod)
    assert actions[0] == CreateSandbox(0, "no pod sandbox")
    assert [(a.name, a.attempt) for a in actions[1:]] == [("app", 0), ("side", 0)]
    assert result.started == ["app", "side"] and not result.waiting
    assert result.sandbox is not None and result.sandbox.ports[8080] > 0
    assert {c.name: c.state for c in kl.containers()} == {"app": "running", "side": "running"}
    # Level-triggered: nothing more to do, however often it is asked.
    assert kl.plan(pod) == [] and kl.plan(pod) == []


def test_a_restarted_kubelet_adopts_running_pods(kl: Kubelet, rt: FakeRuntime, clock: FakeClock) -> None:
    pod = make_pod()
    kl.sync(pod)
    fresh = Kubelet(rt, clock)  # no memory of the past
    assert fresh.plan(pod) == []


def test_plan_is_pure(kl: Kubelet, clock: FakeClock, rt: FakeRuntime) -> None:
    rt.script("app", exit_code=1, after_seconds=1)
    pod = make_pod()
    kl.sync(pod)
    clock.advance(2)
    before = copy.deepcopy(pod)
    first, second = kl.plan(pod), kl.plan(pod)
    assert first == second and pod == before
    key = next(a.backoff_key for a in first if isinstance(a, StartContainer))
    assert key is not None and kl.backoff.delay(key) == 0


def test_accepts_pod_models_and_dicts(kl: Kubelet) -> None:
    sbs, cs = kl.observe("uid-1")
    assert plan(Pod.from_dict(make_pod()), sbs, cs, 0.0) == plan(make_pod(), sbs, cs, 0.0)


# --------------------------------------------------------------------------- restart policies and back-off


def crash_loop_delays(kl: Kubelet, clock: FakeClock, pod: dict[str, Any], restarts: int,
                      run_s: float = 1.0) -> list[float]:
    """Drive a crashing container; return how long each restart waited after its exit."""
    kl.sync(pod)
    delays: list[float] = []
    while len(delays) < restarts:
        clock.advance(run_s)  # the container runs, then exits
        exited_at = clock()
        while True:
            actions, _ = kl.sync(pod)
            if any(isinstance(a, StartContainer) for a in actions):
                delays.append(round(clock() - exited_at, 3))
                break
            assert kinds(no_gc(actions)) == ["BackOff"], actions
            clock.advance(1.0)
    return delays


def test_crash_loop_backoff_doubles_from_10s_to_5min(kl: Kubelet, rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script("app", exit_code=1, after_seconds=1)
    delays = crash_loop_delays(kl, clock, make_pod(), 9)
    assert delays == [0, 10, 20, 40, 80, 160, 300, 300, 300]
    assert [c.attempt for c in kl.containers()] == [8, 9]  # newest exited + the running one
    assert kl.containers()[-1].state == "running"


def test_backoff_message_and_state(kl: Kubelet, rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script("app", exit_code=2, after_seconds=1)
    pod = make_pod()
    kl.sync(pod)
    clock.advance(2)
    kl.sync(pod)  # first restart: immediate
    clock.advance(2)
    actions, result = kl.sync(pod)
    (b,) = no_gc(actions)
    assert isinstance(b, BackOff) and b.name == "app" and b.until == pytest.approx(clock() - 1 + 10)
    assert result.waiting["app"][0] == "CrashLoopBackOff"
    assert "back-off 10s restarting failed container=app pod=web" in result.waiting["app"][1]


def test_backoff_resets_after_running_10_minutes(kl: Kubelet, rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script("app", exit_code=1, after_seconds=[1, 1, 1, 1, 601, 1])
    delays = crash_loop_delays(kl, clock, make_pod(), 3)
    assert delays == [0, 10, 20]
    # the 4th instance crashes fast: 40 s; the 5th runs > 10 min: its restart is immediate
    assert crash_loop_tail(kl, clock, make_pod(), [1, 601, 1]) == [40, 0, 10]


def crash_loop_tail(kl: Kubelet, clock: FakeClock, pod: dict[str, Any], runs: list[float]) -> list[float]:
    delays = []
    for run_s in runs:
        clock.advance(run_s)
        exited_at = clock()
        while not any(isinstance(a, StartContainer) for a in kl.sync(pod)[0]):
            clock.advance(1.0)
        delays.append(round(clock() - exited_at, 3))
    return delays


def test_always_restarts_even_after_success(kl: Kubelet, rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script("app", exit_code=0, after_seconds=1)
    pod = make_pod(policy="Always")
    kl.sync(pod)
    clock.advance(2)
    actions, _ = kl.sync(pod)
    assert kinds(actions) == ["StartContainer"] and actions[0].attempt == 1


def test_on_failure_restarts_failures_only_and_completes(kl: Kubelet, rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script("app", exit_code=[1, 0], after_seconds=1)
    pod = make_pod(policy="OnFailure")
    kl.sync(pod)
    clock.advance(2)
    actions, _ = kl.sync(pod)
    assert [(type(a).__name__, getattr(a, "attempt", None)) for a in actions] == [("StartContainer", 1)]
    clock.advance(2)
    sb = kl.observe("uid-1")[0][0]
    actions, _ = kl.sync(pod)
    assert no_gc(actions) == [KillSandbox(sb.id, 30, "pod completed")]
    assert kl.observe("uid-1")[0][0].state == "notready"
    assert kl.plan(pod) == []  # completed: no new sandbox, nothing restarted


def test_never_does_not_restart_and_does_not_recreate_the_sandbox(kl: Kubelet, rt: FakeRuntime,
                                                                  clock: FakeClock) -> None:
    rt.script("app", exit_code=3, after_seconds=1)
    rt.script("side", exit_code=None)
    pod = make_pod([{"name": "app", "image": IMG}, {"name": "side", "image": IMG}], policy="Never")
    kl.sync(pod)
    clock.advance(5)
    assert kl.plan(pod) == []  # app failed, side still runs: wait for it
    rt.stop_container(next(c.id for c in kl.containers() if c.name == "side"))
    actions, _ = kl.sync(pod)
    assert kinds(actions) == ["KillSandbox"]
    clock.advance(3600)
    assert kl.plan(pod) == []
    assert {c.name: c.exit_code for c in kl.containers()} == {"app": 3, "side": 143}


# --------------------------------------------------------------------------- init containers


def test_init_containers_run_one_at_a_time_in_order(kl: Kubelet, rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script("init-a", exit_code=0, after_seconds=5)
    rt.script("init-b", exit_code=0, after_seconds=5)
    pod = make_pod(init=[{"name": "init-a", "image": IMG}, {"name": "init-b", "image": IMG}])
    actions, _ = kl.sync(pod)
    assert kinds(actions) == ["CreateSandbox", "StartContainer"] and actions[1].name == "init-a"
    assert actions[1].init
    clock.advance(2)
    assert kl.plan(pod) == []  # init-a still running
    clock.advance(4)
    actions, _ = kl.sync(pod)
    assert [(type(a).__name__, a.name) for a in actions] == [("StartContainer", "init-b")]
    clock.advance(6)
    actions, _ = kl.sync(pod)
    assert [(type(a).__name__, a.name) for a in actions] == [("StartContainer", "app")]
    clock.advance(1)
    assert kl.plan(pod) == []
    assert {c.name: c.state for c in kl.containers()} == {"init-a": "exited", "init-b": "exited", "app": "running"}


def test_failed_init_container_retries_with_backoff(kl: Kubelet, rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script("init", exit_code=[1, 1, 0], after_seconds=1)
    pod = make_pod(init=[{"name": "init", "image": IMG}], policy="Always")
    kl.sync(pod)
    clock.advance(2)
    actions, _ = kl.sync(pod)
    assert [(a.name, a.attempt) for a in actions] == [("init", 1)]  # first retry immediate
    clock.advance(2)
    assert kinds(no_gc(kl.sync(pod)[0])) == ["BackOff"]
    clock.advance(10)
    assert [a.name for a in no_gc(kl.sync(pod)[0])] == ["init"]
    clock.advance(2)
    actions, _ = kl.sync(pod)
    assert [(type(a).__name__, a.name) for a in no_gc(actions)] == [("StartContainer", "app")]


def test_failed_init_container_with_never_fails_the_pod(kl: Kubelet, rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script("init", exit_code=1, after_seconds=1)
    pod = make_pod(init=[{"name": "init", "image": IMG}], policy="Never")
    kl.sync(pod)
    clock.advance(2)
    actions, _ = kl.sync(pod)
    assert kinds(actions) == ["KillSandbox"]
    assert kl.plan(pod) == [] and [c.name for c in kl.containers()] == ["init"]


# --------------------------------------------------------------------------- changes and failures


def test_spec_change_recreates_only_that_container(kl: Kubelet) -> None:
    pod = make_pod([{"name": "app", "image": IMG}, {"name": "side", "image": IMG}])
    kl.sync(pod)
    old_app = kl.containers(name="app")[0]
    changed = copy.deepcopy(pod)
    changed["spec"]["containers"][0]["image"] = "mkube/busybox:2"
    actions, _ = kl.sync(changed)
    assert [(type(a).__name__, a.name) for a in actions] == [("KillContainer", "app"), ("StartContainer", "app")]
    assert actions[0].container_id == old_app.id and actions[0].grace_s == 30
    assert actions[1].attempt == 1 and actions[1].backoff_key is None  # no back-off for a spec change
    new_app = [c for c in kl.containers(name="app") if c.state == "running"]
    assert [c.image for c in new_app] == ["mkube/busybox:2"]
    assert kl.plan(changed) == []


def test_dead_sandbox_is_recreated_and_init_runs_again(kl: Kubelet, rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script("init", exit_code=0, after_seconds=1)
    pod = make_pod(init=[{"name": "init", "image": IMG}])
    kl.sync(pod)
    clock.advance(2)
    kl.sync(pod)
    old_sb = kl.observe("uid-1")[0][0]
    rt.stop_sandbox(old_sb.id)  # the infra container died (e.g. Docker restarted)
    actions, result = kl.sync(pod)
    assert kinds(actions) == ["CreateSandbox", "StartContainer"]
    assert actions[0].attempt == 1 and actions[1].name == "init" and actions[1].attempt == 1
    assert result.sandbox is not None and result.sandbox.id != old_sb.id
    clock.advance(2)
    actions, _ = kl.sync(pod)
    assert [(type(a).__name__, a.name) for a in no_gc(actions)] == [("StartContainer", "app")]
    # The old sandbox stays (stopped) while it holds the last exited attempt of "app"
    # (for `logs --previous`); once that is superseded too, it goes away.
    clock.advance(1)
    assert kl.plan(pod) == []
    assert {s.id: s.state for s in kl.observe("uid-1")[0]} == {old_sb.id: "notready", result.sandbox.id: "ready"}
    app = next(c for c in kl.containers(name="app") if c.state == "running")
    rt.stop_container(app.id)
    actions, _ = kl.sync(pod)
    assert RemoveSandbox(old_sb.id, "superseded by a newer sandbox") in actions
    assert [s.id for s in kl.observe("uid-1")[0]] == [result.sandbox.id]
    clock.advance(10)  # "app" restarted once already (after the sandbox died): 10 s back-off
    assert kinds(kl.sync(pod)[0]) == ["StartContainer"]
    assert kl.plan(pod) == []


def test_running_containers_of_a_dead_sandbox_are_killed(kl: Kubelet, rt: FakeRuntime) -> None:
    pod = make_pod()
    kl.sync(pod)
    sbs, cs = kl.observe("uid-1")
    dead = SandboxInfo(id=sbs[0].id, labels=sbs[0].labels, state="notready")
    actions = plan(pod, [dead], cs, 0.0)
    assert kinds(actions) == ["KillContainer", "CreateSandbox", "StartContainer"]
    assert actions[0] == KillContainer(cs[0].id, "app", 30, "pod sandbox changed")


def test_liveness_failure_kills_and_restarts(kl: Kubelet) -> None:
    pod = make_pod()
    kl.sync(pod)
    actions, _ = kl.sync(pod, unhealthy={"app"})
    assert [(type(a).__name__, a.reason) for a in actions] == [
        ("KillContainer", "liveness probe failed"), ("StartContainer", "liveness probe failed")]
    never = make_pod(policy="Never", uid="uid-2")
    kl.sync(never, uid="uid-2")
    actions, _ = kl.sync(never, uid="uid-2", unhealthy={"app"})
    assert kinds(actions) == ["KillContainer"]


def test_containers_starting_slowly_are_left_alone_stuck_ones_replaced(clock: FakeClock) -> None:
    rt = FakeRuntime(clock=clock, images=[IMG], start_delay=5)
    kl = Kubelet(rt, clock)
    pod = make_pod()
    kl.sync(pod)
    clock.advance(2)
    assert kl.containers()[0].state == "created" and kl.plan(pod) == []
    # A container created but never started (a kubelet crash between create and start):
    sb = kl.observe("uid-1")[0][0]
    stuck = rt.create_container(sb.id, kl_config("side"))
    pod2 = make_pod([{"name": "app", "image": IMG}, {"name": "side", "image": IMG}])
    clock.advance(61)
    actions = kl.plan(pod2)
    assert [(type(a).__name__, a.name) for a in actions] == [("RemoveContainer", "side"), ("StartContainer", "side")]
    assert actions[0].container_id == stuck


def kl_config(name: str) -> Any:
    from mkube.kubelet.runtime.base import ContainerConfig
    return ContainerConfig(name=name, image=IMG)


def test_old_attempts_are_garbage_collected(kl: Kubelet, rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script("app", exit_code=1, after_seconds=1)
    crash_loop_delays(kl, clock, make_pod(), 4)
    cs = kl.containers()
    assert [(c.attempt, c.state) for c in cs] == [(3, "exited"), (4, "running")]


def test_unknown_containers_are_removed(kl: Kubelet, rt: FakeRuntime) -> None:
    pod = make_pod([{"name": "app", "image": IMG}, {"name": "old", "image": IMG}])
    kl.sync(pod)
    actions, _ = kl.sync(make_pod())
    assert [(type(a).__name__, a.name) for a in actions] == [("KillContainer", "old")]
    actions, _ = kl.sync(make_pod())
    assert [(type(a).__name__, a.name) for a in actions] == [("RemoveContainer", "old")]
    assert [c.name for c in kl.containers()] == ["app"]


# --------------------------------------------------------------------------- deletion


def test_deleted_pod_is_stopped_gracefully_then_removed(kl: Kubelet, rt: FakeRuntime) -> None:
    pod = make_pod([{"name": "app", "image": IMG}, {"name": "side", "image": IMG}])
    kl.sync(pod)
    deleting = copy.deepcopy(pod)
    deleting["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z", deletionGracePeriodSeconds=7)
    actions, _ = kl.sync(deleting)
    assert kinds(actions) == ["KillContainer", "KillContainer", "KillSandbox"]
    assert {a.grace_s for a in actions} == {7}
    assert {c.state for c in kl.containers()} == {"exited"}
    actions, _ = kl.sync(deleting)
    assert kinds(actions) == ["RemoveSandbox"]
    assert rt.counts() == (0, 0)
    assert kl.plan(deleting) == []


def test_orphans_are_stopped_with_their_recorded_grace_then_removed(kl: Kubelet, rt: FakeRuntime) -> None:
    pod = make_pod(terminationGracePeriodSeconds=12)
    kl.sync(pod)
    assert kl.containers()[0].labels[LABEL_GRACE] == "12"
    actions, _ = kl.sync(None)
    assert [(type(a).__name__, a.grace_s) for a in actions] == [("KillContainer", 12.0), ("KillSandbox", 0)]
    actions, _ = kl.sync(None)
    assert kinds(actions) == ["RemoveSandbox"] and rt.counts() == (0, 0)


# --------------------------------------------------------------------------- executor: images and config


def test_image_pull_errors_and_pull_backoff(clock: FakeClock) -> None:
    rt = FakeRuntime(clock=clock, missing_images=["registry.local/app:1"])
    kl = Kubelet(rt, clock)
    pod = make_pod([{"name": "app", "image": "registry.local/app:1", "imagePullPolicy": "IfNotPresent"}])
    _, result = kl.sync(pod)
    assert result.waiting["app"][0] == "ErrImagePull"
    clock.advance(1)
    _, result = kl.sync(pod)
    assert result.waiting["app"][0] == "ImagePullBackOff" and rt.calls["pull_image"] == 1
    clock.advance(10)
    rt.missing_images.clear()  # the image got pushed meanwhile
    _, result = kl.sync(pod)
    assert result.started == ["app"] and rt.calls["pull_image"] == 2


def test_pull_policies(clock: FakeClock) -> None:
    rt = FakeRuntime(clock=clock, images=["present:1"])
    kl = Kubelet(rt, clock)
    pod = make_pod([{"name": "a", "image": "present:1", "imagePullPolicy": "IfNotPresent"},
                    {"name": "b", "image": "absent:1", "imagePullPolicy": "Never"},
                    {"name": "c", "image": "fresh:latest"}])  # no policy: :latest means Always
    _, result = kl.sync(pod)
    assert sorted(result.started) == ["a", "c"]
    assert result.waiting["b"][0] == "ErrImageNeverPull"
    assert [s for m, s in rt.history if m == "pull_image"] == ["fresh:latest"]


def test_always_pull_falls_back_to_a_local_image(clock: FakeClock) -> None:
    rt = FakeRuntime(clock=clock, images=["local/dev:latest"], missing_images=["local/dev:latest"])
    kl = Kubelet(rt, clock)
    _, result = kl.sync(make_pod([{"name": "app", "image": "local/dev:latest", "imagePullPolicy": "Always"}]))
    assert result.started == ["app"]
    kl2 = Kubelet(rt, clock)
    _, strict = kl2.sync(make_pod([{"name": "app", "image": "local/dev:latest", "imagePullPolicy": "Always"}],
                                  uid="uid-2"), uid="uid-2", pull_fallback_to_local=False)
    assert strict.waiting["app"][0] == "ErrImagePull"


def test_config_errors_are_reported_per_container(kl: Kubelet) -> None:
    pod = make_pod([
        {"name": "app", "image": IMG,
         "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "x"}}}]},
        {"name": "side", "image": IMG, "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        {"name": "ok", "image": IMG},
    ])
    _, result = kl.sync(pod, lookup=lambda kind, ns, name: None)
    assert result.started == ["ok"]
    assert result.waiting["app"][0] == "CreateContainerConfigError" and "cfg" in result.waiting["app"][1]
    assert result.waiting["side"][0] == "CreateContainerConfigError" and "data" in result.waiting["side"][1]


@pytest.mark.parametrize("failing", ["create_sandbox", "start_sandbox"])
def test_sandbox_failure_skips_the_starts(kl: Kubelet, rt: FakeRuntime, failing: str) -> None:
    from mkube.kubelet.runtime.base import SandboxCreateError
    rt.inject_error(failing, SandboxCreateError("port is already allocated"))
    actions, result = kl.sync(make_pod())
    assert kinds(actions) == ["CreateSandbox", "StartContainer"]
    assert result.sandbox_error == ("CreatePodSandboxError", "port is already allocated")
    # nothing is left behind, not even the container created while the sandbox started
    assert result.started == [] and rt.counts() == (0, 0)
    _, result = kl.sync(make_pod())
    assert result.started == ["app"]


def test_containers_are_created_while_the_sandbox_starts(clock: FakeClock) -> None:
    envs: dict[str, dict[str, str]] = {}
    plain_created = threading.Event()
    sandbox_waited: list[bool] = []

    class Recording(FakeRuntime):
        def create_container(self, sandbox_id: str, cfg: ContainerConfig) -> str:
            envs[cfg.name] = dict(cfg.env)
            cid = super().create_container(sandbox_id, cfg)
            if cfg.name == "plain":
                plain_created.set()
            return cid

        def start_sandbox(self, sandbox_id: str) -> SandboxInfo:
            # "plain" must exist by now: a runtime that starts the sandbox in the
            # background from create_sandbox (Docker) gets its containers prepared meanwhile.
            sandbox_waited.append(plain_created.wait(5))
            return super().start_sandbox(sandbox_id)

    rt = Recording("node-1", clock=clock, images=[IMG])
    pod = make_pod([
        {"name": "plain", "image": IMG},
        {"name": "wants-ip", "image": IMG,
         "env": [{"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]},
    ])
    _, result = Kubelet(rt, clock).sync(pod)
    assert sandbox_waited == [True]
    assert result.started == ["plain", "wants-ip"]
    # "wants-ip" needs the pod IP, known only once the sandbox runs
    assert result.sandbox is not None and envs["wants-ip"]["MY_IP"] == result.sandbox.ip != ""


def test_parallel_starts_and_failed_kills(kl: Kubelet, rt: FakeRuntime) -> None:
    from mkube.kubelet.runtime.base import ContainerRuntimeError
    pod = make_pod([{"name": n, "image": IMG} for n in ("a", "b", "c", "d")])
    _, result = kl.sync(pod, parallel_starts=True)
    assert result.started == ["a", "b", "c", "d"]
    changed = copy.deepcopy(pod)
    changed["spec"]["containers"][0]["image"] = "mkube/busybox:2"
    rt.inject_error("stop_container", ContainerRuntimeError("daemon busy"))
    actions, result = kl.sync(changed)
    assert kinds(actions) == ["KillContainer", "StartContainer"]
    assert result.errors == ["KillContainer: RuntimeError: daemon busy"] and result.started == []
    assert len(kl.containers(name="a")) == 1  # no second instance next to the unkilled one
    _, result = kl.sync(changed)
    assert result.started == ["a"] and not result.errors


def test_actions_are_ordered_kills_first() -> None:
    order = [KillContainer, KillSandbox, RemoveContainer, RemoveSandbox, CreateSandbox, StartContainer, BackOff]
    assert order == sorted(order, key=order.index)
