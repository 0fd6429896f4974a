"""Namespace lifecycle: the built-in namespaces, the create-time checks (404 for a
missing namespace, 403 while it terminates) and the cascade that empties a deleted
namespace and then removes it (Kubernetes' namespace controller, run in-process).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from mkube.api.errors import ApiError, Forbidden, NotFound, is_already_exists, is_conflict, is_not_found
from mkube.api.kinds import RESOURCES, ResourceType, by_path
from mkube.apiserver import admission, meta
from mkube.apiserver.context import ServerContext
from mkube.apiserver.deletion import DeleteOptions, delete_object, should_remove_on_update
from mkube.apiserver.storage.base import Change

Obj = dict[str, Any]
log = logging.getLogger("mkube.apiserver.namespaces")

BUILTIN = ("default", "kube-system", "kube-public", "kube-node-lease")
UNDELETABLE = ("default", "kube-system", "kube-public")
NAMESPACES: ResourceType = by_path("", "v1", "namespaces")  # type: ignore[assignment]
FINALIZER = "kubernetes"


def on_change(ctx: ServerContext, change: Change) -> None:
    """Store subscription: keep the phase cache current (called from writing threads)."""
    if change.resource != "namespaces":
        return
    if change.type == "DELETED":
        ctx.namespace_phases.pop(change.name, None)
    else:
        ctx.namespace_phases[change.name] = (change.obj.get("status") or {}).get("phase") or "Active"


async def check_writable(ctx: ServerContext, namespace: str, rt: ResourceType, name: str) -> None:
    """404 if `namespace` does not exist; 403 if it is terminating."""
    phase = ctx.namespace_phases.get(namespace)
    if phase is None:
        try:
            ns = await ctx.get(NAMESPACES, None, namespace)
        except ApiError as err:
            if is_not_found(err):
                raise NotFound("namespaces", namespace) from None
            raise
        phase = (ns.get("status") or {}).get("phase") or "Active"
    if phase == "Terminating":
        raise Forbidden(f'{rt.group_resource} "{name}" is forbidden: unable to create new content in namespace '
                        f"{namespace} because it is being terminated", kind=rt.plural, name=name)


async def bootstrap(ctx: ServerContext) -> None:
    """Create the built-in namespaces; fill the phase cache; resume terminations."""
    for name in BUILTIN:
        body = admission.prepare_create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": name}})
        meta.stamp_new(body)
        try:
            await ctx.create(NAMESPACES, None, name, body)
        except ApiError as err:
            if not is_already_exists(err):
                raise
    result = await ctx.list(NAMESPACES, None)
    for ns in result.items:
        name = ns["metadata"]["name"]
        phase = (ns.get("status") or {}).get("phase") or "Active"
        ctx.namespace_phases[name] = phase
        if phase == "Terminating" or (ns.get("metadata") or {}).get("deletionTimestamp"):
            start_finalizer(ctx, name)


def start_finalizer(ctx: ServerContext, name: str) -> None:
    task_name = f"namespace-finalizer:{name}"
    if any(t.get_name() == task_name for t in ctx.tasks):
        return
    ctx.spawn(finalize_namespace(ctx, name), task_name)


async def finalize_namespace(ctx: ServerContext, name: str) -> None:
    """Delete everything in namespace `name` (pods gracefully), then remove it."""
    delay = 0.05
    while True:
        remaining = 0
        for rt in RESOURCES:
            if not rt.namespaced:
                continue
            try:
                items = (await ctx.list(rt, name)).items
            except ApiError:
                remaining += 1
                continue
            for item in items:
                remaining += 1
                md = item.get("metadata") or {}
                if md.get("deletionTimestamp") and rt.kind != "Pod":
                    continue  # waiting for its finalizers
                try:
                    await delete_object(ctx, rt, name, md.get("name", ""), DeleteOptions(propagation="Background"))
                except ApiError as err:
                    if not is_not_found(err):
                        log.warning("namespace cleanup: delete failed",
                                    extra={"namespace": name, "resource": rt.plural, "error": str(err)})
        if remaining == 0:
            break
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)
    await _remove_namespace(ctx, name)


async def _remove_namespace(ctx: ServerContext, name: str) -> None:
    for _ in range(10):
        try:
            ns = await ctx.get(NAMESPACES, None, name)
        except ApiError as err:
            if is_not_found(err):
                return
            raise
        new = copy.deepcopy(ns)
        spec = new.setdefault("spec", {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
        rv = meta.resource_version_of(ns)
        try:
            if should_remove_on_update(NAMESPACES, new):
                await ctx.delete(NAMESPACES, None, name, expected_revision=rv)
            elif new != ns:
                await ctx.update(NAMESPACES, None, name, new, expected_revision=rv)
            return
        except ApiError as err:
            if is_not_found(err):
                return
            if not is_conflict(err):
                raise
