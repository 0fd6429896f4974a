"""What the user names on the command line: `deploy`, `deploy,svc`, `all`, `deploy web`,
`deploy/web svc/api` -> (resource type, name or None) targets, with kubectl's rules and
error wording.
"""

from __future__ import annotations

from dataclasses import dataclass

from mkube.api import kinds
from mkube.api.kinds import ResourceType
from mkube.kubectl.errors import CommandError

_SLASH_MIX = ("there is no need to specify a resource type as a separate argument when passing arguments in "
              "resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get "
              "resource resource/<resource_name>'")


@dataclass(frozen=True)
class Target:
    rt: ResourceType
    name: str | None  # None: every object of the type (filtered by selectors)


@dataclass
class Targets:
    items: list[Target]
    multiple_kinds: bool  # more than one resource type requested (names get a kind prefix)
    single_item: bool  # exactly one object named (print it bare, not as a List)


def kind_prefix(rt: ResourceType) -> str:
    """`deployment.apps`, `pod`: what `-o name` and multi-kind tables put before the name."""
    return f"{rt.kind.lower()}.{rt.group}" if rt.group else rt.kind.lower()


def resolve_type(name: str) -> ResourceType:
    """A resource type by any of its names. Raises kubectl's "doesn't have a resource type"."""
    rt = kinds.lookup(name.strip())
    if rt is None:
        raise CommandError(f'the server doesn\'t have a resource type "{name}"')
    return rt


def category(name: str) -> list[ResourceType]:
    """The resources of a category (`all`), in discovery order."""
    return [rt for rt in kinds.RESOURCES if name in rt.categories]


def expand_types(arg: str) -> list[ResourceType]:
    """`deploy,svc` -> [deployments, services]; `all` -> the "all" category. No duplicates."""
    out: list[ResourceType] = []
    for part in arg.split(","):
        part = part.strip()
        if not part:
            continue
        found = category(part.lower()) if part.lower() == "all" else [resolve_type(part)]
        for rt in found:
            if rt not in out:
                out.append(rt)
    if not out:
        raise CommandError(f'the server doesn\'t have a resource type "{arg}"')
    return out


def parse(args: tuple[str, ...] | list[str], verb: str = "get") -> Targets:
    """kubectl's ResourceTypeOrNameArgs. Raises CommandError for the forms kubectl refuses."""
    args = list(args)
    if not args:
        raise CommandError("Required resource not specified.")
    if "/" in args[0]:
        items: list[Target] = []
        for arg in args:
            if "/" not in arg:
                raise CommandError(_SLASH_MIX)
            type_, _, name = arg.partition("/")
            if not type_ or not name or "," in type_:
                raise CommandError("arguments in resource/name form must have a single resource and name")
            items.append(Target(resolve_type(type_), name))
        kinds_seen = {t.rt for t in items}
        return Targets(items, multiple_kinds=len(kinds_seen) > 1, single_item=len(items) == 1)
    types = expand_types(args[0])
    names = args[1:]
    for name in names:
        if "/" in name:
            raise CommandError(_SLASH_MIX)
    if names:
        if len(types) > 1:
            raise CommandError("you must specify only one resource")
        return Targets([Target(types[0], n) for n in names], multiple_kinds=False, single_item=len(names) == 1)
    return Targets([Target(rt, None) for rt in types], multiple_kinds=len(types) > 1, single_item=False)
