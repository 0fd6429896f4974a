"""Subresources beyond status: scale (autoscaling/v1 Scale), pods/binding,
pods/log (proxied to the node's kubelet), pods/exec (refused clearly),
namespaces/finalize."""

from __future__ import annotations

import copy
import ipaddress
import re
from typing import Any

import httpx
from starlette.responses import Response

from mkube.api.errors import ApiError, BadRequest, Cause, Conflict, Invalid, NotFound, ServiceUnavailable
from mkube.api.fielderrors import INT32_MAX
from mkube.api.kinds import ResourceType, by_path
from mkube.apiserver import admission, auth_http, bodies, meta, patching
from mkube.apiserver.handlers import read_patch, warning_headers, write_update
from mkube.apiserver.request import ResourceRequest
from mkube.apiserver.responses import json_response, object_response, parse_accept, success_status
from mkube.apiserver.streaming import DisconnectAwareStream

Obj = dict[str, Any]


def _as_dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}
NODES: ResourceType = by_path("", "v1", "nodes")  # type: ignore[assignment]


# ---------------------------------------------------------------- scale

def selector_string(selector: Any) -> str:
    """A LabelSelector as the string form Scale.status.selector uses."""
    if not isinstance(selector, dict):
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(sorted(values))})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(sorted(values))})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def to_scale(obj: Obj) -> Obj:
    md = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    replicas = spec.get("replicas")
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in md},
        "spec": {"replicas": 1 if replicas is None else replicas},
        "status": {"replicas": int(status.get("replicas") or 0), "selector": selector_string(spec.get("selector"))},
    }


def _scale_replicas(rt: ResourceType, scale: Obj, name: str) -> int:
    if scale.get("kind") not in (None, "Scale"):
        raise BadRequest(f"the kind in the data ({scale.get('kind')}) does not match the expected kind (Scale)")
    if scale.get("apiVersion") not in (None, "autoscaling/v1"):
        raise BadRequest(f"the API version in the data ({scale.get('apiVersion')}) does not match the expected "
                         f"API version (autoscaling/v1)")
    replicas = (scale.get("spec") or {}).get("replicas") if isinstance(scale.get("spec"), dict) else None
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise Invalid("Scale", name, [Cause("spec.replicas", f"Invalid value: {replicas!r}: must be an integer")],
                      group="autoscaling")
    if replicas < 0:
        raise Invalid("Scale", name, [Cause("spec.replicas", f"Invalid value: {replicas}: must be greater than or "
                                                             f"equal to 0")], group="autoscaling")
    return replicas


def _apply_replicas(rt: ResourceType, old: Obj, replicas: int) -> Obj:
    new = copy.deepcopy(old)
    new.setdefault("spec", {})["replicas"] = replicas
    new = admission.prepare_update(rt, new, old)
    meta.carry_over(new, old, bump_generation=admission.spec_changed(rt, new, old))
    return new


async def get_scale(r: ResourceRequest) -> Response:
    assert r.name is not None
    obj = await r.ctx.get(r.rt, r.namespace, r.name)
    return object_response(to_scale(obj), parse_accept(r.request))


async def update_scale(r: ResourceRequest) -> Response:
    assert r.name is not None
    raw = await bodies.read_body(r.request, r.ctx.options.max_request_body_bytes)
    scale = bodies.decode_object(raw, bodies.media_type(r.request))
    md = _as_dict(scale.get("metadata"))
    if md.get("name") not in (None, "", r.name):
        raise BadRequest(f"the name of the object ({md.get('name')}) does not match the name on the URL ({r.name})")
    replicas = _scale_replicas(r.rt, scale, r.name)
    precondition = meta.parse_resource_version(md.get("resourceVersion"))
    obj, _ = await write_update(r, lambda old: _apply_replicas(r.rt, old, replicas), precondition)
    return object_response(to_scale(obj), parse_accept(r.request))


async def patch_scale(r: ResourceRequest) -> Response:
    assert r.name is not None
    ptype, doc = await read_patch(r)
    rt, name = r.rt, r.name

    def compute(old: Obj) -> Obj:
        scale = patching.apply(rt, ptype, to_scale(old), doc, kind="Scale")
        return _apply_replicas(rt, old, _scale_replicas(rt, scale, name))

    obj, _ = await write_update(r, compute, None)
    return object_response(to_scale(obj), parse_accept(r.request))


# ---------------------------------------------------------------- binding

async def create_binding(r: ResourceRequest) -> Response:
    """pods/{name}/binding, or the bindings collection (r.name None: the Binding names the pod)."""
    raw = await bodies.read_body(r.request, r.ctx.options.max_request_body_bytes)
    binding = bodies.decode_object(raw, bodies.media_type(r.request))
    if binding.get("kind") not in (None, "Binding"):
        raise BadRequest(f"the kind in the data ({binding.get('kind')}) does not match the expected kind (Binding)")
    md = _as_dict(binding.get("metadata"))
    if r.name is None:
        if not isinstance(md.get("name"), str) or not md.get("name"):
            raise Invalid("Binding", "", [Cause("metadata.name", "Required value: the name of the pod to bind",
                                                "FieldValueRequired")])
        r.name = md["name"]
    assert r.name is not None
    if md.get("name") not in (None, "", r.name):
        raise BadRequest(f"the name of the Binding ({md.get('name')}) does not match the pod name on the URL "
                         f"({r.name})")
    target = binding.get("target")
    node = target.get("name") if isinstance(target, dict) else None
    if not isinstance(node, str) or not node:
        raise Invalid("Binding", r.name, [Cause("target.name", "Required value", "FieldValueRequired")])
    if isinstance(target, dict) and target.get("kind") not in (None, "", "Node"):
        raise Invalid("Binding", r.name, [Cause("target.kind", f"Unsupported value: {target.get('kind')!r}: "
                                                               f'supported values: "Node"', "FieldValueNotSupported")])
    name = r.name
    want_uid = md.get("uid")

    def compute(old: Obj) -> Obj:
        spec = old.get("spec") or {}
        if want_uid and (old.get("metadata") or {}).get("uid") != want_uid:
            # the Binding was meant for an earlier pod of the same name
            raise Conflict("pods", name, f"Precondition failed: UID in precondition: {want_uid}, "
                                         f"UID in object meta: {(old.get('metadata') or {}).get('uid')}")
        if (old.get("metadata") or {}).get("deletionTimestamp"):
            raise Conflict("pods", name, f"pod {name} is being deleted, cannot be assigned to a host")
        if spec.get("nodeName"):
            raise Conflict("pods", name, f"pod {name} is already assigned to node \"{spec['nodeName']}\"")
        new = copy.deepcopy(old)
        new.setdefault("spec", {})["nodeName"] = node
        conditions = [c for c in (new.setdefault("status", {}).get("conditions") or [])
                      if isinstance(c, dict) and c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": meta.now_rfc3339()})
        new["status"]["conditions"] = conditions
        return new

    await write_update(r, compute, meta.parse_resource_version(md.get("resourceVersion")))
    return json_response(success_status(code=201), 201)


# ---------------------------------------------------------------- finalize

async def finalize_namespace(r: ResourceRequest) -> Response:
    assert r.name is not None
    raw = await bodies.read_body(r.request, r.ctx.options.max_request_body_bytes)
    body = bodies.decode_object(raw, bodies.media_type(r.request))
    spec = _as_dict(body.get("spec"))
    finalizers = spec.get("finalizers") or []
    if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
        raise Invalid("Namespace", r.name, [Cause("spec.finalizers", "must be a list of strings")])

    def compute(old: Obj) -> Obj:
        new = copy.deepcopy(old)
        new.setdefault("spec", {})["finalizers"] = finalizers
        return new

    obj, _ = await write_update(r, compute, meta.resource_version_of(body))
    return object_response(obj, parse_accept(r.request))


# ---------------------------------------------------------------- log

_LOG_INT_PARAMS = ("tailLines", "sinceSeconds", "limitBytes")
_LOG_BOOL_PARAMS = ("follow", "previous", "timestamps")


def _node_endpoint(node: Obj) -> tuple[str, int]:
    status = node.get("status") or {}
    addresses = status.get("addresses") or []
    ip = next((a.get("address") for a in addresses if isinstance(a, dict) and a.get("type") == "InternalIP"), None)
    if not ip:
        ip = next((a.get("address") for a in addresses if isinstance(a, dict) and a.get("address")), None)
    port = (((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port"))
    if not isinstance(ip, str) or not _host_address(ip) or not isinstance(port, int) or not 0 < port < 65536:
        name = (node.get("metadata") or {}).get("name", "")
        raise ServiceUnavailable(f'node "{name}" has no reachable kubelet endpoint (status.addresses InternalIP / '
                                 f"status.daemonEndpoints.kubeletEndpoint.Port)")
    return (f"[{ip}]" if ":" in ip else ip), port  # an IPv6 address goes in brackets


_DNS_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def _host_address(address: str) -> bool:
    """An IP address or a DNS name: anything else (a path, a user@, a port) would be
    pasted into the kubelet URL and send the request elsewhere."""
    try:
        ipaddress.ip_address(address)
        return True
    except ValueError:
        return _DNS_NAME.fullmatch(address) is not None


async def _kubelet_target(r: ResourceRequest) -> tuple[str, str, str, int]:
    """(container, node name, kubelet IP, kubelet port) of the pod named by the request,
    choosing the only container when `container` is not given (as Kubernetes does)."""
    assert r.name is not None
    pod = await r.ctx.get(r.rt, r.namespace, r.name)
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or [] if isinstance(c, dict)]
    names += [c.get("name") for c in spec.get("initContainers") or [] if isinstance(c, dict)]
    container = r.q("container")
    if not container:
        if len(spec.get("containers") or []) != 1:
            raise BadRequest(f"a container name must be specified for pod {r.name}, choose one of: "
                             f"[{' '.join(str(n) for n in names)}]")
        container = names[0]
    elif container not in names:
        raise BadRequest(f"container {container} is not valid for pod {r.name}")
    node_name = spec.get("nodeName")
    if not node_name:
        raise BadRequest(f"pod {r.name} does not have a host assigned")
    try:
        node = await r.ctx.get(NODES, None, node_name)
    except ApiError as err:
        if err.code == 404:
            raise NotFound("nodes", node_name, message=f'nodes "{node_name}" not found (the node of pod '
                                                       f'{r.name})') from None
        raise
    ip, port = _node_endpoint(node)
    return str(container), str(node_name), ip, port


async def pod_log(r: ResourceRequest) -> Response:
    assert r.name is not None
    params: dict[str, str] = {}
    for key in _LOG_INT_PARAMS:
        value = r.int_param(key, minimum=0 if key == "tailLines" else 1)
        if value is not None:
            params[key] = str(value)
    for key in _LOG_BOOL_PARAMS:
        if r.bool_param(key):
            params[key] = "true"
    if r.q("sinceTime"):
        if meta.parse_rfc3339(r.q("sinceTime")) is None:
            raise BadRequest(f"sinceTime: invalid RFC 3339 time {r.q('sinceTime')!r}")
        params["sinceTime"] = r.q("sinceTime") or ""
    container, node_name, ip, port = await _kubelet_target(r)
    url = f"http://{ip}:{port}/containerLogs/{r.namespace}/{r.name}/{container}"
    client: httpx.AsyncClient = r.ctx.http
    try:
        req = client.build_request("GET", url, params=params, headers=auth_http.kubelet_headers(r.ctx, node_name))
        upstream = await client.send(req, stream=True)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(f'the kubelet of node "{node_name}" at {ip}:{port} is unreachable: '
                                 f"{type(exc).__name__}") from None
    if upstream.status_code != 200:
        body = await upstream.aread()
        await upstream.aclose()
        try:
            import orjson

            status = orjson.loads(body)
            if isinstance(status, dict) and status.get("kind") == "Status":
                return Response(body, status_code=upstream.status_code, media_type="application/json")
        except ValueError:
            pass
        text = body.decode("utf-8", "replace")[:500]
        raise ApiError(message=f"kubelet: {text or upstream.reason_phrase}", code=upstream.status_code,
                       reason="NotFound" if upstream.status_code == 404 else "InternalError")

    async def chunks() -> Any:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        except httpx.HTTPError:
            return
        finally:
            await upstream.aclose()

    return DisconnectAwareStream(chunks(), media_type="text/plain")


# ---------------------------------------------------------------- exec

async def pod_exec(r: ResourceRequest) -> Response:
    """Run a command in a container through its kubelet and answer the kubelet's
    `ExecResult` ({"exitCode": N, "output": "..."}). mkube has no SPDY/WebSocket stream
    upgrade: the command runs to completion (stdin is not supported), which is what
    `mkubectl exec` uses; the real kubectl's interactive exec is not served."""
    command = r.request.query_params.getlist("command")
    if not command:
        raise BadRequest("you must specify at least 1 command")
    timeout = r.int_param("timeoutSeconds", minimum=1, maximum=INT32_MAX)
    container, node_name, ip, port = await _kubelet_target(r)
    url = f"http://{ip}:{port}/exec/{r.namespace}/{r.name}/{container}"
    params: list[tuple[str, str | int | float | bool | None]] = [("command", c) for c in command]
    if timeout is not None:
        params.append(("timeoutSeconds", str(timeout)))
    client: httpx.AsyncClient = r.ctx.http
    try:
        upstream = await client.post(url, params=params, headers=auth_http.kubelet_headers(r.ctx, node_name),
                                     timeout=httpx.Timeout(10.0, read=(timeout or 60) + 10.0))
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(f'the kubelet of node "{node_name}" at {ip}:{port} is unreachable: '
                                 f"{type(exc).__name__}") from None
    return Response(upstream.content, status_code=upstream.status_code, media_type="application/json")


__all__ = ["create_binding", "finalize_namespace", "get_scale", "patch_scale", "pod_exec", "pod_log",
           "update_scale", "warning_headers"]
