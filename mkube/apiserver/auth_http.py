"""Authentication and authorization on the wire.

- `AuthMiddleware` (ASGI): every request needs `Authorization: Bearer <token>` (admin or
  per-node) except `OPEN_PATHS` (health, version, the CA certificate, and the join
  endpoint, which checks the join token itself). A missing or unknown token is a 401
  Unauthorized Status; `/metrics` is for the admin only (403 for nodes). Discovery and
  OpenAPI are open to every authenticated user.
- `authorize(r, verb)`: called by the dispatcher once a resource request is parsed;
  applies authz.authorize and checks its conditions (the stored pod's node, the created
  object's name); 403 Forbidden Status otherwise.
- `GET /cacerts`: the CA certificate PEM, unauthenticated (as k3s): agents check its
  SHA-256 against the hash in their join token before trusting it.
- `POST /v1-mkube/join` {"nodeName", "nodePassword"} with `Authorization: Bearer <join
  token>`: a per-node token (see auth.Authenticator.join). Internal, out of the
  Kubernetes API (not in discovery), like k3s' /v1-k3s/ endpoints.
- `kubelet_headers(ctx, node)`: what the API server sends to a node's kubelet.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mkube.api import names
from mkube.api.errors import ApiError, BadRequest, Forbidden, MethodNotAllowed, Unauthorized
from mkube.api.kinds import RESOURCES
from mkube.apiserver import authz, bodies
from mkube.apiserver.auth import Authenticator, User
from mkube.apiserver.request import ResourceRequest
from mkube.apiserver.responses import error_response, json_response

CACERTS_PATH = "/cacerts"
JOIN_PATH = "/v1-mkube/join"
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version", CACERTS_PATH, JOIN_PATH})
ADMIN_ONLY_PATHS = frozenset({"/metrics"})
USER_SCOPE_KEY = "mkube.user"
_NODES = next(rt for rt in RESOURCES if rt.plural == "nodes")
_PODS = next(rt for rt in RESOURCES if rt.plural == "pods")


class AuthMiddleware:
    """Authenticates every HTTP/websocket request but `OPEN_PATHS`; puts the User in
    `scope["mkube.user"]`. A pure ASGI middleware, so streamed responses stay streamed."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        user = self.authenticator.authenticate(Headers(scope=scope).get("authorization"))
        err: ApiError | None = None
        if user is None:
            err = Unauthorized()
        elif path in ADMIN_ONLY_PATHS and not user.is_admin:
            err = Forbidden(f'forbidden: User "{user.name}" cannot get path "{path}"')
        if err is not None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await error_response(err)(scope, receive, send)
            return
        scope[USER_SCOPE_KEY] = user
        await self.app(scope, receive, send)


def request_user(request: Request) -> User | None:
    user = request.scope.get(USER_SCOPE_KEY)
    return user if isinstance(user, User) else None


async def authorize(r: ResourceRequest, verb: str) -> None:
    """Raise Forbidden (403) unless the request's user may do `verb` here; Unauthorized
    when authentication is on and no user was established. No-op with --insecure-http."""
    authenticator = getattr(r.ctx, "authenticator", None)
    if authenticator is None:
        return
    user = request_user(r.request)
    if user is None:
        raise Unauthorized()
    attrs = authz.Attributes(verb=verb, group=r.rt.group, resource=r.rt.plural, subresource=r.subresource or "",
                             namespace=r.namespace, name=r.name)
    decision = authz.authorize(user, attrs)
    if decision.allowed and decision.condition == authz.POD_ON_NODE:
        assert r.name is not None
        pod = await r.ctx.get(_PODS, r.namespace, r.name)  # NotFound passes through: nodes may read pods
        bound = (pod.get("spec") or {}).get("nodeName") or ""
        if bound != user.node:
            decision = authz.Decision(False, reason=f'pod is bound to {f"node {bound!r}" if bound else "no node"}, '
                                                    f'not to node "{user.node}"')
    elif decision.allowed and decision.condition == authz.BODY_NAME_IS_NODE:
        name = await _body_name(r)
        if name != user.node:
            attrs = authz.Attributes(verb, attrs.group, attrs.resource, attrs.subresource, attrs.namespace, name)
            decision = authz.Decision(False, reason=f'node "{user.node}" may only create its own {r.rt.singular}')
    if not decision.allowed:
        raise Forbidden(authz.forbidden_message(user, attrs, decision.reason), kind=r.rt.plural,
                        name=attrs.name or None)


async def _body_name(r: ResourceRequest) -> str | None:
    """metadata.name of the request body, leaving the body readable for the handler."""
    raw = await bodies.read_body(r.request, r.ctx.options.max_request_body_bytes)
    # Starlette replays a cached body to later readers of request.stream()
    r.request._body = raw  # noqa: SLF001
    body = bodies.decode_object(raw, bodies.media_type(r.request))
    md = body.get("metadata")
    name = md.get("name") if isinstance(md, dict) else None
    return name if isinstance(name, str) else None


def kubelet_headers(ctx: Any, node_name: str) -> dict[str, str]:
    """The Authorization header for calls to `node_name`'s kubelet ({} with --insecure-http)."""
    authenticator: Authenticator | None = getattr(ctx, "authenticator", None)
    if authenticator is None:
        return {}
    return {"Authorization": f"Bearer {authenticator.kubelet_token(node_name)}"}


# ---------------------------------------------------------------- endpoints

def cacerts_endpoint(ca_pem: bytes) -> Any:
    async def cacerts(request: Request) -> Response:
        return Response(ca_pem, media_type="application/x-pem-file")

    return cacerts


async def join(request: Request) -> Response:
    """Exchange the join token for a per-node token (see module doc)."""
    ctx = request.app.state.ctx
    authenticator: Authenticator | None = getattr(ctx, "authenticator", None)
    try:
        if authenticator is None:
            raise MethodNotAllowed("this API server runs with --insecure-http: there is nothing to join")
        authenticator.check_join_secret(request.headers.get("authorization"))
        raw = await bodies.read_body(request, 64 * 1024)
        try:
            body = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError:
            raise BadRequest("the join request must be a JSON object") from None
        if not isinstance(body, dict):
            raise BadRequest("the join request must be a JSON object")
        node_name = body.get("nodeName")
        password = body.get("nodePassword")
        if not isinstance(node_name, str) or not node_name:
            raise BadRequest("nodeName: Required value")
        errs = names.is_dns1123_subdomain(node_name)
        if errs:
            raise BadRequest(f"nodeName: Invalid value: {node_name!r}: {'; '.join(errs)}")
        if not isinstance(password, str):
            raise BadRequest("nodePassword: Required value")
        try:
            await ctx.get(_NODES, None, node_name)
            exists = True
        except ApiError as err:
            if err.code != 404:
                raise
            exists = False
        creds = await ctx.call(authenticator.join, node_name, password, exists)
    except ApiError as err:
        return error_response(err)
    return json_response({"kind": "NodeCredentials", "apiVersion": "mkube.io/v1", "nodeName": creds.node_name,
                          "user": f"system:node:{creds.node_name}", "token": creds.token,
                          "kubeletToken": creds.kubelet_token}, status_code=201)
