"""The kubelet's HTTP server (port 10250 by default): container logs, exec, health.

    GET  /healthz                                   "ok"
    GET  /pods                                      PodList of the pods this process runs
    GET  /containerLogs/{ns}/{pod}/{container}      text/plain log
         ?follow=true       stream until the container exits (chunked)
         ?tailLines=N       only the last N lines
         ?sinceSeconds=N    only lines newer than N seconds
         ?sinceTime=RFC3339 only lines newer than that time
         ?timestamps=true   prefix each line with its RFC 3339 timestamp
         ?previous=true     the last exited instance (see Kubelet.log_container)
         ?limitBytes=N      at most N bytes
    POST /exec/{ns}/{pod}/{container}?command=ls&command=-l[&timeoutSeconds=N]
         runs the command (one `command` parameter per argv element, as Kubernetes'
         PodExecOptions) in the running container, waits for it, and answers 200
         application/json {"kind": "ExecResult", "exitCode": N, "output": "<stdout and
         stderr interleaved, UTF-8, invalid bytes replaced>"}; a command that does not
         finish in timeoutSeconds (default 60) is 504 with a Status.

Errors are Kubernetes `Status` objects (400 BadRequest, 401, 404 NotFound, 500, 504),
which the API server passes through to the client. `authenticate(request) -> bool`
(optional) sees every request but /healthz first; False answers 401 (bearer-token
checks plug in here).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from mkube.api.errors import ApiError, BadRequest, NotFound, Unauthorized
from mkube.api.fielderrors import INT32_MAX, INT64_MAX
from mkube.api.timeutil import parse_time
from mkube.api.types import Pod
from mkube.kubelet.runtime.base import ContainerRuntimeError, ExecTimeout
from mkube.kubelet.runtime.base import NotFound as RuntimeNotFound

log = logging.getLogger(__name__)

DEFAULT_EXEC_TIMEOUT = 60.0


@dataclass(frozen=True)
class Request:
    """What `authenticate` sees of a request."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    client: tuple[str, int]


Authenticate = Callable[[Request], bool]


class Target(Protocol):
    """What the server needs from the kubelet(s) of the process."""

    def find_pod(self, namespace: str, name: str) -> tuple[Any, Pod] | None:  # (Kubelet, Pod)
        ...

    def pods(self) -> list[Pod]:
        ...


def _flag(query: Mapping[str, list[str]], key: str) -> bool:
    return (query.get(key) or ["false"])[-1].lower() in ("true", "1", "yes")


def _int(query: Mapping[str, list[str]], key: str, minimum: int = 0, maximum: int = INT64_MAX) -> int | None:
    raw = (query.get(key) or [""])[-1]
    if raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{key}: invalid integer {raw!r}") from None
    if value < minimum:
        raise BadRequest(f"{key}: must be >= {minimum}")
    if value > maximum:
        raise BadRequest(f"{key}: must be <= {maximum}")
    return value


class _Handler(BaseHTTPRequestHandler):
    server: KubeletHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    # ---------------------------------------------------------------- plumbing
    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, obj: Any) -> None:
        self._send(code, json.dumps(obj).encode(), "application/json")

    def _error(self, err: ApiError) -> None:
        self._json(err.code, err.to_status())

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            if parts == ["healthz"]:
                self._send(200, b"ok", "text/plain; charset=utf-8")
                return
            auth = self.server.authenticate
            if auth is not None:
                req = Request(self.command, url.path, query, {k: v for k, v in self.headers.items()},
                              (self.client_address[0], self.client_address[1]))
                if not auth(req):
                    raise Unauthorized()
            if parts == ["pods"] and self.command == "GET":
                items = [p.to_dict() for p in self.server.target.pods()]
                self._json(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
            elif len(parts) == 4 and parts[0] == "containerLogs" and self.command == "GET":
                self._logs(parts[1], parts[2], parts[3], query)
            elif len(parts) == 4 and parts[0] == "exec" and self.command == "POST":
                self._exec(parts[1], parts[2], parts[3], query)
            else:
                raise NotFound("path", url.path, message=f"the kubelet serves no {self.command} {url.path}")
        except ApiError as e:
            self._error(e)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # a bug must not kill the server thread silently
            log.exception("kubelet server: %s %s failed", self.command, self.path)
            self._error(ApiError(message=f"internal error: {e}", code=500))

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # no body is used; drain it for keep-alive
        self._dispatch()

    def _find(self, namespace: str, name: str) -> tuple[Any, Pod]:
        found = self.server.target.find_pod(namespace, name)
        if found is None:
            raise NotFound("pods", name, message=f'pod "{name}" in namespace "{namespace}" is not on this node')
        return found

    # ---------------------------------------------------------------- logs
    def _logs(self, namespace: str, name: str, container: str, query: Mapping[str, list[str]]) -> None:
        kubelet, pod = self._find(namespace, name)
        follow = _flag(query, "follow")
        tail = _int(query, "tailLines")
        limit = _int(query, "limitBytes", 1)
        since: float | None = None
        since_seconds = _int(query, "sinceSeconds", 1)
        if since_seconds is not None:
            since = time.time() - since_seconds
        since_time = (query.get("sinceTime") or [""])[-1]
        if since_time:
            t = parse_time(since_time)
            if t is None:
                raise BadRequest(f"sinceTime: invalid RFC 3339 time {since_time!r}")
            since = max(since or 0.0, t.timestamp())
        info = kubelet.log_container(pod, container, _flag(query, "previous"))
        try:
            chunks = kubelet.runtime.logs(info.id, follow=follow, tail=tail, since=since,
                                          timestamps=_flag(query, "timestamps"))
        except RuntimeNotFound:
            raise NotFound("containers", container,
                           message=f'container "{container}" in pod "{name}" is gone') from None
        except ContainerRuntimeError as e:
            raise ApiError(message=f"reading the log of {container}: {e.message}", code=500) from None
        self._stream(chunks, limit, follow)

    def _stream(self, chunks: Iterator[bytes], limit: int | None, follow: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        sent = 0
        close = getattr(chunks, "close", None)
        try:
            for chunk in chunks:
                if limit is not None:
                    chunk = chunk[:limit - sent]
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    if follow:
                        self.wfile.flush()
                    sent += len(chunk)
                if limit is not None and sent >= limit:
                    break
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except ContainerRuntimeError as e:  # the stream broke: end the response cleanly
            log.info("log stream ended: %s", e)
            self.close_connection = True
        finally:
            if close is not None:
                close()

    # ---------------------------------------------------------------- exec
    def _exec(self, namespace: str, name: str, container: str, query: Mapping[str, list[str]]) -> None:
        kubelet, pod = self._find(namespace, name)
        command = [c for c in query.get("command") or []]
        if not command:
            raise BadRequest("you must specify at least 1 command")
        timeout = _int(query, "timeoutSeconds", 1, INT32_MAX)  # a wait() of 2^63 s overflows
        try:
            result = kubelet.exec_in(pod, container, command,
                                     float(timeout) if timeout is not None else DEFAULT_EXEC_TIMEOUT)
        except ExecTimeout as e:
            raise ApiError(message=f"exec in {container}: {e.message}", code=504, reason="Timeout") from None
        except RuntimeNotFound as e:
            raise NotFound("containers", container, message=e.message) from None
        except ContainerRuntimeError as e:
            raise ApiError(message=f"exec in {container}: {e.message}", code=500) from None
        self._json(200, {"kind": "ExecResult", "apiVersion": "v1", "exitCode": result.exit_code,
                         "output": result.output.decode("utf-8", "replace")})


class KubeletHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], target: Target, authenticate: Authenticate | None = None) -> None:
        super().__init__(address, _Handler)
        self.target = target
        self.authenticate = authenticate
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="kubelet-server",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
