"""The three patch types of PATCH requests, and the three-way merge of `apply`.

- `merge_patch`: JSON merge patch (RFC 7386, `application/merge-patch+json`).
- `json_patch`: JSON patch (RFC 6902, `application/json-patch+json`).
- `strategic_merge_patch`: Kubernetes' strategic merge patch
  (`application/strategic-merge-patch+json`): like a merge patch, but lists that carry a
  merge key in the Kubernetes types (containers by name, env by name, ports by
  containerPort ...) are merged item by item, and the directives `$patch`,
  `$retainKeys`, `$deleteFromPrimitiveList/<list>` and `$setElementOrder/<list>` apply.
  Lists without a merge key are replaced whole (atomic), as Kubernetes does.
- `three_way_merge`: the strategic patch `kubectl apply` sends (client-side apply).

All functions are pure: they never mutate their arguments. Bad patches raise
`PatchError` (malformed document: 400) or `PatchConflict` (well-formed but does not
apply, e.g. a json-patch `test` failing: 422); both are ValueErrors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import jsonpointer

Obj = dict[str, Any]

class PatchError(ValueError):
    """A malformed patch document (the API server answers 400 BadRequest)."""


class PatchConflict(ValueError):
    """A well-formed patch that does not apply to this object (422); `path` names where."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


_PATCH = "$patch"
_RETAIN = "$retainKeys"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_SET_ORDER = "$setElementOrder/"


# ---------------------------------------------------------------- schema of the built-in kinds

@dataclass(frozen=True)
class Field:
    """How a field merges: `key` for lists of objects, `merge` for sets of primitives."""

    key: str | None = None  # lists of objects merged by this key (patchMergeKey)
    merge: bool = False  # lists of primitives merged as a set (patchStrategy=merge)
    retain: bool = False  # patchStrategy=retainKeys on the value / on each item
    sub: Mapping[str, Field] | None = field(default=None, hash=False, compare=False)


Schema = Mapping[str, Field]

_OBJECT_META: Schema = {"ownerReferences": Field(key="uid"), "finalizers": Field(merge=True)}
_META = Field(sub=_OBJECT_META)
_CONTAINER: Schema = {
    "ports": Field(key="containerPort"),
    "env": Field(key="name"),
    "volumeMounts": Field(key="mountPath"),
    "volumeDevices": Field(key="devicePath"),
}
_POD_SPEC: Schema = {
    "containers": Field(key="name", sub=_CONTAINER),
    "initContainers": Field(key="name", sub=_CONTAINER),
    "ephemeralContainers": Field(key="name", sub=_CONTAINER),
    "volumes": Field(key="name", retain=True),
    "imagePullSecrets": Field(key="name"),
    "hostAliases": Field(key="ip"),
    "topologySpreadConstraints": Field(key="topologyKey"),
    "resourceClaims": Field(key="name", retain=True),
    "schedulingGates": Field(key="name"),
}
_CONDITIONS = Field(key="type")
_POD_STATUS: Schema = {"conditions": _CONDITIONS, "podIPs": Field(key="ip"), "hostIPs": Field(key="ip")}
_TEMPLATE = Field(sub={"metadata": _META, "spec": Field(sub=_POD_SPEC)})
_WORKLOAD_STATUS = Field(sub={"conditions": _CONDITIONS})

SCHEMAS: dict[str, Schema] = {
    "Pod": {"metadata": _META, "spec": Field(sub=_POD_SPEC), "status": Field(sub=_POD_STATUS)},
    "Deployment": {"metadata": _META, "status": _WORKLOAD_STATUS,
                   "spec": Field(sub={"template": _TEMPLATE, "strategy": Field(retain=True)})},
    "ReplicaSet": {"metadata": _META, "status": _WORKLOAD_STATUS, "spec": Field(sub={"template": _TEMPLATE})},
    "Service": {"metadata": _META, "spec": Field(sub={"ports": Field(key="port")}),
                "status": Field(sub={"conditions": _CONDITIONS})},
    "Node": {"metadata": _META, "spec": Field(sub={"podCIDRs": Field(merge=True)}),
             "status": Field(sub={"conditions": _CONDITIONS, "addresses": Field(key="type")})},
    "Namespace": {"metadata": _META, "status": Field(sub={"conditions": _CONDITIONS})},
}
_DEFAULT_SCHEMA: Schema = {"metadata": _META}


def schema_for(kind: str | None) -> Schema:
    """The merge schema of a kind (metadata only for kinds without special lists)."""
    return SCHEMAS.get(kind or "", _DEFAULT_SCHEMA)


# ---------------------------------------------------------------- helpers

def _clone(v: Any) -> Any:
    """A deep copy of JSON data (much faster than copy.deepcopy)."""
    if isinstance(v, dict):
        return {k: _clone(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clone(x) for x in v]
    return v


def _sub(schema: Schema | None, key: str) -> Field | None:
    return schema.get(key) if schema else None


def _sub_schema(f: Field | None) -> Schema | None:
    return f.sub if f else None


# ---------------------------------------------------------------- RFC 7386 / RFC 6902

def merge_patch(obj: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return _clone(patch)
    result = _clone(obj) if isinstance(obj, dict) else {}
    _merge_patch_into(result, patch)
    return result


def _merge_patch_into(target: Obj, patch: Mapping[str, Any]) -> None:
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict):
            cur = target.get(k)
            if not isinstance(cur, dict):
                cur = {}
                target[k] = cur
            _merge_patch_into(cur, v)
        else:
            target[k] = _clone(v)


def json_patch(obj: Any, ops: Any) -> Any:
    """Apply RFC 6902 operations (a list of {op, path, ...}); ValueError on any failure."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) or not isinstance(op.get("path"), str):
            raise PatchError(f"json patch operation {i} must be an object with string 'op' and 'path'")
    doc = _clone(obj)
    for op in ops:
        try:
            doc = jsonpatch.JsonPatch([op]).apply(doc, in_place=True)
        except jsonpatch.JsonPatchTestFailed as e:
            raise PatchConflict(_pointer_path(op["path"]), f"json patch test operation failed: {e}") from e
        except jsonpatch.InvalidJsonPatch as e:
            raise PatchError(f"invalid json patch: {e}") from e
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, KeyError, IndexError,
                TypeError, AttributeError) as e:
            raise PatchConflict(_pointer_path(op["path"]),
                                f"json patch operation {op['op']} at {op['path']!r} does not apply: {e}") from e
    return doc


def _pointer_path(pointer: str) -> str:
    """`/spec/containers/0/image` -> `spec.containers[0].image` (for error causes)."""
    out = ""
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        out += f"[{part}]" if part.isdigit() or part == "-" else (f".{part}" if out else part)
    return out


# ---------------------------------------------------------------- strategic merge patch (apply)

def strategic_merge_patch(obj: Obj, patch: Any, kind: str | None) -> Obj:
    """Apply a strategic merge patch to `obj` (a wire dict of `kind`). ValueError on a bad patch."""
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object")
    if not isinstance(obj, dict):
        raise PatchError("strategic merge patch applies to a JSON object")
    return _apply_map(_clone(obj), patch, schema_for(kind))


def _apply_map(orig: Obj, patch: Mapping[str, Any], schema: Schema | None) -> Obj:
    """Merge `patch` into `orig` (which the caller owns and may be mutated)."""
    directive = patch.get(_PATCH)
    if directive is not None:
        if directive == "replace":
            return _apply_map({}, {k: v for k, v in patch.items() if k != _PATCH}, schema)
        if directive == "delete":
            return {}
        if directive != "merge":
            raise PatchError(f"unknown patch directive {directive!r} (want replace, delete or merge)")
    if _RETAIN in patch:
        keep = patch[_RETAIN]
        if not isinstance(keep, list):
            raise PatchError(f"{_RETAIN} must be a list of keys")
        for k in [k for k in orig if k not in keep]:
            del orig[k]
    for k, v in patch.items():
        if k.startswith(_DELETE_PRIMITIVE):
            name = k[len(_DELETE_PRIMITIVE):]
            if not isinstance(v, list):
                raise PatchError(f"{k} must be a list")
            cur = orig.get(name)
            if isinstance(cur, list):
                orig[name] = [x for x in cur if x not in v]
    originals: dict[str, Any] = {}
    for k, pv in patch.items():
        if k.startswith("$"):
            if not (k in (_PATCH, _RETAIN) or k.startswith(_DELETE_PRIMITIVE) or k.startswith(_SET_ORDER)):
                raise PatchError(f"unknown patch directive {k!r}")
            continue
        if pv is None:
            orig.pop(k, None)
            continue
        f = _sub(schema, k)
        ov = orig.get(k)
        if isinstance(pv, dict):
            if pv.get(_PATCH) == "delete":
                orig.pop(k, None)
                continue
            orig[k] = _apply_map(ov if isinstance(ov, dict) else {}, pv, _sub_schema(f))
        elif isinstance(pv, list):
            if isinstance(ov, list):
                originals[k] = ov
            orig[k] = _apply_list(ov if isinstance(ov, list) else [], pv, f)
        else:
            orig[k] = pv
    for k, order in patch.items():
        if k.startswith(_SET_ORDER):
            name = k[len(_SET_ORDER):]
            if not isinstance(order, list):
                raise PatchError(f"{k} must be a list")
            cur = orig.get(name)
            if isinstance(cur, list):
                f = _sub(schema, name)
                server = originals.get(name, cur if name not in patch else [])
                orig[name] = _apply_order(cur, order, f.key if f else None, server)
    return orig


def _apply_list(orig: list[Any], patch: list[Any], f: Field | None) -> list[Any]:
    if f is None or (f.key is None and not f.merge):
        return _strip_list(patch)  # atomic list: replaced whole
    if any(isinstance(x, dict) and x.get(_PATCH) == "replace" for x in patch):
        rest = [x for x in patch if not (isinstance(x, dict) and x.get(_PATCH) == "replace")]
        return _apply_list([], rest, f)
    if f.key is None:  # a set of primitives
        out = list(orig)
        for v in patch:
            if v not in out:
                out.append(_clone(v))
        return out
    key = f.key
    out = list(orig)
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"list items must be objects with the merge key {key!r}, got {item!r}")
        if key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        kv = item[key]
        directive = item.get(_PATCH)
        if directive == "delete":
            out = [x for x in out if not (isinstance(x, dict) and x.get(key) == kv)]
            continue
        if directive not in (None, "merge"):
            raise PatchError(f"unknown patch directive {directive!r} in list item")
        for i, x in enumerate(out):
            if isinstance(x, dict) and x.get(key) == kv:
                out[i] = _apply_map(x, item, f.sub)
                break
        else:
            out.append(_apply_map({}, item, f.sub))
    return out


def _strip_list(items: list[Any]) -> list[Any]:
    return [_apply_map({}, x, None) if isinstance(x, dict) else _clone(x) for x in items]


def _apply_order(merged: list[Any], order: list[Any], key: str | None, server: list[Any]) -> list[Any]:
    """Order `merged` as `$setElementOrder` asks, keeping server-only items near their old place.

    Port of Kubernetes' normalizeElementOrder: items named by the order list are sorted by
    it; the others (present only on the server) keep their relative order; the two runs
    are interleaved by their positions in the server's list.
    """
    def ident(x: Any) -> Any:
        if key is None:
            return _hashable(x)
        return _hashable(x.get(key)) if isinstance(x, dict) else None

    pos = {ident(o): i for i, o in enumerate(order)}
    server_pos = {ident(x): i for i, x in enumerate(server)}
    patch_side = [x for x in merged if ident(x) in pos or ident(x) not in server_pos]
    server_only = [x for x in merged if ident(x) not in pos and ident(x) in server_pos]
    patch_side.sort(key=lambda x: pos.get(ident(x), len(pos)))
    server_only.sort(key=lambda x: server_pos[ident(x)])
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(patch_side):
        if j >= len(patch_side):
            out.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            out.append(patch_side[j])
            j += 1
        else:
            li = server_pos.get(ident(server_only[i]), -1)
            ri = server_pos.get(ident(patch_side[j]), -1)
            less = li < ri if (li >= 0 and ri >= 0) else li > ri
            if less:
                out.append(server_only[i])
                i += 1
            else:
                out.append(patch_side[j])
                j += 1
    return out


def _hashable(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    return v


# ---------------------------------------------------------------- three-way merge (kubectl apply)

def three_way_merge(original: Obj | None, modified: Obj, current: Obj, kind: str | None) -> Obj:
    """The strategic merge patch that turns `current` into `modified`, deleting what the user
    removed since the last apply (fields in `original` but not in `modified`).

    `original` is the last-applied configuration (None on the first apply), `modified` the
    new manifest (with its new last-applied annotation), `current` the live object. Fields
    only the server or other writers set (in `current`, never in `original`) are kept.
    Returns {} when nothing needs to change.
    """
    schema = schema_for(kind)
    delta = _diff_maps(current, modified, schema, ignore_deletions=True, ignore_changes=False)
    deletions = _diff_maps(original or {}, modified, schema, ignore_deletions=False, ignore_changes=True)
    return _merge_patches(deletions, delta, schema)


def create_two_way_patch(original: Obj, modified: Obj, kind: str | None) -> Obj:
    """The strategic merge patch turning `original` into `modified` (additions, changes, deletions)."""
    return _diff_maps(original, modified, schema_for(kind), ignore_deletions=False, ignore_changes=False)


def _diff_maps(orig: Mapping[str, Any], mod: Mapping[str, Any], schema: Schema | None, *,
               ignore_deletions: bool, ignore_changes: bool) -> Obj:
    patch: Obj = {}
    for k, mv in mod.items():
        if k not in orig:
            if not ignore_changes:
                patch[k] = _clone(mv)
            continue
        ov = orig[k]
        f = _sub(schema, k)
        if isinstance(mv, dict) and isinstance(ov, dict):
            sub = _diff_maps(ov, mv, _sub_schema(f), ignore_deletions=ignore_deletions,
                             ignore_changes=ignore_changes)
            if sub:
                if f is not None and f.retain and not ignore_changes:
                    sub[_RETAIN] = sorted(mv)
                patch[k] = sub
        elif isinstance(mv, list) and isinstance(ov, list) and f is not None and (f.key or f.merge):
            _diff_list(patch, k, ov, mv, f, ignore_deletions, ignore_changes)
        elif (mv != ov or type(mv) is not type(ov)) and not ignore_changes:
            patch[k] = _clone(mv)
    if not ignore_deletions:
        for k in orig:
            if k not in mod:
                patch[k] = None
    return patch


def _diff_list(patch: Obj, k: str, ov: list[Any], mv: list[Any], f: Field,
               ignore_deletions: bool, ignore_changes: bool) -> None:
    if f.key is None:  # set of primitives
        added = [v for v in mv if v not in ov]
        removed = [v for v in ov if v not in mv]
        common_o = [v for v in ov if v in mv]
        common_m = [v for v in mv if v in ov]
        if added and not ignore_changes:
            patch[k] = _clone(added)
        if removed and not ignore_deletions:
            patch[_DELETE_PRIMITIVE + k] = _clone(removed)
        if (not ignore_changes and (added or common_o != common_m)) or (not ignore_deletions and removed):
            patch[_SET_ORDER + k] = _clone(mv)
        return
    key = f.key
    if not all(isinstance(x, dict) and key in x for x in (*ov, *mv)):
        if mv != ov and not ignore_changes:  # not mergeable item by item: replace whole
            patch[k] = _clone(mv)
        return
    by_key = {_hashable(o[key]): o for o in ov}
    mod_keys = {_hashable(m[key]) for m in mv}
    items: list[Any] = []
    for m in mv:
        o = by_key.get(_hashable(m[key]))
        if o is None:
            if not ignore_changes:
                items.append(_clone(m))
            continue
        sub = _diff_maps(o, m, f.sub, ignore_deletions=ignore_deletions, ignore_changes=ignore_changes)
        if sub:
            if f.retain and not ignore_changes:
                sub[_RETAIN] = sorted(m)
            items.append({key: _clone(m[key]), **sub})
    if not ignore_deletions:
        for o in ov:
            if _hashable(o[key]) not in mod_keys:
                items.append({key: _clone(o[key]), _PATCH: "delete"})
    common_o = [_hashable(o[key]) for o in ov if _hashable(o[key]) in mod_keys]
    common_m = [_hashable(m[key]) for m in mv if _hashable(m[key]) in by_key]
    if items:
        patch[k] = items
    if (not ignore_changes and (items or common_o != common_m)) or (not ignore_deletions and items):
        patch[_SET_ORDER + k] = [{key: _clone(m[key])} for m in mv]


def _merge_patches(a: Obj, b: Mapping[str, Any], schema: Schema | None) -> Obj:
    """Combine two strategic patches computed from the same `modified` (deletions + delta)."""
    out = _clone(a)
    for k, bv in b.items():
        if k not in out:
            out[k] = _clone(bv)
            continue
        av = out[k]
        if k.startswith(_DELETE_PRIMITIVE) and isinstance(av, list) and isinstance(bv, list):
            out[k] = av + [x for x in bv if x not in av]
            continue
        if k.startswith("$"):
            out[k] = _clone(bv)
            continue
        f = _sub(schema, k)
        if isinstance(av, dict) and isinstance(bv, dict):
            out[k] = _merge_patches(av, bv, _sub_schema(f))
        elif isinstance(av, list) and isinstance(bv, list) and f is not None and f.key:
            merged = list(av)
            for item in bv:
                for i, x in enumerate(merged):
                    if isinstance(x, dict) and isinstance(item, dict) and x.get(f.key) == item.get(f.key):
                        merged[i] = _merge_patches(x, item, f.sub)
                        break
                else:
                    merged.append(_clone(item))
            out[k] = merged
        elif isinstance(av, list) and isinstance(bv, list) and f is not None and f.merge:
            out[k] = av + [x for x in bv if x not in av]
        else:
            out[k] = _clone(bv)
    return out
