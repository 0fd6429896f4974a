"""`mkubectl create -f ...` and the generators `create namespace|deployment|configmap`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mkube.api import kinds
from mkube.api.errors import ApiError
from mkube.kubectl.commands.apply import LAST_APPLIED, with_last_applied
from mkube.kubectl.commands.common import (
    Errors,
    Placed,
    done_line,
    filename_option,
    read_placed,
    recursive_option,
)
from mkube.kubectl.context import Kube
from mkube.kubectl.errors import CommandError, with_source
from mkube.kubectl.fetch import typed
from mkube.kubectl.group import Group
from mkube.kubectl.output import Out
from mkube.kubectl.printers import ObjectPrinter, dry_run_view, name_of, parse_output

Obj = dict[str, Any]


def _printer(output: str | None) -> ObjectPrinter | None:
    if not output:
        return None
    fmt = parse_output(output)
    if fmt.kind not in ("yaml", "json", "name", "jsonpath"):
        raise CommandError(f'unable to match a printer suitable for the output format "{output}", allowed '
                           f"formats are: json,jsonpath,name,yaml")
    return ObjectPrinter(fmt, name_of)


def create_one(kube: Kube, p: Placed, save_config: bool, out: Out, printer: ObjectPrinter | None) -> None:
    body = with_last_applied(p.obj) if save_config else p.obj
    created = kube.client.create_raw(p.rt, body, p.namespace)
    name = (created.get("metadata") or {}).get("name") or p.name
    if printer is not None:
        out.write(printer.render(typed(p.rt, created)))
    else:
        out.line(done_line(p.rt, name, "created"))


def _send(kube: Kube, obj: Obj, output: str | None, dry_run: str) -> None:
    """Create one generated object (or print it with --dry-run=client)."""
    rt = kinds.by_kind(obj["apiVersion"], obj["kind"])
    assert rt is not None
    out = Out()
    printer = _printer(output)
    if dry_run == "client":
        if printer is not None:
            out.write(printer.render(dry_run_view(obj)))
        else:
            out.line(done_line(rt, obj["metadata"]["name"], "created (dry run)"))
        return
    ns = kube.namespace if rt.namespaced else None
    if ns:
        obj["metadata"]["namespace"] = ns
    created = kube.client.create_raw(rt, obj, ns)
    if printer is not None:
        out.write(printer.render(typed(rt, created)))
    else:
        out.line(done_line(rt, created["metadata"]["name"], "created"))


@click.group("create", cls=Group, invoke_without_command=True,
             aliases={"ns": "namespace", "deploy": "deployment", "cm": "configmap"})
@filename_option
@recursive_option
@click.option("-o", "--output", help="name|yaml|json|jsonpath=...: print the created objects.")
@click.option("--save-config", is_flag=True, help=f"Store the configuration in the {LAST_APPLIED} annotation.")
@click.pass_context
def create_command(ctx: click.Context, filename: tuple[str, ...], recursive: bool, output: str | None,
                   save_config: bool) -> None:
    """Create objects from files (or with a generator subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    kube: Kube = ctx.obj
    if not filename:
        raise CommandError("must specify one of -f and -k")
    printer = _printer(output)
    placed = read_placed(kube, filename, recursive, "create")
    out = Out()
    errors = Errors()
    for p in placed:
        try:
            create_one(kube, p, save_config, out, printer)
        except ApiError as e:
            errors.api(with_source(e, "creating", p.manifest.source))
    errors.finish()


_dry_run = click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none",
                        help="client: only print the object that would be sent.")
_output = click.option("-o", "--output", help="name|yaml|json|jsonpath=...")


@create_command.command("namespace")
@click.argument("name")
@_dry_run
@_output
@click.pass_obj
def create_namespace(kube: Kube, name: str, dry_run: str, output: str | None) -> None:
    """Create a namespace."""
    _send(kube, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "spec": {}, "status": {}},
          output, dry_run)


@create_command.command("deployment")
@click.argument("name")
@click.option("--image", "images", multiple=True, required=True, help="Container image (repeat for more).")
@click.option("--replicas", type=int, default=1, show_default=True)
@click.option("--port", type=int, help="The port the container exposes.")
@_dry_run
@_output
@click.argument("command", nargs=-1)
@click.pass_obj
def create_deployment(kube: Kube, name: str, images: tuple[str, ...], replicas: int, port: int | None,
                      dry_run: str, output: str | None, command: tuple[str, ...]) -> None:
    """Create a deployment (labels app=NAME), like `kubectl create deployment`."""
    containers: list[Obj] = []
    for i, image in enumerate(images):
        # kubectl names each container after its image ("nginx" for "nginx:1.25")
        cname = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]
        c: Obj = {"name": cname, "image": image, "resources": {}}
        if port and i == 0:
            c["ports"] = [{"containerPort": port}]
        if command:
            c["command"] = list(command)
        containers.append(c)
    labels = {"app": name}
    _send(kube, {"apiVersion": "apps/v1", "kind": "Deployment",
                 "metadata": {"name": name, "labels": dict(labels)},
                 "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                          "strategy": {},
                          "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": containers}}},
                 "status": {}}, output, dry_run)


@create_command.command("configmap")
@click.argument("name")
@click.option("--from-literal", multiple=True, help="key=value")
@click.option("--from-file", multiple=True, help="[key=]path")
@_dry_run
@_output
@click.pass_obj
def create_configmap(kube: Kube, name: str, from_literal: tuple[str, ...], from_file: tuple[str, ...],
                     dry_run: str, output: str | None) -> None:
    """Create a configmap from literals and files."""
    data: dict[str, str] = {}
    for lit in from_literal:
        key, eq, value = lit.partition("=")
        if not eq or not key:
            raise CommandError(f"invalid literal source {lit}, expected key=value")
        data[key] = value
    for spec in from_file:
        key, eq, path = spec.partition("=")
        if not eq:
            key, path = Path(spec).name, spec
        try:
            data[key] = Path(path).read_text()
        except OSError as e:
            raise CommandError(f"error reading {path}: {e.strerror or e}") from None
    _send(kube, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data},
          output, dry_run)
