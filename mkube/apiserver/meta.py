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

Obj = dict[str, Any]

_ALPHANUM = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes uses for generateName
_GENERATED_SUFFIX = 5
_MAX_NAME = 253


def now_rfc3339(offset_seconds: float = 0.0) -> str:
    """UTC time in Kubernetes' RFC 3339 form with a `Z` and whole seconds."""
    return timeutil.format_time(timeutil.now() + timedelta(seconds=offset_seconds))


def parse_rfc3339(value: str | None) -> datetime | None:
    try:
        return timeutil.parse_time(value)
    except (ValueError, AttributeError, TypeError):
        return None


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
    """metadata.resourceVersion as an int (None when absent/empty); 400 if malformed."""
    raw = (obj.get("metadata") or {}).get("resourceVersion")
    return parse_resource_version(raw)


def parse_resource_version(raw: Any) -> int | None:
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"invalid resource version: {raw!r}") from None
    if value < 0:
        raise BadRequest(f"invalid resource version: {raw!r}")
    return value
