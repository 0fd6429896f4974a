"""`mkubectl describe`: kubectl-style text about objects, with their events at the bottom.

`describe TYPE NAME` also matches names by prefix when no object has that exact name,
as kubectl does (`describe pods web` describes every pod whose name starts with "web")."""

from __future__ import annotations

from typing import Any

import click

from mkube.api.errors import ApiError, is_not_found
from mkube.kubectl import fetch, resources
from mkube.kubectl.commands.common import Errors, bool_flag, filename_option, read_placed, recursive_option
from mkube.kubectl.context import Kube
from mkube.kubectl.describe import describe
from mkube.kubectl.errors import CommandError
from mkube.kubectl.output import Out, err

Obj = dict[str, Any]


@click.command("describe")
@click.argument("args", nargs=-1)
@filename_option
@recursive_option
@click.option("-l", "--selector", help="Describe the objects matching this label selector.")
@click.option("-A", "--all-namespaces", is_flag=True, help="Look in every namespace.")
@bool_flag("--show-events", True, "Show the events about each object.")
@click.pass_obj
def describe_command(kube: Kube, args: tuple[str, ...], filename: tuple[str, ...], recursive: bool,
                     selector: str | None, all_namespaces: bool, show_events: bool) -> None:
    """Show details of a resource or group of resources."""
    client = kube.client
    found: list[tuple[Any, Obj]] = []
    errors = Errors()
    ns = None if all_namespaces else kube.namespace
    if filename:
        if args:
            raise CommandError("when paths, URLs, or stdin is provided as input, you may not specify "
                               "resource arguments as well")
        for p in read_placed(kube, filename, recursive, "describe"):
            try:
                found.append((p.rt, fetch.get_object(client, p.rt, p.name, p.namespace)))
            except ApiError as e:
                errors.api(e)
    else:
        if not args:
            raise CommandError("You must specify the type of resource to describe. Use \"mkubectl "
                               "api-resources\" for a complete list of supported resources.")
        targets = resources.parse(args, "describe")
        for t in targets.items:
            try:
                if t.name is None:
                    items, _ = fetch.list_objects(client, t.rt, ns, selector)
                    found.extend((t.rt, o) for o in items)
                    continue
                try:
                    found.append((t.rt, fetch.get_object(client, t.rt, t.name, kube.namespace)))
                except ApiError as e:
                    if not is_not_found(e):
                        raise
                    items, _ = fetch.list_objects(client, t.rt, kube.namespace, selector)
                    matches = [o for o in items if str((o.get("metadata") or {}).get("name", "")).startswith(t.name)]
                    if not matches:
                        raise
                    found.extend((t.rt, o) for o in matches)
            except ApiError as e:
                errors.api(e)
    out = Out()
    for i, (rt, obj) in enumerate(found):
        try:
            text = describe(client, rt, obj, show_events)
        except ApiError as e:
            errors.api(e)
            continue
        out.write(("\n\n" if i else "") + text)
    if not found and not errors.lines:
        if ns is not None and not filename:
            err(f"No resources found in {ns} namespace.")
        else:
            err("No resources found")
    errors.finish()
