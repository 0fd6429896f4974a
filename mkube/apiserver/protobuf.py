"""Decoding `application/vnd.kubernetes.protobuf` request bodies.

kubectl's typed clients (`kubectl create namespace|configmap|secret|deployment|service`)
send protobuf, not JSON. This module decodes that envelope (magic `k8s\\0` +
runtime.Unknown{typeMeta, raw}) into the same wire dict a JSON body gives, for the
kinds and fields listed in SCHEMA (field numbers from k8s.io/api generated.proto).

Like Go's `omitempty`, empty values that Kubernetes' encoder always writes (empty
strings, zero numbers, empty messages) are dropped, except for pointer fields (marked
`?`), whose zero value is meaningful (`replicas: 0`). A field that is not in SCHEMA
but carries no data is skipped; one that carries data is refused (415), so nothing a
client sent is ever silently lost.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from mkube.api.errors import BadRequest, UnsupportedMediaType

MAGIC = b"k8s\x00"
Obj = dict[str, Any]

# message -> field number -> (json name, type). Types: string bytes int bool time intorstring
# quantity msg:X, prefixed "[]" (repeated) or "map:" (map<string, T>); a trailing "?" keeps zero values.
_META = {1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"),
         4: ("selfLink", "string"), 5: ("uid", "string"), 6: ("resourceVersion", "string"),
         7: ("generation", "int"), 8: ("creationTimestamp", "time"), 9: ("deletionTimestamp", "time"),
         10: ("deletionGracePeriodSeconds", "int?"), 11: ("labels", "map:string"),
         12: ("annotations", "map:string"), 13: ("ownerReferences", "[]msg:OwnerReference"),
         14: ("finalizers", "[]string")}
SCHEMA: dict[str, dict[int, tuple[str, str]]] = {
    "Unknown": {1: ("typeMeta", "msg:TypeMeta"), 2: ("raw", "raw"), 3: ("contentEncoding", "string"),
                4: ("contentType", "string")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "ObjectMeta": _META,
    "OwnerReference": {1: ("kind", "string"), 3: ("name", "string"), 4: ("uid", "string"),
                       5: ("apiVersion", "string"), 6: ("controller", "bool?"), 7: ("blockOwnerDeletion", "bool?")},
    "LabelSelector": {1: ("matchLabels", "map:string"), 2: ("matchExpressions", "[]msg:LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: ("key", "string"), 2: ("operator", "string"), 3: ("values", "[]string")},
    "Namespace": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:NamespaceSpec"),
                  3: ("status", "msg:NamespaceStatus")},
    "NamespaceSpec": {1: ("finalizers", "[]string")},
    "NamespaceStatus": {1: ("phase", "string")},
    "ConfigMap": {1: ("metadata", "msg:ObjectMeta"), 2: ("data", "map:string"), 3: ("binaryData", "map:bytes"),
                  4: ("immutable", "bool?")},
    "Secret": {1: ("metadata", "msg:ObjectMeta"), 2: ("data", "map:bytes"), 3: ("type", "string"),
               4: ("stringData", "map:string"), 5: ("immutable", "bool?")},
    "Service": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:ServiceSpec"),
                3: ("status", "msg:ServiceStatus")},
    "ServiceSpec": {1: ("ports", "[]msg:ServicePort"), 2: ("selector", "map:string"), 3: ("clusterIP", "string"),
                    4: ("type", "string"), 5: ("externalIPs", "[]string"), 7: ("sessionAffinity", "string"),
                    8: ("loadBalancerIP", "string"), 10: ("externalName", "string"),
                    11: ("externalTrafficPolicy", "string"), 13: ("publishNotReadyAddresses", "bool"),
                    18: ("clusterIPs", "[]string")},
    "ServicePort": {1: ("name", "string"), 2: ("protocol", "string"), 3: ("port", "int"),
                    4: ("targetPort", "intorstring"), 5: ("nodePort", "int"), 6: ("appProtocol", "string?")},
    "ServiceStatus": {},
    "Deployment": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:DeploymentSpec"),
                   3: ("status", "msg:DeploymentStatus")},
    "DeploymentSpec": {1: ("replicas", "int?"), 2: ("selector", "msg:LabelSelector"),
                       3: ("template", "msg:PodTemplateSpec"), 4: ("strategy", "msg:DeploymentStrategy"),
                       5: ("minReadySeconds", "int"), 6: ("revisionHistoryLimit", "int?"), 7: ("paused", "bool"),
                       9: ("progressDeadlineSeconds", "int?")},
    "DeploymentStrategy": {1: ("type", "string"), 2: ("rollingUpdate", "msg:RollingUpdateDeployment")},
    "RollingUpdateDeployment": {1: ("maxUnavailable", "intorstring"), 2: ("maxSurge", "intorstring")},
    "DeploymentStatus": {},
    "PodTemplateSpec": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:PodSpec")},
    "PodSpec": {2: ("containers", "[]msg:Container"), 3: ("restartPolicy", "string"),
                4: ("terminationGracePeriodSeconds", "int?"), 5: ("activeDeadlineSeconds", "int?"),
                6: ("dnsPolicy", "string"), 7: ("nodeSelector", "map:string"), 8: ("serviceAccountName", "string"),
                10: ("nodeName", "string"), 11: ("hostNetwork", "bool"), 16: ("hostname", "string"),
                19: ("schedulerName", "string"), 20: ("initContainers", "[]msg:Container")},
    "Container": {1: ("name", "string"), 2: ("image", "string"), 3: ("command", "[]string"), 4: ("args", "[]string"),
                  5: ("workingDir", "string"), 6: ("ports", "[]msg:ContainerPort"), 7: ("env", "[]msg:EnvVar"),
                  8: ("resources", "msg:ResourceRequirements"), 13: ("terminationMessagePath", "string"),
                  14: ("imagePullPolicy", "string"), 16: ("stdin", "bool"), 17: ("stdinOnce", "bool"),
                  18: ("tty", "bool"), 20: ("terminationMessagePolicy", "string")},
    "ContainerPort": {1: ("name", "string"), 2: ("hostPort", "int"), 3: ("containerPort", "int"),
                      4: ("protocol", "string"), 5: ("hostIP", "string")},
    "EnvVar": {1: ("name", "string"), 2: ("value", "string")},
    "ResourceRequirements": {1: ("limits", "map:quantity"), 2: ("requests", "map:quantity")},
}
# (apiVersion, kind) -> top message
TOP = {("v1", "Namespace"): "Namespace", ("v1", "ConfigMap"): "ConfigMap", ("v1", "Secret"): "Secret",
       ("v1", "Service"): "Service", ("apps/v1", "Deployment"): "Deployment"}


class _Reader:
    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes, pos: int = 0, end: int | None = None) -> None:
        self.buf, self.pos, self.end = buf, pos, len(buf) if end is None else end

    def varint(self) -> int:
        result, shift = 0, 0
        while True:
            if self.pos >= self.end or shift > 63:
                raise BadRequest("malformed protobuf body: truncated varint")
            b = self.buf[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def fields(self) -> Any:
        """(field number, wire type, value): value is an int or a bytes slice."""
        while self.pos < self.end:
            key = self.varint()
            num, wire = key >> 3, key & 7
            if wire == 0:
                yield num, wire, self.varint()
            elif wire == 2:
                n = self.varint()
                if self.pos + n > self.end:
                    raise BadRequest("malformed protobuf body: truncated field")
                yield num, wire, self.buf[self.pos:self.pos + n]
                self.pos += n
            elif wire in (1, 5):
                size = 8 if wire == 1 else 4
                if self.pos + size > self.end:
                    raise BadRequest("malformed protobuf body: truncated field")
                yield num, wire, int.from_bytes(self.buf[self.pos:self.pos + size], "little")
                self.pos += size
            else:
                raise BadRequest(f"malformed protobuf body: unsupported wire type {wire}")


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _scalar(typ: str, wire: int, value: Any, where: str) -> Any:
    if typ == "string":
        if wire != 2:
            raise BadRequest(f"malformed protobuf body: {where} must be a string")
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"malformed protobuf body: {where} is not UTF-8") from None
    if typ == "bytes":
        return base64.b64encode(bytes(value)).decode("ascii")
    if typ == "raw":
        return bytes(value)
    if typ == "int":
        return _signed(value) if wire == 0 else value
    if typ == "bool":
        return bool(value)
    if typ == "time":
        msg = {n: v for n, _, v in _Reader(bytes(value)).fields()}
        seconds = _signed(msg.get(1, 0))
        if not seconds and not msg.get(2):
            return None
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if typ == "quantity":
        msg = {n: v for n, _, v in _Reader(bytes(value)).fields()}
        return bytes(msg.get(1, b"")).decode("utf-8", "replace")
    if typ == "intorstring":
        msg = {n: v for n, _, v in _Reader(bytes(value)).fields()}
        if msg.get(1, 0) == 1:
            return bytes(msg.get(3, b"")).decode("utf-8", "replace")
        return _signed(msg.get(2, 0))
    if typ.startswith("msg:"):
        return _message(typ[4:], bytes(value))
    raise BadRequest(f"malformed protobuf body: unknown type {typ}")  # pragma: no cover


def _empty(value: Any) -> bool:
    if isinstance(value, bytes):
        return not value
    return value in (None, "", 0, False) or (isinstance(value, dict | list) and not value)


def _message(name: str, buf: bytes) -> Obj:
    schema = SCHEMA[name]
    out: Obj = {}
    for num, wire, value in _Reader(buf).fields():
        spec = schema.get(num)
        if spec is None:
            if (wire == 2 and len(value) == 0) or (wire != 2 and value == 0):
                continue  # an empty value Kubernetes' encoder always writes
            raise UnsupportedMediaType(f"protobuf field {num} of {name} is not supported by mkube; send the "
                                       f"object as JSON or YAML instead")
        json_name, typ = spec
        keep_zero = typ.endswith("?")
        typ = typ.rstrip("?")
        where = f"{name}.{json_name}"
        if typ.startswith("[]"):
            out.setdefault(json_name, []).append(_scalar(typ[2:], wire, value, where))
        elif typ.startswith("map:"):
            entry = {n: (w, v) for n, w, v in _Reader(bytes(value)).fields()}
            key = _scalar("string", 2, entry[1][1], where) if 1 in entry else ""
            val = _scalar(typ[4:], *entry[2], where) if 2 in entry else _zero(typ[4:])
            out.setdefault(json_name, {})[key] = val
        else:
            decoded = _scalar(typ, wire, value, where)
            if keep_zero or not _empty(decoded):
                out[json_name] = decoded
            else:
                out.pop(json_name, None)
    return out


def _zero(typ: str) -> Any:
    return "" if typ in ("string", "bytes", "quantity") else None


def decode(raw: bytes) -> Obj:
    """A protobuf request body as a wire dict; 400 if malformed, 415 if not decodable here."""
    if not raw.startswith(MAGIC):
        raise BadRequest("malformed protobuf body: missing the k8s\\0 envelope")
    unknown = _message("Unknown", raw[len(MAGIC):])
    type_meta = unknown.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    if unknown.get("contentEncoding"):
        raise UnsupportedMediaType(f"protobuf content encoding {unknown['contentEncoding']!r} is not supported")
    top = TOP.get((api_version, kind))
    if top is None:
        raise UnsupportedMediaType(f"protobuf bodies of {kind or 'unknown kind'} ({api_version}) are not supported by "
                                   f"mkube; send the object as JSON or YAML instead")
    raw_obj = unknown.get("raw")
    obj = _message(top, raw_obj if isinstance(raw_obj, bytes) else b"")
    return {"apiVersion": api_version, "kind": kind, **obj}
