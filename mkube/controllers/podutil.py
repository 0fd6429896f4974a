"""Pure facts about pods that several controllers share (Kubernetes' podutil/controller_utils).

- `is_pod_ready`: the pod's Ready condition is True.
- `is_pod_available`: ready for at least `min_ready_seconds` (measured from the Ready
  condition's lastTransitionTime).
- `is_pod_active`: not Succeeded/Failed and not being deleted — what a ReplicaSet counts.
- `pods_to_delete`: the least valuable pods first (Kubernetes' ActivePodsWithRanks order).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime

from mkube.api.timeutil import now, parse_time
from mkube.api.types import Pod, PodCondition

DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"

_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def ready_condition(pod: Pod) -> PodCondition | None:
    for cond in pod.status.conditions or []:
        if cond.type == "Ready":
            return cond
    return None


def is_pod_ready(pod: Pod) -> bool:
    cond = ready_condition(pod)
    return cond is not None and cond.status == "True"


def pod_ready_since(pod: Pod) -> datetime | None:
    """When the pod last became ready (None if not ready or unknown)."""
    cond = ready_condition(pod)
    if cond is None or cond.status != "True":
        return None
    return parse_time(cond.last_transition_time)


def is_pod_available(pod: Pod, min_ready_seconds: int | None, at: datetime | None = None) -> bool:
    """Ready, and (if min_ready_seconds > 0) ready for at least that long."""
    cond = ready_condition(pod)
    if cond is None or cond.status != "True":
        return False
    if not min_ready_seconds:
        return True
    since = parse_time(cond.last_transition_time)
    if since is None:
        return False
    return (since.timestamp() + min_ready_seconds) < (at or now()).timestamp()


def available_in(pod: Pod, min_ready_seconds: int | None, at: datetime | None = None) -> float | None:
    """Seconds until a ready-but-not-yet-available pod becomes available (None otherwise)."""
    if not min_ready_seconds:
        return None
    since = pod_ready_since(pod)
    if since is None:
        return None
    left = since.timestamp() + min_ready_seconds - (at or now()).timestamp()
    return left if left >= 0 else None


def is_pod_terminal(pod: Pod) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


def is_pod_active(pod: Pod) -> bool:
    """Counts towards a controller's replicas: not finished and not being deleted."""
    return not is_pod_terminal(pod) and pod.metadata.deletion_timestamp is None


def active_pods(pods: Iterable[Pod]) -> list[Pod]:
    return [p for p in pods if is_pod_active(p)]


def max_container_restarts(pod: Pod) -> int:
    return max((cs.restart_count for cs in pod.status.container_statuses or []), default=0)


def deletion_cost(pod: Pod) -> int:
    raw = (pod.metadata.annotations or {}).get(DELETION_COST_ANNOTATION)
    if raw is None:
        return 0
    try:
        return int(raw)
    except ValueError:
        return 0


def _log_rank(t: datetime | None, at: float) -> int:
    """floor(log2(age in seconds)); -1 for unknown times or ages under a second.

    Kubernetes' LogarithmicScaleDown: pods whose ages are within the same power of two
    count as equally old, so scale-down does not always pick the very newest pod.
    """
    if t is None:
        return -1
    age = at - t.timestamp()
    return int(math.floor(math.log2(age))) if age >= 1 else -1


def _sort_key(pod: Pod, rank: int, at: float) -> tuple[object, ...]:
    """Ascending key: smaller means "delete first" (see module docstring)."""
    ready = is_pod_ready(pod)
    ready_rank = _log_rank(pod_ready_since(pod), at) if ready else 0
    created = parse_time(pod.metadata.creation_timestamp)
    return (
        1 if pod.spec.node_name else 0,  # unscheduled first
        _PHASE_ORDINAL.get(pod.status.phase or "Pending", 0),  # Pending < Unknown < Running
        1 if ready else 0,  # not ready first
        deletion_cost(pod),  # lower cost first
        -rank,  # more co-located siblings first
        ready_rank,  # ready for a shorter time first (log scale)
        -max_container_restarts(pod),  # more restarts first
        _log_rank(created, at),  # newer first (log scale)
        pod.metadata.uid or "",  # deterministic tie-break (Kubernetes uses the UID too)
    )


def rank_by_colocation(pods: Sequence[Pod], related: Iterable[Pod]) -> list[int]:
    """For each pod, how many related active pods (incl. itself) share its node."""
    per_node: dict[str, int] = {}
    for p in related:
        if p.spec.node_name and is_pod_active(p):
            per_node[p.spec.node_name] = per_node.get(p.spec.node_name, 0) + 1
    return [per_node.get(p.spec.node_name or "", 0) if p.spec.node_name else 0 for p in pods]


def pods_to_delete(pods: Sequence[Pod], count: int, related: Iterable[Pod] | None = None,
                   at: datetime | None = None) -> list[Pod]:
    """The `count` least valuable pods of `pods`, least valuable first.

    Order (Kubernetes' ActivePodsWithRanks): unscheduled < scheduled; Pending < Unknown
    < Running; not ready < ready; lower pod-deletion-cost < higher; more sibling pods
    on the same node < fewer; ready for less time < longer; more restarts < fewer;
    newer < older. `related` are the pods of the owner's sibling controllers (the same
    Deployment) used for the co-location rank; default: `pods` themselves.
    """
    if count <= 0:
        return []
    ts = (at or now()).timestamp()
    ranks = rank_by_colocation(pods, pods if related is None else related)
    order = sorted(range(len(pods)), key=lambda i: _sort_key(pods[i], ranks[i], ts))
    return [pods[i] for i in order[:count]]
