"""Pod sync: desired pod + observed sandbox/containers -> actions (pure), and their execution.

`plan()` is the kubelet's computePodActions: a pure function of the pod, what the runtime
reports and the clock, so every decision is unit-testable and safe to recompute at any
time (level-triggered). It honours:

- sandbox lifecycle: create when missing; recreate (attempt + 1) when it died, killing
  what still runs; kill when the pod is finished; remove superseded sandboxes;
- init containers one at a time, in order, before any app container;
- restartPolicy Always / OnFailure / Never;
- the spec hash: a container whose spec changed is killed and recreated;
- CrashLoopBackOff: restarts wait 10 s, doubling to 5 min, reset once a container ran
  10 min (the kubelet's flowcontrol.Backoff; `Backoff` below);
- graceful stop with the pod's grace period; deletion and orphans (pod None);
- garbage: per container name, running ones and the newest exited one are kept (for
  restart counts and `logs --previous`), older exited ones are removed.

`execute()` applies a plan to a Runtime (image pulls per imagePullPolicy with their own
back-off, config mapping through podspec, errors collected per container).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mkube.api.defaults import image_pull_policy
from mkube.api.types import Container, Pod
from mkube.kubelet.podspec import (
    DEFAULT_GRACE_S,
    LABEL_GRACE,
    ConfigError,
    Lookup,
    as_pod,
    container_config,
    container_hash,
    grace_seconds,
    sandbox_config,
)
from mkube.kubelet.runtime.base import (
    ContainerInfo,
    ContainerRuntimeError,
    ImagePullError,
    Runtime,
    SandboxInfo,
)

BACKOFF_INITIAL_S = 10.0
BACKOFF_MAX_S = 300.0
CREATED_GRACE_S = 60.0  # a container "created" longer than this is stuck: replace it

# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class CreateSandbox:
    attempt: int
    reason: str


@dataclass(frozen=True)
class KillSandbox:
    sandbox_id: str
    grace_s: float
    reason: str


@dataclass(frozen=True)
class RemoveSandbox:
    sandbox_id: str
    reason: str


@dataclass(frozen=True)
class StartContainer:
    """Create and start container `name` (in the sandbox current when executed).
    `backoff_key`/`event_time` are set for a restart after an exit: executing it
    advances the back-off for that key."""

    name: str
    init: bool
    attempt: int
    spec_hash: str
    reason: str
    backoff_key: str | None = None
    event_time: float | None = None


@dataclass(frozen=True)
class KillContainer:
    container_id: str
    name: str
    grace_s: float
    reason: str


@dataclass(frozen=True)
class RemoveContainer:
    container_id: str
    name: str
    reason: str


@dataclass(frozen=True)
class BackOff:
    """Not a runtime action: container `name` waits (CrashLoopBackOff) until `until`."""

    name: str
    init: bool
    until: float
    message: str
    reason: str = "CrashLoopBackOff"


Action = CreateSandbox | KillSandbox | RemoveSandbox | StartContainer | KillContainer | RemoveContainer | BackOff

# --------------------------------------------------------------------------- back-off


@dataclass
class _Entry:
    delay: float
    last_update: float


class Backoff:
    """Per-key exponential back-off (k8s.io/client-go/util/flowcontrol.Backoff).

    `until(key, event_time, now)` says whether a restart after an exit at `event_time`
    must wait; `next(key, event_time, now)` records a restart. An entry whose last
    restart is more than 2 x max before the exit (the container ran that long) is
    stale: the next delay starts over. Thread-safe."""

    def __init__(self, initial_s: float = BACKOFF_INITIAL_S, max_s: float = BACKOFF_MAX_S) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def _expired(self, e: _Entry, event_time: float) -> bool:
        return event_time - e.last_update > 2 * self.max_s

    def until(self, key: str, event_time: float, now: float) -> float | None:
        """The time a restart may happen, if it must wait; None if it may happen now."""
        with self._lock:
            e = self._entries.get(key)
            if e is None or self._expired(e, event_time):
                return None
            return event_time + e.delay if now - event_time < e.delay else None

    def until_since_update(self, key: str, now: float) -> float | None:
        """Like `until`, counting from the last `next` (for retries of a failed action,
        e.g. an image pull, rather than restarts after an exit)."""
        with self._lock:
            e = self._entries.get(key)
            if e is None or self._expired(e, now):
                return None
            return e.last_update + e.delay if now - e.last_update < e.delay else None

    def delay(self, key: str) -> float:
        with self._lock:
            e = self._entries.get(key)
            return e.delay if e else 0.0

    def next(self, key: str, event_time: float, now: float) -> None:
        with self._lock:
            e = self._entries.get(key)
            if e is None or self._expired(e, event_time):
                self._entries[key] = _Entry(self.initial_s, now)
            else:
                self._entries[key] = _Entry(min(e.delay * 2, self.max_s), now)

    def gc(self, now: float) -> None:
        """Forget entries not used for 2 x max."""
        with self._lock:
            for k in [k for k, e in self._entries.items() if now - e.last_update > 2 * self.max_s]:
                del self._entries[k]


def backoff_key(pod: Pod, container: Container) -> str:
    """The kubelet's stable key: a changed spec starts a fresh back-off."""
    m = pod.metadata
    return f"{m.namespace}/{m.name}/{m.uid}/{container.name}/{container_hash(container)}"


# --------------------------------------------------------------------------- plan


def _newest_first(items: Iterable[ContainerInfo]) -> list[ContainerInfo]:
    return sorted(items, key=lambda c: (c.attempt, c.created_at or 0.0), reverse=True)


def _alive(c: ContainerInfo) -> bool:
    return c.state in ("running", "created", "unknown")


@dataclass
class _Ctx:
    pod: Pod
    now: float
    backoff: Backoff
    grace: float
    policy: str
    unhealthy: Collection[str]
    by_name: dict[str, list[ContainerInfo]]
    actions: list[Action] = field(default_factory=list)
    handled: set[str] = field(default_factory=set)  # container ids already killed or removed

    def kill(self, c: ContainerInfo, reason: str) -> None:
        if c.id not in self.handled:
            self.handled.add(c.id)
            self.actions.append(KillContainer(c.id, c.name, self.grace, reason))

    def remove(self, c: ContainerInfo, reason: str) -> None:
        if c.id not in self.handled:
            self.handled.add(c.id)
            self.actions.append(RemoveContainer(c.id, c.name, reason))


def _restart_wanted(policy: str, exit_code: int | None, init: bool) -> bool:
    if policy == "Always" and not init:
        return True
    return policy != "Never" and exit_code != 0  # init containers re-run on failure unless Never


def _decide(ctx: _Ctx, spec: Container, init: bool, sandbox_id: str,
            instances: list[ContainerInfo], attempt: int) -> str:
    """Plan one container given its `instances` (newest first); `attempt` is the number
    the next instance gets. Returns "running", "done", "failed" or "pending"."""
    latest = instances[0] if instances else None
    want_hash = container_hash(spec)

    def start(reason: str, restart_of: ContainerInfo | None = None) -> str:
        key = event = None
        if restart_of is not None:
            key = backoff_key(ctx.pod, spec)
            event = restart_of.finished_at or ctx.now
            until = ctx.backoff.until(key, event, ctx.now)
            if until is not None:
                ctx.actions.append(BackOff(spec.name, init, until, f"back-off {ctx.backoff.delay(key):g}s restarting "
                                           f"failed container={spec.name} pod={ctx.pod.metadata.name}"))
                return "pending"
        ctx.actions.append(StartContainer(spec.name, init, attempt, want_hash, reason, key, event))
        return "pending"

    if latest is None:
        return start("not started yet")
    in_sandbox = latest.sandbox_id == sandbox_id
    if latest.state == "created" and in_sandbox and ctx.now - (latest.created_at or ctx.now) < CREATED_GRACE_S:
        return "pending"  # being started (or starting slowly)
    if _alive(latest) and not in_sandbox:
        ctx.kill(latest, "pod sandbox changed")
        return start("pod sandbox changed")
    if latest.state in ("created", "unknown"):
        ctx.remove(latest, f"container is {latest.state}")
        return start(f"replacing {latest.state} container")
    if latest.state == "running":
        if latest.spec_hash and latest.spec_hash != want_hash and not init:
            ctx.kill(latest, "container spec changed")
            return start("container spec changed")
        if spec.name in ctx.unhealthy and not init:
            ctx.kill(latest, "liveness probe failed")
            return "failed" if ctx.policy == "Never" else start("liveness probe failed")
        return "running"
    # exited
    if latest.spec_hash and latest.spec_hash != want_hash and not init and ctx.policy == "Always":
        return start("container spec changed")
    if not _restart_wanted(ctx.policy, latest.exit_code, init):
        return "done" if latest.exit_code == 0 else "failed"
    return start(f"exited with code {latest.exit_code}", restart_of=latest)


def _garbage(ctx: _Ctx, containers: Sequence[ContainerInfo], sandboxes: Sequence[SandboxInfo],
             current: SandboxInfo | None, spec_names: set[str]) -> None:
    keep: set[str] = set()
    for name, instances in ctx.by_name.items():
        if name not in spec_names:
            for c in instances:
                if _alive(c):
                    ctx.kill(c, "container is not in the pod spec")
                else:
                    ctx.remove(c, "container is not in the pod spec")
            continue
        newest_exited = next((c for c in instances if not _alive(c)), None)
        for c in instances:
            if c.id in ctx.handled:
                if _alive(c):
                    keep.add(c.id)  # being killed: its sandbox must stay until it is gone
            elif _alive(c) or c is newest_exited:
                keep.add(c.id)
            else:
                ctx.remove(c, "superseded by a newer attempt")
    kept_sandboxes = {c.sandbox_id for c in containers if c.id in keep}
    for sb in sandboxes:
        if current is not None and sb.id == current.id:
            continue
        if sb.state == "ready":
            ctx.actions.append(KillSandbox(sb.id, ctx.grace, "superseded by a newer sandbox"))
        elif sb.id not in kept_sandboxes:
            ctx.actions.append(RemoveSandbox(sb.id, "superseded by a newer sandbox"))


def _orphan_grace(c: ContainerInfo) -> float:
    try:
        return float(c.labels.get(LABEL_GRACE, DEFAULT_GRACE_S))
    except ValueError:
        return DEFAULT_GRACE_S


def _plan_teardown(sandboxes: Sequence[SandboxInfo], containers: Sequence[ContainerInfo],
                   grace: float | None, reason: str) -> list[Action]:
    """Stop everything (gracefully), then, once all is stopped, remove it all."""
    actions: list[Action] = []
    alive = [c for c in containers if _alive(c)]
    for c in alive:
        actions.append(KillContainer(c.id, c.name, _orphan_grace(c) if grace is None else grace, reason))
    ready = [sb for sb in sandboxes if sb.state == "ready"]
    for sb in ready:
        actions.append(KillSandbox(sb.id, 0 if grace is None else grace, reason))
    if alive or ready:
        return actions
    known = {sb.id for sb in sandboxes}
    actions += [RemoveContainer(c.id, c.name, reason) for c in containers if c.sandbox_id not in known]
    actions += [RemoveSandbox(sb.id, reason) for sb in sandboxes]
    return actions


def _is_finished(policy: str, inits: list[Container], apps: list[Container],
                 by_name: Mapping[str, list[ContainerInfo]]) -> bool:
    """True when the pod will run nothing more: Never with every app container exited (or
    an init container failed), OnFailure with every app container exited 0."""
    def latest(name: str) -> ContainerInfo | None:
        inst = by_name.get(name)
        return inst[0] if inst else None

    if policy == "Always":
        return False
    if policy == "Never" and any((c := latest(i.name)) and c.state == "exited" and c.exit_code != 0
                                 for i in inits):
        return True
    lasts = [latest(a.name) for a in apps]
    if not lasts or any(c is None or c.state != "exited" for c in lasts):
        return False
    return policy == "Never" or all(c is not None and c.exit_code == 0 for c in lasts)


def plan(pod: Pod | Mapping[str, Any] | None,
         sandbox: SandboxInfo | Sequence[SandboxInfo] | None,
         containers: Sequence[ContainerInfo],
         now: float,
         backoff: Backoff | None = None,
         *,
         unhealthy: Collection[str] = ()) -> list[Action]:
    """The actions that move the pod's observed state towards its spec. Pure: reads
    `backoff`, never changes it (executing a StartContainer with a backoff_key does).

    `sandbox`: the pod's sandbox(es) on this node; `containers`: its containers in all
    states. `pod` None means the pod no longer exists: everything is stopped, then
    removed; the same once `metadata.deletionTimestamp` is set. `unhealthy`: names of
    containers whose liveness probe failed. Kills come first in the returned order."""
    sandboxes = [] if sandbox is None else [sandbox] if isinstance(sandbox, SandboxInfo) else list(sandbox)
    if pod is None:
        return _plan_teardown(sandboxes, containers, None, "pod no longer exists")
    p = as_pod(pod)
    if p.metadata.deletion_timestamp is not None:
        return _plan_teardown(sandboxes, containers, grace_seconds(p), "pod is being deleted")

    policy = p.spec.restart_policy or "Always"
    inits = list(p.spec.init_containers or [])
    apps = list(p.spec.containers)
    by_name: dict[str, list[ContainerInfo]] = {}
    for c in _newest_first(containers):
        by_name.setdefault(c.name, []).append(c)
    ctx = _Ctx(p, now, backoff or Backoff(), grace_seconds(p), policy, unhealthy, by_name)
    current = max(sandboxes, key=lambda s: (s.attempt, s.created_at or 0.0)) if sandboxes else None
    spec_names = {c.name for c in inits + apps}

    if _is_finished(policy, inits, apps, by_name):
        if current is not None and current.state == "ready":
            ctx.actions.append(KillSandbox(current.id, ctx.grace, "pod completed"))
        _garbage(ctx, containers, sandboxes, current, spec_names)
        return _ordered(ctx.actions)

    if current is None or current.state != "ready":
        for info in containers:
            if _alive(info):
                ctx.kill(info, "pod sandbox changed")
        ctx.actions.append(CreateSandbox(current.attempt + 1 if current else 0,
                                         "pod sandbox not ready" if current else "no pod sandbox"))
        sandbox_id = ""  # the sandbox about to be created: nothing observed lives in it
        current = None
    else:
        sandbox_id = current.id

    def next_attempt(name: str) -> int:
        inst = by_name.get(name)
        return inst[0].attempt + 1 if inst else 0

    # Init containers: one at a time, in order, each until it succeeds; they run again
    # in a new sandbox. Once an app container exists in this sandbox, init is over.
    init_done = any(c.sandbox_id == sandbox_id for a in apps for c in by_name.get(a.name, []))
    if not init_done:
        for init in inits:
            here = [i for i in by_name.get(init.name, []) if i.sandbox_id == sandbox_id]
            if _decide(ctx, init, True, sandbox_id, here, next_attempt(init.name)) != "done":
                break
        else:
            init_done = True
    if init_done:
        for app in apps:
            _decide(ctx, app, False, sandbox_id, by_name.get(app.name, []), next_attempt(app.name))
    _garbage(ctx, containers, sandboxes, current, spec_names)
    return _ordered(ctx.actions)


_ORDER = {KillContainer: 0, KillSandbox: 1, RemoveContainer: 2, RemoveSandbox: 3, CreateSandbox: 4,
          StartContainer: 5, BackOff: 6}


def _ordered(actions: list[Action]) -> list[Action]:
    """Kills, then removals, then creation and starts (stable within each kind)."""
    unique: list[Action] = []
    for a in actions:
        if a not in unique:
            unique.append(a)
    return sorted(unique, key=lambda a: _ORDER[type(a)])


# --------------------------------------------------------------------------- execute


@dataclass
class SyncResult:
    """What executing a plan did. `waiting` maps a container name to (reason, message)
    for containers that could not be started (ErrImagePull, ImagePullBackOff,
    CreateContainerConfigError, CreateContainerError, RunContainerError, CrashLoopBackOff)."""

    sandbox: SandboxInfo | None = None
    started: list[str] = field(default_factory=list)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    sandbox_error: tuple[str, str] | None = None
    errors: list[str] = field(default_factory=list)  # failed kills and removals


def _ensure_image(runtime: Runtime, c: Container, pull_backoff: Backoff, now: float,
                  auth: Mapping[str, str] | None, fallback_to_local: bool) -> None:
    image = c.image or ""
    policy = c.image_pull_policy or image_pull_policy(image)
    if policy == "Never":
        if not runtime.image_present(image):
            raise ImagePullError("ErrImageNeverPull",
                                 f'Container image "{image}" is not present with pull policy of Never')
        return
    if policy == "IfNotPresent" and runtime.image_present(image):
        return
    key = f"pull/{image}"
    if pull_backoff.until_since_update(key, now) is not None:
        raise ImagePullError("ImagePullBackOff", f'Back-off pulling image "{image}"')
    try:
        runtime.pull_image(image, auth)
    except ImagePullError:
        if fallback_to_local and policy == "Always" and runtime.image_present(image):
            return  # offline-friendly: the registry failed but the node has the image
        pull_backoff.next(key, now, now)
        raise


def needs_pod_ip(c: Container) -> bool:
    """True if the container's environment names the pod's IP, which is known only once
    its sandbox runs (so it cannot be created before)."""
    return any(e.value_from is not None and e.value_from.field_ref is not None
               and e.value_from.field_ref.field_path in ("status.podIP", "status.podIPs")
               for e in c.env or [])


def execute(actions: Sequence[Action], pod: Pod | Mapping[str, Any] | None, runtime: Runtime, *,
            now: float, sandbox: SandboxInfo | None = None, backoff: Backoff | None = None,
            pull_backoff: Backoff | None = None, volume_paths: Mapping[str, str] | None = None,
            lookup: Lookup | None = None, host_ip: str = "", node_cpu_millis: int = 0, node_memory: int = 0,
            auth_for: Callable[[str], Mapping[str, str] | None] | None = None,
            pull_fallback_to_local: bool = True, max_parallel: int = 8,
            parallel_starts: bool = False) -> SyncResult:
    """Apply `actions` (from `plan`) in order: container kills (in parallel), then sandbox
    kills, removals and sandbox creation, then the container starts, in order or, with
    `parallel_starts` (needs a thread-safe `runtime`), in parallel: a plan starts
    several app containers together, never several init containers.
    A new sandbox is created, then the containers to start in it are pulled and created
    (a container whose environment needs the pod IP only once the sandbox runs), then
    start_sandbox, then the starts. A runtime that starts the sandbox in the background
    from create_sandbox (Docker) so takes the image checks and container creation off a
    pod's startup path, which its network setup dominates.
    A failed sandbox skips the starts, a failed kill the start of that container. Never
    raises for runtime failures: they are collected in the result (`waiting` per
    container, `sandbox_error`, `errors`). `sandbox`: the pod's current sandbox, if any."""
    p = as_pod(pod) if pod is not None else None
    result = SyncResult(sandbox=sandbox)
    backoff = backoff or Backoff()
    pull_backoff = pull_backoff or Backoff()

    def run_all(fn: Callable[[Any], None], items: list[Any]) -> None:
        if len(items) <= 1:
            for item in items:
                fn(item)
            return
        with ThreadPoolExecutor(max_workers=min(max_parallel, len(items))) as pool:
            for f in [pool.submit(fn, item) for item in items]:
                f.result()

    failed_kills: set[str] = set()  # container names: their replacement must wait

    def guarded(a: Action, call: Callable[[], object]) -> None:
        try:
            call()
        except ContainerRuntimeError as e:
            result.errors.append(f"{type(a).__name__}: {e}")
            if isinstance(a, KillContainer):
                failed_kills.add(a.name)

    run_all(lambda a: guarded(a, lambda: runtime.stop_container(a.container_id, a.grace_s)),
            [a for a in actions if isinstance(a, KillContainer)])
    new_sandbox: str | None = None  # created by this plan, not started yet
    for a in actions:
        if isinstance(a, KillSandbox):
            guarded(a, lambda a=a: runtime.stop_sandbox(a.sandbox_id, a.grace_s))  # type: ignore[misc]
        elif isinstance(a, RemoveContainer):
            guarded(a, lambda a=a: runtime.remove_container(a.container_id))  # type: ignore[misc]
        elif isinstance(a, RemoveSandbox):
            guarded(a, lambda a=a: runtime.remove_sandbox(a.sandbox_id))  # type: ignore[misc]
        elif isinstance(a, CreateSandbox) and p is not None:
            result.sandbox = None
            try:
                new_sandbox = runtime.create_sandbox(sandbox_config(p, a.attempt))
            except ContainerRuntimeError as e:
                result.sandbox_error = (e.reason, e.message)
        elif isinstance(a, BackOff):
            result.waiting[a.name] = (a.reason, a.message)
    if p is None:
        return result
    starts = [a for a in actions if isinstance(a, StartContainer) and a.name not in failed_kills]
    starter = _Starter(p, runtime, result, backoff, pull_backoff, now, volume_paths, lookup, host_ip,
                       node_cpu_millis, node_memory, auth_for, pull_fallback_to_local)
    created: dict[str, str | None] = {}  # container name -> id, created before the sandbox ran
    if new_sandbox is not None:
        for a in starts:
            if not needs_pod_ip(starter.spec(a)):
                created[a.name] = starter.create(a, new_sandbox, pod_ip="")
        try:
            result.sandbox = runtime.start_sandbox(new_sandbox)
        except ContainerRuntimeError as e:  # start_sandbox removed it and what was created in it
            result.sandbox_error = (e.reason, e.message)
    if not starts or result.sandbox is None or result.sandbox.state != "ready":
        return result
    ready = result.sandbox

    def start(a: StartContainer) -> None:
        cid = created[a.name] if a.name in created else starter.create(a, ready.id, pod_ip=ready.ip)
        if cid is not None:
            starter.start(a, cid)

    if parallel_starts:
        run_all(start, starts)
        order = [a.name for a in starts]
        result.started.sort(key=order.index)
    else:
        for a in starts:
            start(a)
    return result


@dataclass
class _Starter:
    """Creates and starts the containers of one executed plan, recording failures in
    `result.waiting` (never raises for runtime or configuration failures)."""

    pod: Pod
    runtime: Runtime
    result: SyncResult
    backoff: Backoff
    pull_backoff: Backoff
    now: float
    volume_paths: Mapping[str, str] | None
    lookup: Lookup | None
    host_ip: str
    node_cpu_millis: int
    node_memory: int
    auth_for: Callable[[str], Mapping[str, str] | None] | None
    fallback: bool

    def spec(self, a: StartContainer) -> Container:
        specs = list(self.pod.spec.init_containers or []) + list(self.pod.spec.containers)
        return next(s for s in specs if s.name == a.name)

    def create(self, a: StartContainer, sandbox_id: str, pod_ip: str) -> str | None:
        """Pull (per policy) and create the container; its id, or None if it must wait."""
        c = self.spec(a)
        if a.backoff_key is not None and a.event_time is not None:
            self.backoff.next(a.backoff_key, a.event_time, self.now)
        try:
            auth = self.auth_for(c.image or "") if self.auth_for else None
            _ensure_image(self.runtime, c, self.pull_backoff, self.now, auth, self.fallback)
            cfg = container_config(self.pod, c, attempt=a.attempt, volume_paths=self.volume_paths,
                                   lookup=self.lookup, pod_ip=pod_ip, host_ip=self.host_ip,
                                   node_cpu_millis=self.node_cpu_millis, node_memory=self.node_memory)
            return self.runtime.create_container(sandbox_id, cfg)
        except ConfigError as e:
            self.result.waiting[a.name] = (e.reason, str(e))
        except ContainerRuntimeError as e:
            self.result.waiting[a.name] = (e.reason, e.message)
        return None

    def start(self, a: StartContainer, container_id: str) -> None:
        try:
            self.runtime.start_container(container_id)
            self.result.started.append(a.name)
        except ContainerRuntimeError as e:
            self.result.waiting[a.name] = (e.reason, e.message)
