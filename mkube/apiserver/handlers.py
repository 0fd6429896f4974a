"""The verbs on a resource: create, get, list, update, patch, delete, deletecollection.

Each handler takes a `ResourceRequest` and returns a Response, or raises ApiError.
Reads serialise the stored dicts as they are (no model parsing); writes go through
admission (defaults + validation) and the server-owned metadata rules in meta.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
from starlette.responses import Response

from mkube.api.errors import (
    ApiError,
    BadRequest,
    Cause,
    Conflict,
    Invalid,
    UnsupportedMediaType,
    is_already_exists,
    is_conflict,
    is_not_found,
)
from mkube.api.kinds import ResourceType
from mkube.apiserver import admission, bodies, meta, namespaces, patching, tabling
from mkube.apiserver.deletion import (
    delete_object,
    parse_delete_options,
    should_remove_on_update,
)
from mkube.apiserver.request import ResourceRequest
from mkube.apiserver.responses import json_response, object_response, parse_accept, success_status
from mkube.apiserver.selection import build_predicate

Obj = dict[str, Any]
_RETRIES = 8
# Kinds whose DELETE answers with the deleted object rather than a Status (as Kubernetes).
_RETURN_DELETED = {"Pod", "Namespace", "Service"}


# ---------------------------------------------------------------- body helpers

async def read_object(r: ResourceRequest) -> tuple[Obj, list[str]]:
    """The request body as an object, type-checked against the path; returns the
    warnings to send (unknown fields under fieldValidation=Warn)."""
    mode = r.field_validation
    raw = await bodies.read_body(r.request, r.ctx.options.max_request_body_bytes)
    try:
        body = bodies.decode_object(raw, bodies.media_type(r.request), strict=mode == "Strict")
        check_type_meta(r.rt, body)
        return body, unknown_field_warnings(r.rt, body, mode)
    except BadRequest as e:
        if not e.message.startswith("strict decoding error"):
            raise
        # the wording of Kubernetes' create/update decoder, which kubectl users see verbatim
        raise BadRequest(f'{r.rt.kind} in version "{r.rt.version}" cannot be handled as a {r.rt.kind}: '
                         f"{e.message}", causes=e.causes) from None


def unknown_field_warnings(rt: ResourceType, body: Obj, mode: str, known: set[str] | None = None) -> list[str]:
    if mode == "Ignore":
        return []
    unknown = [f for f in admission.unknown_fields(rt, body) if not known or f not in known]
    if not unknown:
        return []
    if mode == "Strict":
        listed = ", ".join(f'unknown field "{f}"' for f in unknown)
        raise BadRequest(f"strict decoding error: {listed}",
                         causes=[Cause(field=f, message=f'unknown field "{f}"', reason="FieldValueInvalid")
                                 for f in unknown])
    return [f'unknown field "{f}"' for f in unknown]


def check_type_meta(rt: ResourceType, body: Obj) -> None:
    """apiVersion/kind must match the path (filled in when absent)."""
    api_version = body.get("apiVersion")
    kind = body.get("kind")
    if api_version is not None and not isinstance(api_version, str):
        raise BadRequest("apiVersion must be a string")
    if kind is not None and not isinstance(kind, str):
        raise BadRequest("kind must be a string")
    if api_version and api_version != rt.api_version:
        raise BadRequest(f"the API version in the data ({api_version}) does not match the expected API version "
                         f"({rt.api_version})")
    if kind and kind != rt.kind:
        raise BadRequest(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind}) "
                         f"of {rt.group_resource}")
    body["apiVersion"] = rt.api_version
    body["kind"] = rt.kind


def check_namespace(r: ResourceRequest, body: Obj) -> None:
    md = meta.metadata_of(body)
    if not r.rt.namespaced:
        md.pop("namespace", None)
        return
    ns = md.get("namespace")
    if ns not in (None, "") and ns != r.namespace:
        raise BadRequest(f"the namespace of the provided object ({ns}) does not match the namespace sent on the "
                         f"request ({r.namespace})")
    md["namespace"] = r.namespace


def warning_headers(warnings: list[str]) -> dict[str, str] | None:
    if not warnings:
        return None
    return {"Warning": ", ".join('299 - "' + w.replace('"', '\\"') + '"' for w in warnings)}


def _strip_rv(obj: Obj) -> Obj:
    out = dict(obj)
    md = dict(out.get("metadata") or {})
    md.pop("resourceVersion", None)
    out["metadata"] = md
    return out


# ---------------------------------------------------------------- create

async def create(r: ResourceRequest) -> Response:
    if r.name is not None:
        raise ApiError(message=f"POST is not supported on a single {r.rt.singular}; use PUT or PATCH",
                       code=405, reason="MethodNotAllowed")
    body, warnings = await read_object(r)
    return await create_body(r, body, warnings)


async def create_body(r: ResourceRequest, body: Obj, warnings: list[str]) -> Response:
    rt = r.rt
    check_namespace(r, body)
    md = meta.metadata_of(body)
    name = md.get("name")
    generate = md.get("generateName")
    generated = False
    if not name and isinstance(generate, str) and generate:
        md["name"] = name = meta.generate_name(generate)
        generated = True
    if rt.namespaced and r.namespace:
        await namespaces.check_writable(r.ctx, r.namespace, rt, str(name or ""))
    dry_run = r.dry_run
    for _ in range(5):
        # no copy of `body`: prepare_create is pure (strategy.py), it returns a new dict
        obj = admission.prepare_create(rt, body)
        meta.stamp_new(obj)
        name = obj["metadata"]["name"]
        if dry_run:
            return object_response(obj, parse_accept(r.request), 201, warning_headers(warnings))
        try:
            stored = await r.ctx.create(rt, r.namespace, name, obj)
        except ApiError as err:
            if is_already_exists(err) and generated and isinstance(generate, str):
                body["metadata"]["name"] = meta.generate_name(generate)
                continue
            raise
        return object_response(stored, parse_accept(r.request), 201, warning_headers(warnings))
    raise Conflict(rt.plural, str(name), "could not generate a unique name", group=rt.group or None)


# ---------------------------------------------------------------- get / list

async def get(r: ResourceRequest) -> Response:
    assert r.name is not None
    accept = parse_accept(r.request)
    meta.parse_resource_version(r.q("resourceVersion"))
    obj = await r.ctx.get(r.rt, r.namespace, r.name)
    if accept.table:
        include = tabling.include_mode(r.q("includeObject"))
        rv = (obj.get("metadata") or {}).get("resourceVersion", "")
        return json_response(tabling.table(r.rt, [obj], include=include, table_version=accept.table_version,
                                           list_meta={"resourceVersion": rv}))
    return object_response(obj, accept)


async def list_(r: ResourceRequest) -> Response:
    accept = parse_accept(r.request)
    meta.parse_resource_version(r.q("resourceVersion"))
    predicate = build_predicate(r.rt, r.q("labelSelector"), r.q("fieldSelector"))
    limit = r.int_param("limit")
    include = tabling.include_mode(r.q("includeObject")) if accept.table else "Metadata"
    token = r.q("continue") or None
    result = await r.ctx.list(r.rt, r.namespace, limit=limit or None, continue_token=token, predicate=predicate)
    list_meta: Obj = {"resourceVersion": str(result.revision)}
    if result.continue_token:
        list_meta["continue"] = result.continue_token
        if result.remaining is not None:
            list_meta["remainingItemCount"] = result.remaining
    if accept.table:
        return json_response(tabling.table(r.rt, result.items, include=include,
                                           table_version=accept.table_version, list_meta=list_meta))
    out = {"kind": r.rt.list_kind_name, "apiVersion": r.rt.api_version, "metadata": list_meta,
           "items": result.items}
    return object_response(out, accept)


# ---------------------------------------------------------------- update machinery

async def write_update(r: ResourceRequest, compute: Callable[[Obj], Obj], precondition_rv: int | None,
                       *, create: Callable[[], Obj] | None = None) -> tuple[Obj, bool]:
    """Read-compute-write with optimistic concurrency; returns (object, created).

    `compute(old)` returns the new object (server metadata done). With a client
    resourceVersion a stale read is 409 at once; without one (unconditional update)
    a concurrent write is retried. An update that changes nothing writes nothing.
    An update that drops the last finalizer of an object being deleted removes it.
    """
    rt, ctx = r.rt, r.ctx
    assert r.name is not None
    last: ApiError | None = None
    for _ in range(_RETRIES):
        try:
            old = await ctx.get(rt, r.namespace, r.name)
        except ApiError as err:
            if create is None or not is_not_found(err):
                raise
            obj = create()
            if r.dry_run:
                return obj, True
            try:
                return await ctx.create(rt, r.namespace, r.name, obj), True
            except ApiError as cerr:
                if is_already_exists(cerr):
                    continue
                raise
        old_rv = meta.resource_version_of(old)
        if precondition_rv is not None and precondition_rv != old_rv:
            raise Conflict(rt.plural, r.name, "the object has been modified; please apply your changes to the "
                                              "latest version and try again", group=rt.group or None)
        new = compute(old)
        new_md = meta.metadata_of(new)
        new_md["resourceVersion"] = old["metadata"].get("resourceVersion")
        if r.dry_run:
            return new, False
        try:
            if should_remove_on_update(rt, new):
                return await ctx.delete(rt, r.namespace, r.name, expected_revision=old_rv), False
            if new == old:
                return old, False
            return await ctx.update(rt, r.namespace, r.name, new, expected_revision=old_rv), False
        except ApiError as err:
            if not is_conflict(err) or precondition_rv is not None:
                raise
            last = err
    assert last is not None
    raise last


def _check_finalizers(rt: ResourceType, new: Obj, old: Obj) -> None:
    old_md = old.get("metadata") or {}
    if not old_md.get("deletionTimestamp"):
        return
    added = set((new.get("metadata") or {}).get("finalizers") or []) - set(old_md.get("finalizers") or [])
    if added:
        raise Invalid(rt.kind, old_md.get("name", ""), [Cause(
            "metadata.finalizers", f"Forbidden: no new finalizers can be added if the object is being deleted, "
                                   f"found new finalizers {sorted(added)}", "FieldValueForbidden")],
            group=rt.group or None)


def _check_identity(rt: ResourceType, body: Obj, old: Obj) -> None:
    md = body.get("metadata") or {}
    old_md = old.get("metadata") or {}
    uid = md.get("uid")
    if uid and uid != old_md.get("uid"):
        raise Conflict(rt.plural, old_md.get("name", ""), f"Precondition failed: UID in precondition: {uid}, "
                                                          f"UID in object meta: {old_md.get('uid')}",
                       group=rt.group or None)


def compute_update(rt: ResourceType, body: Obj) -> Callable[[Obj], Obj]:
    def compute(old: Obj) -> Obj:
        _check_identity(rt, body, old)
        new = admission.prepare_update(rt, copy.deepcopy(body), old)
        _check_finalizers(rt, new, old)
        meta.carry_over(new, old, bump_generation=admission.spec_changed(rt, new, old))
        return new

    return compute


def compute_status_update(rt: ResourceType, body: Obj) -> Callable[[Obj], Obj]:
    def compute(old: Obj) -> Obj:
        _check_identity(rt, body, old)
        new = admission.prepare_status(rt, copy.deepcopy(body), old)
        meta.carry_over(new, old, bump_generation=False)
        md = meta.metadata_of(new)
        # the status subresource never changes metadata the main resource owns
        for key in ("labels", "annotations", "finalizers", "ownerReferences"):
            if key in old["metadata"]:
                md[key] = old["metadata"][key]
            else:
                md.pop(key, None)
        return new

    return compute


def check_path_identity(r: ResourceRequest, body: Obj) -> None:
    md = meta.metadata_of(body)
    name = md.get("name")
    if name not in (None, "") and name != r.name:
        raise BadRequest(f"the name of the object ({name}) does not match the name on the URL ({r.name})")
    md["name"] = r.name
    check_namespace(r, body)


# ---------------------------------------------------------------- update (PUT)

async def update(r: ResourceRequest) -> Response:
    body, warnings = await read_object(r)
    check_path_identity(r, body)
    precondition = meta.resource_version_of(body)
    rt = r.rt
    if r.subresource == "status":
        compute = compute_status_update(rt, body)
        creator = None
    else:
        compute = compute_update(rt, body)

        def creator() -> Obj:
            obj = admission.prepare_create(rt, copy.deepcopy(body))
            meta.stamp_new(obj)
            return obj

    allow_create = r.subresource is None and rt.kind in admission.CREATE_ON_UPDATE and precondition is None
    if allow_create and rt.namespaced and r.namespace:
        await namespaces.check_writable(r.ctx, r.namespace, rt, r.name or "")
    obj, created = await write_update(r, compute, precondition, create=creator if allow_create else None)
    return object_response(obj, parse_accept(r.request), 201 if created else 200, warning_headers(warnings))


# ---------------------------------------------------------------- patch

async def read_patch(r: ResourceRequest) -> tuple[str, Any]:
    ptype = bodies.media_type(r.request)
    if ptype == bodies.APPLY_PATCH:
        raise UnsupportedMediaType("server-side apply (application/apply-patch+yaml) is not supported by mkube; "
                                   "use client-side `kubectl apply` or a merge, strategic-merge or json patch")
    if ptype not in bodies.PATCH_TYPES:
        raise UnsupportedMediaType(f"the body of the request was in an unknown format - accepted media types "
                                   f"include: {', '.join(bodies.PATCH_TYPES)} (got {ptype or 'none'!r})")
    raw = await bodies.read_body(r.request, r.ctx.options.max_request_body_bytes)
    doc = bodies.decode_json_value(raw)
    patching.check_document(ptype, doc)
    return ptype, doc


def patch_precondition(ptype: str, doc: Any) -> int | None:
    if ptype == bodies.JSON_PATCH or not isinstance(doc, dict):
        return None
    md = doc.get("metadata")
    return meta.resource_version_of(doc) if isinstance(md, dict) else None


async def patch(r: ResourceRequest) -> Response:
    ptype, doc = await read_patch(r)
    rt = r.rt
    mode = r.field_validation
    precondition = patch_precondition(ptype, doc)
    warnings: list[str] = []

    def patched(old: Obj) -> Obj:
        new = patching.apply(rt, ptype, old, doc)
        if not isinstance(new.get("metadata"), dict):
            raise BadRequest("the patch removed metadata")
        check_type_meta(rt, new)
        md = new["metadata"]
        old_md = old.get("metadata") or {}
        for key in ("name", "namespace"):
            if md.get(key) != old_md.get(key):
                raise Invalid(rt.kind, old_md.get("name", ""), [Cause(f"metadata.{key}", "field is immutable",
                                                                      "FieldValueInvalid")], group=rt.group or None)
        known = set(admission.unknown_fields(rt, old)) if mode != "Ignore" else set()
        warnings[:] = unknown_field_warnings(rt, new, mode, known)
        return new

    if r.subresource == "status":
        def compute(old: Obj) -> Obj:
            return compute_status_update(rt, patched(old))(old)
    else:
        def compute(old: Obj) -> Obj:
            return compute_update(rt, patched(old))(old)

    obj, _ = await write_update(r, compute, precondition)
    return object_response(obj, parse_accept(r.request), 200, warning_headers(warnings))


# ---------------------------------------------------------------- delete

async def _delete_options(r: ResourceRequest) -> Any:
    raw = await bodies.read_body(r.request, r.ctx.options.max_request_body_bytes)
    body = None
    if raw.strip():
        body = bodies.decode_object(raw, bodies.media_type(r.request))
    return parse_delete_options(r.request.query_params, body, r.dry_run)


def deleted_status(rt: ResourceType, obj: Obj) -> Obj:
    md = obj.get("metadata") or {}
    details: Obj = {"name": md.get("name", ""), "kind": rt.plural, "uid": md.get("uid", "")}
    if rt.group:
        details["group"] = rt.group
    return success_status(details)


async def delete(r: ResourceRequest) -> Response:
    assert r.name is not None
    rt = r.rt
    opts = await _delete_options(r)
    if rt.kind == "Namespace" and r.name in namespaces.UNDELETABLE:
        from mkube.api.errors import Forbidden

        raise Forbidden(f'namespaces "{r.name}" is forbidden: this namespace may not be deleted',
                        kind="namespaces", name=r.name)
    obj, removed = await delete_object(r.ctx, rt, r.namespace, r.name, opts)
    if rt.kind == "Namespace" and not removed and not opts.dry_run:
        namespaces.start_finalizer(r.ctx, r.name)
    accept = parse_accept(r.request)
    if removed and rt.kind not in _RETURN_DELETED:
        return object_response(deleted_status(rt, obj), accept)
    return object_response(obj, accept)


async def delete_collection(r: ResourceRequest) -> Response:
    rt = r.rt
    opts = await _delete_options(r)
    predicate = build_predicate(rt, r.q("labelSelector"), r.q("fieldSelector"))
    result = await r.ctx.list(rt, r.namespace, predicate=predicate)
    out = []
    for item in result.items:
        md = item.get("metadata") or {}
        if rt.kind == "Namespace" and md.get("name") in namespaces.UNDELETABLE:
            continue
        try:
            obj, removed = await delete_object(r.ctx, rt, md.get("namespace") or None, md.get("name", ""), opts)
        except ApiError as err:
            if is_not_found(err):
                continue
            raise
        if rt.kind == "Namespace" and not removed and not opts.dry_run:
            namespaces.start_finalizer(r.ctx, md.get("name", ""))
        out.append(obj)
    body = {"kind": rt.list_kind_name, "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(result.revision)}, "items": out}
    return Response(orjson.dumps(body), media_type="application/json")
