"""`Client`: the synchronous HTTP client of the mkube (Kubernetes) REST API.

One `httpx.Client` per `Client`: an HTTP/1.1 keep-alive connection pool shared by all
threads (httpx clients are thread-safe). Watches and followed logs hold a connection
each while open. Responses are JSON (orjson); every non-2xx answer raises the matching
`mkube.api.errors.ApiError` subclass; an unreachable server raises `ConnectionFailed`.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import orjson

from mkube.api.errors import ApiError
from mkube.client import kubeconfig
from mkube.client.errors import ConnectionFailed
from mkube.client.interface import (
    PATCH_CONTENT_TYPES,
    BaseClient,
    PatchBody,
    PatchType,
    PropagationPolicy,
    delete_options,
    object_name,
)
from mkube.client.objects import Obj, ResourceLike, Watch, WatchEvent, raise_for_error_event, resource_for

DEFAULT_TIMEOUT = 30.0

_REASONS: dict[int, str] = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
    413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Invalid",
    429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _params(**kw: Any) -> dict[str, str]:
    """Query parameters with None dropped and booleans spelled as Kubernetes expects."""
    out: dict[str, str] = {}
    for key, value in kw.items():
        if value is None:
            continue
        out[key] = _bool(value) if isinstance(value, bool) else str(value)
    return out


def _ssl_context(ca_file: str | None, ca_data: bytes | str | None, client_cert: str | None,
                 client_key: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    if ca_data:
        ctx.load_verify_locations(cadata=ca_data.decode() if isinstance(ca_data, bytes) else ca_data)
    if client_cert:
        ctx.load_cert_chain(client_cert, client_key)
    return ctx


class Client(BaseClient):
    """HTTP client of one API server. Thread-safe; `close()` when done (or use `with`)."""

    def __init__(self, server: str, token: str | None = None, ca_file: str | None = None,
                 ca_data: bytes | str | None = None, insecure_skip_verify: bool = False,
                 timeout: float = DEFAULT_TIMEOUT, namespace: str = "default",
                 user_agent: str = "mkube-client", client_cert: str | None = None,
                 client_key: str | None = None, transport: httpx.BaseTransport | None = None) -> None:
        """`server` like "https://127.0.0.1:6443"; `ca_data` is PEM; `timeout` is per request
        (connect and read) except for watches and followed logs, which may stay open.
        `transport` replaces the network (tests: httpx.MockTransport)."""
        self.server = server.rstrip("/")
        self.default_namespace = namespace
        self.timeout = timeout
        verify: ssl.SSLContext | bool = True
        if self.server.startswith("https://"):
            verify = False if insecure_skip_verify else _ssl_context(ca_file, ca_data, client_cert,
                                                                      client_key)
        headers = {"Accept": "application/json", "User-Agent": user_agent}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.server, verify=verify, headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=32, keepalive_expiry=60),
            trust_env=False,  # never route cluster traffic through an environment proxy
            transport=transport,
        )

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str] | None = None, context: str | None = None,
                        **kwargs: Any) -> Client:
        """A client for `context` (default: current-context) of `path` or the default files
        ($KUBECONFIG, ~/.kube/config, ~/.mkube/kubeconfig.yaml). Raises ConfigError."""
        cfg = kubeconfig.load_default(path).resolve(context)
        kwargs.setdefault("namespace", cfg.namespace)
        return cls(cfg.server, token=cfg.token, ca_file=cfg.ca_file, ca_data=cfg.ca_data,
                   insecure_skip_verify=cfg.insecure_skip_tls_verify, client_cert=cfg.client_certificate,
                   client_key=cfg.client_key, **kwargs)

    def __repr__(self) -> str:
        return f"Client({self.server!r})"

    def close(self) -> None:
        self._http.close()

    # ---------------------------------------------------------------- transport
    def _error(self, resp: httpx.Response, method: str, path: str) -> ApiError:
        body: Any = None
        try:
            body = orjson.loads(resp.content) if resp.content else None
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and body.get("kind") == "Status":
            return ApiError.from_status(body, resp.status_code)
        code = resp.status_code
        text = resp.text.strip().replace("\n", " ")[:300] if resp.content else ""
        message = f"{method} {path}: the server answered {code} {resp.reason_phrase}"
        if text:
            message += f": {text}"
        status: Obj = {"code": code, "reason": _REASONS.get(code, resp.reason_phrase or "Unknown"),
                       "message": message}
        retry_after = resp.headers.get("Retry-After")
        if retry_after and retry_after.isdigit():
            status["details"] = {"retryAfterSeconds": int(retry_after)}
        return ApiError.from_status(status, code)

    def _send(self, method: str, path: str, params: dict[str, str] | None = None,
              body: Any = None, content_type: str = "application/json",
              headers: dict[str, str] | None = None, stream: bool = False,
              timeout: httpx.Timeout | None = None) -> httpx.Response:
        hdrs = dict(headers or {})
        content: bytes | None = None
        if body is not None:
            if isinstance(body, bytes | bytearray):
                content = bytes(body)
            elif isinstance(body, str):
                content = body.encode()
            else:
                content = orjson.dumps(body)
            hdrs.setdefault("Content-Type", content_type)
        request = self._http.build_request(method, path, params=params, content=content, headers=hdrs,
                                           timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)
        try:
            resp = self._http.send(request, stream=stream)
        except httpx.TimeoutException as e:
            raise ConnectionFailed(self.server, f"{method} {path} timed out ({type(e).__name__})") from e
        except (httpx.TransportError, ssl.SSLError, OSError) as e:
            raise ConnectionFailed(self.server, str(e) or type(e).__name__) from e
        if not 200 <= resp.status_code < 300:
            if stream:
                try:
                    resp.read()
                except httpx.HTTPError:
                    pass
                finally:
                    resp.close()
            raise self._error(resp, method, path)
        return resp

    def _json(self, method: str, path: str, params: dict[str, str] | None = None, body: Any = None,
              content_type: str = "application/json") -> Obj:
        resp = self._send(method, path, params, body, content_type)
        try:
            data = orjson.loads(resp.content)
        except orjson.JSONDecodeError as e:
            raise ApiError(message=f"{method} {path}: the server answered with a body that is not JSON "
                                   f"({resp.headers.get('content-type', 'no content type')})",
                           code=resp.status_code) from e
        if not isinstance(data, dict):
            raise ApiError(message=f"{method} {path}: expected a JSON object, got {type(data).__name__}",
                           code=resp.status_code)
        return data

    def _stream_timeout(self, seconds: int | None) -> httpx.Timeout:
        # A watch is silent while nothing changes: no read timeout beyond the server's own.
        read = None if seconds is None else seconds + max(self.timeout, 30.0)
        return httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0), read=read)

    def _open_stream(self, path: str, params: dict[str, str], timeout_seconds: int | None
                     ) -> tuple[httpx.Response, Any]:
        resp = self._send("GET", path, params, stream=True, timeout=self._stream_timeout(timeout_seconds))

        def interrupt() -> None:
            # close() of a socket does not wake a thread blocked in recv(); shutdown() does.
            # The reading thread then sees EOF and releases the response itself.
            stream = resp.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                    return
                except OSError:
                    pass
            resp.close()

        return resp, interrupt

    # ---------------------------------------------------------------- raw primitives
    def get_raw(self, resource: ResourceLike, name: str, namespace: str | None = None,
                subresource: str | None = None) -> Obj:
        rt = resource_for(resource)
        return self._json("GET", rt.path(self.namespace_for(rt, namespace), name, subresource))

    def list_raw(self, resource: ResourceLike, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 limit: int | None = None, continue_: str | None = None,
                 resource_version: str | None = None) -> Obj:
        rt = resource_for(resource)
        params = _params(labelSelector=label_selector or None, fieldSelector=field_selector or None,
                         limit=limit, resourceVersion=resource_version)
        if continue_:
            params["continue"] = continue_
        return self._json("GET", rt.path(namespace if rt.namespaced else None), params)

    def create_raw(self, resource: ResourceLike, body: Obj, namespace: str | None = None, *,
                   name: str | None = None, subresource: str | None = None) -> Obj:
        rt = resource_for(resource)
        ns = self.namespace_for(rt, namespace, body)
        if subresource:
            path = rt.path(ns, name or object_name(body), subresource)
        else:
            body = self._with_type(rt, body)
            path = rt.path(ns)
        return self._json("POST", path, body=body)

    def update_raw(self, resource: ResourceLike, body: Obj, namespace: str | None = None,
                   subresource: str | None = None) -> Obj:
        rt = resource_for(resource)
        if subresource != "scale":
            body = self._with_type(rt, body)
        path = rt.path(self.namespace_for(rt, namespace, body), object_name(body), subresource)
        return self._json("PUT", path, body=body)

    def patch_raw(self, resource: ResourceLike, name: str, patch: PatchBody,
                  namespace: str | None = None, patch_type: PatchType = "merge",
                  subresource: str | None = None) -> Obj:
        rt = resource_for(resource)
        if patch_type not in PATCH_CONTENT_TYPES:
            raise ValueError(f"patch_type must be one of {', '.join(PATCH_CONTENT_TYPES)}")
        path = rt.path(self.namespace_for(rt, namespace), name, subresource)
        return self._json("PATCH", path, body=patch, content_type=PATCH_CONTENT_TYPES[patch_type])

    def delete_raw(self, resource: ResourceLike, name: str, namespace: str | None = None,
                   propagation_policy: PropagationPolicy | None = None,
                   grace_period_seconds: int | None = None,
                   preconditions: dict[str, str] | None = None) -> Obj:
        rt = resource_for(resource)
        path = rt.path(self.namespace_for(rt, namespace), name)
        return self._json("DELETE", path,
                          body=delete_options(propagation_policy, grace_period_seconds, preconditions))

    def watch_raw(self, resource: ResourceLike, namespace: str | None = None,
                  resource_version: str | None = None, label_selector: str | None = None,
                  field_selector: str | None = None, timeout_seconds: int | None = None,
                  allow_bookmarks: bool = True) -> Watch[Obj]:
        rt = resource_for(resource)
        params = _params(watch=True, resourceVersion=resource_version or None,
                         labelSelector=label_selector or None, fieldSelector=field_selector or None,
                         timeoutSeconds=timeout_seconds, allowWatchBookmarks=allow_bookmarks or None)
        path = rt.path(namespace if rt.namespaced else None)
        resp, interrupt = self._open_stream(path, params, timeout_seconds)
        watch: Watch[Obj]

        def events() -> Iterator[WatchEvent[Obj]]:
            try:
                for line in _lines(resp):
                    try:
                        ev = orjson.loads(line)
                    except orjson.JSONDecodeError as e:
                        raise ApiError(message=f"watch {path}: the server sent a line that is not JSON: "
                                               f"{line[:200]!r}") from e
                    etype = ev.get("type")
                    if etype == "ERROR":
                        raise_for_error_event(ev)
                    yield WatchEvent(str(etype), ev.get("object") or {})
            except httpx.TransportError as e:
                if watch.closed:
                    return
                raise ConnectionFailed(self.server, f"watch {path} broke: {e or type(e).__name__}") from e
            finally:
                resp.close()

        watch = Watch(events(), interrupt)
        return watch

    def log(self, namespace: str, pod: str, container: str | None = None, follow: bool = False,
            tail_lines: int | None = None, previous: bool = False,
            since_seconds: int | None = None, timestamps: bool = False) -> Iterator[bytes] | str:
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
        params = _params(container=container, follow=follow or None, tailLines=tail_lines,
                         previous=previous or None, sinceSeconds=since_seconds,
                         timestamps=timestamps or None)
        if not follow:
            return self._send("GET", path, params).text
        resp, _ = self._open_stream(path, params, None)

        def chunks() -> Iterator[bytes]:
            try:
                yield from resp.iter_bytes()
            except httpx.TransportError as e:
                raise ConnectionFailed(self.server, f"log stream broke: {e or type(e).__name__}") from e
            finally:
                resp.close()

        return chunks()

    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: Any = None, headers: dict[str, str] | None = None) -> Any:
        content_type = "application/json"
        if headers and "Content-Type" in headers:
            content_type = headers["Content-Type"]
        resp = self._send(method.upper(), path, _params(**(params or {})), body, content_type, headers)
        ctype = resp.headers.get("content-type", "")
        if "json" in ctype or (resp.content[:1] in (b"{", b"[")):
            try:
                return orjson.loads(resp.content)
            except orjson.JSONDecodeError:
                pass
        return resp.text


def _lines(resp: httpx.Response) -> Iterator[bytes]:
    """Newline-delimited frames of a streaming response, without decoding to text."""
    buf = b""
    for chunk in resp.iter_bytes():
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl], buf[nl + 1:]
            if line.strip():
                yield line
    if buf.strip():
        yield buf
