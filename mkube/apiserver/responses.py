"""Response helpers: orjson bodies, Status objects, content negotiation."""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from starlette.requests import Request
from starlette.responses import Response

from mkube.api.errors import ApiError, NotAcceptable

JSON_MEDIA = "application/json"


def json_response(data: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type=JSON_MEDIA, headers=headers)


def raw_json_response(body: bytes, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type=JSON_MEDIA)


def error_response(err: ApiError) -> Response:
    """The Status of `err` with its HTTP code (and Retry-After when it has one)."""
    headers = None
    if err.retry_after_seconds is not None:
        headers = {"Retry-After": str(err.retry_after_seconds)}
    return Response(orjson.dumps(err.to_status()), status_code=err.code, media_type=JSON_MEDIA, headers=headers)


def success_status(details: dict[str, Any] | None = None, code: int = 200) -> dict[str, Any]:
    status: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        status["details"] = details
    return status


class Accept:
    """What the client asked for in `Accept`: JSON (default), YAML, or a meta.k8s.io Table."""

    __slots__ = ("table", "yaml", "table_version")

    def __init__(self, table: bool, yaml_: bool, table_version: str = "v1") -> None:
        self.table = table
        self.yaml = yaml_
        self.table_version = table_version


_PLAIN = Accept(False, False)


def parse_accept(request: Request) -> Accept:
    """Pick the first acceptable media type; 406 when none is one we can produce."""
    header = request.headers.get("accept")
    if not header:
        return _PLAIN
    acceptable = False
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        mtype = fields[0].lower()
        params = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        if params.get("as") == "Table":
            if params.get("g", "meta.k8s.io") == "meta.k8s.io" and params.get("v", "v1") in ("v1", "v1beta1") \
                    and mtype in (JSON_MEDIA, "*/*"):
                return Accept(True, False, params.get("v", "v1"))
            continue
        if "as" in params:  # PartialObjectMetadata, APIGroupDiscoveryList ...: not offered
            continue
        if mtype in (JSON_MEDIA, "*/*", "application/*", "application/json-seq"):
            return _PLAIN
        if mtype in ("application/yaml", "application/x-yaml", "text/yaml"):
            return Accept(False, True)
        if mtype == "application/vnd.kubernetes.protobuf" or mtype.startswith("application/"):
            continue
        acceptable = acceptable or mtype.startswith("text/")
    if acceptable:
        return _PLAIN
    raise NotAcceptable(f"only the following media types are accepted: application/json, application/yaml, "
                        f"application/json;as=Table;v=v1;g=meta.k8s.io (asked for {header!r})")


def object_response(obj: Any, accept: Accept, status_code: int = 200, headers: dict[str, str] | None = None
                    ) -> Response:
    """An object in the negotiated format (JSON or YAML; Tables are built by the caller)."""
    if accept.yaml:
        return Response(yaml.safe_dump(obj, sort_keys=False), status_code=status_code,
                        media_type="application/yaml", headers=headers)
    return Response(orjson.dumps(obj), status_code=status_code, media_type=JSON_MEDIA, headers=headers)
