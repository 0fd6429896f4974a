"""`mkubectl apply -f`: client-side apply, as kubectl does it.

The manifest, with its own serialization stored in the
`kubectl.kubernetes.io/last-applied-configuration` annotation, is the "modified"
configuration; the annotation on the live object is the "original"; a three-way strategic
merge patch (mkube.api.patch.three_way_merge) turns the live object into the new one while
removing what was dropped from the manifest since the last apply. An empty patch means
"unchanged". Conflicts (the object changed between GET and PATCH) are retried.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import click

from mkube.api.errors import ApiError, is_conflict, is_not_found
from mkube.api.patch import three_way_merge
from mkube.kubectl.commands.common import (
    Errors,
    Placed,
    done_line,
    filename_option,
    read_placed,
    recursive_option,
)
from mkube.kubectl.context import Kube
from mkube.kubectl.encoding import to_compact_json
from mkube.kubectl.errors import CommandError, with_source
from mkube.kubectl.output import Out, err

Obj = dict[str, Any]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_RETRIES = 5


def with_last_applied(obj: Obj) -> Obj:
    """A copy of `obj` carrying its own JSON (without that annotation) in the annotation,
    byte for byte what kubectl stores (sorted keys, trailing newline)."""
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    meta["annotations"] = annotations
    serialized = to_compact_json(out) + "\n"
    meta["annotations"] = {**annotations, LAST_APPLIED: serialized}
    return out


def _original(current: Obj) -> Obj | None:
    text = ((current.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def apply_one(kube: Kube, p: Placed, out: Out) -> None:
    """Create or patch one object and print what happened. Raises ApiError."""
    client = kube.client
    modified = with_last_applied(p.obj)
    if not p.name:
        raise CommandError(f'error when retrieving current configuration of "{p.manifest.source}": '
                           "resource name may not be empty")
    for attempt in range(_RETRIES):
        try:
            current = client.get_raw(p.rt, p.name, p.namespace)
        except ApiError as e:
            if not is_not_found(e):
                raise
            try:
                client.create_raw(p.rt, modified, p.namespace)
            except ApiError as ce:
                raise with_source(ce, "creating", p.manifest.source) from None
            out.line(done_line(p.rt, p.name, "created"))
            return
        original = _original(current)
        if original is None and attempt == 0:
            err(f"Warning: resource {p.rt.plural}/{p.name} is missing the {LAST_APPLIED} annotation which "
                f"is required by kubectl apply. kubectl apply should only be used on resources created "
                f"declaratively by either kubectl create --save-config or kubectl apply. The missing "
                f"annotation will be patched automatically.")
        patch = three_way_merge(original, modified, current, p.rt.kind)
        if not patch:
            out.line(done_line(p.rt, p.name, "unchanged"))
            return
        try:
            client.patch_raw(p.rt, p.name, patch, p.namespace, patch_type="strategic")
        except ApiError as e:
            if is_conflict(e) and attempt + 1 < _RETRIES:
                continue
            raise with_source(e, "patching", p.manifest.source) from None
        out.line(done_line(p.rt, p.name, "configured"))
        return


@click.command("apply")
@filename_option
@recursive_option
@click.pass_obj
def apply_command(kube: Kube, filename: tuple[str, ...], recursive: bool) -> None:
    """Create or update objects from files (client-side three-way merge)."""
    if not filename:
        raise CommandError("must specify one of -f and -k")
    placed = read_placed(kube, filename, recursive, "apply")
    out = Out()
    errors = Errors()
    for p in placed:
        try:
            apply_one(kube, p, out)
        except ApiError as e:
            errors.api(e)
    errors.finish()
