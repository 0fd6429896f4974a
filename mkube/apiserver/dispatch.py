"""Resource routes: one dispatcher for everything under /api and /apis.

Paths are parsed against the kinds table (dict lookups rather than a long list of
regex routes), then the verb is chosen from the method, exactly as the Kubernetes
REST layout defines it. Unknown paths are 404 Status, unsupported methods 405.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from mkube.api.errors import ApiError, InternalError, MethodNotAllowed
from mkube.api.kinds import RESOURCES, ResourceType
from mkube.apiserver import auth_http, discovery, handlers, subresources, watching
from mkube.apiserver.context import ServerContext
from mkube.apiserver.request import ResourceRequest
from mkube.apiserver.responses import error_response, json_response

log = logging.getLogger("mkube.apiserver")
Handler = Callable[[ResourceRequest], Awaitable[Response]]

_BY_GVP: dict[tuple[str, str, str], ResourceType] = {(rt.group, rt.version, rt.plural): rt for rt in RESOURCES}
_NS_SUBRESOURCES = {"status", "finalize"}
PODS = _BY_GVP[("", "v1", "pods")]

# (subresource, method) -> (verb, handler)
_ITEM: dict[tuple[str | None, str], tuple[str, Handler]] = {
    (None, "GET"): ("get", handlers.get),
    (None, "PUT"): ("update", handlers.update),
    (None, "PATCH"): ("patch", handlers.patch),
    (None, "DELETE"): ("delete", handlers.delete),
    ("status", "GET"): ("get", handlers.get),
    ("status", "PUT"): ("update", handlers.update),
    ("status", "PATCH"): ("patch", handlers.patch),
    ("scale", "GET"): ("get", subresources.get_scale),
    ("scale", "PUT"): ("update", subresources.update_scale),
    ("scale", "PATCH"): ("patch", subresources.patch_scale),
    ("binding", "POST"): ("create", subresources.create_binding),
    ("log", "GET"): ("get", subresources.pod_log),
    ("exec", "GET"): ("create", subresources.pod_exec),
    ("exec", "POST"): ("create", subresources.pod_exec),
    ("finalize", "PUT"): ("update", subresources.finalize_namespace),
}
_COLLECTION: dict[str, tuple[str, Handler]] = {
    "GET": ("list", handlers.list_),
    "POST": ("create", handlers.create),
    "DELETE": ("deletecollection", handlers.delete_collection),
}


def _not_found(path: str) -> ApiError:
    return ApiError(message=f"the server could not find the requested resource ({path})", code=404,
                    reason="NotFound")


async def dispatch(request: Request) -> Response:
    """The endpoint for /api/... and /apis/...; never raises."""
    ctx: ServerContext = request.app.state.ctx
    try:
        return await _dispatch(request, ctx)
    except ApiError as err:
        return error_response(err)
    except Exception:  # noqa: BLE001 - a bug must not leak internals; it is logged with its traceback
        log.exception("unhandled error", extra={"method": request.method, "path": request.url.path})
        return error_response(InternalError("an internal error occurred; see the API server log"))


async def _dispatch(request: Request, ctx: ServerContext) -> Response:
    path = request.url.path
    segs = path.strip("/").split("/")
    method = request.method
    if segs[0] == "api":
        if len(segs) == 1:
            return _discovery(method, discovery.api_versions(_server_address(request)))
        group, version, rest = "", segs[1], segs[2:]
    else:  # "apis"
        if len(segs) == 1:
            return _discovery(method, discovery.api_group_list())
        if len(segs) == 2:
            doc = discovery.api_group(segs[1])
            if doc is None:
                raise _not_found(path)
            return _discovery(method, doc)
        group, version, rest = segs[1], segs[2], segs[3:]
    if not rest:
        doc = discovery.resource_list(group, version)
        if doc is None:
            raise _not_found(path)
        return _discovery(method, doc)
    if "" in rest:
        raise _not_found(path)
    watch_path = False
    if rest[0] == "watch":
        watch_path, rest = True, rest[1:]
        if not rest:
            raise _not_found(path)
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in _NS_SUBRESOURCES):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        raise _not_found(path)
    rt = _BY_GVP.get((group, version, rest[0]))
    if rt is None:
        if (group, version, rest[0]) == ("", "v1", "bindings") and namespace is not None and len(rest) == 1:
            # POST /api/v1/namespaces/{ns}/bindings: the Binding names its pod
            if method != "POST":
                raise MethodNotAllowed(f"the server does not allow this method on bindings ({method})")
            request.scope["mkube.labels"] = ("create", "bindings", "")
            br = ResourceRequest(request, ctx, PODS, namespace, None, "binding")
            await auth_http.authorize(br, "create")
            return await subresources.create_binding(br)
        raise _not_found(path)
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if (namespace is not None and not rt.namespaced) or (rt.namespaced and namespace is None and name is not None):
        raise _not_found(path)
    if sub is not None and sub not in rt.subresources:
        raise _not_found(path)
    r = ResourceRequest(request, ctx, rt, namespace, name, sub, watch_path)
    if name is None:
        if rt.namespaced and namespace is None and method in ("POST", "DELETE"):
            raise MethodNotAllowed(f"{method} is not supported on {rt.plural} across all namespaces; "
                                   f"use /namespaces/{{namespace}}/{rt.plural}")
        entry = _COLLECTION.get(method)
        if entry is None:
            raise MethodNotAllowed(f"the server does not allow this method on the requested resource "
                                   f"({method} {rt.group_resource})")
        verb, handler = entry
        if verb == "list" and r.is_watch:
            verb, handler = "watch", watching.watch
    else:
        item = _ITEM.get((sub, method))
        if item is None:
            raise MethodNotAllowed(f"the server does not allow this method on the requested resource "
                                   f"({method} {rt.group_resource}{'/' + sub if sub else ''})")
        verb, handler = item
        if verb == "get" and sub is None and r.is_watch:
            verb, handler = "watch", watching.watch
    request.scope["mkube.labels"] = (verb, rt.group_resource, sub or "")
    await auth_http.authorize(r, verb)
    return await handler(r)


def _discovery(method: str, doc: object) -> Response:
    if method != "GET":
        raise MethodNotAllowed(f"the server does not allow this method on the requested resource ({method})")
    return json_response(doc)


def _server_address(request: Request) -> str:
    server = request.scope.get("server")
    if server:
        return f"{server[0]}:{server[1]}"
    return request.headers.get("host", "")
