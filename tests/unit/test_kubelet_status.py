"""Pod status computation (pure): what `kubectl get pod -o yaml` shows for a given runtime state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mkube.api.types import Pod
from mkube.kubelet.runtime.base import (
    LABEL_CONTAINER_ATTEMPT,
    LABEL_POD_UID,
    LABEL_SANDBOX_ID,
    ContainerInfo,
    PortMapping,
    SandboxInfo,
)
from mkube.kubelet.status import READINESS, STARTUP, compute_pod_status, qos_class

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T0 = NOW.timestamp() - 60


def pod(containers: list[dict[str, Any]] | None = None, *, policy: str = "Always",
        init: list[dict[str, Any]] | None = None, status: dict[str, Any] | None = None) -> Pod:
    body: dict[str, Any] = {
        "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
        "spec": {"nodeName": "n1", "restartPolicy": policy,
                 "containers": containers or [{"name": "app", "image": "mkube/hello:1"}]},
        "status": status or {"phase": "Pending"},
    }
    if init:
        body["spec"]["initContainers"] = init
    return Pod.from_dict(body)


def sandbox(state: str = "ready", ip: str = "172.17.0.9", attempt: int = 0) -> SandboxInfo:
    return SandboxInfo(id=f"sb{attempt}", labels={LABEL_POD_UID: "u1", "io.mkube.sandbox.attempt": str(attempt)},
                       state=state, ip=ip if state == "ready" else "",
                       ports={80: 32001}, port_mappings=[PortMapping(80, "TCP", 32001, "0.0.0.0")],
                       created_at=T0 + attempt)


def ctr(name: str = "app", state: str = "running", attempt: int = 0, exit_code: int | None = None,
        sb: str = "sb0", cid: str | None = None, **kw: Any) -> ContainerInfo:
    return ContainerInfo(
        id=cid or f"{name}-{attempt}", name=name,
        labels={LABEL_POD_UID: "u1", LABEL_SANDBOX_ID: sb, LABEL_CONTAINER_ATTEMPT: str(attempt)},
        image="mkube/hello:1", image_id="sha256:abc", state=state,  # type: ignore[arg-type]
        exit_code=exit_code, created_at=T0 + attempt * 10, started_at=T0 + attempt * 10 + 1,
        finished_at=(T0 + attempt * 10 + 5) if state == "exited" else None, **kw)


def status(p: Pod, sandboxes: list[SandboxInfo], containers: list[ContainerInfo], **kw: Any) -> dict[str, Any]:
    return compute_pod_status(p, sandboxes, containers, node_ip="10.0.0.5", now=NOW, **kw).to_dict()


def cond(st: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in st["conditions"] if c["type"] == type_)


def test_a_new_pod_is_pending_with_container_creating() -> None:
    st = status(pod(), [], [])
    assert st["phase"] == "Pending"
    cs = st["containerStatuses"][0]
    assert cs["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert cs["ready"] is False and cs["restartCount"] == 0 and cs["image"] == "mkube/hello:1"
    assert cond(st, "Ready")["status"] == "False"
    assert cond(st, "Ready")["message"] == "containers with unready status: [app]"
    assert cond(st, "PodScheduled")["status"] == "True"
    assert st["hostIP"] == "10.0.0.5" and st["hostIPs"] == [{"ip": "10.0.0.5"}]
    assert st["startTime"] == "2026-01-02T03:04:05Z"
    assert "podIP" not in st


def test_a_running_pod() -> None:
    st = status(pod(), [sandbox()], [ctr()])
    assert st["phase"] == "Running"
    cs = st["containerStatuses"][0]
    assert cs["state"]["running"]["startedAt"]
    assert cs["ready"] is True and cs["started"] is True
    assert cs["containerID"] == "docker://app-0" and cs["imageID"] == "sha256:abc"
    assert [cond(st, t)["status"] for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")] == ["True"] * 4
    assert st["podIP"] == "172.17.0.9" and st["podIPs"] == [{"ip": "172.17.0.9"}]
    assert st["publishedPorts"] == [{"containerPort": 80, "protocol": "TCP", "hostPort": 32001, "hostIP": "10.0.0.5"}]
    assert st["qosClass"] == "BestEffort"


def test_crash_loop_shows_waiting_with_last_state_and_restart_count_from_attempts() -> None:
    containers = [ctr(attempt=2, state="exited", exit_code=1), ctr(attempt=1, state="exited", exit_code=1)]
    st = status(pod(), [sandbox()], containers,
                waiting={"app": ("CrashLoopBackOff", "back-off 20s restarting failed container=app pod=web")})
    cs = st["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    assert cs["lastState"]["terminated"]["containerID"] == "docker://app-2"
    assert cs["restartCount"] == 2
    assert st["phase"] == "Running"  # as Kubernetes: a crash-looping Always pod is Running
    assert cond(st, "Ready")["status"] == "False"


def test_running_after_a_restart_keeps_the_previous_exit_as_last_state() -> None:
    st = status(pod(), [sandbox()], [ctr(attempt=1), ctr(attempt=0, state="exited", exit_code=137)])
    cs = st["containerStatuses"][0]
    assert cs["restartCount"] == 1 and cs["state"]["running"]
    assert cs["lastState"]["terminated"]["exitCode"] == 137


def test_never_and_on_failure_end_in_succeeded_or_failed() -> None:
    done = [ctr(state="exited", exit_code=0)]
    failed = [ctr(state="exited", exit_code=3)]
    stopped = [sandbox(state="notready")]
    st = status(pod(policy="Never"), stopped, done)
    assert st["phase"] == "Succeeded"
    assert st["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert cond(st, "Ready") | {"lastTransitionTime": ""} == {
        "type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": ""}
    assert status(pod(policy="Never"), stopped, failed)["phase"] == "Failed"
    assert status(pod(policy="OnFailure"), stopped, done)["phase"] == "Succeeded"
    assert "publishedPorts" not in status(pod(policy="Never"), stopped, done)
    on_failure = status(pod(policy="OnFailure"), [sandbox()], failed, waiting={"app": ("CrashLoopBackOff", "")})
    assert on_failure["phase"] == "Running"


def test_a_terminal_phase_never_goes_back() -> None:
    st = status(pod(policy="Never", status={"phase": "Failed"}), [sandbox()], [ctr()])
    assert st["phase"] == "Failed"


def test_oom_and_start_errors() -> None:
    oom = status(pod(policy="Never"), [], [ctr(state="exited", exit_code=137, oom_killed=True)])
    assert oom["containerStatuses"][0]["state"]["terminated"]["reason"] == "OOMKilled"
    err = status(pod(policy="Never"), [], [ctr(state="exited", exit_code=None, error="exec: nope")])
    term = err["containerStatuses"][0]["state"]["terminated"]
    assert term["reason"] == "ContainerCannotRun" and term["exitCode"] == 128 and term["message"] == "exec: nope"


def test_waiting_reasons_from_the_sync() -> None:
    st = status(pod(), [sandbox()], [], waiting={"app": ("ErrImagePull", "manifest unknown")})
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "ErrImagePull", "message": "manifest unknown"}}
    assert st["phase"] == "Pending"


def test_readiness_and_startup_probes_gate_ready_and_started() -> None:
    probe = {"exec": {"command": ["true"]}}
    p = pod([{"name": "app", "image": "x:1", "readinessProbe": probe, "startupProbe": probe}])
    st = status(p, [sandbox()], [ctr()])
    cs = st["containerStatuses"][0]
    assert cs["started"] is False and cs["ready"] is False
    st = status(p, [sandbox()], [ctr()], probes={(STARTUP, "app-0"): True})
    assert st["containerStatuses"][0]["started"] is True and st["containerStatuses"][0]["ready"] is False
    st = status(p, [sandbox()], [ctr()], probes={(STARTUP, "app-0"): True, (READINESS, "app-0"): True})
    assert st["containerStatuses"][0]["ready"] is True and cond(st, "Ready")["status"] == "True"
    # a result for another (older) container does not count
    st = status(p, [sandbox()], [ctr()], probes={(STARTUP, "old"): True, (READINESS, "old"): True})
    assert st["containerStatuses"][0]["ready"] is False


def test_transition_times_are_kept_while_the_status_does_not_change() -> None:
    old = {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"},
        {"type": "ContainersReady", "status": "False", "lastTransitionTime": "2020-01-01T00:00:00Z"},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2019-01-01T00:00:00Z"},
        {"type": "DisruptionTarget", "status": "True", "lastTransitionTime": "2019-01-01T00:00:00Z"}],
        "startTime": "2020-01-01T00:00:00Z", "podIP": "172.17.0.2"}
    st = status(pod(status=old), [sandbox()], [ctr()])
    assert cond(st, "Ready")["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert cond(st, "ContainersReady")["lastTransitionTime"] == "2026-01-02T03:04:05Z"
    assert cond(st, "PodScheduled")["lastTransitionTime"] == "2019-01-01T00:00:00Z"
    assert cond(st, "DisruptionTarget")["status"] == "True"  # not ours: kept
    assert st["startTime"] == "2020-01-01T00:00:00Z"
    gone = status(pod(status=old), [], [ctr(state="exited", exit_code=1)], waiting={"app": ("CrashLoopBackOff", "")})
    assert gone["podIP"] == "172.17.0.2"  # the last known IP stays while the sandbox is recreated


def test_init_containers() -> None:
    init = [{"name": "setup", "image": "x:1"}, {"name": "migrate", "image": "x:1"}]
    p = pod(init=init)
    st = status(p, [sandbox()], [ctr("setup")])
    assert st["phase"] == "Pending"
    assert [c["state"] for c in st["initContainerStatuses"]] == [
        {"running": {"startedAt": st["initContainerStatuses"][0]["state"]["running"]["startedAt"]}},
        {"waiting": {"reason": "PodInitializing"}}]
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert cond(st, "Initialized") | {"lastTransitionTime": ""} == {
        "type": "Initialized", "status": "False", "reason": "ContainersNotInitialized",
        "message": "containers with incomplete status: [setup migrate]", "lastTransitionTime": ""}
    done = [ctr("setup", state="exited", exit_code=0), ctr("migrate", state="exited", exit_code=0), ctr("app")]
    st = status(p, [sandbox()], done)
    assert st["phase"] == "Running" and cond(st, "Initialized")["status"] == "True"
    assert [c["ready"] for c in st["initContainerStatuses"]] == [True, True]
    failed = status(pod(init=init, policy="Never"), [sandbox()], [ctr("setup", state="exited", exit_code=1)])
    assert failed["phase"] == "Failed"


def test_sandbox_errors_show_container_creating() -> None:
    st = status(pod(), [], [], sandbox_error=("CreatePodSandboxError", "port is already allocated"))
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}


def test_host_network_pods_use_the_node_ip() -> None:
    p = pod()
    p.spec.host_network = True
    assert status(p, [sandbox(ip="")], [ctr()])["podIP"] == "10.0.0.5"


def test_qos_class() -> None:
    assert qos_class(pod()) == "BestEffort"
    g = {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}
    assert qos_class(pod([{"name": "a", "image": "x:1", "resources": g}])) == "Guaranteed"
    b = {"requests": {"cpu": "100m"}}
    assert qos_class(pod([{"name": "a", "image": "x:1", "resources": b}])) == "Burstable"
