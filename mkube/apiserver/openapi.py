"""A minimal but valid OpenAPI v3 description (/openapi/v3 and one document per
group/version).

Its purpose is what kubectl reads from it: every PATCH (and POST/PUT) operation
carries `x-kubernetes-group-version-kind` and declares the `fieldValidation` query
parameter, so kubectl (--validate=strict, its default) hands validation to the
server instead of downloading schemas for client-side validation.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from mkube.api.kinds import RESOURCES, ResourceType, groups
from mkube.apiserver.discovery import KUBE_VERSION

Obj = dict[str, Any]


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _param(name: str, where: str = "query", schema_type: str = "string", required: bool = False) -> Obj:
    return {"name": name, "in": where, "required": required, "schema": {"type": schema_type}}


_COMMON_WRITE = [_param("dryRun"), _param("fieldManager"), _param("fieldValidation")]
_LIST = [_param("labelSelector"), _param("fieldSelector"), _param("limit", schema_type="integer"),
         _param("continue"), _param("resourceVersion"), _param("watch", schema_type="boolean"),
         _param("allowWatchBookmarks", schema_type="boolean"), _param("timeoutSeconds", schema_type="integer")]
_DELETE = [_param("dryRun"), _param("gracePeriodSeconds", schema_type="integer"), _param("propagationPolicy")]


def _schema_name(rt: ResourceType) -> str:
    group = rt.group or "core"
    return f"io.mkube.{group}.{rt.version}.{rt.kind}"


def _op(rt: ResourceType, action: str, op_id: str, params: list[Obj], ref: str, body: bool = False,
        gvk: Obj | None = None) -> Obj:
    content = {"application/json": {"schema": {"$ref": ref}}}
    op: Obj = {
        "operationId": op_id,
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": content}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk or {"group": rt.group, "version": rt.version, "kind": rt.kind},
    }
    if body:
        op["requestBody"] = {"required": True, "content": content}
    return op


def _paths_for(rt: ResourceType) -> dict[str, Obj]:
    ns = [_param("namespace", "path", required=True)] if rt.namespaced else []
    name = [_param("name", "path", required=True)]
    base = "/" + _gv_path(rt.group, rt.version)
    coll = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    item = f"{coll}/{{name}}"
    ref = f"#/components/schemas/{_schema_name(rt)}"
    kind = rt.kind
    paths: dict[str, Obj] = {
        coll: {
            "get": _op(rt, "list", f"list{kind}", ns + _LIST, ref),
            "post": _op(rt, "post", f"create{kind}", ns + _COMMON_WRITE, ref, body=True),
            "delete": _op(rt, "deletecollection", f"deleteCollection{kind}", ns + _LIST + _DELETE, ref),
        },
        item: {
            "get": _op(rt, "get", f"read{kind}", ns + name, ref),
            "put": _op(rt, "put", f"replace{kind}", ns + name + _COMMON_WRITE, ref, body=True),
            "patch": _op(rt, "patch", f"patch{kind}", ns + name + _COMMON_WRITE + [_param("force")], ref,
                         body=True),
            "delete": _op(rt, "delete", f"delete{kind}", ns + name + _DELETE, ref),
        },
    }
    if "status" in rt.subresources:
        paths[f"{item}/status"] = {
            "get": _op(rt, "get", f"read{kind}Status", ns + name, ref),
            "put": _op(rt, "put", f"replace{kind}Status", ns + name + _COMMON_WRITE, ref, body=True),
            "patch": _op(rt, "patch", f"patch{kind}Status", ns + name + _COMMON_WRITE, ref, body=True),
        }
    if "scale" in rt.subresources:
        scale_gvk = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
        sref = "#/components/schemas/io.mkube.autoscaling.v1.Scale"
        paths[f"{item}/scale"] = {
            "get": _op(rt, "get", f"read{kind}Scale", ns + name, sref, gvk=scale_gvk),
            "put": _op(rt, "put", f"replace{kind}Scale", ns + name + _COMMON_WRITE, sref, body=True, gvk=scale_gvk),
            "patch": _op(rt, "patch", f"patch{kind}Scale", ns + name + _COMMON_WRITE, sref, body=True,
                         gvk=scale_gvk),
        }
    return paths


def _object_schema(group: str, version: str, kind: str) -> Obj:
    return {
        "type": "object",
        "description": f"{kind} ({group or 'core'}/{version}); fields are validated by the server",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
        "x-kubernetes-preserve-unknown-fields": True,
        "x-kubernetes-group-version-kind": [{"group": group, "version": version, "kind": kind}],
    }


def group_version_document(group: str, version: str) -> Obj | None:
    kinds = [rt for rt in RESOURCES if rt.group == group and rt.version == version]
    if not kinds:
        return None
    paths: dict[str, Obj] = {}
    schemas: dict[str, Obj] = {}
    for rt in kinds:
        paths.update(_paths_for(rt))
        schemas[_schema_name(rt)] = _object_schema(rt.group, rt.version, rt.kind)
        if "scale" in rt.subresources:
            schemas["io.mkube.autoscaling.v1.Scale"] = _object_schema("autoscaling", "v1", "Scale")
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (mkube)", "version": KUBE_VERSION},
            "paths": paths, "components": {"schemas": schemas}}


class OpenApiDocs:
    """The documents serialised once, with content hashes for the `hash` query the
    clients use as a cache key."""

    def __init__(self) -> None:
        self.documents: dict[str, bytes] = {}
        for group, versions in groups().items():
            for version in versions:
                doc = group_version_document(group, version)
                if doc is not None:
                    self.documents[_gv_path(group, version)] = orjson.dumps(doc)
        root_paths = {}
        for path, raw in self.documents.items():
            digest = hashlib.sha512(raw).hexdigest()[:64].upper()
            root_paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
        self.root = orjson.dumps({"paths": root_paths})
