"""Taints and tolerations (Kubernetes' v1helper), pure.

`eviction_delay(pod, taints, default_seconds)` answers the taint manager's question for
one pod on a node with NoExecute taints: evict now (0), after N seconds, or never (None).
Pods without their own toleration for `node.kubernetes.io/not-ready` or
`node.kubernetes.io/unreachable` get one for `default_seconds` — what Kubernetes'
DefaultTolerationSeconds admission plugin adds to every pod (300 s by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mkube.api.types import Taint, Toleration

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NO_EXECUTE = "NoExecute"
NO_SCHEDULE = "NoSchedule"


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    if toleration.operator == "Exists":
        return True
    return (toleration.value or "") == (taint.value or "")


def with_default_tolerations(tolerations: Iterable[Toleration] | None, default_seconds: int) -> list[Toleration]:
    """Add the default not-ready/unreachable NoExecute tolerations a pod lacks."""
    out = list(tolerations or [])
    for key in (NOT_READY, UNREACHABLE):
        if not any(t.key == key and t.effect in (None, "", NO_EXECUTE) for t in out):
            out.append(Toleration(key=key, operator="Exists", effect=NO_EXECUTE, toleration_seconds=default_seconds))
    return out


def eviction_delay(tolerations: Iterable[Toleration] | None, taints: Sequence[Taint],
                   default_seconds: int) -> float | None:
    """Seconds after which the pod must be evicted for these NoExecute taints; None = never.

    0 when some taint is not tolerated at all; otherwise the smallest tolerationSeconds
    among the tolerations used (negative counts as 0); None if none of them is bounded.
    """
    no_execute = [t for t in taints if t.effect == NO_EXECUTE]
    if not no_execute:
        return None
    tols = with_default_tolerations(tolerations, default_seconds)
    used: list[Toleration] = []
    for taint in no_execute:
        match = next((t for t in tols if tolerates(t, taint)), None)
        if match is None:
            return 0.0
        used.append(match)
    bounded = [max(t.toleration_seconds, 0) for t in used if t.toleration_seconds is not None]
    return float(min(bounded)) if bounded else None


def has_taint(taints: Iterable[Taint] | None, key: str, effect: str) -> bool:
    return any(t.key == key and t.effect == effect for t in taints or [])
