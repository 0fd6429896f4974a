"""Small pieces several commands share: reading `-f` objects placed in their namespaces,
kubectl's "kind.group/name verb" lines, collecting errors and exiting non-zero at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from mkube.api.errors import ApiError
from mkube.api.kinds import ResourceType
from mkube.kubectl import fetch, manifests, resources
from mkube.kubectl.context import Kube
from mkube.kubectl.errors import CommandError, ExitError, error_line
from mkube.kubectl.output import Out, err

Obj = dict[str, Any]

filename_option = click.option("-f", "--filename", multiple=True,
                               help="Files, directories or - (stdin) with the objects.")


def bool_flag(name: str, default: bool, help: str) -> Callable[[Any], Any]:
    """A kubectl-style boolean flag: `--wait`, `--wait=true`, `--wait=false`."""
    return click.option(name, type=click.BOOL, is_flag=False, flag_value=True, default=default,
                        show_default=True, help=help)


recursive_option = click.option("-R", "--recursive", is_flag=True,
                                help="Process directories given with -f recursively.")


@dataclass
class Placed:
    """An object from a file with its resource type and target namespace."""

    manifest: manifests.Manifest
    rt: ResourceType
    namespace: str | None

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def obj(self) -> Obj:
        return self.manifest.obj


def read_placed(kube: Kube, filenames: tuple[str, ...], recursive: bool, verb: str) -> list[Placed]:
    """Every object of the `-f` arguments with its type and namespace; all problems (files,
    YAML, unknown kinds, namespace mismatches) are raised before anything is sent."""
    out: list[Placed] = []
    for m in manifests.read(filenames, recursive, verb=verb):
        rt = manifests.resource_of(m)
        ns = manifests.place(m, rt, kube.namespace, kube.namespace_explicit)
        out.append(Placed(m, rt, ns))
    return out


@dataclass(frozen=True)
class Ref:
    """One named object a command acts on; `source` is its file (for error wording)."""

    rt: ResourceType
    name: str
    namespace: str | None
    source: str = ""


def resolve_refs(kube: Kube, args: tuple[str, ...], filenames: tuple[str, ...], recursive: bool, *,
                 selector: str | None = None, select_all: bool = False, all_namespaces: bool = False,
                 verb: str, names_required: bool = True) -> list[Ref]:
    """The objects named by `TYPE NAME...`, `TYPE/NAME...`, `-f`, or `TYPE -l SEL` / `TYPE --all`.

    With `names_required`, a bare `TYPE` without -l/--all is kubectl's "no name was
    specified" error; otherwise it means every object of the type.
    """
    if filenames:
        if args:
            raise CommandError("when paths, URLs, or stdin is provided as input, you may not specify "
                               "resource arguments as well")
        return [Ref(p.rt, p.name, p.namespace, p.manifest.source)
                for p in read_placed(kube, filenames, recursive, verb)]
    if not args:
        raise CommandError("You must provide one or more resources by argument or filename.")
    targets = resources.parse(args, verb)
    named = [t for t in targets.items if t.name is not None]
    if named:
        if selector or select_all:
            raise CommandError("name cannot be provided when a selector is specified" if selector else
                               "name cannot be provided when --all is specified")
        return [Ref(t.rt, str(t.name), kube.namespace if t.rt.namespaced else None) for t in named]
    if names_required and not selector and not select_all:
        raise CommandError("resource(s) were provided, but no name was specified")
    refs: list[Ref] = []
    ns = None if all_namespaces else kube.namespace
    for t in targets.items:
        items, _ = fetch.list_objects(kube.client, t.rt, ns, selector)
        for obj in items:
            meta = obj.get("metadata") or {}
            refs.append(Ref(t.rt, str(meta.get("name", "")), meta.get("namespace") if t.rt.namespaced else None))
    return refs


def done_line(rt: ResourceType, name: str, verb: str) -> str:
    """`deployment.apps/web created`."""
    return f"{resources.kind_prefix(rt)}/{name} {verb}"


class Errors:
    """Collects error lines; `finish()` prints them to stderr and exits 1 if there were any."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def api(self, e: ApiError) -> None:
        self.lines.append(error_line(e))

    def finish(self) -> None:
        for line in self.lines:
            err(line)
        if self.lines:
            raise ExitError(1)


def for_each(items: list[Any], action: Callable[[Any], None], errors: Errors) -> None:
    """Run `action` on every item; API failures are collected, the rest still runs."""
    for item in items:
        try:
            action(item)
        except ApiError as e:
            errors.api(e)


__all__ = ["bool_flag", "Errors", "Out", "Placed", "Ref", "resolve_refs", "done_line", "filename_option", "for_each", "read_placed",
           "recursive_option"]
