"""`mkubectl delete`: by name, `TYPE/NAME`, `-f`, `-l`, `--all`; waits until the objects
are gone (`--wait`, default true), like kubectl."""

from __future__ import annotations

import click

from mkube.api.errors import ApiError, is_not_found
from mkube.api.kinds import ResourceType
from mkube.client.interface import PropagationPolicy
from mkube.kubectl import resources
from mkube.kubectl.commands.common import (
    Errors,
    Ref,
    bool_flag,
    filename_option,
    recursive_option,
    resolve_refs,
)
from mkube.kubectl.context import Kube
from mkube.kubectl.errors import CommandError, with_source
from mkube.kubectl.output import Out, err
from mkube.kubectl.timeparse import parse_duration
from mkube.kubectl.waiting import TimedOut, gone, poll

_CASCADE: dict[str, PropagationPolicy] = {"background": "Background", "foreground": "Foreground",
                                          "orphan": "Orphan", "true": "Background", "false": "Orphan"}


def deleted_line(rt: ResourceType, name: str, operation: str) -> str:
    """`deployment.apps "web" deleted`."""
    return f'{resources.kind_prefix(rt)} "{name}" {operation}'


@click.command("delete")
@click.argument("args", nargs=-1)
@filename_option
@recursive_option
@click.option("-l", "--selector", help="Delete the objects matching this label selector.")
@click.option("--all", "select_all", is_flag=True, help="Delete every object of the given types.")
@click.option("-A", "--all-namespaces", is_flag=True, help="With -l/--all: in every namespace.")
@click.option("--grace-period", type=int, default=-1, help="Seconds a pod gets to stop (-1: its own).")
@click.option("--now", is_flag=True, help="Stop pods at once (grace period 1).")
@click.option("--force", is_flag=True, help="With --grace-period=0: remove without waiting for the node.")
@bool_flag("--wait", True, "Wait until the objects are gone.")
@click.option("--timeout", default="0s", help="How long to wait (0: a week).")
@click.option("--cascade", type=click.Choice(sorted(_CASCADE)), default="background",
              help="How dependents are deleted.")
@click.option("--ignore-not-found", is_flag=True, help="Objects that do not exist are no error.")
@click.option("-o", "--output", type=click.Choice(["name"]), help="name: print kind/name only.")
@click.pass_obj
def delete_command(kube: Kube, args: tuple[str, ...], filename: tuple[str, ...], recursive: bool,
                   selector: str | None, select_all: bool, all_namespaces: bool, grace_period: int, now: bool,
                   force: bool, wait: bool, timeout: str, cascade: str, ignore_not_found: bool,
                   output: str | None) -> None:
    """Delete resources by names, files, label selector or --all."""
    if now:
        if grace_period != -1:
            raise CommandError("--now and --grace-period cannot be specified together")
        grace_period = 1
    if grace_period == 0 and not force:
        grace_period = 1  # kubectl: --grace-period=0 without --force means 1 (avoid data loss)
    if force and grace_period < 0:
        grace_period = 0
    if grace_period == 0:
        err("Warning: Immediate deletion does not wait for confirmation that the running resource has been "
            "terminated. The resource may continue to run on the cluster indefinitely.")
    wait_for = parse_duration(timeout)
    refs = resolve_refs(kube, args, filename, recursive, selector=selector, select_all=select_all,
                        all_namespaces=all_namespaces, verb="delete")
    out = Out()
    errors = Errors()
    if not refs:
        out.line("No resources found")
        return
    operation = "force deleted" if grace_period == 0 else "deleted"
    pending: list[tuple[Ref, str]] = []
    for ref in refs:
        try:
            answer = kube.client.delete_raw(ref.rt, ref.name, ref.namespace,
                                            propagation_policy=_CASCADE[cascade],
                                            grace_period_seconds=grace_period if grace_period >= 0 else None)
        except ApiError as e:
            if not (is_not_found(e) and ignore_not_found):
                errors.api(with_source(e, "deleting", ref.source) if ref.source else e)
            continue
        if output == "name":
            out.line(f"{resources.kind_prefix(ref.rt)}/{ref.name}")
        else:
            out.line(deleted_line(ref.rt, ref.name, operation))
        uid = (answer.get("metadata") or {}).get("uid", "") if answer.get("kind") != "Status" else ""
        pending.append((ref, str(uid)))
    if wait:
        for ref, uid in pending:
            def check(r: Ref = ref, u: str = uid) -> bool | None:
                return True if gone(kube.client, r.rt, r.name, r.namespace, u) else None

            try:
                poll(check, timeout=wait_for or 7 * 24 * 3600.0)
            except TimedOut:
                errors.add(f"error: timed out waiting for the condition on {ref.rt.group_resource}/{ref.name}")
            except ApiError as e:
                errors.api(e)
    errors.finish()
