"""`mkubectl replace -f`: PUT whole objects. A manifest carrying a stale
metadata.resourceVersion is refused by the server with 409 Conflict, as with kubectl."""

from __future__ import annotations

import click

from mkube.api.errors import ApiError
from mkube.kubectl.commands.common import Errors, done_line, filename_option, read_placed, recursive_option
from mkube.kubectl.context import Kube
from mkube.kubectl.errors import CommandError, with_source
from mkube.kubectl.output import Out


@click.command("replace")
@filename_option
@recursive_option
@click.pass_obj
def replace_command(kube: Kube, filename: tuple[str, ...], recursive: bool) -> None:
    """Replace objects by filename (the whole object is sent)."""
    if not filename:
        raise CommandError("must specify -f")
    placed = read_placed(kube, filename, recursive, "replace")
    out = Out()
    errors = Errors()
    for p in placed:
        try:
            kube.client.update_raw(p.rt, p.obj, p.namespace)
            out.line(done_line(p.rt, p.name, "replaced"))
        except ApiError as e:
            errors.api(with_source(e, "replacing", p.manifest.source))
    errors.finish()
