"""Deletion semantics: graceful pod deletion, finalizers, propagation policies.

`plan_delete` is pure (object in, decision out); `delete_object` applies the plan
with optimistic concurrency. The rules, as in Kubernetes:
- a pod bound to a node (spec.nodeName) and not terminal is deleted gracefully:
  deletionTimestamp = now + grace, deletionGracePeriodSeconds = grace (default
  spec.terminationGracePeriodSeconds); the kubelet confirms with gracePeriodSeconds=0;
- Orphan / Foreground propagation add the `orphan` / `foregroundDeletion` finalizer;
- an object with finalizers gets deletionTimestamp and stays until an update empties
  them (`should_remove_on_update`);
- anything else is removed at once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from mkube.api.errors import ApiError, BadRequest, Cause, Conflict, Invalid, is_conflict
from mkube.api.fielderrors import INT64_MAX
from mkube.api.kinds import ResourceType
from mkube.apiserver import meta
from mkube.apiserver.context import ServerContext

Obj = dict[str, Any]
POLICIES = ("Orphan", "Background", "Foreground")
ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
DEFAULT_POD_GRACE = 30
_RETRIES = 8


@dataclass
class DeleteOptions:
    grace_period: int | None = None
    propagation: str | None = None
    precondition_uid: str | None = None
    precondition_rv: int | None = None
    dry_run: bool = False


def parse_delete_options(query: Any, body: Obj | None, dry_run: bool) -> DeleteOptions:
    """Merge DeleteOptions from the query and an optional DeleteOptions body (query wins)."""
    body = body or {}
    if not isinstance(body, dict):
        raise BadRequest("the DeleteOptions body must be a JSON object")
    if body.get("kind") not in (None, "DeleteOptions"):
        raise BadRequest(f"the request body must be a DeleteOptions, not {body.get('kind')!r}")
    opts = DeleteOptions(dry_run=dry_run or body.get("dryRun") == ["All"])
    grace: Any = query.get("gracePeriodSeconds")
    if grace in (None, ""):
        grace = body.get("gracePeriodSeconds")
    if grace is not None:
        try:
            if isinstance(grace, bool):
                raise ValueError
            opts.grace_period = int(grace)
        except (TypeError, ValueError, OverflowError):
            raise BadRequest(f"gracePeriodSeconds: invalid value {grace!r}: must be an integer") from None
        if not 0 <= opts.grace_period <= INT64_MAX:
            bound = "greater than or equal to 0" if opts.grace_period < 0 else f"less than or equal to {INT64_MAX}"
            raise Invalid("DeleteOptions", "", [Cause("gracePeriodSeconds", f"Invalid value: {opts.grace_period}: "
                                                     f"must be {bound}")])
    policy = query.get("propagationPolicy") or body.get("propagationPolicy")
    orphan = query.get("orphanDependents")
    if orphan in (None, ""):
        orphan = body.get("orphanDependents")
    if policy is not None:
        if policy not in POLICIES:
            raise Invalid("DeleteOptions", "", [Cause("propagationPolicy", f'Unsupported value: "{policy}": '
                                                     'supported values: "Foreground", "Background", "Orphan"',
                                                     "FieldValueNotSupported")])
        opts.propagation = policy
    elif orphan in (True, "true", "1"):
        opts.propagation = "Orphan"
    elif orphan in (False, "false", "0"):
        opts.propagation = "Background"
    pre = body.get("preconditions") or {}
    if not isinstance(pre, dict):
        raise BadRequest("preconditions must be an object")
    if pre.get("uid"):
        opts.precondition_uid = str(pre["uid"])
    if pre.get("resourceVersion"):
        opts.precondition_rv = meta.parse_resource_version(pre["resourceVersion"])
    return opts


def _graceful_pod(rt: ResourceType, obj: Obj) -> bool:
    if rt.kind != "Pod":
        return False
    spec = obj.get("spec") or {}
    phase = (obj.get("status") or {}).get("phase")
    return bool(spec.get("nodeName")) and phase not in ("Succeeded", "Failed")


def _grace_for(rt: ResourceType, obj: Obj, opts: DeleteOptions) -> int:
    if not _graceful_pod(rt, obj):
        return 0
    if opts.grace_period is not None:
        return opts.grace_period
    tgps = (obj.get("spec") or {}).get("terminationGracePeriodSeconds")
    return int(tgps) if isinstance(tgps, int) and tgps >= 0 else DEFAULT_POD_GRACE


def _finalizers_for(finalizers: list[str], policy: str | None) -> list[str]:
    out = list(finalizers)
    if policy == "Orphan":
        out = [f for f in out if f != FOREGROUND]
        if ORPHAN not in out:
            out.append(ORPHAN)
    elif policy == "Foreground":
        out = [f for f in out if f != ORPHAN]
        if FOREGROUND not in out:
            out.append(FOREGROUND)
    return out


Action = Literal["remove", "update", "noop"]


def plan_delete(rt: ResourceType, obj: Obj, opts: DeleteOptions) -> tuple[Action, Obj]:
    """What a DELETE does to `obj`: remove it, update it (mark deleting), or nothing."""
    md = obj.get("metadata") or {}
    finalizers = list(md.get("finalizers") or [])
    wanted = _finalizers_for(finalizers, opts.propagation)
    grace = _grace_for(rt, obj, opts)
    if md.get("deletionTimestamp"):
        new = copy.deepcopy(obj)
        nmd = new["metadata"]
        changed = wanted != finalizers
        current = md.get("deletionGracePeriodSeconds")
        current = int(current) if isinstance(current, int) else 0
        if grace < current:
            nmd["deletionGracePeriodSeconds"] = grace
            nmd["deletionTimestamp"] = meta.now_rfc3339(grace)
            changed = True
        if min(grace, current) == 0 and not wanted and not _namespace_pending(rt, new):
            return "remove", obj
        if not changed:
            return "noop", obj
        if wanted:
            nmd["finalizers"] = wanted
        return "update", new
    if grace == 0 and not wanted and rt.kind != "Namespace":
        return "remove", obj
    new = copy.deepcopy(obj)
    nmd = new["metadata"]
    nmd["deletionTimestamp"] = meta.now_rfc3339(grace)
    nmd["deletionGracePeriodSeconds"] = grace
    if wanted:
        nmd["finalizers"] = wanted
    if isinstance(nmd.get("generation"), int):
        nmd["generation"] += 1  # Kubernetes bumps generation when deletion starts
    if rt.kind == "Namespace":
        new.setdefault("status", {})["phase"] = "Terminating"
    return "update", new


def _namespace_pending(rt: ResourceType, obj: Obj) -> bool:
    return rt.kind == "Namespace" and bool((obj.get("spec") or {}).get("finalizers"))


def should_remove_on_update(rt: ResourceType, obj: Obj) -> bool:
    """An object being deleted whose last finalizer went away (and whose grace is over)."""
    md = obj.get("metadata") or {}
    if not md.get("deletionTimestamp") or md.get("finalizers"):
        return False
    if _namespace_pending(rt, obj):
        return False
    return int(md.get("deletionGracePeriodSeconds") or 0) == 0


def check_preconditions(rt: ResourceType, obj: Obj, uid: str | None, rv: int | None) -> None:
    md = obj.get("metadata") or {}
    name = md.get("name", "")
    group = rt.group or None
    if uid is not None and md.get("uid") != uid:
        raise Conflict(rt.plural, name, f"Precondition failed: UID in precondition: {uid}, "
                                        f"UID in object meta: {md.get('uid')}", group=group)
    if rv is not None and str(rv) != str(md.get("resourceVersion")):
        raise Conflict(rt.plural, name, f"Precondition failed: ResourceVersion in precondition: {rv}, "
                                        f"ResourceVersion in object meta: {md.get('resourceVersion')}", group=group)


async def delete_object(ctx: ServerContext, rt: ResourceType, namespace: str | None, name: str,
                        opts: DeleteOptions) -> tuple[Obj, bool]:
    """Apply a DELETE; returns (object, removed). Retries on write conflicts."""
    last: ApiError | None = None
    for _ in range(_RETRIES):
        obj = await ctx.get(rt, namespace, name)
        check_preconditions(rt, obj, opts.precondition_uid, opts.precondition_rv)
        rv = meta.resource_version_of(obj)
        action, new = plan_delete(rt, obj, opts)
        if opts.dry_run or action == "noop":
            return new, action == "remove"
        try:
            if action == "remove":
                return await ctx.delete(rt, namespace, name, expected_revision=rv), True
            return await ctx.update(rt, namespace, name, new, expected_revision=rv), False
        except ApiError as err:
            if not is_conflict(err):
                raise
            last = err
    assert last is not None
    raise last
