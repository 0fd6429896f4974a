"""Applying PATCH documents (adapter over the patch module).

Guarantees: the stored object is never mutated (patches apply to a deep copy);
a malformed patch document is 400 BadRequest; a well-formed patch that cannot be
applied (json-patch `test` failing, missing path) is 422 Invalid naming the path; a
result that could not be stored and served back (too deep) is 400.
"""

from __future__ import annotations

from typing import Any

from mkube.api import patch as impl
from mkube.api.errors import BadRequest, Cause, Invalid
from mkube.api.kinds import ResourceType
from mkube.apiserver.bodies import JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, check_storable

Obj = dict[str, Any]


def check_document(patch_type: str, doc: Any) -> None:
    """400 unless `doc` has the shape its patch type needs."""
    if patch_type == JSON_PATCH:
        if not isinstance(doc, list):
            raise BadRequest("a json-patch document must be a JSON array of operations")
        for i, op in enumerate(doc):
            if not isinstance(op, dict) or not isinstance(op.get("op"), str) or not isinstance(op.get("path"), str):
                raise BadRequest(f"json-patch operation {i} must be an object with string 'op' and 'path'")
            if op["op"] not in ("add", "remove", "replace", "move", "copy", "test"):
                raise BadRequest(f"json-patch operation {i}: unknown op {op['op']!r}")
    elif not isinstance(doc, dict):
        raise BadRequest(f"a {patch_type} document must be a JSON object")


def apply(rt: ResourceType, patch_type: str, original: Obj, doc: Any, kind: str | None = None) -> Obj:
    """The result of applying `doc` to `original` (never mutated); `kind` overrides the
    kind whose list merge keys a strategic merge patch uses (e.g. "Scale")."""
    check_document(patch_type, doc)
    target = original
    name = (original.get("metadata") or {}).get("name", "")
    try:
        if patch_type == MERGE_PATCH:
            result = impl.merge_patch(target, doc)
        elif patch_type == STRATEGIC_PATCH:
            result = impl.strategic_merge_patch(target, doc, kind or rt.kind)
        elif patch_type == JSON_PATCH:
            result = impl.json_patch(target, doc)
        else:  # pragma: no cover - the dispatcher only passes the three types
            raise BadRequest(f"unsupported patch type {patch_type}")
    except impl.PatchConflict as exc:
        raise Invalid(rt.kind, name, [Cause(field=exc.path, message=str(exc))], group=rt.group or None) from None
    except (impl.PatchError, ValueError, RecursionError) as exc:
        raise BadRequest(f"the patch could not be applied: {exc}") from None
    if not isinstance(result, dict):
        raise BadRequest("the patch must leave a JSON object")
    check_storable(result, "the patched object")
    return result
