"""`mkubectl scale --replicas=N`: through the scale subresource, as kubectl does."""

from __future__ import annotations

import click

from mkube.api.errors import ApiError
from mkube.kubectl.commands.common import Errors, done_line, filename_option, recursive_option, resolve_refs
from mkube.kubectl.context import Kube
from mkube.kubectl.errors import CommandError, with_source
from mkube.kubectl.output import Out


@click.command("scale")
@click.argument("args", nargs=-1)
@filename_option
@recursive_option
@click.option("--replicas", type=int, required=True, help="The new number of replicas.")
@click.option("--current-replicas", type=int, default=-1, help="Only scale if the current count is this.")
@click.option("-l", "--selector", help="Scale the objects matching this label selector.")
@click.option("--all", "select_all", is_flag=True, help="Scale every object of the given types.")
@click.pass_obj
def scale_command(kube: Kube, args: tuple[str, ...], filename: tuple[str, ...], recursive: bool, replicas: int,
                  current_replicas: int, selector: str | None, select_all: bool) -> None:
    """Set a new size for a deployment or replicaset."""
    if replicas < 0:
        raise CommandError("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    refs = resolve_refs(kube, args, filename, recursive, selector=selector, select_all=select_all, verb="scale")
    if not refs:
        raise CommandError("no objects passed to scale")
    out = Out()
    errors = Errors()
    for ref in refs:
        try:
            if current_replicas >= 0:
                scale = kube.client.get_raw(ref.rt, ref.name, ref.namespace, subresource="scale")
                actual = int((scale.get("spec") or {}).get("replicas") or 0)
                if actual != current_replicas:
                    errors.add(f"error: Expected replicas to be {current_replicas}, was {actual}")
                    continue
            kube.client.patch_raw(ref.rt, ref.name, {"spec": {"replicas": replicas}}, ref.namespace,
                                  patch_type="merge", subresource="scale")
            out.line(done_line(ref.rt, ref.name, "scaled"))
        except ApiError as e:
            errors.api(with_source(e, "scaling", ref.source) if ref.source else e)
    errors.finish()
