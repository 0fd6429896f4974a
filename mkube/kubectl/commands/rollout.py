"""`mkubectl rollout status|history|undo|restart|pause|resume` for deployments."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from mkube.api.errors import ApiError
from mkube.api.kinds import ResourceType
from mkube.kubectl import deployments
from mkube.kubectl.commands.common import (
    Errors,
    Ref,
    bool_flag,
    done_line,
    filename_option,
    recursive_option,
    resolve_refs,
)
from mkube.kubectl.context import Kube
from mkube.kubectl.describe.workloads import pod_template
from mkube.kubectl.describe.writer import PrefixWriter
from mkube.kubectl.errors import CommandError
from mkube.kubectl.group import Group
from mkube.kubectl.output import Out
from mkube.kubectl.tabwriter import tabbed
from mkube.kubectl.timeparse import parse_duration

Obj = dict[str, Any]
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def _refs(kube: Kube, args: tuple[str, ...], filename: tuple[str, ...], recursive: bool,
          selector: str | None, unsupported: Callable[[Ref], str]) -> list[Ref]:
    refs = resolve_refs(kube, args, filename, recursive, selector=selector, verb="rollout")
    for ref in refs:
        if ref.rt.kind != "Deployment":
            raise CommandError(unsupported(ref))
    return refs


def _group(rt: ResourceType) -> str:
    return rt.group_resource


def _group_kind(rt: ResourceType) -> str:
    """`ReplicaSet.apps`, `Pod` (schema.GroupKind's String)."""
    return f"{rt.kind}.{rt.group}" if rt.group else rt.kind


@click.group("rollout", cls=Group)
def rollout_command() -> None:
    """Manage the rollout of deployments."""


# ---------------------------------------------------------------- status

def _wait_rollout(kube: Kube, ref: Ref, watch: bool, timeout: float, out: Out) -> None:
    client = kube.client
    deadline = time.monotonic() + timeout if timeout > 0 else None
    last = ""

    def show(dep: Obj) -> bool:
        nonlocal last
        message, done, error = deployments.status_message(dep)
        if error:
            raise CommandError(error)
        if message != last:
            out.line(message)
            last = message
        return done

    dep = client.get_raw(ref.rt, ref.name, ref.namespace)
    if show(dep) or not watch:
        return
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise CommandError("timed out waiting for the condition")
        rv = str((dep.get("metadata") or {}).get("resourceVersion") or "")
        w = client.watch_raw(ref.rt, ref.namespace, resource_version=rv or None,
                             field_selector=f"metadata.name={ref.name}",
                             timeout_seconds=None if remaining is None else max(1, int(remaining) + 1))
        timer = threading.Timer(remaining, w.close) if remaining is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            with w:
                for ev in w:
                    if ev.type == "DELETED":
                        raise CommandError("object has been deleted")
                    if ev.type in ("ADDED", "MODIFIED"):
                        dep = ev.object
                        if show(dep):
                            return
        except ApiError as e:
            if e.code != 410:
                raise
        finally:
            if timer is not None:
                timer.cancel()
        dep = client.get_raw(ref.rt, ref.name, ref.namespace)  # resync after the watch ended
        if show(dep):
            return


@rollout_command.command("status")
@click.argument("args", nargs=-1)
@filename_option
@recursive_option
@click.option("-l", "--selector")
@bool_flag("--watch", True, "Watch until the rollout finishes.")
@click.option("-w", "watch_short", is_flag=True, hidden=True)
@click.option("--timeout", default="0s", help="Give up after this long (0: never).")
@click.pass_obj
def status_command(kube: Kube, args: tuple[str, ...], filename: tuple[str, ...], recursive: bool,
                   selector: str | None, watch: bool, watch_short: bool, timeout: str) -> None:
    """Show the status of a rollout (waits until it finishes)."""
    limit = parse_duration(timeout)
    refs = _refs(kube, args, filename, recursive, selector,
                 lambda r: f"no status viewer has been implemented for {_group_kind(r.rt)}")
    out = Out()
    for ref in refs:
        _wait_rollout(kube, ref, watch or watch_short, limit, out)


# ---------------------------------------------------------------- history

def history_text(dep: Obj, rss: list[Obj], revision: int) -> str:
    """kubectl's DeploymentHistoryViewer (without the `deployment.apps/web` head line)."""
    by_revision: dict[int, Obj] = {}
    for rs in rss:
        r = deployments.revision(rs)
        if r is None:
            continue
        template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
        cause = ((rs.get("metadata") or {}).get("annotations") or {}).get(deployments.CHANGE_CAUSE)
        if cause:
            meta = template.setdefault("metadata", {})
            meta["annotations"] = {**(meta.get("annotations") or {}), deployments.CHANGE_CAUSE: cause}
        by_revision[r] = template
    if not by_revision:
        return "No rollout history found."
    if revision > 0:
        if revision not in by_revision:
            raise CommandError("unable to find the specified revision")
        w = PrefixWriter(raw=True)
        pod_template(w, by_revision[revision])
        return w.text()
    lines = ["REVISION\tCHANGE-CAUSE"]
    for r in sorted(by_revision):
        cause = ((by_revision[r].get("metadata") or {}).get("annotations") or {}).get(deployments.CHANGE_CAUSE)
        lines.append(f"{r}\t{cause or '<none>'}")
    return tabbed("\n".join(lines) + "\n")


@rollout_command.command("history")
@click.argument("args", nargs=-1)
@filename_option
@recursive_option
@click.option("-l", "--selector")
@click.option("--revision", type=int, default=0, help="Show the pod template of this revision.")
@click.pass_obj
def history_command(kube: Kube, args: tuple[str, ...], filename: tuple[str, ...], recursive: bool,
                    selector: str | None, revision: int) -> None:
    """Show the revisions of a deployment."""
    refs = _refs(kube, args, filename, recursive, selector,
                 lambda r: f'no history viewer has been implemented for "{_group_kind(r.rt)}"')
    out = Out()
    for ref in refs:
        dep = kube.client.get_raw(ref.rt, ref.name, ref.namespace)
        text = history_text(dep, deployments.owned_replicasets(kube.client, dep), revision)
        head = f"with revision #{revision}" if revision > 0 else ""
        out.write(f"{done_line(ref.rt, ref.name, head)}\n{text}\n")


# ---------------------------------------------------------------- undo

@rollout_command.command("undo")
@click.argument("args", nargs=-1)
@filename_option
@recursive_option
@click.option("-l", "--selector")
@click.option("--to-revision", type=int, default=0, help="The revision to go back to (0: the previous one).")
@click.pass_obj
def undo_command(kube: Kube, args: tuple[str, ...], filename: tuple[str, ...], recursive: bool,
                 selector: str | None, to_revision: int) -> None:
    """Roll a deployment back to an earlier revision."""
    refs = _refs(kube, args, filename, recursive, selector,
                 lambda r: f'no rollbacker has been implemented for "{_group_kind(r.rt)}"')
    out = Out()
    errors = Errors()
    for ref in refs:
        try:
            dep = kube.client.get_raw(ref.rt, ref.name, ref.namespace)
            if (dep.get("spec") or {}).get("paused"):
                raise CommandError("you cannot rollback a paused deployment; resume it first with "
                                   "'mkubectl rollout resume' and try again")
            rss = deployments.owned_replicasets(kube.client, dep)
            try:
                target = deployments.rollback_target(dep, rss, to_revision)
            except ValueError as e:
                raise CommandError(str(e)) from None
            if deployments.templates_equal((target.get("spec") or {}).get("template"),
                                           (dep.get("spec") or {}).get("template")):
                r = deployments.revision(target)
                out.line(done_line(ref.rt, ref.name,
                                   f"skipped rollback (current template already matches revision {r})"))
                continue
            kube.client.patch_raw(ref.rt, ref.name, deployments.rollback_patch(dep, target), ref.namespace,
                                  patch_type="json")
            out.line(done_line(ref.rt, ref.name, "rolled back"))
        except ApiError as e:
            errors.api(e)
    errors.finish()


# ---------------------------------------------------------------- restart / pause / resume

def _now_rfc3339() -> str:
    text = datetime.now().astimezone().isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def _patch_each(kube: Kube, refs: list[Ref], make: Callable[[Obj, Ref], Obj | None], verb: str) -> None:
    out = Out()
    errors = Errors()
    for ref in refs:
        try:
            dep = kube.client.get_raw(ref.rt, ref.name, ref.namespace)
            try:
                patch = make(dep, ref)
            except ValueError as e:
                errors.add(f'error: {_group(ref.rt)} "{ref.name}" {e}')
                continue
            if patch is None:
                out.line(done_line(ref.rt, ref.name, f"already {verb}"))
                continue
            kube.client.patch_raw(ref.rt, ref.name, patch, ref.namespace, patch_type="strategic")
            out.line(done_line(ref.rt, ref.name, verb))
        except ApiError as e:
            errors.api(e)
    errors.finish()


def _restart_patch(dep: Obj, ref: Ref) -> Obj:
    if (dep.get("spec") or {}).get("paused"):
        raise ValueError("can't restart paused deployment (run rollout resume first)")
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: _now_rfc3339()}}}}}


def _pause_patch(dep: Obj, ref: Ref) -> Obj:
    if (dep.get("spec") or {}).get("paused"):
        raise ValueError("is already paused")
    return {"spec": {"paused": True}}


def _resume_patch(dep: Obj, ref: Ref) -> Obj:
    if not (dep.get("spec") or {}).get("paused"):
        raise ValueError("is not paused")
    return {"spec": {"paused": None}}


def _simple(name: str, make: Callable[[Obj, Ref], Obj | None], verb: str, doing: str, help_: str) -> click.Command:
    @click.argument("args", nargs=-1)
    @filename_option
    @recursive_option
    @click.option("-l", "--selector")
    @click.pass_obj
    def command(kube: Kube, args: tuple[str, ...], filename: tuple[str, ...], recursive: bool,
                selector: str | None) -> None:
        refs = _refs(kube, args, filename, recursive, selector,
                     lambda r: f'{_group(r.rt)} "{r.name}" {doing} is not supported')
        _patch_each(kube, refs, make, verb)

    return click.command(name, help=help_)(command)


rollout_command.add_command(_simple("restart", _restart_patch, "restarted", "restarting",
                                    "Restart the pods of a deployment (a new rollout)."))
rollout_command.add_command(_simple("pause", _pause_patch, "paused", "pausing",
                                    "Pause a deployment: template changes do not roll out."))
rollout_command.add_command(_simple("resume", _resume_patch, "resumed", "resuming", "Resume a paused deployment."))
