"""Server-side `meta.k8s.io/v1 Table` output (what `kubectl get` asks for).

Columns and cells come from mkube.api.tables; this module adds what depends on the
request: `includeObject` (None / Metadata (default) / Object), the Table version
(v1 or v1beta1), list metadata, and column definitions only on the first watch event.
"""

from __future__ import annotations

import time
from typing import Any

from mkube.api import tables
from mkube.api.errors import BadRequest
from mkube.api.kinds import ResourceType

Obj = dict[str, Any]

INCLUDE_MODES = ("None", "Metadata", "Object")


def include_mode(raw: str | None) -> str:
    if raw in (None, ""):
        return "Metadata"
    if raw not in INCLUDE_MODES:
        raise BadRequest(f"includeObject: Unsupported value: {raw!r}: supported values: \"None\", \"Metadata\", "
                         f"\"Object\"")
    return raw  # type: ignore[return-value]


def table(rt: ResourceType, objs: list[Obj], *, include: str, table_version: str = "v1",
          list_meta: Obj | None = None, with_columns: bool = True) -> Obj:
    """A Table of `objs` (rows in the given order)."""
    out = tables.table_for(rt, objs, time.time(), include_object=include)
    api_version = f"meta.k8s.io/{table_version}"
    out["apiVersion"] = api_version
    if include == "Metadata" and table_version != "v1":
        for row in out["rows"]:
            row["object"]["apiVersion"] = api_version
    out["metadata"] = list_meta or {}
    if not with_columns:
        out["columnDefinitions"] = []
    return out
