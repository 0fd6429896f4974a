"""Server-owned metadata: uid, creationTimestamp, generation, generateName, times.

The API server, not the client, decides these fields; the store decides only
`metadata.resourceVersion`.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from mkube.api import timeutil
from mkube.api.errors import BadRequest
from mkube.api.fielderrors import INT64_MAX

Obj = dict[str, Any]

_ALPHANUM = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes uses for generateName
_GENERATED_SUFFIX = 5
_MAX_NAME = 253


def now_rfc3339(offset_seconds: float = 0.0) -> str:
    """UTC time in Kubernetes' RFC 3339 form with a `Z` and whole seconds. The offset is
    clamped to a century either way (a grace period of 2^63 s must not overflow)."""
    offset = max(-_CENTURY_S, min(_CENTURY_S, offset_seconds))
    return timeutil.format_time(timeutil.now() + timedelta(seconds=offset))


_CENTURY_S = 100 * 365 * 86400


def parse_rfc3339(value: str | None) -> datetime | None:
    return timeutil.parse_time(value)


def generate_name(prefix: str) -> str:
    """`prefix` plus 5 random characters, the result cut to a valid length."""
    max_prefix = _MAX_NAME - _GENERATED_SUFFIX
    prefix = prefix[:max_prefix]
    return prefix + "".join(secrets.choice(_ALPHANUM) for _ in range(_GENERATED_SUFFIX))


def metadata_of(obj: Obj) -> Obj:
    """`obj["metadata"]` as a dict (created if absent); 400 if it is not an object."""
    md = obj.get("metadata")
    if md is None:
        md = obj["metadata"] = {}
    if not isinstance(md, dict):
        raise BadRequest("metadata must be an object")
    return md


def stamp_new(obj: Obj) -> None:
    """Set uid, creationTimestamp and generation on an object about to be created;
    drop what a client may not set on create."""
    md = metadata_of(obj)
    md["uid"] = str(uuid.uuid4())
    md["creationTimestamp"] = now_rfc3339()
    md["generation"] = 1
    for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        md.pop(key, None)


def carry_over(new: Obj, old: Obj, *, bump_generation: bool) -> None:
    """Keep the server-owned metadata of `old` on `new` (an update of it)."""
    md = metadata_of(new)
    old_md = old.get("metadata") or {}
    for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        if key in old_md:
            md[key] = old_md[key]
        else:
            md.pop(key, None)
    generation = int(old_md.get("generation") or 1)
    md["generation"] = generation + 1 if bump_generation else generation
    md.pop("selfLink", None)


def resource_version_of(obj: Obj) -> int | None:
    """metadata.resourceVersion as an int (None when absent/empty); 400 if malformed or if
    metadata is not an object."""
    md = obj.get("metadata")
    if md is not None and not isinstance(md, dict):
        raise BadRequest("metadata must be an object")
    return parse_resource_version((md or {}).get("resourceVersion"))


def parse_resource_version(raw: Any) -> int | None:
    if raw in (None, ""):
        return None
    if isinstance(raw, str) and not (raw.isascii() and raw.isdigit()):  # int() takes " 1", "1_0", "١"
        raise BadRequest(f"invalid resource version: {raw!r}")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"invalid resource version: {raw!r}") from None
    if not 0 <= value <= INT64_MAX:  # the store's revision is a SQL 64-bit integer
        raise BadRequest(f"invalid resource version: {raw!r}")
    return value
