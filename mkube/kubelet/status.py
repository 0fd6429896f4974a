"""Pod status from what the runtime reports (pure): the kubelet's generateAPIPodStatus.

`compute_pod_status(pod, sandboxes, containers, ...)` returns the `PodStatus` the
kubelet writes through `pods/{name}/status`:

- containerStatuses / initContainerStatuses: state (waiting with the reason the last
  sync gave, running, terminated with reason and exit code), lastState (the previous
  exited instance), restartCount (the attempt label of the newest instance, so it
  survives a kubelet restart), ready, started, image, imageID, containerID;
- phase as Kubernetes' getPhase (Pending, Running, Succeeded, Failed); a terminal phase
  never goes back;
- conditions Initialized, Ready, ContainersReady, PodScheduled, each keeping its
  lastTransitionTime while its status does not change;
- podIP(s), hostIP(s), startTime (kept once set), qosClass, and the mkube extension
  publishedPorts (where each container port is published on this node).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from mkube.api.timeutil import format_time
from mkube.api.types import (
    Container,
    ContainerState,
    ContainerStateRunning,
    ContainerStateTerminated,
    ContainerStateWaiting,
    ContainerStatus,
    Pod,
    PodCondition,
    PodIP,
    PodStatus,
    PublishedPort,
)
from mkube.kubelet.runtime.base import ContainerInfo, SandboxInfo

TERMINAL_PHASES = ("Succeeded", "Failed")
READINESS = "readiness"
STARTUP = "startup"
LIVENESS = "liveness"

#: (probe kind, container id) -> the probe's current result (True = success).
ProbeResults = Mapping[tuple[str, str], bool]


def newest_first(items: Iterable[ContainerInfo]) -> list[ContainerInfo]:
    """Instances ordered as the planner orders them: highest attempt, then newest."""
    return sorted(items, key=lambda c: (c.attempt, c.created_at or 0.0), reverse=True)


def by_name(containers: Iterable[ContainerInfo]) -> dict[str, list[ContainerInfo]]:
    """Container instances grouped by container name, newest first."""
    out: dict[str, list[ContainerInfo]] = {}
    for c in newest_first(containers):
        out.setdefault(c.name, []).append(c)
    return out


def current_sandbox(sandboxes: Sequence[SandboxInfo]) -> SandboxInfo | None:
    """The sandbox the planner considers current (highest attempt, newest)."""
    if not sandboxes:
        return None
    return max(sandboxes, key=lambda s: (s.attempt, s.created_at or 0.0))


def _ts(t: float | None) -> str | None:
    return None if t is None else format_time(datetime.fromtimestamp(t, UTC))


def terminated_state(c: ContainerInfo, id_scheme: str) -> ContainerStateTerminated:
    """The terminated state of an exited instance (reason as the kubelet words it)."""
    code = c.exit_code if c.exit_code is not None else (128 if c.error else 0)
    if c.oom_killed:
        reason = "OOMKilled"
    elif c.error:
        reason = "ContainerCannotRun"
    elif code == 0:
        reason = "Completed"
    else:
        reason = "Error"
    return ContainerStateTerminated(
        exit_code=code, reason=reason, message=c.error or None, started_at=_ts(c.started_at),
        finished_at=_ts(c.finished_at), container_id=f"{id_scheme}://{c.id}")


def _container_status(spec: Container, instances: list[ContainerInfo], waiting: tuple[str, str] | None,
                      default_waiting: str, probes: ProbeResults, id_scheme: str) -> ContainerStatus:
    latest = instances[0] if instances else None
    cs = ContainerStatus(name=spec.name, image=spec.image, ready=False, restart_count=0, started=False,
                         state=ContainerState())
    if latest is None:
        reason, message = waiting or (default_waiting, "")
        cs.state = ContainerState(waiting=ContainerStateWaiting(reason=reason, message=message or None))
        return cs
    cs.restart_count = latest.attempt
    cs.image_id = latest.image_id or None
    previous = next((c for c in instances[1:] if c.state == "exited"), None)
    if previous is not None:
        cs.last_state = ContainerState(terminated=terminated_state(previous, id_scheme))
    if latest.state == "running":
        cs.container_id = f"{id_scheme}://{latest.id}"
        cs.state = ContainerState(running=ContainerStateRunning(started_at=_ts(latest.started_at)))
        started = probes.get((STARTUP, latest.id), False) if spec.startup_probe else True
        ready = probes.get((READINESS, latest.id), False) if spec.readiness_probe else True
        cs.started = started
        cs.ready = started and ready
        return cs
    if latest.state == "exited":
        if waiting is not None:  # will be restarted (back-off, pull or config error)
            cs.state = ContainerState(waiting=ContainerStateWaiting(reason=waiting[0], message=waiting[1] or None))
            cs.last_state = ContainerState(terminated=terminated_state(latest, id_scheme))
            return cs
        cs.container_id = f"{id_scheme}://{latest.id}"
        cs.state = ContainerState(terminated=terminated_state(latest, id_scheme))
        return cs
    # created (starting) or unknown
    cs.container_id = f"{id_scheme}://{latest.id}"
    reason, message = waiting or ("ContainerCreating", "")
    cs.state = ContainerState(waiting=ContainerStateWaiting(reason=reason, message=message or None))
    return cs


def phase_of(pod: Pod, init_statuses: Sequence[ContainerStatus], statuses: Sequence[ContainerStatus]) -> str:
    """Kubernetes' getPhase over the computed container statuses."""
    policy = pod.spec.restart_policy or "Always"
    pending_init = failed_init = 0
    for cs in init_statuses:
        st = cs.state or ContainerState()
        if st.terminated is not None:
            failed_init += st.terminated.exit_code != 0
        elif st.waiting is not None and cs.last_state is not None and cs.last_state.terminated is not None:
            failed_init += cs.last_state.terminated.exit_code != 0
        else:
            pending_init += 1
    running = waiting = stopped = succeeded = unknown = 0
    for cs in statuses:
        st = cs.state or ContainerState()
        if st.running is not None:
            running += 1
        elif st.terminated is not None:
            stopped += 1
            succeeded += st.terminated.exit_code == 0
        elif st.waiting is not None:
            if cs.last_state is not None and cs.last_state.terminated is not None:
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if failed_init and policy == "Never":
        return "Failed"
    if pending_init or waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if not running and stopped and not unknown:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if policy == "Never" else "Running"
    return "Pending"


def _condition(old: Mapping[str, PodCondition], type_: str, status: bool, now: str, reason: str | None = None,
               message: str | None = None) -> PodCondition:
    value = "True" if status else "False"
    prev = old.get(type_)
    since = prev.last_transition_time if prev is not None and prev.status == value else None
    return PodCondition(type=type_, status=value, last_transition_time=since or now,
                        reason=None if status else reason, message=None if status else message)


def qos_class(pod: Pod) -> str:
    """Guaranteed (limits = requests for cpu and memory everywhere), BestEffort (none), else Burstable."""
    containers = list(pod.spec.init_containers or []) + list(pod.spec.containers)
    any_set = False
    guaranteed = True
    for c in containers:
        limits = (c.resources.limits if c.resources else None) or {}
        requests = (c.resources.requests if c.resources else None) or {}
        if limits or requests:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in limits or str(requests.get(r, limits[r])) != str(limits[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def compute_pod_status(pod: Pod, sandboxes: Sequence[SandboxInfo], containers: Sequence[ContainerInfo], *,
                       node_ip: str, now: datetime, waiting: Mapping[str, tuple[str, str]] | None = None,
                       probes: ProbeResults | None = None, id_scheme: str = "docker",
                       sandbox_error: tuple[str, str] | None = None) -> PodStatus:
    """The status the kubelet reports for `pod` given the runtime's view (see module doc).

    `waiting`: container name -> (reason, message) for containers the last sync could not
    start (ErrImagePull, CrashLoopBackOff, ...). `probes`: current probe results.
    """
    waiting = waiting or {}
    probes = probes or {}
    old = pod.status
    stamp = format_time(now)
    instances = by_name(containers)
    ready_sandboxes = [s for s in sandboxes if s.state == "ready"]
    sandbox = current_sandbox(ready_sandboxes)
    inits = list(pod.spec.init_containers or [])
    apps = list(pod.spec.containers)

    def in_current(name: str) -> bool:
        return any(sandbox is not None and c.sandbox_id == sandbox.id for c in instances.get(name, []))

    init_statuses = [_container_status(c, instances.get(c.name, []), waiting.get(c.name),
                                       "PodInitializing", probes, id_scheme) for c in inits]
    for cs in init_statuses:  # an init container is "ready" once it completed (as Kubernetes reports)
        term = cs.state.terminated if cs.state else None
        cs.ready = term is not None and term.exit_code == 0
        cs.started = bool(cs.state and cs.state.running)
    app_began = any(in_current(a.name) for a in apps) or (sandbox is None and any(a.name in instances for a in apps))
    initialized = not inits or app_began or all(
        cs.state is not None and cs.state.terminated is not None and cs.state.terminated.exit_code == 0
        for cs in init_statuses)
    default_app_waiting = "ContainerCreating" if initialized else "PodInitializing"
    statuses = [_container_status(c, instances.get(c.name, []), waiting.get(c.name), default_app_waiting,
                                  probes, id_scheme) for c in apps]
    if sandbox_error is not None:
        for cs in init_statuses + statuses:
            if cs.state is not None and cs.state.waiting is not None and not waiting.get(cs.name):
                cs.state.waiting.reason = "ContainerCreating"

    phase = phase_of(pod, init_statuses, statuses)
    if old.phase in TERMINAL_PHASES:
        phase = old.phase
    terminal = phase in TERMINAL_PHASES

    old_conds = {c.type: c for c in old.conditions or []}
    not_init = [cs.name for cs in init_statuses if not cs.ready]
    unready = [cs.name for cs in statuses if not cs.ready]
    all_ready = not unready and not terminal
    if terminal:
        ready_reason, ready_msg = "PodCompleted", None
    else:
        ready_reason, ready_msg = "ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]"
    conditions = [
        _condition(old_conds, "Initialized", initialized, stamp, "PodCompleted" if terminal else
                   "ContainersNotInitialized", None if terminal else
                   f"containers with incomplete status: [{' '.join(not_init)}]"),
        _condition(old_conds, "Ready", all_ready, stamp, ready_reason, ready_msg),
        _condition(old_conds, "ContainersReady", all_ready, stamp, ready_reason, ready_msg),
    ]
    scheduled = old_conds.get("PodScheduled")
    conditions.append(scheduled if scheduled is not None and scheduled.status == "True"
                      else PodCondition(type="PodScheduled", status="True", last_transition_time=stamp))
    ours = {c.type for c in conditions}
    conditions += [c for c in old.conditions or [] if c.type not in ours]  # others' conditions stay

    status = PodStatus(phase=phase, conditions=conditions, host_ip=node_ip or None,
                       start_time=old.start_time or stamp, qos_class=old.qos_class or qos_class(pod),
                       init_container_statuses=init_statuses or None, container_statuses=statuses)
    if node_ip:
        setattr(status, "hostIPs", [{"ip": node_ip}])  # noqa: B010 - an extra (unmodelled) wire field
    pod_ip = ""
    if sandbox is not None:
        pod_ip = node_ip if pod.spec.host_network else sandbox.ip
    pod_ip = pod_ip or old.pod_ip or ""
    if pod_ip:
        status.pod_ip = pod_ip
        status.pod_ips = [PodIP(ip=pod_ip)]
    if sandbox is not None and not terminal:
        ports = sorted(sandbox.port_mappings, key=lambda m: (m.container_port, m.protocol))
        if ports:
            status.published_ports = [PublishedPort(container_port=m.container_port, protocol=m.protocol.upper(),
                                                    host_port=m.host_port, host_ip=node_ip or None)
                                      for m in ports]
    return status


def status_dict(status: PodStatus) -> dict[str, object]:
    """The wire form used to compare and write statuses."""
    return status.to_dict()
