"""TEMPORARY SHIM — used only while mkube.api.validation (helper "api") is missing.

Checks names only; keeps the body otherwise. Only admission.py imports this.
"""

from __future__ import annotations

import re
from typing import Any

from mkube.api.errors import Cause, Invalid
from mkube.api.kinds import ResourceType

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _check(rt: ResourceType, body: dict[str, Any]) -> dict[str, Any]:
    md = body.get("metadata") or {}
    name = md.get("name")
    causes = []
    if not isinstance(name, str) or not name:
        causes.append(Cause("metadata.name", "Required value: name or generateName is required", "FieldValueRequired"))
    elif len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        causes.append(Cause("metadata.name", f'Invalid value: "{name[:80]}": a lowercase RFC 1123 subdomain'))
    if causes:
        raise Invalid(rt.kind, str(name or ""), causes, group=rt.group or None)
    return body


def prepare_for_create(rt: ResourceType, body: dict[str, Any]) -> dict[str, Any]:
    return _check(rt, body)


def prepare_for_update(rt: ResourceType, body: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    return _check(rt, body)


def prepare_for_status_update(rt: ResourceType, body: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    new = dict(old)
    if "status" in body:
        new["status"] = body["status"]
    return new


def unknown_fields(rt: ResourceType, body: dict[str, Any]) -> list[str]:
    return []
