"""rest.Client without a network (httpx.MockTransport): requests it sends, errors it raises."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from mkube.api.errors import AlreadyExists, ApiError, Conflict, Gone, Invalid, NotFound, TooManyRequests
from mkube.api.types import ConfigMap, Deployment, ObjectMeta, Pod
from mkube.client import Client, ConnectionFailed

Handler = Callable[[httpx.Request], httpx.Response]


def make(handler: Handler) -> Client:
    return Client("http://api.test", token="t0k", transport=httpx.MockTransport(handler))


def status(code: int, reason: str, message: str = "m", **details: object) -> httpx.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
            "message": message}
    if details:
        body["details"] = details
    return httpx.Response(code, json=body)


def test_paths_params_and_bodies() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        if req.method == "GET" and req.url.path.endswith("/pods"):
            return httpx.Response(200, json={"kind": "PodList", "metadata": {"resourceVersion": "7", "continue": "c2"},
                                             "items": [{"metadata": {"name": "a"}}]})
        body = json.loads(req.content) if req.content else None
        return httpx.Response(200, json=body if isinstance(body, dict) else {"metadata": {"name": "x"}})

    c = make(handler)
    page = c.list(Pod, namespace="ns", label_selector="app=web", field_selector="spec.nodeName=n1", limit=5,
                  continue_="c1")
    assert page.resource_version == "7" and page.continue_ == "c2" and page.items[0].metadata.name == "a"
    req = seen[-1]
    assert req.url.path == "/api/v1/namespaces/ns/pods"
    assert dict(req.url.params) == {"labelSelector": "app=web", "fieldSelector": "spec.nodeName=n1", "limit": "5",
                                    "continue": "c1"}
    assert req.headers["authorization"] == "Bearer t0k"

    c.create(ConfigMap(metadata=ObjectMeta(name="cm")))
    req = seen[-1]
    assert (req.method, req.url.path) == ("POST", "/api/v1/namespaces/default/configmaps")
    assert json.loads(req.content)["kind"] == "ConfigMap"

    c.update_status(Deployment(metadata=ObjectMeta(name="d", namespace="prod")))
    assert (seen[-1].method, seen[-1].url.path) == ("PUT", "/apis/apps/v1/namespaces/prod/deployments/d/status")

    for ptype, ctype in (("merge", "application/merge-patch+json"),
                         ("strategic", "application/strategic-merge-patch+json"),
                         ("json", "application/json-patch+json")):
        c.patch_raw(Deployment, "d", {} if ptype != "json" else [], "prod", ptype)  # type: ignore[arg-type]
        assert seen[-1].headers["content-type"] == ctype

    c.delete_raw(Pod, "p", propagation_policy="Foreground", grace_period_seconds=0,
                 preconditions={"uid": "u"})
    assert seen[-1].method == "DELETE"
    assert json.loads(seen[-1].content) == {"kind": "DeleteOptions", "apiVersion": "v1",
                                            "propagationPolicy": "Foreground", "gracePeriodSeconds": 0,
                                            "preconditions": {"uid": "u"}}
    c.bind("ns", "p", "node-1")
    assert seen[-1].url.path == "/api/v1/namespaces/ns/pods/p/binding"
    assert json.loads(seen[-1].content)["target"] == {"apiVersion": "v1", "kind": "Node", "name": "node-1"}
    c.update_scale(Deployment, "d", 3, "prod")
    assert seen[-1].url.path == "/apis/apps/v1/namespaces/prod/deployments/d/scale"
    assert json.loads(seen[-1].content)["spec"] == {"replicas": 3}


def test_status_errors_map_to_classes() -> None:
    answers = {
        "/api/v1/namespaces/default/pods/nf": status(404, "NotFound", 'pods "nf" not found', name="nf", kind="pods"),
        "/api/v1/namespaces/default/pods/ae": status(409, "AlreadyExists", "exists"),
        "/api/v1/namespaces/default/pods/cf": status(409, "Conflict", "modified"),
        "/api/v1/namespaces/default/pods/gone": status(410, "Expired", "too old"),
        "/api/v1/namespaces/default/pods/inv": status(422, "Invalid", "bad", causes=[
            {"field": "spec.containers", "message": "Required value", "reason": "FieldValueRequired"}]),
    }
    c = make(lambda req: answers[req.url.path])
    with pytest.raises(NotFound) as nf:
        c.get(Pod, "nf")
    assert str(nf.value) == 'pods "nf" not found' and nf.value.name == "nf"
    with pytest.raises(AlreadyExists):
        c.get(Pod, "ae")
    with pytest.raises(Conflict):
        c.get(Pod, "cf")
    with pytest.raises(Gone):
        c.get(Pod, "gone")
    with pytest.raises(Invalid) as inv:
        c.get(Pod, "inv")
    assert inv.value.causes[0].field == "spec.containers"


def test_non_status_error_bodies_are_clear() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("/html"):
            return httpx.Response(502, text="<html>Bad Gateway</html>")
        if req.url.path.endswith("/busy"):
            return httpx.Response(429, text="slow down", headers={"Retry-After": "3"})
        if req.url.path.endswith("/notfound"):
            return httpx.Response(404, json={"detail": "Not Found"})
        return httpx.Response(200, text="not json")

    c = make(handler)
    with pytest.raises(ApiError) as bad:
        c.get(Pod, "html")
    assert bad.value.code == 502
    assert "502" in str(bad.value) and "Bad Gateway" in str(bad.value) and "/pods/html" in str(bad.value)
    with pytest.raises(TooManyRequests) as busy:
        c.get(Pod, "busy")
    assert busy.value.retry_after_seconds == 3
    with pytest.raises(NotFound):
        c.get(Pod, "notfound")
    with pytest.raises(ApiError, match="not JSON"):
        c.get(Pod, "text")


def test_transport_failures_raise_connection_failed() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=req)

    c = make(handler)
    with pytest.raises(ConnectionFailed) as exc:
        c.get(Pod, "a")
    assert exc.value.server == "http://api.test"
    assert "http://api.test" in str(exc.value) and "refused" in str(exc.value)
    assert isinstance(exc.value, ApiError) and exc.value.code == 503


def test_watch_parses_lines_and_raises_error_events() -> None:
    lines = [
        {"type": "ADDED", "object": {"kind": "Pod", "metadata": {"name": "a", "resourceVersion": "2"}}},
        {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "5"}}},
        {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}},
    ]
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, content=b"".join(json.dumps(x).encode() + b"\n" for x in lines))

    c = make(handler)
    w = c.watch(Pod, namespace="ns", resource_version="1", timeout_seconds=30)
    assert dict(seen[0].url.params) == {"watch": "true", "resourceVersion": "1", "timeoutSeconds": "30",
                                        "allowWatchBookmarks": "true"}
    first = next(w)
    assert (first.type, first.object.metadata.name) == ("ADDED", "a")
    assert next(w).object.metadata.resource_version == "5"
    with pytest.raises(Gone, match="too old"):
        next(w)
    w.close()


def test_log_text_and_follow() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        assert req.url.path == "/api/v1/namespaces/ns/pods/p/log"
        return httpx.Response(200, text=f"params={sorted(req.url.params.items())}")

    c = make(handler)
    assert c.log("ns", "p", container="c", tail_lines=5) == "params=[('container', 'c'), ('tailLines', '5')]"
    chunks = c.log("ns", "p", follow=True)
    assert b"".join(chunks) == b"params=[('follow', 'true')]"  # type: ignore[arg-type]
