"""Deployment helpers kubectl's rollout and describe use (k8s.io/kubectl/pkg/util/deployment):
the ReplicaSets a deployment owns, their revisions, which one is "new", the rollout status
message, and the patch `rollout undo` sends."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from mkube.api.selectors import selector_to_string
from mkube.client.interface import BaseClient

Obj = dict[str, Any]
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
# Annotations `rollout undo` keeps from the deployment instead of copying from the ReplicaSet.
_SKIP_ON_ROLLBACK = {
    "kubectl.kubernetes.io/last-applied-configuration", REVISION, "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas", "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
}


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def revision(rs: Mapping[str, Any]) -> int | None:
    """The deployment.kubernetes.io/revision of a ReplicaSet, None if absent or not a number."""
    value = (_meta(rs).get("annotations") or {}).get(REVISION)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def is_controlled_by(obj: Mapping[str, Any], owner_uid: str) -> bool:
    return any(isinstance(r, Mapping) and r.get("controller") and r.get("uid") == owner_uid
               for r in _meta(obj).get("ownerReferences") or [])


def owned_replicasets(client: BaseClient, dep: Obj) -> list[Obj]:
    """The ReplicaSets in the deployment's namespace matching its selector and controlled by it."""
    meta = _meta(dep)
    try:
        selector = selector_to_string((dep.get("spec") or {}).get("selector"))
    except ValueError:
        return []
    data = client.list_raw("replicasets", str(meta.get("namespace") or ""), label_selector=selector or None)
    return [rs for rs in data.get("items") or [] if is_controlled_by(rs, str(meta.get("uid") or ""))]


def without_hash(template: Mapping[str, Any] | None) -> Obj:
    """A copy of a pod template without the pod-template-hash label."""
    t = copy.deepcopy(dict(template or {}))
    meta = t.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("labels"), dict):
        meta["labels"] = {k: v for k, v in meta["labels"].items() if k != HASH_LABEL}
        if not meta["labels"]:
            del meta["labels"]
    return t


def templates_equal(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """EqualIgnoreHash."""
    return without_hash(a) == without_hash(b)


def split_new_old(dep: Obj, rss: list[Obj]) -> tuple[Obj | None, list[Obj]]:
    """(the ReplicaSet running the deployment's current template, all the others);
    the oldest matching one wins, as in FindNewReplicaSet."""
    template = (dep.get("spec") or {}).get("template")
    ordered = sorted(rss, key=lambda rs: (str(_meta(rs).get("creationTimestamp") or ""), str(_meta(rs).get("name"))))
    new = next((rs for rs in ordered if templates_equal((rs.get("spec") or {}).get("template"), template)), None)
    return new, [rs for rs in rss if rs is not new]


def status_message(dep: Obj) -> tuple[str, bool, str | None]:
    """kubectl's DeploymentStatusViewer: (message, done, error)."""
    meta, spec, status = _meta(dep), dep.get("spec") or {}, dep.get("status") or {}
    name = meta.get("name")
    if int(meta.get("generation") or 0) <= int(status.get("observedGeneration") or 0):
        for cond in status.get("conditions") or []:
            if isinstance(cond, Mapping) and cond.get("type") == "Progressing" and \
                    cond.get("reason") == TIMED_OUT_REASON:
                return "", False, f'deployment "{name}" exceeded its progress deadline'
        replicas = int(spec["replicas"]) if spec.get("replicas") is not None else 1
        updated = int(status.get("updatedReplicas") or 0)
        current = int(status.get("replicas") or 0)
        available = int(status.get("availableReplicas") or 0)
        if updated < replicas:
            return (f'Waiting for deployment "{name}" rollout to finish: {updated} out of {replicas} new replicas '
                    f"have been updated...", False, None)
        if current > updated:
            return (f'Waiting for deployment "{name}" rollout to finish: {current - updated} old replicas are '
                    f"pending termination...", False, None)
        if available < updated:
            return (f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} updated '
                    f"replicas are available...", False, None)
        return f'deployment "{name}" successfully rolled out', True, None
    return "Waiting for deployment spec update to be observed...", False, None


def rollback_target(dep: Obj, rss: list[Obj], to_revision: int) -> Obj:
    """The ReplicaSet to roll back to: revision `to_revision`, or the one before the latest
    (0). Raises ValueError with kubectl's message."""
    if to_revision > 0:
        for rs in rss:
            if revision(rs) == to_revision:
                return rs
        raise ValueError(f"unable to find specified revision {to_revision} in history")
    ranked: list[tuple[int, Obj]] = []
    for rs in rss:
        r = revision(rs)
        if r is not None:
            ranked.append((r, rs))
    ranked.sort(key=lambda pair: pair[0])
    if len(ranked) < 2:
        raise ValueError(f'no rollout history found for deployment "{_meta(dep).get("name")}"')
    return ranked[-2][1]


def rollback_patch(dep: Obj, rs: Obj) -> list[Obj]:
    """The JSON patch restoring `rs`'s template (minus pod-template-hash) and annotations."""
    dep_annotations = _meta(dep).get("annotations") or {}
    annotations = {k: v for k, v in dep_annotations.items() if k in _SKIP_ON_ROLLBACK}
    annotations.update({k: v for k, v in (_meta(rs).get("annotations") or {}).items()
                        if k not in _SKIP_ON_ROLLBACK})
    return [
        {"op": "replace", "path": "/spec/template", "value": without_hash((rs.get("spec") or {}).get("template"))},
        # "add" replaces an existing member and also works when the deployment has none.
        {"op": "add", "path": "/metadata/annotations", "value": annotations},
    ]
