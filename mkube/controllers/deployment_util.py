"""Pure Deployment math (Kubernetes' pkg/controller/deployment/util), no I/O.

Everything here takes and returns API models; functions that "change" a ReplicaSet or
a Deployment work on a copy the caller passes in (never on a cached object).

Key facts reproduced from Kubernetes:
- The pod-template-hash is fnv-32a over the template's canonical JSON (nulls and empty
  lists/objects dropped, as Kubernetes' semantic equality ignores them; plus the
  collision count), printed in decimal and mapped through a vowel-free alphabet, so
  names like `web-5d4f8b9c7` never spell words and are stable across restarts.
- maxSurge rounds percentages up, maxUnavailable rounds down; if both resolve to 0,
  maxUnavailable becomes 1 (a rollout must be able to move).
- A rolling update scales the new ReplicaSet up to at most replicas + maxSurge pods in
  total (counting pods an old ReplicaSet still has after a scale-down, see new_rs_replicas), and old ReplicaSets down while keeping at least replicas - maxUnavailable
  pods available, unhealthy old pods first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from mkube.api.timeutil import format_time, now, parse_time
from mkube.api.types import (
    Deployment,
    DeploymentCondition,
    DeploymentStatus,
    PodTemplateSpec,
    ReplicaSet,
)

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
_ROLLBACK_TO_ANNOTATION = "deprecated.deployment.rollback.to"

# Condition types and reasons (apps/v1)
AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"
MIN_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MIN_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
FAILED_RS_CREATE = "ReplicaSetCreateError"

DEFAULT_MAX_SURGE = "25%"
DEFAULT_MAX_UNAVAILABLE = "25%"
DEFAULT_REVISION_HISTORY_LIMIT = 10
DEFAULT_PROGRESS_DEADLINE = 600
MAX_INT32 = 2**31 - 1

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # rand.SafeEncodeString: no vowels, no 0/1/3


# --------------------------------------------------------------------------- hashing


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in text)


#: Keys whose empty object means something (`emptyDir: {}` is a volume source).
_PRESENCE_MATTERS = frozenset({"emptyDir"})


def _normalized(value: Any, key: str = "") -> Any:
    """Drop nulls and empty lists/objects, recursively: Kubernetes compares templates
    semantically (an empty `resources: {}` sent by kubectl equals an absent one)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            nv = _normalized(v, k)
            if nv is None or (nv == {} and k not in _PRESENCE_MATTERS) or nv == []:
                continue
            out[k] = nv
        return out
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def template_json(template: PodTemplateSpec) -> str:
    """Canonical JSON of a template without the pod-template-hash label (see _normalized)."""
    data = _normalized(template.to_dict())
    labels = (data.get("metadata") or {}).get("labels")
    if labels and POD_TEMPLATE_HASH_LABEL in labels:
        labels = {k: v for k, v in labels.items() if k != POD_TEMPLATE_HASH_LABEL}
        data["metadata"]["labels"] = labels
        if not labels:
            del data["metadata"]["labels"]
    if "metadata" in data and not data["metadata"]:
        del data["metadata"]
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def compute_hash(template: PodTemplateSpec, collision_count: int | None = None) -> str:
    """The pod-template-hash of `template` (deterministic; see module docstring)."""
    data = template_json(template).encode()
    if collision_count:
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little")
    return safe_encode(str(fnv32a(data)))


def equal_ignore_hash(a: PodTemplateSpec, b: PodTemplateSpec) -> bool:
    """Templates equal apart from the pod-template-hash label."""
    return template_json(a) == template_json(b)


# --------------------------------------------------------------------------- spec accessors


def replicas_of(obj: Deployment | ReplicaSet) -> int:
    r = obj.spec.replicas
    return 1 if r is None else r


def rs_replicas(rs: ReplicaSet) -> int:
    return rs.spec.replicas or 0


def is_rolling_update(d: Deployment) -> bool:
    strategy = d.spec.strategy
    return strategy is None or strategy.type in (None, "RollingUpdate")


def revision_history_limit(d: Deployment) -> int:
    limit = d.spec.revision_history_limit
    return DEFAULT_REVISION_HISTORY_LIMIT if limit is None else limit


def progress_deadline(d: Deployment) -> int | None:
    """progressDeadlineSeconds, or None when the deployment has no deadline."""
    value = d.spec.progress_deadline_seconds
    if value is None:
        return DEFAULT_PROGRESS_DEADLINE
    return None if value >= MAX_INT32 else value


def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """An IntOrString (`3` or `"25%"`) resolved against `total`."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = value.strip()
    if text.endswith("%"):
        pct = int(text[:-1])
        exact = pct * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)  # a plain number sent as a string


def resolve_fenceposts(max_surge: int | str | None, max_unavailable: int | str | None,
                       desired: int) -> tuple[int, int]:
    """(surge, unavailable) for `desired` replicas; never both 0."""
    surge = scaled_value(max_surge, desired, True)
    unavailable = scaled_value(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _rolling_params(d: Deployment) -> tuple[int | str | None, int | str | None]:
    ru = d.spec.strategy.rolling_update if d.spec.strategy else None
    surge = ru.max_surge if ru and ru.max_surge is not None else DEFAULT_MAX_SURGE
    unavailable = ru.max_unavailable if ru and ru.max_unavailable is not None else DEFAULT_MAX_UNAVAILABLE
    return surge, unavailable


def max_surge(d: Deployment) -> int:
    if not is_rolling_update(d):
        return 0
    surge, _ = resolve_fenceposts(*_rolling_params(d), replicas_of(d))
    return surge


def max_unavailable(d: Deployment) -> int:
    if not is_rolling_update(d) or replicas_of(d) == 0:
        return 0
    _, unavailable = resolve_fenceposts(*_rolling_params(d), replicas_of(d))
    return min(unavailable, replicas_of(d))


# --------------------------------------------------------------------------- replica sets


def revision_of(rs: ReplicaSet | Deployment) -> int:
    raw = (rs.metadata.annotations or {}).get(REVISION_ANNOTATION, "")
    try:
        return int(raw)
    except ValueError:
        return 0


def max_revision(rss: Iterable[ReplicaSet]) -> int:
    return max((revision_of(rs) for rs in rss), default=0)


def _created(rs: ReplicaSet) -> tuple[float, str]:
    t = parse_time(rs.metadata.creation_timestamp)
    return (t.timestamp() if t else 0.0, rs.metadata.name or "")


def by_creation(rss: Iterable[ReplicaSet], newest_first: bool = False) -> list[ReplicaSet]:
    """Oldest first (ties by name), or newest first."""
    return sorted(rss, key=_created, reverse=newest_first)


def by_revision(rss: Iterable[ReplicaSet]) -> list[ReplicaSet]:
    """Lowest revision first (ties by creation)."""
    return sorted(rss, key=lambda rs: (revision_of(rs), _created(rs)))


def by_size_newer(rss: Iterable[ReplicaSet]) -> list[ReplicaSet]:
    """Largest first; among equal sizes the newest first (scale up goes there)."""
    return sorted(by_creation(rss, newest_first=True), key=lambda rs: -rs_replicas(rs))


def by_size_older(rss: Iterable[ReplicaSet]) -> list[ReplicaSet]:
    """Largest first; among equal sizes the oldest first (scale down goes there)."""
    return sorted(by_creation(rss), key=lambda rs: -rs_replicas(rs))


def find_new_rs(d: Deployment, rss: Iterable[ReplicaSet]) -> ReplicaSet | None:
    """The oldest ReplicaSet whose template equals the deployment's (ignoring the hash)."""
    for rs in by_creation(rss):
        if equal_ignore_hash(rs.spec.template, d.spec.template):
            return rs
    return None


def filter_active(rss: Iterable[ReplicaSet | None]) -> list[ReplicaSet]:
    return [rs for rs in rss if rs is not None and rs_replicas(rs) > 0]


def replica_count(rss: Iterable[ReplicaSet | None]) -> int:
    """Sum of spec.replicas."""
    return sum(rs_replicas(rs) for rs in rss if rs is not None)


def actual_count(rss: Iterable[ReplicaSet | None]) -> int:
    """Sum of status.replicas."""
    return sum(rs.status.replicas or 0 for rs in rss if rs is not None)


def ready_count(rss: Iterable[ReplicaSet | None]) -> int:
    return sum(rs.status.ready_replicas or 0 for rs in rss if rs is not None)


def available_count(rss: Iterable[ReplicaSet | None]) -> int:
    return sum(rs.status.available_replicas or 0 for rs in rss if rs is not None)


def _int_annotation(rs: ReplicaSet, key: str) -> int | None:
    raw = (rs.metadata.annotations or {}).get(key)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def desired_replicas_annotation(rs: ReplicaSet) -> int | None:
    return _int_annotation(rs, DESIRED_REPLICAS_ANNOTATION)


def set_replicas_annotations(rs: ReplicaSet, desired: int, max_total: int) -> bool:
    """Record the deployment's size on `rs` (used for proportional scaling). Returns changed."""
    ann = rs.metadata.annotations = dict(rs.metadata.annotations or {})
    changed = False
    for key, value in ((DESIRED_REPLICAS_ANNOTATION, str(desired)), (MAX_REPLICAS_ANNOTATION, str(max_total))):
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: ReplicaSet, desired: int, max_total: int) -> bool:
    ann = rs.metadata.annotations or {}
    return ann.get(DESIRED_REPLICAS_ANNOTATION) != str(desired) or ann.get(MAX_REPLICAS_ANNOTATION) != str(max_total)


def _skip_copy(key: str) -> bool:
    return key in (LAST_APPLIED_ANNOTATION, REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION,
                   DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, _ROLLBACK_TO_ANNOTATION)


def copy_deployment_annotations(d: Deployment, rs: ReplicaSet) -> bool:
    """Copy the deployment's own annotations onto `rs` (not the controller's). Returns changed."""
    ann = rs.metadata.annotations = dict(rs.metadata.annotations or {})
    changed = False
    for key, value in (d.metadata.annotations or {}).items():
        if _skip_copy(key) or ann.get(key) == value:
            continue
        ann[key] = value
        changed = True
    return changed


def set_new_rs_annotations(d: Deployment, rs: ReplicaSet, new_revision: int, exists: bool) -> tuple[bool, int | None]:
    """Give `rs` (the deployment's new ReplicaSet) revision `new_revision` if its own is lower.

    Returns (changed, previous revision when an existing ReplicaSet is promoted — a rollback).
    The previous revisions are kept in the revision-history annotation, as Kubernetes does.
    """
    changed = copy_deployment_annotations(d, rs)
    ann = rs.metadata.annotations = dict(rs.metadata.annotations or {})
    had = REVISION_ANNOTATION in ann
    old = revision_of(rs)
    promoted: int | None = None
    if old < new_revision:
        ann[REVISION_ANNOTATION] = str(new_revision)
        changed = True
        if had:
            promoted = old
            history = ann.get(REVISION_HISTORY_ANNOTATION, "")
            ann[REVISION_HISTORY_ANNOTATION] = f"{history},{old}" if history else str(old)
    if not exists and set_replicas_annotations(rs, replicas_of(d), replicas_of(d) + max_surge(d)):
        changed = True
    return changed, promoted


def pod_bound(rs: ReplicaSet | None, active_pods: Mapping[str, int] | None = None) -> int:
    """Pods `rs` has or will have: max(spec.replicas, its active pods), the active pods
    taken from `active_pods` (uid -> count, from the pod cache) or else status.replicas."""
    if rs is None:
        return 0
    have = rs.status.replicas or 0
    if active_pods is not None and rs.metadata.uid in active_pods:
        have = active_pods[rs.metadata.uid or ""]
    return max(rs_replicas(rs), have)


def new_rs_replicas(d: Deployment, all_rss: Sequence[ReplicaSet | None], new_rs: ReplicaSet | None,
                    active_pods: Mapping[str, int] | None = None) -> int:
    """How many replicas the new ReplicaSet may have now (NewRSNewReplicas).

    Unlike Kubernetes, which sums spec.replicas only, an old ReplicaSet that was scaled
    down but still has its pods counts with its pods (`pod_bound`): the new one grows
    only once they are being deleted, so at no moment do more than replicas + maxSurge
    pods (not being deleted) exist.
    """
    desired = replicas_of(d)
    current_new = rs_replicas(new_rs) if new_rs is not None else 0
    if not is_rolling_update(d):
        return desired
    surge = max_surge(d)
    current = sum(pod_bound(rs, active_pods) for rs in all_rss)
    max_total = desired + surge
    if current >= max_total:
        return current_new
    scale_up = min(max_total - current, desired - current_new)
    return current_new + max(scale_up, 0)


def sure_available(rs: ReplicaSet | None) -> int:
    """Available pods `rs` will still have once its controller caught up with its spec.

    A ReplicaSet just scaled down still reports the pods it is deleting as available
    until its controller syncs again; it deletes unready pods first, so at most
    spec.replicas of its available pods remain. Scale-down decisions use this bound so
    that a status that lags behind a scale-down never lets availability drop below
    replicas - maxUnavailable (Kubernetes trusts the lagging status here).
    """
    if rs is None:
        return 0
    return min(rs.status.available_replicas or 0, rs_replicas(rs))


def plan_old_scale_down(d: Deployment, all_rss: Sequence[ReplicaSet], old_rss: Sequence[ReplicaSet],
                        new_rs: ReplicaSet | None) -> dict[str, int]:
    """New sizes for old ReplicaSets in one rolling-update step (reconcileOldReplicaSets).

    First unhealthy old replicas are removed (they serve nothing), then healthy ones,
    oldest ReplicaSet first, as long as replicas - maxUnavailable pods stay available
    (counted with `sure_available`). Returns {rs name: new spec.replicas} for the ones
    that change.
    """
    old_count = replica_count(old_rss)
    if old_count == 0:
        return {}
    all_count = replica_count(all_rss)
    min_available = replicas_of(d) - max_unavailable(d)
    new_unavailable = (rs_replicas(new_rs) - sure_available(new_rs)) if new_rs else 0
    max_scaled_down = all_count - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    sizes = {rs.metadata.name or "": rs_replicas(rs) for rs in all_rss}
    plan: dict[str, int] = {}
    # 1. unhealthy replicas of old ReplicaSets
    cleaned = 0
    for rs in by_creation(old_rss):
        if cleaned >= max_scaled_down:
            break
        name = rs.metadata.name or ""
        size = sizes[name]
        available = sure_available(rs)
        if size == 0 or size <= available:
            continue
        down = min(max_scaled_down - cleaned, size - available)
        sizes[name] = size - down
        plan[name] = size - down
        cleaned += down
    # 2. healthy replicas while enough stay available
    available_total = sum(sure_available(rs) for rs in all_rss)
    if available_total > min_available:
        to_remove = available_total - min_available
        removed = 0
        for rs in by_creation(old_rss):
            if removed >= to_remove:
                break
            name = rs.metadata.name or ""
            size = sizes[name]
            if size == 0:
                continue
            down = min(size, to_remove - removed)
            sizes[name] = size - down
            plan[name] = size - down
            removed += down
    return plan


def _fraction(rs: ReplicaSet, d: Deployment) -> int:
    """getReplicaSetFraction: this ReplicaSet's share of a deployment resize."""
    if replicas_of(d) == 0:
        return -rs_replicas(rs)
    deployment_replicas = replicas_of(d) + max_surge(d)
    annotated = _int_annotation(rs, MAX_REPLICAS_ANNOTATION)
    if annotated is None or annotated == 0:
        annotated = d.status.replicas or 0
    if annotated == 0:
        return 0
    new_size = rs_replicas(rs) * deployment_replicas / annotated
    return _round_half_away(new_size) - rs_replicas(rs)


def _round_half_away(x: float) -> int:
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def plan_proportional_scale(d: Deployment, new_rs: ReplicaSet | None,
                            old_rss: Sequence[ReplicaSet]) -> tuple[dict[str, int], str]:
    """A resize during a rollout spread over the active ReplicaSets in proportion (scale()).

    Returns ({rs name: new size} for every active ReplicaSet, "up"/"down"/"").
    """
    active = filter_active([*old_rss, new_rs])
    current = replica_count(active)
    allowed = replicas_of(d) + max_surge(d) if replicas_of(d) > 0 else 0
    to_add = allowed - current
    if to_add > 0:
        ordered, op = by_size_newer(active), "up"
    elif to_add < 0:
        ordered, op = by_size_older(active), "down"
    else:
        ordered, op = active, ""
    sizes: dict[str, int] = {}
    added = 0
    for rs in ordered:
        name = rs.metadata.name or ""
        if to_add != 0 and rs_replicas(rs) != 0 and to_add != added:
            fraction = _fraction(rs, d)
            allowed_left = to_add - added
            proportion = min(fraction, allowed_left) if to_add > 0 else max(fraction, allowed_left)
        else:
            proportion = 0
        sizes[name] = rs_replicas(rs) + proportion
        added += proportion
    if ordered and to_add != 0:
        first = ordered[0].metadata.name or ""
        sizes[first] = max(sizes[first] + to_add - added, 0)
    return sizes, op


def find_active_or_latest(new_rs: ReplicaSet | None, old_rss: Sequence[ReplicaSet]) -> ReplicaSet | None:
    """The only active ReplicaSet, or the latest if none is active; None if several are."""
    if new_rs is None and not old_rss:
        return None
    newest_old = by_creation(old_rss, newest_first=True)
    active = filter_active([*newest_old, new_rs])
    if not active:
        return new_rs if new_rs is not None else newest_old[0]
    if len(active) == 1:
        return active[0]
    return None


def is_saturated(d: Deployment, rs: ReplicaSet | None) -> bool:
    """The new ReplicaSet runs all desired replicas, all available."""
    if rs is None:
        return False
    desired = desired_replicas_annotation(rs)
    return (rs_replicas(rs) == replicas_of(d) and desired == replicas_of(d)
            and (rs.status.available_replicas or 0) == replicas_of(d))


# --------------------------------------------------------------------------- conditions


def new_condition(type_: str, status: str, reason: str, message: str, at: datetime | None = None) -> DeploymentCondition:
    stamp = format_time(at or now())
    return DeploymentCondition(type=type_, status=status, reason=reason, message=message,
                               last_update_time=stamp, last_transition_time=stamp)


def get_condition(status: DeploymentStatus, type_: str) -> DeploymentCondition | None:
    for cond in status.conditions or []:
        if cond.type == type_:
            return cond
    return None


def set_condition(status: DeploymentStatus, cond: DeploymentCondition) -> None:
    """Set `cond` unless the same status+reason is there; keeps lastTransitionTime if the
    status did not change."""
    current = get_condition(status, cond.type)
    if current is not None and current.status == cond.status and current.reason == cond.reason:
        return
    if current is not None and current.status == cond.status:
        cond.last_transition_time = current.last_transition_time
    status.conditions = [c for c in status.conditions or [] if c.type != cond.type] + [cond]


def remove_condition(status: DeploymentStatus, type_: str) -> None:
    if status.conditions:
        status.conditions = [c for c in status.conditions if c.type != type_]


# --------------------------------------------------------------------------- status


def calculate_status(all_rss: Sequence[ReplicaSet | None], new_rs: ReplicaSet | None, d: Deployment,
                     at: datetime | None = None) -> DeploymentStatus:
    """The deployment status the ReplicaSets imply (conditions other than Available kept)."""
    available = available_count(all_rss)
    total = replica_count(all_rss)
    status = DeploymentStatus(
        observed_generation=d.metadata.generation,
        replicas=actual_count(all_rss),
        updated_replicas=actual_count([new_rs]),
        ready_replicas=ready_count(all_rss),
        available_replicas=available,
        unavailable_replicas=max(total - available, 0),
        collision_count=d.status.collision_count,
        conditions=[c.copy_deep() for c in d.status.conditions or []] or None,
    )
    if available >= replicas_of(d) - max_unavailable(d):
        cond = new_condition(AVAILABLE, "True", MIN_REPLICAS_AVAILABLE, "Deployment has minimum availability.", at)
    else:
        cond = new_condition(AVAILABLE, "False", MIN_REPLICAS_UNAVAILABLE,
                             "Deployment does not have minimum availability.", at)
    set_condition(status, cond)
    return status


def deployment_complete(d: Deployment, status: DeploymentStatus) -> bool:
    """All replicas updated and available, and the latest spec observed."""
    desired = replicas_of(d)
    return ((status.updated_replicas or 0) == desired and (status.replicas or 0) == desired
            and (status.available_replicas or 0) == desired
            and (status.observed_generation or 0) >= (d.metadata.generation or 0))


def deployment_progressing(d: Deployment, new_status: DeploymentStatus) -> bool:
    """Something moved since the last recorded status (new pods updated/ready/available,
    or old pods gone)."""
    old = d.status
    old_old = (old.replicas or 0) - (old.updated_replicas or 0)
    new_old = (new_status.replicas or 0) - (new_status.updated_replicas or 0)
    return ((new_status.updated_replicas or 0) > (old.updated_replicas or 0)
            or (new_status.ready_replicas or 0) > (old.ready_replicas or 0)
            or new_old < old_old
            or (new_status.available_replicas or 0) > (old.available_replicas or 0))


def deployment_timed_out(d: Deployment, status: DeploymentStatus, at: datetime | None = None) -> bool:
    """No progress for progressDeadlineSeconds since the Progressing condition's last update."""
    deadline = progress_deadline(d)
    if deadline is None:
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.reason == NEW_RS_AVAILABLE:
        return False
    if cond.reason == TIMED_OUT:
        return True
    since = parse_time(cond.last_update_time)
    if since is None:
        return False
    return since.timestamp() + deadline < (at or now()).timestamp()


def seconds_until_deadline(d: Deployment, status: DeploymentStatus, at: datetime | None = None) -> float | None:
    """When to look again for a stuck rollout (requeueStuckDeployment), or None."""
    deadline = progress_deadline(d)
    if deadline is None:
        return None
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.reason in (NEW_RS_AVAILABLE, TIMED_OUT):
        return None
    if deployment_complete(d, status):
        return None
    since = parse_time(cond.last_update_time)
    if since is None:
        return None
    left = since.timestamp() + deadline - (at or now()).timestamp()
    return max(left, 0.0) + 1.0
