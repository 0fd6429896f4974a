"""Reading objects and Tables from the API server, the way kubectl asks for them.

Lists are read in pages of 500 (kubectl's --chunk-size) and their items get `apiVersion`
and `kind` (the wire items of a list carry neither). Tables are asked for with kubectl's
Accept header; a server that answers with plain objects gets its Table built here from
`mkube.api.tables`, so output never depends on server support.
"""

from __future__ import annotations

import time
from typing import Any

from mkube.api import tables
from mkube.api.kinds import ResourceType
from mkube.client.interface import BaseClient

Obj = dict[str, Any]
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
CHUNK = 500


def typed(rt: ResourceType, obj: Obj) -> Obj:
    """`obj` with apiVersion and kind first (as kubectl shows list items)."""
    if obj.get("apiVersion") and obj.get("kind"):
        return obj
    return {"apiVersion": rt.api_version, "kind": rt.kind, **obj}


def _params(label_selector: str | None, field_selector: str | None, limit: int | None = None,
            continue_: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    if limit:
        params["limit"] = limit
    if continue_:
        params["continue"] = continue_
    return params


def get_object(client: BaseClient, rt: ResourceType, name: str, namespace: str | None) -> Obj:
    return typed(rt, client.get_raw(rt, name, namespace if rt.namespaced else None))


def list_objects(client: BaseClient, rt: ResourceType, namespace: str | None,
                 label_selector: str | None = None, field_selector: str | None = None) -> tuple[list[Obj], str]:
    """All matching objects (following continue tokens) and the first page's resourceVersion.
    `namespace` None lists every namespace."""
    items: list[Obj] = []
    token: str | None = None
    rv = ""
    while True:
        page = client.list_raw(rt, namespace if rt.namespaced else None, label_selector or None,
                               field_selector or None, limit=CHUNK, continue_=token)
        meta = page.get("metadata") or {}
        rv = rv or str(meta.get("resourceVersion") or "")
        items.extend(typed(rt, i) for i in page.get("items") or [])
        token = meta.get("continue") or None
        if not token:
            return items, rv


def _as_table(rt: ResourceType, data: Any) -> Obj:
    if isinstance(data, dict) and data.get("kind") == "Table":
        return data
    is_list = isinstance(data, dict) and "items" in data
    objs = list(data.get("items") or []) if is_list else [data]
    table = tables.table_for(rt, [typed(rt, o) for o in objs], time.time(), include_object="Metadata")
    meta = data.get("metadata") if isinstance(data, dict) else None
    if isinstance(meta, dict) and is_list:
        table["metadata"] = {k: v for k, v in meta.items() if k in ("resourceVersion", "continue")}
    return table


def get_table(client: BaseClient, rt: ResourceType, namespace: str | None, name: str | None = None,
              label_selector: str | None = None, field_selector: str | None = None) -> Obj:
    """The Table of one object (`name`) or of a collection (every page, rows concatenated)."""
    headers = {"Accept": TABLE_ACCEPT}
    if name is not None:
        path = rt.path(namespace if rt.namespaced else None, name)
        return _as_table(rt, client.request("GET", path, headers=headers))
    path = rt.path(namespace if rt.namespaced else None)
    token: str | None = None
    result: Obj | None = None
    while True:
        page = _as_table(rt, client.request("GET", path, params=_params(label_selector, field_selector, CHUNK, token),
                                            headers=headers))
        if result is None:
            result = page
        else:
            result["rows"] = list(result.get("rows") or []) + list(page.get("rows") or [])
        token = (page.get("metadata") or {}).get("continue") or None
        if not token:
            return result


def row_table(rt: ResourceType, obj: Obj) -> Obj:
    """A one-row Table for a watched object (what a Table watch event would carry)."""
    return tables.table_for(rt, [obj], time.time(), include_object="Metadata")
