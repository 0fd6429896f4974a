"""The API server as an ASGI application: `create_app(options) -> FastAPI`.

The store is opened, the built-in namespaces are made and interrupted namespace
deletions resume in the app's lifespan; `/readyz` answers 200 only after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mkube.api.errors import (
    ApiError,
    BadRequest,
    InternalError,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
)
from mkube.apiserver import auth, auth_http, discovery, masterservice, namespaces
from mkube.apiserver.context import ServerContext
from mkube.apiserver.dispatch import dispatch
from mkube.apiserver.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from mkube.apiserver.metrics import Metrics, MetricsMiddleware
from mkube.apiserver.openapi import OpenApiDocs
from mkube.apiserver.options import ApiServerOptions
from mkube.apiserver.responses import error_response, json_response, raw_json_response
from mkube.apiserver.storage.base import Store
from mkube.apiserver.storage_wiring import open_hub, open_store, start_compaction

log = logging.getLogger("mkube.apiserver")
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_RESOURCE_ROOTS = ("/api", "/apis")


def _is_resource_request(scope: Scope) -> bool:
    """An HTTP request the dispatcher serves: a method of _METHODS on /api[/...] or /apis[/...]."""
    if scope["type"] != "http" or scope["method"] not in _METHODS:
        return False
    path: str = scope["path"]
    return path in _RESOURCE_ROOTS or path.startswith(("/api/", "/apis/"))


async def _serve_resource(scope: Scope, receive: Receive, send: Send) -> None:
    """The dispatcher as a bare ASGI app (it answers every error itself, see dispatch)."""
    response = await dispatch(Request(scope, receive))
    await response(scope, receive, send)


class _ApiServerApp(FastAPI):
    """FastAPI with a direct path for the Kubernetes API (/api, /apis).

    Those requests go straight to the dispatcher through mkube's own middleware
    (authentication, metrics), not through Starlette's routing and FastAPI's default
    middleware (error pages, exception handlers, body limit, OpenTelemetry hooks that
    act only when a global OTel provider is configured, which mkube never does): the
    dispatcher already turns every error into a Status, so those layers only cost time,
    ~80 µs per request on the 2-core bench machine (an async FastAPI endpoint against a
    bare ASGI one), with the GIL the one core every request shares. Everything else
    (health, version, /metrics, OpenAPI, join, lifespan) is served by FastAPI. A failure
    outside the dispatcher is still logged and answered with a 500 Status.
    """

    resource_app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.resource_app is None or not _is_resource_request(scope):
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.resource_app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error", extra={"method": scope["method"], "path": scope["path"]})
            if started:
                raise  # the response is under way: only the server can end it
            await error_response(InternalError("an internal error occurred; see the API server log"))(
                scope, receive, send)


def create_app(options: ApiServerOptions | None = None, *, store: Store | None = None,
               security: auth.Security | None = None) -> FastAPI:
    """The FastAPI app of one API server. `store` overrides the one opened from
    `options.datastore_url`/`data_dir` (the app then does not close it).

    Unless `options.insecure_http`, every request but health/version needs a bearer
    token (auth_http.py); `security` defaults to `auth.prepare(options)` (the tokens and
    certificates of `options.data_dir`, made on first use)."""
    options = options or ApiServerOptions()
    if security is None and not options.insecure_http:
        security = auth.prepare(options)
    authenticator = security.authenticator if security is not None else None
    metrics = Metrics()
    openapi_docs = OpenApiDocs()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_store = store is None
        the_store: Store = store if store is not None else await asyncio.to_thread(open_store, options)
        the_store = masterservice.install(the_store, options)  # ClusterIP/NodePort allocation on Service writes
        hub = open_hub(the_store)
        ctx = ServerContext(options=options, store=the_store, hub=hub, metrics=metrics,
                            http=httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)),
                            authenticator=authenticator)
        metrics.revision_fn = the_store.current_revision
        app.state.ctx = ctx
        unsubscribe = the_store.subscribe(lambda change: namespaces.on_change(ctx, change))
        stop_compaction = start_compaction(the_store, options)
        stop_service_jobs: Callable[[], None] | None = None
        try:
            await namespaces.bootstrap(ctx)
            stop_service_jobs = await asyncio.to_thread(masterservice.start_jobs, the_store, options)
            ctx.ready = True
            log.info("apiserver ready", extra={"datastore": options.effective_datastore_url.split("@")[-1]})
            yield
        finally:
            ctx.ready = False
            for task in list(ctx.tasks):
                task.cancel()
            for task in list(ctx.tasks):
                with contextlib.suppress(BaseException):
                    await task
            stop_compaction()
            if stop_service_jobs is not None:
                stop_service_jobs()
            unsubscribe()
            close = getattr(hub, "close", None)
            if close is not None:
                result = close()
                if asyncio.iscoroutine(result):
                    await result
            await ctx.http.aclose()
            if own_store:
                await asyncio.to_thread(the_store.close)

    app = _ApiServerApp(title="mkube apiserver", lifespan=lifespan, openapi_url=None, docs_url=None,
                        redoc_url=None)
    if authenticator is not None:
        app.add_middleware(auth_http.AuthMiddleware, authenticator=authenticator)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    # the same middleware, in the same order, around the direct path to the dispatcher
    resource_app: ASGIApp = _serve_resource
    if authenticator is not None:
        resource_app = auth_http.AuthMiddleware(resource_app, authenticator=authenticator)
    app.resource_app = MetricsMiddleware(resource_app, metrics=metrics)

    async def version(request: Request) -> Response:
        return json_response(discovery.version_info())

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        ctx: ServerContext | None = getattr(request.app.state, "ctx", None)
        if ctx is None or not ctx.ready:
            return error_response(ServiceUnavailable("the API server is not ready"))
        return PlainTextResponse("ok")

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    async def openapi_root(request: Request) -> Response:
        return raw_json_response(openapi_docs.root)

    async def openapi_doc(request: Request) -> Response:
        path = request.path_params["path"].strip("/")
        doc = openapi_docs.documents.get(path)
        if doc is None:
            return error_response(NotFound("", "", message=f"no OpenAPI v3 document for {path!r}"))
        return raw_json_response(doc)

    async def openapi_v2(request: Request) -> Response:
        return error_response(NotFound("", "", message="OpenAPI v2 is not served; use /openapi/v3"))

    app.add_route("/version", version, methods=["GET"])
    for path in ("/healthz", "/livez"):
        app.add_route(path, healthz, methods=["GET"])
    app.add_route("/readyz", readyz, methods=["GET"])
    app.add_route("/metrics", metrics_endpoint, methods=["GET"])
    app.add_route("/openapi/v3", openapi_root, methods=["GET"])
    app.add_route("/openapi/v3/{path:path}", openapi_doc, methods=["GET"])
    app.add_route("/openapi/v2", openapi_v2, methods=["GET"])
    if security is not None:
        app.add_route(auth_http.CACERTS_PATH, auth_http.cacerts_endpoint(security.tls.ca_pem), methods=["GET"])
    app.add_route(auth_http.JOIN_PATH, auth_http.join, methods=["POST"])
    for path in ("/api", "/api/{path:path}", "/apis", "/apis/{path:path}"):
        app.add_route(path, dispatch, methods=_METHODS)
    _install_exception_handlers(app)
    return app


def _install_exception_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: Any) -> Response:
        code = getattr(exc, "status_code", 500)
        if code == 404:
            err: ApiError = NotFound("", "", message=f"the server could not find the requested resource "
                                                     f"({request.url.path})")
        elif code == 405:
            err = MethodNotAllowed(f"the server does not allow this method on the requested resource "
                                   f"({request.method} {request.url.path})")
        else:
            err = ApiError(message=str(getattr(exc, "detail", "")) or "request failed", code=code,
                           reason="BadRequest" if code == 400 else "InternalError")
        return error_response(err)

    async def validation_error(request: Request, exc: Any) -> Response:
        return error_response(BadRequest("the request is malformed"))

    async def api_error(request: Request, exc: Any) -> Response:
        return error_response(exc)

    async def unexpected(request: Request, exc: Any) -> Response:
        log.error("unhandled error", extra={"method": request.method, "path": request.url.path}, exc_info=exc)
        return error_response(InternalError("an internal error occurred; see the API server log"))

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(Exception, unexpected)
