"""Reading request bodies: size limit, content types, JSON/YAML decoding.

Guarantees: a body larger than the limit is refused with 413 without being read to
the end; a body that is not a JSON/YAML object is a 400 BadRequest; an unsupported
Content-Type is a 415; a decoded body passes `check_storable` (so nothing stored can
later fail to encode and break a LIST). Nothing here ever raises anything but `ApiError`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import yaml
from starlette.requests import Request

from mkube.api.errors import BadRequest, RequestEntityTooLarge, UnsupportedMediaType

JSON = "application/json"
YAML = "application/yaml"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
PATCH_TYPES = (MERGE_PATCH, STRATEGIC_PATCH, JSON_PATCH)

try:  # libyaml when available: much faster and the same semantics as SafeLoader
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _YamlLoader = yaml.SafeLoader


def media_type(request: Request) -> str:
    """The Content-Type without parameters, lower-case ("" when absent)."""
    raw = request.headers.get("content-type", "")
    return raw.split(";", 1)[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) anything longer than `limit` bytes.

    A declared Content-Length over the limit is refused before reading; a chunked
    body is counted while it streams and refused as soon as it passes the limit.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise BadRequest(f"invalid Content-Length header {declared!r}") from None
        if length > limit:
            raise RequestEntityTooLarge(f"request body of {length} bytes is larger than the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestEntityTooLarge(f"request body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateField(key)
        out[key] = value
    return out


class _DuplicateField(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def decode_object(raw: bytes, content_type: str, *, strict: bool = False) -> dict[str, Any]:
    """Decode a JSON or YAML request body into a dict (a Kubernetes object).

    `strict` also refuses duplicate keys in JSON (what fieldValidation=Strict does).
    """
    if content_type in ("", JSON, "*/*", "application/*", "text/json"):
        data = _decode_json(raw, strict)
    elif content_type in (YAML, "application/x-yaml", "text/yaml", "text/x-yaml"):
        data = decode_yaml(raw)
    elif content_type == PROTOBUF:
        from mkube.apiserver import protobuf

        data = protobuf.decode(raw)
    elif content_type in PATCH_TYPES or content_type == APPLY_PATCH:
        raise UnsupportedMediaType(f"the body of this request must be application/json or application/yaml, "
                                   f"not {content_type}")
    else:
        raise UnsupportedMediaType(f"the body of the request was in an unknown format - accepted media types "
                                   f"include: application/json, application/yaml (got {content_type!r})")
    if not isinstance(data, dict):
        raise BadRequest(f"the request body must be a JSON object, not {_json_type(data)}")
    check_storable(data, "the request body")
    return data


def decode_json_value(raw: bytes) -> Any:
    """Any JSON value (for patch documents); malformed or not storable -> 400."""
    value = _decode_json(raw, False)
    check_storable(value, "the patch")
    return value


# Kubernetes objects nest about 10-30 levels (a CRD schema the deepest); the limit keeps
# every stored object far from orjson's encoder limit (254 levels), which a LIST or a
# Table wraps in a few more levels, and from Python's recursion limit in deepcopy.
MAX_DEPTH = 100


def check_storable(value: Any, what: str) -> None:
    """400 unless `value` is plain JSON that can be stored and served back: nested at most
    MAX_DEPTH levels, finite numbers, integers that fit in 64 bits, strings and keys that
    are valid UTF-8 (no lone surrogates). Iterative, so a hostile value cannot exhaust
    the stack; the encoding checks run in orjson (C)."""
    _check_finite(value, what)
    pending: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        container, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"{what} is nested more than {MAX_DEPTH} levels deep")
        for child in container.values() if isinstance(container, dict) else container:
            if isinstance(child, dict | list):
                pending.append((child, depth + 1))
            elif type(child) is float:
                _check_finite(child, what)
    try:
        orjson.dumps(value)
    except (TypeError, ValueError, OverflowError) as exc:  # big integers, lone surrogates, non-string keys
        raise BadRequest(f"{what} cannot be stored as JSON: {_short(str(exc))}") from None


def _check_finite(value: Any, what: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):  # YAML .nan/.inf, Python json's NaN
        raise BadRequest(f"{what} holds a number JSON cannot represent ({value})")


def _decode_json(raw: bytes, strict: bool) -> Any:
    if not raw.strip():
        raise BadRequest("the request body is empty; expected a JSON object")
    try:
        if strict:
            return json.loads(raw, object_pairs_hook=_no_duplicates)
        return orjson.loads(raw)
    except _DuplicateField as dup:
        raise BadRequest(f'strict decoding error: json: duplicate field "{dup.key}"') from None
    except (orjson.JSONDecodeError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {_short(str(exc))}") from None


def decode_yaml(raw: bytes) -> Any:
    """A YAML document (JSON is YAML too); malformed -> 400."""
    if not raw.strip():
        raise BadRequest("the request body is empty; expected a YAML object")
    try:
        docs = [d for d in yaml.load_all(raw, Loader=_YamlLoader) if d is not None]
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"the request body is not valid YAML: {_short(str(exc))}") from None
    if len(docs) != 1:
        raise BadRequest(f"the request body must hold exactly one YAML document, not {len(docs)}")
    return _plain(docs[0], [_MAX_YAML_NODES], 1)


_MAX_YAML_NODES = 1_000_000


def _plain(value: Any, budget: list[int], depth: int) -> Any:
    """JSON types only (YAML dates become strings); refuses alias bombs (billion laughs)
    and, before Python's recursion limit, nesting deeper than MAX_DEPTH (a recursive
    alias such as `a: &a [*a]` is infinitely deep)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise BadRequest("the YAML body expands to too many values (alias bomb?)")
    if depth > MAX_DEPTH and isinstance(value, dict | list):
        raise BadRequest(f"the request body is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        return {str(k): _plain(v, budget, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, budget, depth + 1) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _short(text: str, limit: int = 200) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."
